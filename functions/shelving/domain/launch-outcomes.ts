import type { ItemError } from '../../shared/results';
import type { ShelvingSettings } from '../config';
import type { Decision } from './actions';
import type { PlannedBatch } from './bulk';
import { HOST_WAIT_RETRY_MS, privateIpInUse, reissueDueAt, slowReissueDueAt } from './saga';
import { fastLaunchRefused } from './saga/unshelve-fast';
import { swapFor } from './saga/unshelve-in-place';
import { slowLaunchRefused } from './saga/unshelve-slow';
import type { LaunchBatch, ShelfRecord, UnshelveState } from './types';

/**
 * What a replacement launch's outcome means for its record. The application makes the
 * RunInstances call and writes what these answer; the choices (when to look again, whether the
 * record waits for its host or counts a capacity refusal, whether a refusal is for good) are here.
 */

/** Retry delay after a failed launch (not a capacity shortage). */
export const LAUNCH_RETRY_MS = 30_000;

/**
 * The record's unshelve state with `patch` applied. A record launching without one (only a
 * record written before the field existed) counts as unshelved by the reconcile, asked now.
 */
export const launchState = (
  record: ShelfRecord,
  now: number,
  patch: Partial<UnshelveState> = {},
): UnshelveState => ({
  ...(record.unshelve ?? { requestId: 'reconcile', requestedAt: now, attempt: 0 }),
  ...patch,
});

/** A decision that only records the launch's state and when to look again. */
const waitFor = (
  unshelve: UnshelveState,
  recheckAt: number,
  reason: string,
  to?: Decision['to'],
): Decision => ({ ...(to ? { to } : {}), set: { unshelve }, actions: [], recheckAt, reason });

/** The recorded Dedicated Host has no room and affinity says wait for it. */
export const waitingForHost = (record: ShelfRecord, reason: string, now: number): Decision =>
  waitFor(
    launchState(record, now, {
      waitingForHostSince: record.unshelve?.waitingForHostSince ?? now,
      reason,
    }),
    now + HOST_WAIT_RETRY_MS,
    reason,
  );

/**
 * The record takes position `index` of a planned batch, written before the call: a batch with no
 * visible replacement is re-issued with the same ClientToken at reissueDueAt (LAUNCH_REISSUE_MS
 * after the budget may have let the round's calls out).
 */
export const batchClaimed = (
  record: ShelfRecord,
  batch: PlannedBatch,
  index: number,
  now: number,
  queuedMs = 0,
): Decision => {
  const { hostId, affinity } = batch.request.placement;
  const claimed: LaunchBatch = {
    batchId: batch.batchId,
    size: batch.recordIds.length,
    index,
    issuedAt: now,
    ...(queuedMs > 0 ? { queuedMs } : {}),
    ...(hostId ? { hostId } : {}),
    ...(affinity ? { affinity } : {}),
  };
  return waitFor(
    launchState(record, now, { batch: claimed }),
    reissueDueAt(claimed),
    'launching replacement',
  );
};

/** The fast-path replacement was launched: its root is swapped next, in place where it can be. */
export const replacementLaunched = (
  record: ShelfRecord,
  instanceId: string,
  now: number,
  settings: ShelvingSettings,
): Decision => {
  const swap = swapFor(record, settings);
  return waitFor(
    launchState(record, now, { replacementInstanceId: instanceId, ...swap.patch }),
    now,
    `replacement ${instanceId} launched`,
    swap.to,
  );
};

/**
 * A fast-path launch that launched nothing for this record: a new attempt after a pause. A
 * capacity refusal of a host-bound record waits for its host (hostWaitSeconds); any other
 * capacity refusal counts toward leaving the AZ (otherAzAfterSeconds).
 */
export const launchRetry = (
  record: ShelfRecord,
  cause: 'capacity' | 'failure',
  reason: string,
  now: number,
): Decision => {
  const unshelve = launchState(record, now);
  const capacity = cause === 'capacity';
  const hostBound = record.config.tenancy === 'host' && record.config.affinity === 'host';
  return waitFor(
    {
      ...unshelve,
      batch: undefined,
      attempt: unshelve.attempt + 1,
      reason,
      ...(capacity && hostBound ? { waitingForHostSince: unshelve.waitingForHostSince ?? now } : {}),
      ...(capacity && !hostBound
        ? { hostFull: true, capacityRefusedSince: unshelve.capacityRefusedSince ?? now }
        : {}),
    },
    now + (capacity ? HOST_WAIT_RETRY_MS : LAUNCH_RETRY_MS),
    reason,
  );
};

/**
 * The slow-path launch is about to be made, `queuedMs` behind the round's other launches in the
 * account budget; it is re-issued (same token) at slowReissueDueAt.
 */
export const slowLaunchIssued = (record: ShelfRecord, now: number, queuedMs = 0): Decision => {
  const unshelve = launchState(record, now, {
    slowLaunchIssuedAt: now,
    slowLaunchQueuedMs: queuedMs > 0 ? queuedMs : undefined,
  });
  return waitFor(unshelve, slowReissueDueAt(unshelve) ?? now, 'launching from snapshots');
};

/** Whether the record's slow-path launch is still within its grace period. */
export const slowLaunchPending = (record: ShelfRecord, now: number): boolean => {
  const reissueAt = slowReissueDueAt(record.unshelve);
  return reissueAt !== undefined && now < reissueAt;
};

export const slowReplacementLaunched = (record: ShelfRecord, instanceId: string, now: number): Decision =>
  waitFor(
    launchState(record, now, { replacementInstanceId: instanceId }),
    now,
    `replacement ${instanceId} restoring from snapshots`,
  );

/** A slow-path launch that launched nothing: forget it was issued and look again after `waitMs`. */
const slowLaunchRetry = (
  record: ShelfRecord,
  reason: string,
  waitMs: number,
  change: (unshelve: UnshelveState) => Partial<UnshelveState>,
  now: number,
): Decision => {
  const unshelve = launchState(record, now);
  return waitFor(
    {
      ...unshelve,
      ...change(unshelve),
      slowLaunchIssuedAt: undefined,
      slowLaunchQueuedMs: undefined,
      reason,
    },
    now + waitMs,
    reason,
  );
};

/** How a failed RunInstances failed, as the application reads it off the error. */
export interface LaunchFailure {
  readonly error: ItemError;
  /** A snapshot or the image is gone (NotFound): the same launch can never succeed. */
  readonly refusedForGood: boolean;
  /** A timeout or server error: the launch may have happened, and its ClientToken finds it. */
  readonly mayHaveLaunched: boolean;
  /** The kept private address is taken. */
  readonly addressInUse: boolean;
  /** EC2 has no capacity for it now. */
  readonly capacity: boolean;
}

/**
 * A fast-path batch launch failed: what each of its records does next, or nothing (undefined)
 * when the launch may have happened. The records keep the batch and its ClientToken then, and it
 * is re-issued as it is after LAUNCH_REISSUE_MS, which returns what the call launched instead of
 * launching it again.
 */
export const fastLaunchFailed = (
  record: ShelfRecord,
  failure: LaunchFailure,
  now: number,
): Decision | undefined => {
  if (failure.mayHaveLaunched) return undefined;
  if (failure.refusedForGood) return fastLaunchRefused(record, failure.error);
  if (failure.addressInUse) return privateIpInUse(record, now);
  return launchRetry(record, failure.capacity ? 'capacity' : 'failure', failure.error.message, now);
};

/**
 * A slow-path launch failed (`answered`: RunInstances answered and only recording its
 * replacement failed): what the record does next, or nothing (undefined) to leave it as written.
 */
export const slowLaunchFailed = (
  record: ShelfRecord,
  failure: LaunchFailure,
  answered: boolean,
  now: number,
): Decision | undefined => {
  // A snapshot or the image is gone: re-issuing the same launch can never succeed.
  if (failure.refusedForGood) return slowLaunchRefused(record, failure.error, now);
  // A timeout or server error may have launched the replacement: the record keeps its
  // ClientToken and slowLaunchIssuedAt, so the launch is re-issued with the same token after
  // LAUNCH_REISSUE_MS and returns that replacement instead of launching a second one.
  if (failure.mayHaveLaunched) return undefined;
  if (failure.addressInUse) return privateIpInUse(record, now);
  if (failure.capacity) {
    // Nothing was launched: try again at the retry time written here, or elsewhere once the
    // AZ has refused long enough (otherAzAfterSeconds).
    return slowLaunchRetry(
      record,
      failure.error.message,
      HOST_WAIT_RETRY_MS,
      (unshelve) => ({ capacityRefusedSince: unshelve.capacityRefusedSince ?? now }),
      now,
    );
  }
  // The replacement is found by its warmboot:replacement-for tag next round.
  if (answered) return undefined;
  // Any other refusal launched nothing, and a refusal tied to the token itself (EC2 answering
  // a terminated launch's token with an error instead of the instance, a parameter mismatch)
  // would come back for the same token: the next launch is a new attempt with a new token.
  return slowLaunchRetry(
    record,
    failure.error.message,
    LAUNCH_RETRY_MS,
    (unshelve) => ({ attempt: unshelve.attempt + 1 }),
    now,
  );
};
