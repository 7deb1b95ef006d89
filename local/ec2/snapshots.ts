import type {
  CreateSnapshotRequest,
  CreateSnapshotsRequest,
  CreateSnapshotsResult,
  DeleteSnapshotRequest,
  DescribeSnapshotsRequest,
  DescribeSnapshotsResult,
  Snapshot,
  SnapshotInfo,
} from '@aws-sdk/client-ec2';
import { ec2Error, missingParameter, notFound, notFoundOf } from './errors';
import { describePage, namedOrAll, tagList, tagsFor } from './filters';
import type { Ec2Context, SnapshotRecord, Tags, VolumeRecord } from './state';
import { attachedVolumes } from './volumes';

/**
 * EBS snapshots: pending → completed (ebs-creating-snapshot). A first snapshot copies every
 * block, so the time grows with the volume size (latency.ts snapshotBaseMs + snapshotPerGiBMs).
 */

/** The volume id AWS shows for snapshots not taken from a volume of this account (e.g. copies). */
const NO_SOURCE_VOLUME = 'vol-ffffffff';

export const snapshotDurationMs = (ctx: Ec2Context, sizeGiB: number): number =>
  ctx.latency.snapshotBaseMs + ctx.latency.snapshotPerGiBMs * sizeGiB;

export const newSnapshot = (
  ctx: Ec2Context,
  spec: {
    volumeId: string | undefined;
    volumeSize: number;
    description: string;
    tags: Tags;
    completed: boolean;
    ownerId?: string;
    sharedWithAccount?: boolean;
    /** Encrypted with this KMS key ARN (a snapshot of an encrypted volume keeps its key). */
    kmsKeyId?: string | undefined;
  },
): SnapshotRecord => {
  const snapshot: SnapshotRecord = {
    ...(spec.ownerId !== undefined ? { ownerId: spec.ownerId } : {}),
    ...(spec.sharedWithAccount ? { sharedWithAccount: true } : {}),
    ...(spec.kmsKeyId !== undefined ? { kmsKeyId: spec.kmsKeyId } : {}),
    snapshotId: ctx.ids.next('snap'),
    volumeId: spec.volumeId ?? NO_SOURCE_VOLUME,
    volumeSize: spec.volumeSize,
    state: spec.completed ? 'completed' : 'pending',
    startTime: ctx.clock.now(),
    description: spec.description,
    tags: spec.tags,
  };
  ctx.snapshots.set(snapshot.snapshotId, snapshot);
  if (!spec.completed) {
    ctx.clock.at(ctx.clock.now() + snapshotDurationMs(ctx, spec.volumeSize), () => {
      snapshot.state = 'completed';
    });
  }
  return snapshot;
};

const snapshotOfVolume = (ctx: Ec2Context, volume: VolumeRecord, description: string, tags: Tags) =>
  newSnapshot(ctx, {
    volumeId: volume.volumeId,
    volumeSize: volume.size,
    description,
    tags,
    completed: false,
    // ebs-encryption: snapshots of encrypted volumes are encrypted, with the volume's key.
    kmsKeyId: volume.kmsKeyId,
  });

/** Owned by this account. */
export const ownsSnapshot = (ctx: Ec2Context, snapshot: SnapshotRecord): boolean =>
  snapshot.ownerId === undefined || snapshot.ownerId === ctx.accountId;

/**
 * This account may see and restore it: it owns it, or the owner shared it (ebs-modifying-snapshot-
 * permissions). DescribeSnapshots lists nothing else, and a request naming another account's
 * unshared snapshot is answered as if it did not exist (InvalidSnapshot.NotFound).
 */
export const canUseSnapshot = (ctx: Ec2Context, snapshot: SnapshotRecord): boolean =>
  ownsSnapshot(ctx, snapshot) || snapshot.sharedWithAccount === true;

/** What CreateSnapshots answers per snapshot (API_SnapshotInfo: no key id, no storage tier). */
const toSdkSnapshotInfo = (ctx: Ec2Context, snapshot: SnapshotRecord): SnapshotInfo => ({
  SnapshotId: snapshot.snapshotId,
  VolumeId: snapshot.volumeId,
  VolumeSize: snapshot.volumeSize,
  State: snapshot.state,
  Progress: snapshot.state === 'completed' ? '100%' : '0%',
  StartTime: new Date(snapshot.startTime),
  Description: snapshot.description,
  OwnerId: snapshot.ownerId ?? ctx.accountId,
  Encrypted: snapshot.kmsKeyId !== undefined,
  Tags: tagList(snapshot.tags),
});

const toSdkSnapshot = (ctx: Ec2Context, snapshot: SnapshotRecord): Snapshot => ({
  ...toSdkSnapshotInfo(ctx, snapshot),
  KmsKeyId: snapshot.kmsKeyId,
  StorageTier: 'standard',
});

export const createSnapshot = (ctx: Ec2Context, input: CreateSnapshotRequest): Snapshot => {
  if (!input.VolumeId) throw missingParameter('VolumeId');
  const volume = ctx.volumes.get(input.VolumeId);
  if (!volume) throw notFound('InvalidVolume.NotFound', [input.VolumeId], 'volume');
  // ebs-creating-snapshot: a volume that is still being created or already deleting has no data to copy.
  if (volume.state === 'creating' || volume.state === 'deleting')
    throw ec2Error('IncorrectState', `Volume '${volume.volumeId}' is in the '${volume.state}' state.`);
  const snapshot = snapshotOfVolume(
    ctx,
    volume,
    input.Description ?? '',
    tagsFor(input.TagSpecifications, 'snapshot'),
  );
  return toSdkSnapshot(ctx, snapshot);
};

/** API_CreateSnapshots: crash-consistent snapshots of every volume of an instance. */
export const createSnapshots = (ctx: Ec2Context, input: CreateSnapshotsRequest): CreateSnapshotsResult => {
  const instanceId = input.InstanceSpecification?.InstanceId;
  if (!instanceId) throw missingParameter('InstanceSpecification.InstanceId');
  const instance = ctx.instances.get(instanceId);
  if (!instance) throw notFound('InvalidInstanceID.NotFound', [instanceId], 'instance');
  const volumes = attachedVolumes(ctx, instanceId).filter(
    (volume) =>
      !(
        input.InstanceSpecification?.ExcludeBootVolume &&
        volume.attachment?.device === instance.rootDeviceName
      ),
  );
  const requestedTags = tagsFor(input.TagSpecifications, 'snapshot');
  const snapshots = volumes.map((volume) => {
    const tags = new Map(input.CopyTagsFromSource === 'volume' ? volume.tags : []);
    for (const [key, value] of requestedTags) tags.set(key, value);
    return snapshotOfVolume(ctx, volume, input.Description ?? '', tags);
  });
  return { Snapshots: snapshots.map((snapshot) => toSdkSnapshotInfo(ctx, snapshot)) };
};

export const describeSnapshots = async (
  ctx: Ec2Context,
  input: DescribeSnapshotsRequest,
): Promise<DescribeSnapshotsResult> => {
  const unusable = (input.SnapshotIds ?? []).filter((id) => {
    const snapshot = ctx.snapshots.get(id);
    return snapshot !== undefined && !canUseSnapshot(ctx, snapshot);
  });
  const unknownSnapshots = notFoundOf('InvalidSnapshot.NotFound', 'snapshot');
  if (unusable.length > 0) throw unknownSnapshots(unusable);
  const named = namedOrAll(ctx.snapshots, input.SnapshotIds, unknownSnapshots);
  // OwnerIds: 'self' or this account's id selects what it owns; another id, what that owner shared.
  const owners = input.OwnerIds ?? [];
  const byOwner = (snapshot: SnapshotRecord) =>
    owners.length === 0 ||
    owners.some((owner) =>
      owner === 'self' || owner === ctx.accountId ? ownsSnapshot(ctx, snapshot) : owner === snapshot.ownerId,
    );
  // RestorableByUserIds 'self': what this account owns or was given create-volume permission on.
  const restorers = input.RestorableByUserIds ?? [];
  const byRestorer = (snapshot: SnapshotRecord) =>
    restorers.length === 0 ||
    restorers.some((user) => (user === 'self' || user === ctx.accountId) && canUseSnapshot(ctx, snapshot));
  const { page, nextToken } = describePage(
    // Named snapshots are all usable (checked above); unnamed, the ones this account cannot use are not listed.
    [...named].filter(
      (snapshot) => canUseSnapshot(ctx, snapshot) && byOwner(snapshot) && byRestorer(snapshot),
    ),
    input,
    {
      'snapshot-id': (snapshot) => [snapshot.snapshotId],
      status: (snapshot) => [snapshot.state],
      'volume-id': (snapshot) => [snapshot.volumeId],
      'volume-size': (snapshot) => [String(snapshot.volumeSize)],
      description: (snapshot) => [snapshot.description],
      'owner-id': (snapshot) => [snapshot.ownerId ?? ctx.accountId],
    },
    (snapshot) => snapshot.tags,
  );
  return { Snapshots: page.map((snapshot) => toSdkSnapshot(ctx, snapshot)), NextToken: nextToken };
};

/**
 * API_DeleteSnapshot: refused with InvalidSnapshot.InUse while a registered AMI uses it
 * (ebs-deleting-snapshot: deregister the AMI first); volumes created from it are unaffected.
 */
export const deleteSnapshot = (ctx: Ec2Context, input: DeleteSnapshotRequest): Record<string, never> => {
  if (!input.SnapshotId) throw missingParameter('SnapshotId');
  const snapshot = ctx.snapshots.get(input.SnapshotId);
  if (!snapshot) throw notFound('InvalidSnapshot.NotFound', [input.SnapshotId], 'snapshot');
  // A deregistered image leaves the table (API_DeregisterImage), so every image here is registered.
  const image = [...ctx.images.values()].find((candidate) =>
    candidate.blockDevices.some((device) => device.snapshotId === snapshot.snapshotId),
  );
  if (image) {
    throw ec2Error(
      'InvalidSnapshot.InUse',
      `The snapshot ${snapshot.snapshotId} is currently in use by ${image.imageId}`,
    );
  }
  ctx.snapshots.delete(snapshot.snapshotId);
  return {};
};
