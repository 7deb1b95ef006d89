import type { ImageSpec } from '../config';

/**
 * Most Nitro instance types share 28 attachment slots between EBS volumes, network interfaces
 * and NVMe instance-store volumes (EC2 user guide, "Instance volume limits"); keeping one for
 * the primary network interface leaves 27 for volumes.
 */
export const DEFAULT_MAX_VOLUME_ATTACHMENTS = 27;

export interface LinkTarget {
  readonly region: string;
  readonly availabilityZone: string;
  /** EBS volumes attached now, root volume included. */
  readonly attachedVolumes: number;
  readonly maxVolumeAttachments?: number;
}

export type CloneReason = 'no-snapshot' | 'other-region' | 'attach-limit';

export type Cloneability =
  | { readonly cloneable: true; readonly fastRestored: boolean }
  | { readonly cloneable: false; readonly reason: CloneReason; readonly detail: string };

/**
 * Whether an image can be linked to a host as a volume instead of downloaded
 * (EfficientVolumesFromImage's `cloneable(image)`): the image must live in an EBS snapshot of
 * the host's region (CreateVolume cannot read another region's snapshot) and the host must have
 * a free attachment slot. Fast snapshot restore in the host's AZ makes the volume fully
 * performant at creation; without it the volume still links, but loads lazily.
 */
export const cloneable = (image: Pick<ImageSpec, 'id' | 'snapshot'>, host: LinkTarget): Cloneability => {
  if (!image.snapshot)
    return { cloneable: false, reason: 'no-snapshot', detail: `${image.id} has no EBS snapshot` };
  if (image.snapshot.region !== host.region)
    return {
      cloneable: false,
      reason: 'other-region',
      detail: `snapshot ${image.snapshot.snapshotId} is in ${image.snapshot.region}, host in ${host.region}`,
    };
  const limit = host.maxVolumeAttachments ?? DEFAULT_MAX_VOLUME_ATTACHMENTS;
  if (host.attachedVolumes >= limit)
    return {
      cloneable: false,
      reason: 'attach-limit',
      detail: `${host.attachedVolumes} of ${limit} volume attachments in use`,
    };
  return { cloneable: true, fastRestored: image.snapshot.fastRestoreAzs.includes(host.availabilityZone) };
};
