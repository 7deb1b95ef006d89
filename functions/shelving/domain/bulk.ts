import { createHash } from 'node:crypto';
import { launchClientToken } from '../../shared/client-token';
import { OPT_IN_TAG, OPTED_IN } from '../../shared/tags';
import { launchPlacementGroup, launchPrivateIp } from './fidelity';
import { REPLACEMENT_BATCH_TAG, REPLACEMENT_FOR_TAG, REPLACEMENT_ROOT_TAG, TENANT_TAG } from './tags';
import type {
  CpuCredits,
  HostAffinity,
  InstanceMetadataOptions,
  LaunchBatch,
  PlacementGroupRef,
  ShelfRecord,
  Tenancy,
} from './types';

/**
 * Bulk planning: turn hundreds of per-record actions into as few EC2 calls as the API allows.
 *
 * Replacements for the fast path are launched with one RunInstances per group of records whose
 * launch configuration is identical (image, type, subnet, security groups, profile, key, tenant,
 * placement, device layout, credit option), chunked by `maxBatch`. A record that asks for its
 * private address again is a group of its own: EC2 takes `PrivateIpAddress` only on a launch of
 * one instance (API_RunInstances). Mapping replacements back to records: the
 * batch (id, size, each record's index) is written to every record *before* the call; the
 * batch id is the call's ClientToken and the `warmboot:replacement-batch` tag of every
 * instance it launches, and the replacement with AmiLaunchIndex i belongs to the record with
 * index i. A crash after the call is healed by describing instances by that tag; a repeated
 * call with the same ClientToken returns the same instances on EC2. Per-record tags
 * (the recorded ones plus `warmboot:replacement-for`) are applied right after, with one
 * CreateTags per replacement, which the CreateTags bucket (100 burst, 10/s) absorbs far faster
 * than the RunInstances bucket (5 burst, 2/s) would absorb one launch per record.
 */

export interface LaunchPlacement {
  readonly availabilityZone: string;
  readonly tenancy: Tenancy;
  readonly hostId?: string;
  readonly affinity?: HostAffinity;
  readonly placementGroup?: Omit<PlacementGroupRef, 'strategy'>;
}

export type LaunchDevice =
  | { readonly deviceName: string; readonly noDevice: true }
  | {
      readonly deviceName: string;
      readonly noDevice?: false;
      readonly snapshotId?: string;
      readonly sizeGiB?: number;
      readonly volumeType?: string;
      readonly iops?: number;
      readonly throughput?: number;
      readonly deleteOnTermination: boolean;
    };

/** One RunInstances call, in the domain's terms (the adapter maps it to the SDK input). */
export interface LaunchRequest {
  readonly clientToken: string;
  readonly imageId: string;
  readonly instanceType: string;
  readonly subnetId: string;
  readonly securityGroupIds: readonly string[];
  readonly iamInstanceProfileArn?: string;
  readonly keyName?: string;
  readonly ebsOptimized?: boolean;
  readonly metadata?: InstanceMetadataOptions;
  readonly placement: LaunchPlacement;
  /** Only on a launch of one instance (maxCount 1). */
  readonly privateIpAddress?: string;
  /** Base64. */
  readonly userData?: string;
  readonly cpuCredits?: CpuCredits;
  readonly minCount: number;
  readonly maxCount: number;
  readonly devices: readonly LaunchDevice[];
  readonly instanceTags: Readonly<Record<string, string>>;
  readonly volumeTags: Readonly<Record<string, string>>;
}

export interface PlannedBatch {
  readonly batchId: string;
  /** Records in launch-index order. */
  readonly recordIds: readonly string[];
  readonly request: LaunchRequest;
}

export interface LaunchPlan {
  readonly batches: readonly PlannedBatch[];
  /** Records that cannot launch now (their recorded host is full and affinity is `host`). */
  readonly waiting: readonly { readonly recordId: string; readonly reason: string }[];
}

const hash = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 40);

/** The placement group part of a launch's placement (domain/fidelity.ts decides which group). */
const groupPlacement = (record: ShelfRecord): Pick<LaunchPlacement, 'placementGroup'> => {
  const group = launchPlacementGroup(record);
  return group
    ? {
        placementGroup: {
          groupName: group.groupName,
          ...(group.partitionNumber !== undefined ? { partitionNumber: group.partitionNumber } : {}),
        },
      }
    : {};
};

/**
 * The fast-path request for a batch. Data devices are suppressed (NoDevice), so the only volume
 * the launch creates is the fresh root, tagged `warmboot:replacement-root=true`. No user data: the
 * fresh OS must not run the owner's boot script (it is set before the retained root boots).
 */
export const fastLaunchRequest = (
  record: ShelfRecord,
  batch: Pick<LaunchBatch, 'batchId' | 'size' | 'hostId' | 'affinity'>,
  keepPrivateIp = false,
): LaunchRequest => {
  const { config } = record;
  const placement: LaunchPlacement = {
    availabilityZone: config.availabilityZone,
    tenancy: config.tenancy,
    ...(batch.hostId ? { hostId: batch.hostId } : {}),
    ...(batch.affinity ? { affinity: batch.affinity } : {}),
    ...groupPlacement(record),
  };
  const privateIpAddress = batch.size === 1 ? launchPrivateIp(record, keepPrivateIp) : undefined;
  // A launch of one record carries what replacementTagging would add (the recorded tags and the
  // record link, on the instance and its fresh root), as the slow path's launch does: no CreateTags
  // follows. A batch of several shares one TagSpecifications, so its instances are tagged after.
  const own: Record<string, string> =
    batch.size === 1 ? { ...record.tags, [REPLACEMENT_FOR_TAG]: record.recordId } : {};
  return {
    clientToken: batch.batchId,
    imageId: config.imageId,
    instanceType: config.instanceType,
    subnetId: config.subnetId,
    securityGroupIds: [...config.securityGroupIds].sort(),
    ...(config.iamInstanceProfileArn ? { iamInstanceProfileArn: config.iamInstanceProfileArn } : {}),
    ...(config.keyName ? { keyName: config.keyName } : {}),
    ...(config.ebsOptimized !== undefined ? { ebsOptimized: config.ebsOptimized } : {}),
    ...(config.metadata ? { metadata: config.metadata } : {}),
    placement,
    ...(privateIpAddress ? { privateIpAddress } : {}),
    ...(config.cpuCredits ? { cpuCredits: config.cpuCredits } : {}),
    // Partial launches are fine: records beyond what fitted are re-planned with a new batch.
    minCount: 1,
    maxCount: batch.size,
    devices: [
      { deviceName: config.rootDeviceName, noDevice: false, deleteOnTermination: true },
      ...record.volumes
        .filter((volume) => !volume.root)
        .map((volume) => ({ deviceName: volume.deviceName, noDevice: true as const }))
        .sort((a, b) => a.deviceName.localeCompare(b.deviceName)),
    ],
    instanceTags: {
      ...own,
      [OPT_IN_TAG.shelving]: OPTED_IN,
      [TENANT_TAG]: record.tenant,
      [REPLACEMENT_BATCH_TAG]: batch.batchId,
    },
    volumeTags: {
      ...own,
      [OPT_IN_TAG.shelving]: OPTED_IN,
      [REPLACEMENT_ROOT_TAG]: 'true',
      [REPLACEMENT_BATCH_TAG]: batch.batchId,
    },
  };
};

/**
 * Slow path: one record, every volume recreated from its safety snapshot. Its root is the
 * restored original, so it launches with the recorded user data; in its recorded subnet, with
 * its private address (another AZ means another subnet, and another address).
 */
export const slowLaunchRequest = (record: ShelfRecord, keepPrivateIp = false): LaunchRequest => {
  const { config } = record;
  const privateIpAddress = launchPrivateIp(record, keepPrivateIp);
  const attempt = record.unshelve?.attempt ?? 0;
  // Moved to another AZ (docs/shelving.md, "Another AZ"): its subnet, and no Dedicated Host.
  const moved = record.unshelve?.relocation;
  return {
    // A new attempt (a replacement that terminated, a definitive refusal) is a new token: the old
    // one stays bound to its launch for at least 24 h after the instance terminates.
    clientToken: launchClientToken(`${record.recordId}-s${attempt}`),
    imageId: config.imageId,
    instanceType: config.instanceType,
    subnetId: moved?.subnetId ?? config.subnetId,
    securityGroupIds: [...config.securityGroupIds].sort(),
    ...(config.iamInstanceProfileArn ? { iamInstanceProfileArn: config.iamInstanceProfileArn } : {}),
    ...(config.keyName ? { keyName: config.keyName } : {}),
    ...(config.ebsOptimized !== undefined ? { ebsOptimized: config.ebsOptimized } : {}),
    ...(config.metadata ? { metadata: config.metadata } : {}),
    placement: moved
      ? { availabilityZone: moved.availabilityZone, tenancy: config.tenancy, ...groupPlacement(record) }
      : {
          availabilityZone: config.availabilityZone,
          tenancy: config.tenancy,
          ...(config.hostId ? { hostId: config.hostId } : {}),
          ...(config.affinity ? { affinity: config.affinity } : {}),
          ...groupPlacement(record),
        },
    ...(privateIpAddress ? { privateIpAddress } : {}),
    ...(config.userData ? { userData: config.userData } : {}),
    ...(config.cpuCredits ? { cpuCredits: config.cpuCredits } : {}),
    minCount: 1,
    maxCount: 1,
    devices: record.volumes.map((volume) => ({
      deviceName: volume.deviceName,
      ...(volume.snapshotId ? { snapshotId: volume.snapshotId } : {}),
      sizeGiB: volume.sizeGiB,
      volumeType: volume.volumeType,
      ...(volume.iops !== undefined ? { iops: volume.iops } : {}),
      ...(volume.throughput !== undefined ? { throughput: volume.throughput } : {}),
      deleteOnTermination: volume.deleteOnTermination,
    })),
    instanceTags: {
      ...record.tags,
      [OPT_IN_TAG.shelving]: OPTED_IN,
      [TENANT_TAG]: record.tenant,
      [REPLACEMENT_FOR_TAG]: record.recordId,
    },
    volumeTags: { [OPT_IN_TAG.shelving]: OPTED_IN, [REPLACEMENT_FOR_TAG]: record.recordId },
  };
};

/** Everything that must be equal for two records to share one RunInstances call. */
const launchGroupKey = (
  record: ShelfRecord,
  hostId: string | undefined,
  affinity?: HostAffinity,
  keepPrivateIp = false,
): string => {
  const { config } = record;
  return JSON.stringify([
    launchPrivateIp(record, keepPrivateIp) ?? null,
    launchPlacementGroup(record) ?? null,
    config.cpuCredits ?? null,
    config.imageId,
    config.instanceType,
    config.availabilityZone,
    config.subnetId,
    [...config.securityGroupIds].sort(),
    config.iamInstanceProfileArn ?? null,
    config.keyName ?? null,
    config.ebsOptimized ?? null,
    config.metadata ?? null,
    config.tenancy,
    hostId ?? null,
    affinity ?? null,
    record.tenant,
    config.rootDeviceName,
    record.volumes
      .filter((volume) => !volume.root)
      .map((volume) => volume.deviceName)
      .sort(),
  ]);
};

/**
 * Groups records that need a fresh-path launch into batches. `hostRoom` says how many more
 * instances of the record's type each Dedicated Host takes now (from DescribeHosts); a record
 * whose host is full launches on any host of the AZ when its affinity is `default`, and waits
 * when it is `host`.
 */
export const planLaunchBatches = (
  records: readonly ShelfRecord[],
  hostRoom: ReadonlyMap<string, number>,
  maxBatch: number,
  keepPrivateIp = false,
): LaunchPlan => {
  const room = new Map(hostRoom);
  const groups = new Map<
    string,
    { records: ShelfRecord[]; hostId?: string; affinity?: HostAffinity; size: number }
  >();
  const waiting: { recordId: string; reason: string }[] = [];
  for (const record of [...records].sort((a, b) => a.recordId.localeCompare(b.recordId))) {
    const { config } = record;
    let hostId: string | undefined;
    let affinity: HostAffinity | undefined;
    if (config.tenancy === 'host' && config.hostId) {
      const free = room.get(config.hostId) ?? 0;
      if (free > 0) {
        room.set(config.hostId, free - 1);
        hostId = config.hostId;
        affinity = config.affinity;
      } else if (config.affinity === 'host') {
        waiting.push({ recordId: record.recordId, reason: `Dedicated Host ${config.hostId} is full` });
        continue;
      } else {
        affinity = 'default';
      }
    }
    const key = launchGroupKey(record, hostId, affinity, keepPrivateIp);
    const group = groups.get(key) ?? {
      records: [],
      ...(hostId ? { hostId } : {}),
      ...(affinity ? { affinity } : {}),
      // A private address fits a launch of one instance only.
      size: launchPrivateIp(record, keepPrivateIp) === undefined ? maxBatch : 1,
    };
    group.records.push(record);
    groups.set(key, group);
  }
  const batches: PlannedBatch[] = [];
  for (const group of groups.values()) {
    for (let start = 0; start < group.records.length; start += group.size) {
      const members = group.records.slice(start, start + group.size);
      const first = members[0];
      if (!first) continue;
      const batchId = `ub-${hash(members.map((member) => `${member.recordId}#${member.unshelve?.attempt ?? 0}`).join(','))}`;
      batches.push({
        batchId,
        recordIds: members.map((member) => member.recordId),
        request: fastLaunchRequest(
          first,
          {
            batchId,
            size: members.length,
            ...(group.hostId ? { hostId: group.hostId } : {}),
            ...(group.affinity ? { affinity: group.affinity } : {}),
          },
          keepPrivateIp,
        ),
      });
    }
  }
  return { batches, waiting };
};

/** Splits instance ids into calls of at most `maxBatch` (Start/Stop/Terminate take lists). */
export const chunk = <T>(items: readonly T[], size: number): T[][] => {
  const chunks: T[][] = [];
  for (let start = 0; start < items.length; start += size) chunks.push(items.slice(start, start + size));
  return chunks;
};

/** Steps that attach volumes (the fast path's root swap, and data volumes before the stop). */
export const ATTACH_STEPS: ReadonlySet<ShelfRecord['step']> = new Set([
  'unshelve.stop-replacement',
  'unshelve.swap-root',
]);

/**
 * The order a round hands out the AttachVolume calls the pacer admits: root swaps first (nearest
 * to running), then data-before-stop, then the rest; earliest requested and launched first.
 */
export const byAttachPriority = (a: ShelfRecord, b: ShelfRecord): number => {
  const rank = (record: ShelfRecord): number =>
    record.step === 'unshelve.swap-root' ? 0 : record.step === 'unshelve.stop-replacement' ? 1 : 2;
  return (
    rank(a) - rank(b) ||
    (a.unshelve?.requestedAt ?? 0) - (b.unshelve?.requestedAt ?? 0) ||
    (a.unshelve?.batch?.issuedAt ?? 0) - (b.unshelve?.batch?.issuedAt ?? 0) ||
    (a.unshelve?.batch?.index ?? 0) - (b.unshelve?.batch?.index ?? 0) ||
    a.recordId.localeCompare(b.recordId)
  );
};
