import { isTransient } from '../../shared/aws-errors';
import { EncryptionKeyError, ThrottledError, WarmbootError } from '../../shared/errors';
import { itemErrorOf } from '../../shared/results';
import type { ShelvingEc2 } from '../adapters/ec2';
import type { ShelvingDependencies } from '../dependencies';
import type { Action } from '../domain/actions';
import { chunk } from '../domain/bulk';
import { encryptionKeyUnusable, rootOf } from '../domain/saga';
import type { ShelfRecord } from '../domain/types';
import { writeDecision } from './decisions';
import { launchFast, launchSlow } from './launch';
import { handOverPoolMember } from './pool-members';
import type { FailCalls, RecordProgress, TrackCall, Work } from './progress';

/**
 * Throttling, EC2's own fault, or no AWS answer at all (a killed invocation): worth repeating as
 * it was. Anything else is a refusal of something in the request.
 */
const isTransientFailure = (error: unknown): boolean =>
  !(error instanceof WarmbootError) || error instanceof ThrottledError || isTransient(error.cause);

type PowerCall = 'stop' | 'stop-force' | 'start' | 'terminate';
interface PowerTarget {
  readonly instanceId: string;
  readonly recordId: string;
}
interface UntagTarget {
  readonly resourceIds: readonly string[];
  readonly recordId: string;
}

/**
 * Resources per DeleteTags call. The API takes up to 1,000 and recommends "smaller batches"
 * (API_DeleteTags); a bulk unshelve's hand-backs then cost one call per hundred volumes instead
 * of one per record, on a bucket of 100 refilled at 10 per second.
 */
const UNTAG_BATCH = 100;

/** Records in order, cut so that no part names more than `limit` resources (a record is never split). */
const byResources = (targets: readonly UntagTarget[], limit: number): UntagTarget[][] => {
  const parts: UntagTarget[][] = [];
  let part: UntagTarget[] = [];
  let size = 0;
  for (const target of targets) {
    if (part.length > 0 && size + target.resourceIds.length > limit) {
      parts.push(part);
      part = [];
      size = 0;
    }
    part.push(target);
    size += target.resourceIds.length;
  }
  if (part.length > 0) parts.push(part);
  return parts;
};

/** The actions that are one EC2 call of their own (the others are batched or wait for another). */
type OneCallAction = Exclude<
  Action,
  {
    readonly kind:
      | 'stop'
      | 'start'
      | 'terminate'
      | 'launch'
      | 'launch-from-snapshots'
      | 'attach'
      | 'untag'
      | 'hand-over-pool-member';
  }
>;
type OneCallActions = { readonly [K in OneCallAction['kind']]: Extract<OneCallAction, { readonly kind: K }> };

/** The call each of those actions makes; `record` is the record whose decision asked for it. */
const ONE_CALLS: {
  readonly [K in keyof OneCallActions]: (
    ec2: ShelvingEc2,
    action: OneCallActions[K],
    record: ShelfRecord,
  ) => Promise<unknown>;
} = {
  'set-delete-on-termination': (ec2, action) => ec2.setDeleteOnTermination(action.instanceId, action.devices),
  tag: (ec2, action) => ec2.createTags(action.resourceIds, action.tags),
  snapshot: (ec2, action) => ec2.createSnapshots(action.instanceId, action.recordId),
  detach: (ec2, action) => ec2.detachVolume(action.volumeId, action.instanceId),
  'set-user-data': (ec2, action) => ec2.setUserData(action.instanceId, action.userData),
  'set-protection': (ec2, action) => ec2.setProtection(action.instanceId, action.attribute, action.value),
  'associate-address': (ec2, action) => ec2.associateAddress(action.allocationId, action.instanceId),
  'replace-root': (ec2, action, record) =>
    ec2.replaceRootVolume({
      recordId: action.recordId,
      instanceId: action.instanceId,
      replacementInstanceId: record.unshelve?.replacementInstanceId,
      volumeId: action.volumeId,
      retainedRootVolumeId: rootOf(record).volumeId,
      retainedVolumeIds: new Set(record.volumes.map((volume) => volume.volumeId)),
      clientToken: action.clientToken,
    }),
  'delete-replacement-root': (ec2, action, record) =>
    ec2.deleteReplacementRoot(
      action.volumeId,
      action.recordId,
      new Set(record.volumes.map((volume) => volume.volumeId)),
    ),
};

/** Makes an action's call: `kind` picks the entry, typed for that kind's action. */
const oneCall = <K extends keyof OneCallActions>(
  kind: K,
  ec2: ShelvingEc2,
  action: OneCallActions[K],
  record: ShelfRecord,
): Promise<unknown> => ONE_CALLS[kind](ec2, action, record);

/**
 * Applies the actions of a round's written decisions through the adapters, in as few EC2 calls as
 * the API allows: one Stop/Start/Terminate per `maxBatch` instances, one DeleteTags per
 * `UNTAG_BATCH` resources, launches grouped by the fast path's batches, everything else one call
 * per action. A failed call's error goes to the progress of the records it was for; `release` is
 * told when a record's own calls are all done. `onThrottled` counts calls still throttled after
 * the SDK's retries.
 */
export const execute = async (
  deps: ShelvingDependencies,
  work: readonly Work[],
  progress: Map<string, RecordProgress>,
  release: (recordId: string) => void,
  onThrottled: () => void,
): Promise<void> => {
  const { ec2, settings } = deps;
  const fail: FailCalls = (recordIds, error) => {
    if (error instanceof ThrottledError) onThrottled();
    for (const recordId of recordIds) {
      const before = progress.get(recordId);
      if (before) progress.set(recordId, { ...before, error: itemErrorOf(error) });
    }
  };
  const outstanding = new Map<string, number>();
  /** Counts `recordIds` as waiting on the call until it settles; the last one releases them. */
  const track: TrackCall = (recordIds, start) => {
    for (const recordId of recordIds) outstanding.set(recordId, (outstanding.get(recordId) ?? 0) + 1);
    return start().finally(() => {
      for (const recordId of recordIds) {
        const left = (outstanding.get(recordId) ?? 1) - 1;
        outstanding.set(recordId, left);
        if (left === 0) release(recordId);
      }
    });
  };
  const attempt = (recordIds: readonly string[], call: () => Promise<unknown>): Promise<void> =>
    track(recordIds, async () => {
      try {
        await call();
      } catch (error) {
        fail(recordIds, error);
      }
    });

  /**
   * One call for several records. These calls are all-or-nothing: one resource EC2 or IAM refuses
   * (termination or stop protection, a one-time Spot instance, a lost management tag, a volume
   * gone) fails the whole call (API_TerminateInstances, API_StopInstances, API_DeleteTags).
   * Retrying the batch would fail it every round, so a refusal that is not throttling or EC2's
   * own fault is answered one record at a time: only the refused record keeps the error (R6).
   */
  const batched = <T extends { readonly recordId: string }>(
    part: readonly T[],
    call: (targets: readonly T[]) => Promise<unknown>,
  ): Promise<void> => {
    const recordIds = part.map((target) => target.recordId);
    return track(recordIds, async () => {
      try {
        await call(part);
      } catch (error) {
        if (part.length === 1 || isTransientFailure(error)) {
          fail(recordIds, error);
          return;
        }
        await Promise.all(
          part.map((target) => call([target]).catch((single: unknown) => fail([target.recordId], single))),
        );
      }
    });
  };

  const calls: Promise<void>[] = [];
  const multi = new Map<PowerCall, PowerTarget[]>();
  const untags = new Map<string, { readonly keys: readonly string[]; readonly targets: UntagTarget[] }>();
  const launches: ShelfRecord[] = [];
  const slowLaunches: ShelfRecord[] = [];
  // A record that attaches data volumes and stops in one decision: the stop goes after the
  // attach calls returned (AttachVolume needs the instance running or stopped, not stopping).
  const attachesBeforeStop: Promise<void>[] = [];
  const stopsAfterAttach: PowerTarget[] = [];
  for (const { record, actions } of work) {
    const attachThenStop =
      actions.some((action) => action.kind === 'attach') && actions.some((action) => action.kind === 'stop');
    for (const action of actions) {
      const recordIds = [record.recordId];
      if (attachThenStop && action.kind === 'stop') {
        stopsAfterAttach.push({ instanceId: action.instanceId, recordId: record.recordId });
        continue;
      }
      switch (action.kind) {
        case 'stop':
        case 'start':
        case 'terminate': {
          const key = action.kind === 'stop' && action.force ? 'stop-force' : action.kind;
          const list = multi.get(key) ?? [];
          list.push({ instanceId: action.instanceId, recordId: record.recordId });
          multi.set(key, list);
          break;
        }
        case 'untag': {
          const key = action.keys.join('\n');
          const group = untags.get(key) ?? { keys: action.keys, targets: [] };
          group.targets.push({ resourceIds: action.resourceIds, recordId: record.recordId });
          untags.set(key, group);
          break;
        }
        case 'launch':
          launches.push(record);
          break;
        case 'launch-from-snapshots':
          slowLaunches.push(record);
          break;
        case 'hand-over-pool-member':
          calls.push(attempt(recordIds, () => handOverPoolMember(deps, record, action)));
          break;
        case 'attach': {
          const call = attempt(recordIds, async () => {
            try {
              await ec2.attachVolume(action.volumeId, action.instanceId, action.device);
            } catch (error) {
              // EC2 cannot use the volume's KMS key for this role: every later attach would be
              // refused the same way, so the record fails instead of retrying each round (R4).
              if (error instanceof EncryptionKeyError) {
                const at = deps.clock.now();
                const what = `retained volume ${action.volumeId} could not be attached to ${action.instanceId} (${error.message})`;
                await writeDecision(deps, record, encryptionKeyUnusable(record, what), at);
              }
              throw error;
            }
          });
          if (attachThenStop) attachesBeforeStop.push(call);
          calls.push(call);
          break;
        }
        default:
          calls.push(attempt(recordIds, () => oneCall(action.kind, ec2, action, record)));
          break;
      }
    }
  }
  const powerCall = (kind: PowerCall, ids: readonly string[]) => {
    switch (kind) {
      case 'stop':
        return ec2.stopInstances(ids, false);
      case 'stop-force':
        return ec2.stopInstances(ids, true);
      case 'start':
        return ec2.startInstances(ids);
      case 'terminate':
        return ec2.terminateInstances(ids);
    }
  };
  for (const [kind, targets] of multi) {
    for (const part of chunk(targets, settings.maxBatch)) {
      calls.push(
        batched(part, (some) =>
          powerCall(
            kind,
            some.map((target) => target.instanceId),
          ),
        ),
      );
    }
  }
  for (const { keys, targets } of untags.values()) {
    for (const part of byResources(targets, UNTAG_BATCH)) {
      calls.push(
        batched(part, (some) =>
          ec2.deleteTags(
            some.flatMap((target) => target.resourceIds),
            keys,
          ),
        ),
      );
    }
  }
  if (stopsAfterAttach.length > 0) {
    // `attempt` never rejects, so this waits for every attach to settle either way.
    const attached = Promise.all(attachesBeforeStop);
    for (const part of chunk(stopsAfterAttach, settings.maxBatch)) {
      const ids = part.map((target) => target.instanceId);
      calls.push(
        attempt(
          part.map((target) => target.recordId),
          async () => {
            await attached;
            await ec2.stopInstances(ids, true);
          },
        ),
      );
    }
  }
  // Each batch releases its records when it settles, not when every batch of the round has:
  // with private IPs kept every replacement is a launch of its own, paced at 2 per second.
  if (launches.length > 0) calls.push(launchFast(deps, launches, progress, fail, track));
  const slowQueuedMs =
    slowLaunches.length > 0 ? (ec2.callQueueMs?.('RunInstances', slowLaunches.length) ?? 0) : 0;
  for (const record of slowLaunches)
    calls.push(track([record.recordId], () => launchSlow(deps, record, fail, slowQueuedMs)));
  await Promise.all(calls);
};
