import type {
  DescribeFastSnapshotRestoreSuccessItem,
  DescribeFastSnapshotRestoresRequest,
  DescribeFastSnapshotRestoresResult,
  DisableFastSnapshotRestoresRequest,
  DisableFastSnapshotRestoresResult,
  EnableFastSnapshotRestoresRequest,
  EnableFastSnapshotRestoresResult,
} from '@aws-sdk/client-ec2';
import { TokenBucket } from '../token-bucket';
import { missingParameter } from './errors';
import { type FastSnapshotRestoreStateName, fastSnapshotRestoreStateChange } from './events';
import { describePage } from './filters';
import { canUseSnapshot } from './snapshots';
import { type Ec2Context, type FastRestoreRecord, fastRestoreKey } from './state';

/**
 * Fast snapshot restore (ebs-fast-snapshot-restore).
 * - States: enabling → optimizing → enabled; disabling → disabled (view-fsr-enabled-snapshots).
 *   Optimizing "takes 60 minutes per TiB".
 * - Volume creation credits per snapshot and AZ: the bucket holds MAX(1, MIN(10, 1024 / size GiB))
 *   credits and refills MIN(10, 1024 / size GiB) per hour; a volume created while a credit is
 *   available is fully initialized (FastRestored) and uses one credit. The bucket starts full when
 *   the state reaches enabled (a modelling choice; AWS does not document the initial balance).
 * - Only for snapshots the account owns or that are shared with it (manage-fsr-enable: "for
 *   snapshots that you own and for snapshots that are shared with you"); another account's
 *   unshared snapshot, such as the root of an AWS public AMI, is answered per item as
 *   InvalidSnapshot.NotFound, the way EC2 answers for resources an account cannot see.
 * - At most FSR_SNAPSHOTS_PER_REGION snapshots with fast snapshot restore on at once (EBS service
 *   quota "Fast snapshot restore", 5 per Region by default). A request past it is refused per
 *   item; AWS documents no error code for that, so `ResourceLimitExceeded` is this simulator's
 *   choice (stricter than guessing that AWS lets it through).
 * - State transitions emit "EBS Fast Snapshot Restore State-change Notification"
 *   (ebs-cloud-watch-events) with the stateTransitionReason as message
 *   (DescribeFastSnapshotRestoreSuccessItem).
 */
const USER_INITIATED = 'Client.UserInitiated';
/** The default EBS quota of snapshots with fast snapshot restore per Region. */
export const FSR_SNAPSHOTS_PER_REGION = 5;
const LIFECYCLE = 'Client.UserInitiated - Lifecycle state transition';

export const fastRestoreCreditLimits = (sizeGiB: number): { capacity: number; refillPerHour: number } => ({
  capacity: Math.max(1, Math.min(10, 1024 / sizeGiB)),
  refillPerHour: Math.min(10, 1024 / sizeGiB),
});

/** Uses one creation credit when FSR is enabled for the snapshot in this AZ; false otherwise. */
export const takeFastRestoreCredit = (
  ctx: Ec2Context,
  snapshotId: string,
  availabilityZone: string,
): boolean => {
  const record = ctx.fastRestores.get(fastRestoreKey(snapshotId, availabilityZone));
  return record?.state === 'enabled' && record.credits !== undefined && record.credits.tryTake(1);
};

const enter = (
  ctx: Ec2Context,
  record: FastRestoreRecord,
  state: FastSnapshotRestoreStateName,
  reason: string,
): void => {
  record.state = state;
  record.stateTransitionReason = reason;
  record.times[state] = ctx.clock.now();
  record.generation += 1;
  ctx.emit(
    fastSnapshotRestoreStateChange(ctx.region, record.snapshotId, record.availabilityZone, state, reason),
  );
};

/** Runs `next` after `ms` unless the record moved on in between (e.g. disabled while optimizing). */
const later = (ctx: Ec2Context, record: FastRestoreRecord, ms: number, next: () => void): void => {
  const generation = record.generation;
  ctx.clock.at(ctx.clock.now() + ms, () => {
    if (record.generation === generation) next();
  });
};

const successItem = (ctx: Ec2Context, record: FastRestoreRecord): DescribeFastSnapshotRestoreSuccessItem => {
  const date = (state: FastSnapshotRestoreStateName): Date | undefined => {
    const time = record.times[state];
    return time === undefined ? undefined : new Date(time);
  };
  return {
    SnapshotId: record.snapshotId,
    AvailabilityZone: record.availabilityZone,
    State: record.state,
    StateTransitionReason: record.stateTransitionReason,
    OwnerId: ctx.accountId,
    EnablingTime: date('enabling'),
    OptimizingTime: date('optimizing'),
    EnabledTime: date('enabled'),
    DisablingTime: date('disabling'),
    DisabledTime: date('disabled'),
  };
};

type Unsuccessful = { SnapshotId: string; AvailabilityZone: string; code: string; message: string };

const unsuccessfulItems = (failures: readonly Unsuccessful[]) =>
  failures.map((failure) => ({
    SnapshotId: failure.SnapshotId,
    FastSnapshotRestoreStateErrors: [
      { AvailabilityZone: failure.AvailabilityZone, Error: { Code: failure.code, Message: failure.message } },
    ],
  }));

/** Every snapshot × AZ pair of the request; unknown snapshots and AZs are per-item failures. */
const pairs = (
  ctx: Ec2Context,
  snapshotIds: readonly string[] | undefined,
  zones: readonly string[] | undefined,
): { valid: { snapshotId: string; zone: string }[]; failures: Unsuccessful[] } => {
  if (!snapshotIds?.length) throw missingParameter('SourceSnapshotIds');
  if (!zones?.length) throw missingParameter('AvailabilityZones');
  const valid: { snapshotId: string; zone: string }[] = [];
  const failures: Unsuccessful[] = [];
  for (const snapshotId of snapshotIds) {
    for (const zone of zones) {
      const snapshot = ctx.snapshots.get(snapshotId);
      if (!snapshot || !canUseSnapshot(ctx, snapshot)) {
        failures.push({
          SnapshotId: snapshotId,
          AvailabilityZone: zone,
          code: 'InvalidSnapshot.NotFound',
          message: `The snapshot '${snapshotId}' does not exist.`,
        });
      } else if (!ctx.availabilityZones.includes(zone)) {
        failures.push({
          SnapshotId: snapshotId,
          AvailabilityZone: zone,
          code: 'InvalidParameterValue',
          message: `Invalid availability zone: [${zone}]`,
        });
      } else valid.push({ snapshotId, zone });
    }
  }
  return { valid, failures };
};

export const enableFastSnapshotRestores = (
  ctx: Ec2Context,
  input: EnableFastSnapshotRestoresRequest,
): EnableFastSnapshotRestoresResult => {
  const { valid: requested, failures } = pairs(ctx, input.SourceSnapshotIds, input.AvailabilityZones);
  // Snapshots that count against the quota: any AZ not disabled.
  const counted = new Set(
    [...ctx.fastRestores.values()]
      .filter((record) => record.state !== 'disabled')
      .map((record) => record.snapshotId),
  );
  const valid = requested.filter(({ snapshotId, zone }) => {
    if (counted.has(snapshotId)) return true;
    if (counted.size < FSR_SNAPSHOTS_PER_REGION) {
      counted.add(snapshotId);
      return true;
    }
    failures.push({
      SnapshotId: snapshotId,
      AvailabilityZone: zone,
      code: 'ResourceLimitExceeded',
      message: `fast snapshot restore is on for ${FSR_SNAPSHOTS_PER_REGION} snapshots in this Region already (quota)`,
    });
    return false;
  });
  const successful = valid.map(({ snapshotId, zone }) => {
    const key = fastRestoreKey(snapshotId, zone);
    let record = ctx.fastRestores.get(key);
    if (!record) {
      record = {
        snapshotId,
        availabilityZone: zone,
        state: 'disabled',
        stateTransitionReason: '',
        times: {},
        credits: undefined,
        generation: 0,
      };
      ctx.fastRestores.set(key, record);
    }
    // Enabling again while enabling, optimizing or enabled changes nothing.
    if (record.state === 'disabled' || record.state === 'disabling') startEnabling(ctx, record);
    return successItem(ctx, record);
  });
  return { Successful: successful, Unsuccessful: unsuccessfulItems(failures) };
};

const startEnabling = (ctx: Ec2Context, record: FastRestoreRecord): void => {
  const sizeGiB = ctx.snapshots.get(record.snapshotId)?.volumeSize ?? 1;
  enter(ctx, record, 'enabling', USER_INITIATED);
  later(ctx, record, ctx.latency.fsrEnablingMs, () => {
    enter(ctx, record, 'optimizing', LIFECYCLE);
    later(ctx, record, (ctx.latency.fsrOptimizingPerTiBMs * sizeGiB) / 1024, () => {
      const limits = fastRestoreCreditLimits(sizeGiB);
      record.credits = new TokenBucket(ctx.clock, {
        capacity: limits.capacity,
        refillPerSecond: limits.refillPerHour / 3600,
      });
      enter(ctx, record, 'enabled', LIFECYCLE);
    });
  });
};

export const disableFastSnapshotRestores = (
  ctx: Ec2Context,
  input: DisableFastSnapshotRestoresRequest,
): DisableFastSnapshotRestoresResult => {
  const { valid, failures } = pairs(ctx, input.SourceSnapshotIds, input.AvailabilityZones);
  const successful = valid.flatMap(({ snapshotId, zone }) => {
    const record = ctx.fastRestores.get(fastRestoreKey(snapshotId, zone));
    if (!record) return [];
    if (record.state !== 'disabled' && record.state !== 'disabling') {
      record.credits = undefined;
      enter(ctx, record, 'disabling', USER_INITIATED);
      later(ctx, record, ctx.latency.fsrDisablingMs, () => enter(ctx, record, 'disabled', LIFECYCLE));
    }
    return [successItem(ctx, record)];
  });
  return { Successful: successful, Unsuccessful: unsuccessfulItems(failures) };
};

export const describeFastSnapshotRestores = async (
  ctx: Ec2Context,
  input: DescribeFastSnapshotRestoresRequest,
): Promise<DescribeFastSnapshotRestoresResult> => {
  const { page, nextToken } = describePage(ctx.fastRestores.values(), input, {
    'snapshot-id': (record) => [record.snapshotId],
    'availability-zone': (record) => [record.availabilityZone],
    state: (record) => [record.state],
    'owner-id': () => [ctx.accountId],
  });
  return { FastSnapshotRestores: page.map((record) => successItem(ctx, record)), NextToken: nextToken };
};
