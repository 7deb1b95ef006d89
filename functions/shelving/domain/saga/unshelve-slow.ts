import type { ItemError } from '../../../shared/results';
import type { Decision } from '../actions';
import { relocation } from '../relocation';
import { isGone, type ShelfRecord } from '../types';
import {
  encryptionKeyUnusable,
  endedByEncryptionKey,
  HOST_WAIT_RETRY_MS,
  launchRetryNotDue,
  nextAttempt,
  POLL_MS,
  type StepDecision,
  slowReissueDueAt,
  stateReasonOf,
  wait,
  withUnshelve,
} from './decisions';
import { replacementReady } from './unshelve';

/**
 * The slow path: a replacement launches from the safety snapshots (in the recorded AZ, or in
 * another one: domain/relocation.ts) and is the instance once it runs.
 */

/**
 * EC2 refused the slow-path launch for good (a snapshot or the image is gone): back to path
 * selection with the slow path ruled out, which takes the fast path if the retained volumes are
 * still there and otherwise fails the record, saying both. A new attempt, so a new ClientToken.
 */
export const slowLaunchRefused = (record: ShelfRecord, error: ItemError, now: number): Decision => {
  const why = `the slow-path launch was refused (${error.code}: ${error.message})`;
  return {
    to: 'unshelve.choose',
    set: {
      unshelve: withUnshelve(record, {
        path: undefined,
        reason: why,
        slowPathUnavailable: why,
        attempt: nextAttempt(record),
        relocation: undefined,
        slowLaunchIssuedAt: undefined,
        slowLaunchQueuedMs: undefined,
        capacityRefusedSince: undefined,
        replacementInstanceId: undefined,
      }),
    },
    actions: [],
    recheckAt: now,
    reason: why,
  };
};

/**
 * The slow-path replacement terminated on its own (capacity, a key it cannot use, someone
 * terminated it). Its ClientToken stays bound to it for at least 24 h after termination
 * (Run_Instance_Idempotency), so re-issuing it would only return the terminated instance: a
 * new attempt, so a new token, after a pause so a cause that kills every replacement does not
 * launch one a round.
 */
const relaunchFromSnapshots = (record: ShelfRecord, now: number, reason: string): Decision => ({
  set: {
    unshelve: withUnshelve(record, {
      attempt: nextAttempt(record),
      reason,
      replacementInstanceId: undefined,
      slowLaunchIssuedAt: undefined,
      slowLaunchQueuedMs: undefined,
    }),
  },
  actions: [],
  recheckAt: now + HOST_WAIT_RETRY_MS,
  reason,
});

export const launchFromSnapshots: StepDecision = (record, observation, now, settings) => {
  const replacement = observation.replacement;
  const reissueAt = slowReissueDueAt(record.unshelve);
  const known = record.unshelve?.replacementInstanceId;
  const terminated = replacement !== undefined && isGone(replacement);
  // A replacement RunInstances answered with that EC2 no longer describes was terminated over
  // an hour ago (terminated instances stay describable about that long).
  const gone = !replacement && known !== undefined && (reissueAt === undefined || now >= reissueAt);
  if (replacement && terminated && endedByEncryptionKey(replacement)) {
    return encryptionKeyUnusable(
      record,
      `slow-path replacement ${replacement.instanceId} terminated at launch (${stateReasonOf(replacement)})`,
      observation.volumes,
    );
  }
  if (terminated || gone) {
    return relaunchFromSnapshots(
      record,
      now,
      `replacement ${replacement?.instanceId ?? known} ${terminated ? 'terminated' : 'is gone'} before it was ready`,
    );
  }
  if (!replacement) {
    if (reissueAt === undefined) {
      const move = relocation(record, observation, now, settings);
      if (move) return move;
      const notDue = launchRetryNotDue(record, now);
      if (notDue) return notDue;
    } else if (now < reissueAt) {
      // The launch may still bring a replacement (RunInstances is eventually consistent); it is
      // re-issued with the same ClientToken only after this, so no round spins on it meanwhile.
      return wait('waiting for the slow-path replacement to appear', reissueAt);
    }
    return {
      actions: [{ kind: 'launch-from-snapshots', recordId: record.recordId }],
      recheckAt: now + POLL_MS,
      reason: 'launching from safety snapshots',
    };
  }
  const unshelve = withUnshelve(record, { replacementInstanceId: replacement.instanceId });
  if (replacement.state !== 'running') {
    const set =
      record.unshelve?.replacementInstanceId !== replacement.instanceId ? { set: { unshelve } } : {};
    return { ...set, actions: [], recheckAt: now + POLL_MS, reason: `replacement is ${replacement.state}` };
  }
  return replacementReady(
    record,
    replacement,
    observation,
    now,
    settings,
    { path: 'slow', reason: record.unshelve?.reason, relocation: record.unshelve?.relocation },
    'restored from snapshots',
    unshelve,
  );
};
