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
