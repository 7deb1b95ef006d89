import { isAddressInUse, mayHaveTakenEffect } from '../../shared/aws-errors';
import { CapacityError, NotFoundError } from '../../shared/errors';
import { itemErrorOf } from '../../shared/results';
import type { ShelvingDependencies } from '../dependencies';
import { fastLaunchRequest, type LaunchRequest, planLaunchBatches, slowLaunchRequest } from '../domain/bulk';
import {
  batchClaimed,
  fastLaunchFailed,
  type LaunchFailure,
  launchRetry,
  replacementLaunched,
  slowLaunchFailed,
  slowLaunchIssued,
  slowLaunchPending,
  slowReplacementLaunched,
  waitingForHost,
} from '../domain/launch-outcomes';
import { LaunchNotAllowedError, launchRefusal } from '../domain/launch-policy';
import { reissueDueAt } from '../domain/saga';
import { REPLACEMENT_FOR_TAG, SHELVED_TAG } from '../domain/tags';
import { isGone, type ShelfRecord } from '../domain/types';
import { writeDecision } from './decisions';
import { takePoolMembers } from './pool-members';
import type { FailCalls, RecordProgress, TrackCall } from './progress';

/** How RunInstances failed, read off the error for the domain (domain/launch-outcomes.ts). */
const launchFailureOf = (error: unknown): LaunchFailure => ({
  error: itemErrorOf(error),
  refusedForGood: error instanceof NotFoundError || error instanceof LaunchNotAllowedError,
  mayHaveLaunched: mayHaveTakenEffect(error),
  addressInUse: isAddressInUse(error),
  capacity: error instanceof CapacityError,
});

/**
 * Of the instances a batch launch returned that no member of this call claims, those nothing
 * else claims either. A re-issued batch gets back, under its ClientToken, every instance the
 * first call launched (EC2 idempotency), including one an earlier member took and has since
 * unshelved onto its retained root: terminating that one would have EC2 delete the retained
 * volumes (security review C4). So an instance that any record links to, that carries a
 * record's `warmboot:replacement-for` tag, or that holds a `warmboot:shelved` volume is kept.
 */
const unclaimedReplacements = async (
  deps: ShelvingDependencies,
  instanceIds: readonly string[],
): Promise<string[]> => {
  const { ec2, store } = deps;
  const observed = await ec2.describeInstances(instanceIds);
  const attached = observed.flatMap((instance) => instance.blockDevices.map((device) => device.volumeId));
  const volumes = attached.length > 0 ? await ec2.describeVolumes(attached) : [];
  const holdingRetained = new Set(
    volumes.flatMap((volume) =>
      volume.tags[SHELVED_TAG] !== undefined && volume.attachment ? [volume.attachment.instanceId] : [],
    ),
  );
  const unused: string[] = [];
  for (const instance of observed) {
    if (holdingRetained.has(instance.instanceId)) continue;
    if (instance.tags[REPLACEMENT_FOR_TAG] !== undefined) continue;
    if (isGone(instance)) continue;
    if ((await store.recordIdForInstance(instance.instanceId)) !== undefined) continue;
    unused.push(instance.instanceId);
  }
  return unused;
};

/**
 * RunInstances, once the launch policy allows what it launches (the settings may have changed
 * since the Shelve checked it): a refusal is a LaunchNotAllowedError, final for the records.
 */
const runAllowed = async (
  deps: ShelvingDependencies,
  request: LaunchRequest,
): Promise<{ instanceId: string; launchIndex: number }[]> => {
  const images = await deps.ec2.describeImageOwners([request.imageId], deps.settings.allowedImageOwners);
  const refusal = launchRefusal(request, images, deps.settings);
  if (refusal) throw new LaunchNotAllowedError(refusal);
  return deps.ec2.runInstances(request);
};

/** One RunInstances for a batch, then map replacements back by launch index. */
const runBatch = async (
  deps: ShelvingDependencies,
  request: LaunchRequest,
  members: readonly (ShelfRecord | undefined)[],
  fail: FailCalls,
): Promise<void> => {
  const { ec2, clock } = deps;
  const claimed = members.filter((member): member is ShelfRecord => member !== undefined);
  let launched: { instanceId: string; launchIndex: number }[];
  try {
    launched = await runAllowed(deps, request);
  } catch (error) {
    fail(
      claimed.map((record) => record.recordId),
      error,
    );
    const failure = launchFailureOf(error);
    const at = clock.now();
    await Promise.all(
      claimed.map(async (record) => {
        const next = fastLaunchFailed(record, failure, at);
        if (next) await writeDecision(deps, record, next, at);
      }),
    );
    return;
  }
  const now = clock.now();
  const orphans: string[] = [];
  for (const { instanceId, launchIndex } of launched) {
    const record = members[launchIndex];
    if (!record) {
      orphans.push(instanceId);
      continue;
    }
    const written = await writeDecision(
      deps,
      record,
      replacementLaunched(record, instanceId, now, deps.settings),
      now,
    );
    if (!written) orphans.push(instanceId);
  }
  const launchedIndexes = new Set(launched.map((entry) => entry.launchIndex));
  const shortfall = claimed.filter((record) => !launchedIndexes.has(record.unshelve?.batch?.index ?? -1));
  await Promise.all(
    shortfall.map((record) =>
      writeDecision(
        deps,
        record,
        launchRetry(record, 'capacity', 'not enough capacity in the batch', now),
        now,
      ),
    ),
  );
  // Replacements no record claims (a member lost a race after the batch was planned) go back
  // at once, once proven unused: see unclaimedReplacements.
  if (orphans.length > 0) {
    try {
      const unused = await unclaimedReplacements(deps, orphans);
      if (unused.length > 0) await ec2.terminateInstances(unused);
    } catch (error) {
      fail([], error);
    }
  }
};

/**
 * The fast path's launches for `records`: new batches planned by launch configuration and host
 * room (each member's claim written before the call), and batches already written but not
 * visible re-issued with the same ClientToken after a grace period. Each batch releases its
 * records when it settles.
 */
export const launchFast = async (
  deps: ShelvingDependencies,
  records: readonly ShelfRecord[],
  progress: Map<string, RecordProgress>,
  fail: FailCalls,
  track: TrackCall,
): Promise<void> => {
  const { ec2, clock, settings } = deps;
  // A running pool member, where one fits, saves the launch (and the AMI's boot).
  const served = await takePoolMembers(deps, records, fail);
  const now = clock.now();
  const reissue = new Map<string, ShelfRecord[]>();
  const fresh: ShelfRecord[] = [];
  for (const record of records) {
    if (served.has(record.recordId)) continue;
    const batch = record.unshelve?.batch;
    if (!batch) fresh.push(record);
    else if (now >= reissueDueAt(batch))
      reissue.set(batch.batchId, [...(reissue.get(batch.batchId) ?? []), record]);
  }
  const hostIds = [
    ...new Set(
      fresh.flatMap((record) =>
        record.config.tenancy === 'host' && record.config.hostId ? [record.config.hostId] : [],
      ),
    ),
  ];
  const typeOfHost = new Map(fresh.map((record) => [record.config.hostId ?? '', record.config.instanceType]));
  let hostRoom = new Map<string, number>();
  if (hostIds.length > 0) {
    try {
      hostRoom = await ec2.describeHostRoom(hostIds, (hostId) => typeOfHost.get(hostId) ?? '');
    } catch (error) {
      fail(
        fresh.map((record) => record.recordId),
        error,
      );
      return;
    }
  }
  const plan = planLaunchBatches(fresh, hostRoom, settings.maxBatch, settings.keepPrivateIp);
  const byId = new Map(records.map((record) => [record.recordId, record]));
  const launches: Promise<void>[] = [];

  for (const waiting of plan.waiting) {
    const record = byId.get(waiting.recordId);
    if (!record) continue;
    await writeDecision(deps, record, waitingForHost(record, waiting.reason, now), now);
    progress.set(record.recordId, { recordId: record.recordId, step: record.step, reason: waiting.reason });
  }

  // Every call of this round waits its turn in the account budget; a batch's grace period before
  // a re-issue starts once the round's calls may all have gone out (reissueDueAt).
  const queuedMs = ec2.callQueueMs?.('RunInstances', plan.batches.length + reissue.size) ?? 0;
  for (const batch of plan.batches) {
    launches.push(
      track(batch.recordIds, async () => {
        const members: (ShelfRecord | undefined)[] = [];
        for (const [index, recordId] of batch.recordIds.entries()) {
          const record = byId.get(recordId);
          members.push(
            record
              ? await writeDecision(deps, record, batchClaimed(record, batch, index, now, queuedMs), now)
              : undefined,
          );
        }
        await runBatch(deps, batch.request, members, fail);
      }),
    );
  }
  for (const members of reissue.values()) {
    const first = members[0];
    const batch = first?.unshelve?.batch;
    if (!first || !batch) continue;
    const ordered: (ShelfRecord | undefined)[] = Array.from({ length: batch.size }, (_, index) =>
      members.find((member) => member.unshelve?.batch?.index === index),
    );
    launches.push(
      track(
        members.map((member) => member.recordId),
        () => runBatch(deps, fastLaunchRequest(first, batch, settings.keepPrivateIp), ordered, fail),
      ),
    );
  }
  await Promise.all(launches);
};

/**
 * The slow path's launch for one record: a replacement restoring from the safety snapshots.
 * `queuedMs`: how long the account budget is expected to hold it behind the round's other
 * slow-path launches (the grace before a re-issue starts after it, as for the fast path).
 */
export const launchSlow = async (
  deps: ShelvingDependencies,
  record: ShelfRecord,
  fail: FailCalls,
  queuedMs = 0,
): Promise<void> => {
  const { clock } = deps;
  const now = clock.now();
  if (slowLaunchPending(record, now)) return;
  const written = await writeDecision(deps, record, slowLaunchIssued(record, now, queuedMs), now);
  if (!written) return;
  let answered = false;
  try {
    const [launched] = await runAllowed(deps, slowLaunchRequest(written, deps.settings.keepPrivateIp));
    answered = true;
    if (!launched) return;
    const at = clock.now();
    await writeDecision(deps, written, slowReplacementLaunched(written, launched.instanceId, at), at);
  } catch (error) {
    fail([record.recordId], error);
    const at = clock.now();
    const next = slowLaunchFailed(written, launchFailureOf(error), answered, at);
    if (next) await writeDecision(deps, written, next, at);
  }
};
