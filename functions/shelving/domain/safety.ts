import { REPLACEMENT_FOR_TAG, REPLACEMENT_ROOT_TAG, SHELVED_TAG } from './tags';
import type { ObservedVolume } from './types';

/**
 * The data-safety fence, as a pure check the EC2 adapter runs on a fresh DescribeVolumes answer
 * right before every DeleteVolume of a replacement's fresh root. A volume passes only when it
 * carries `warmboot:replacement-root=true` and `warmboot:replacement-for=<this record>`, carries
 * no `warmboot:shelved` tag, is not one of the volumes any record retains, and is detached.
 */
export const replacementRootDeletionRefusal = (
  volume: ObservedVolume,
  recordId: string,
  retainedVolumeIds: ReadonlySet<string>,
): string | undefined => {
  if (retainedVolumeIds.has(volume.volumeId)) return `${volume.volumeId} is a retained volume`;
  if (volume.tags[SHELVED_TAG] !== undefined) {
    return `${volume.volumeId} is tagged ${SHELVED_TAG}=${volume.tags[SHELVED_TAG]}`;
  }
  if (volume.tags[REPLACEMENT_ROOT_TAG] !== 'true')
    return `${volume.volumeId} is not tagged ${REPLACEMENT_ROOT_TAG}=true`;
  if (volume.tags[REPLACEMENT_FOR_TAG] !== recordId) {
    return `${volume.volumeId} is not tagged ${REPLACEMENT_FOR_TAG}=${recordId}`;
  }
  if (volume.state !== 'available') return `${volume.volumeId} is ${volume.state}, not available`;
  return undefined;
};

/**
 * The one other deletion: an operator confirmed 'Delete Shelved Record'. The volume must still
 * carry this record's `warmboot:shelved` tag and be detached.
 */
export const shelvedVolumeDeletionRefusal = (
  volume: ObservedVolume,
  recordId: string,
): string | undefined => {
  if (volume.tags[SHELVED_TAG] !== recordId) {
    return `${volume.volumeId} is not tagged ${SHELVED_TAG}=${recordId}`;
  }
  if (volume.state !== 'available') return `${volume.volumeId} is ${volume.state}, not available`;
  return undefined;
};

/**
 * A safety snapshot a confirmed 'Delete Shelved Record' deletes: one the record recorded (the
 * plan), still tagged with this record and taken of one of its retained volumes (security review
 * H6: a tag alone, which others may be able to set, never makes a snapshot deletable).
 */
export const shelvedSnapshotDeletionRefusal = (
  snapshot: {
    readonly snapshotId: string;
    readonly volumeId: string;
    readonly tags: Readonly<Record<string, string>>;
  },
  recordId: string,
  retainedVolumeIds: ReadonlySet<string>,
): string | undefined => {
  if (snapshot.tags[SHELVED_TAG] !== recordId) {
    return `${snapshot.snapshotId} is not tagged ${SHELVED_TAG}=${recordId}`;
  }
  if (!retainedVolumeIds.has(snapshot.volumeId)) {
    return `${snapshot.snapshotId} is of ${snapshot.volumeId}, not a volume record ${recordId} retains`;
  }
  return undefined;
};

/**
 * Before CreateReplaceRootVolumeTask (unshelve in place), on a fresh DescribeInstances answer:
 * EC2 deletes whatever root it replaces (`DeleteReplacedRootVolume`), so the instance must be
 * this record's replacement (`warmboot:replacement-for`, and the id the record holds) and its
 * current root must not be a volume any record retains; the new root must be this record's.
 */
export const rootReplacementRefusal = (
  instance: {
    readonly instanceId: string;
    readonly rootDeviceName: string;
    readonly blockDevices: readonly { readonly deviceName: string; readonly volumeId: string }[];
    readonly tags: Readonly<Record<string, string>>;
  },
  request: {
    readonly recordId: string;
    readonly replacementInstanceId?: string;
    readonly volumeId: string;
    readonly retainedRootVolumeId: string;
    readonly retainedVolumeIds: ReadonlySet<string>;
  },
): string | undefined => {
  if (instance.instanceId !== request.replacementInstanceId) {
    return `${instance.instanceId} is not the replacement record ${request.recordId} holds`;
  }
  if (instance.tags[REPLACEMENT_FOR_TAG] !== request.recordId) {
    return `${instance.instanceId} is not tagged ${REPLACEMENT_FOR_TAG}=${request.recordId}`;
  }
  if (request.volumeId !== request.retainedRootVolumeId) {
    return `${request.volumeId} is not the root volume record ${request.recordId} retains`;
  }
  const root = instance.blockDevices.find((device) => device.deviceName === instance.rootDeviceName);
  if (root && request.retainedVolumeIds.has(root.volumeId)) {
    return `the root of ${instance.instanceId} is retained volume ${root.volumeId}, which EC2 would delete`;
  }
  return undefined;
};
