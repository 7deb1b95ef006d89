import type {
  AttachVolumeRequest,
  CreateVolumeRequest,
  DeleteVolumeRequest,
  DescribeVolumesRequest,
  DescribeVolumesResult,
  DetachVolumeRequest,
  Volume,
  VolumeAttachment,
  VolumeType,
} from '@aws-sdk/client-ec2';
import { keyRefusal, newVolumeKey } from './encryption';
import { ec2Error, invalidParameterValue, missingParameter, notFound, notFoundOf } from './errors';
import { describePage, type FilterFields, namedOrAll, tagList, tagsFor } from './filters';
import { takeFastRestoreCredit } from './fsr';
import { canUseSnapshot } from './snapshots';
import type { Ec2Context, InstanceRecord, Tags, VolumeAttachmentRecord, VolumeRecord } from './state';

/**
 * EBS volumes: creating → available ⇄ in-use → deleting (ebs-describing-volumes), attachments
 * attaching → attached → detaching (ebs-attaching-volume, ebs-detaching-volume).
 */

/**
 * volume_limits: most Nitro instances have 28 attachment slots shared by network interfaces, EBS
 * volumes and NVMe instance store volumes; with the one primary network interface that leaves 27.
 */
export const MAX_VOLUME_ATTACHMENTS = 27;

/** device_naming: /dev/sd[a-z], /dev/xvd[a-z] with optional partition number or second letter. */
const DEVICE_NAME = /^\/dev\/(?:sd|xvd)[a-z]{1,2}\d*$/;

export const attachedVolumes = (ctx: Ec2Context, instanceId: string): VolumeRecord[] =>
  [...(ctx.attachments.get(instanceId) ?? [])].flatMap((volumeId) => ctx.volumes.get(volumeId) ?? []);

export const rootVolume = (ctx: Ec2Context, instance: InstanceRecord): VolumeRecord | undefined =>
  attachedVolumes(ctx, instance.instanceId).find(
    (volume) => volume.attachment?.device === instance.rootDeviceName,
  );

/** Records an attachment at once (a launch's volumes, a root volume replacement's new root). */
export const linkAttachment = (
  ctx: Ec2Context,
  volume: VolumeRecord,
  attachment: VolumeAttachmentRecord,
): void => {
  volume.attachment = attachment;
  volume.state = 'in-use';
  const ids = ctx.attachments.get(attachment.instanceId) ?? new Set<string>();
  ids.add(volume.volumeId);
  ctx.attachments.set(attachment.instanceId, ids);
};

const unlink = (ctx: Ec2Context, volume: VolumeRecord): void => {
  if (volume.attachment) ctx.attachments.get(volume.attachment.instanceId)?.delete(volume.volumeId);
  volume.attachment = undefined;
  volume.state = 'available';
  volume.generation += 1;
};

/**
 * Creates a volume record. From a snapshot, it is fast-restored when FSR is enabled for that
 * snapshot in the AZ and a credit is left (ebs-fast-snapshot-restore); otherwise it loads lazily
 * from S3 on first read (ebs-initialize), which behaviours can read from `fastRestored`.
 */
export const newVolume = (
  ctx: Ec2Context,
  spec: {
    size: number;
    snapshotId: string | undefined;
    availabilityZone: string;
    volumeType: VolumeType | undefined;
    tags: Tags;
    attachTo?: { instanceId: string; device: string; deleteOnTermination: boolean };
    /** The KMS key ARN it is encrypted with (encryption.ts newVolumeKey); absent: unencrypted. */
    kmsKeyId?: string | undefined;
  },
): VolumeRecord => {
  const volume: VolumeRecord = {
    volumeId: ctx.ids.next('vol'),
    size: spec.size,
    snapshotId: spec.snapshotId,
    availabilityZone: spec.availabilityZone,
    volumeType: spec.volumeType ?? 'gp3',
    state: 'creating',
    createTime: ctx.clock.now(),
    fastRestored:
      spec.snapshotId !== undefined && takeFastRestoreCredit(ctx, spec.snapshotId, spec.availabilityZone),
    ...(spec.kmsKeyId !== undefined ? { kmsKeyId: spec.kmsKeyId } : {}),
    attachment: undefined,
    generation: 0,
    tags: spec.tags,
  };
  ctx.volumes.set(volume.volumeId, volume);
  if (spec.attachTo) {
    linkAttachment(ctx, volume, { ...spec.attachTo, state: 'attached', attachTime: ctx.clock.now() });
  }
  return volume;
};

/** Volume size from a snapshot defaults to, and may not be below, the snapshot size (API_CreateVolume). */
export const volumeSizeFor = (snapshotSize: number | undefined, requested: number | undefined): number => {
  if (snapshotSize !== undefined && requested !== undefined && requested < snapshotSize) {
    throw invalidParameterValue(
      `Volume of ${requested}GiB is smaller than snapshot, expect size >= ${snapshotSize}GiB`,
    );
  }
  const size = requested ?? snapshotSize;
  if (size === undefined) throw missingParameter('size');
  return size;
};

export const toSdkAttachment = (
  volume: VolumeRecord,
  attachment: VolumeAttachmentRecord,
): VolumeAttachment => ({
  VolumeId: volume.volumeId,
  InstanceId: attachment.instanceId,
  Device: attachment.device,
  State: attachment.state,
  AttachTime: new Date(attachment.attachTime),
  DeleteOnTermination: attachment.deleteOnTermination,
});

const toSdkVolume = (volume: VolumeRecord): Volume => ({
  VolumeId: volume.volumeId,
  Size: volume.size,
  SnapshotId: volume.snapshotId ?? '',
  AvailabilityZone: volume.availabilityZone,
  State: volume.state,
  CreateTime: new Date(volume.createTime),
  VolumeType: volume.volumeType,
  Encrypted: volume.kmsKeyId !== undefined,
  KmsKeyId: volume.kmsKeyId,
  MultiAttachEnabled: false,
  FastRestored: volume.fastRestored,
  Attachments: volume.attachment ? [toSdkAttachment(volume, volume.attachment)] : [],
  Tags: tagList(volume.tags),
});

const volumeOrThrow = (ctx: Ec2Context, volumeId: string | undefined): VolumeRecord => {
  if (!volumeId) throw missingParameter('VolumeId');
  const volume = ctx.volumes.get(volumeId);
  if (!volume) throw notFound('InvalidVolume.NotFound', [volumeId], 'volume');
  return volume;
};

/** Deletes a volume: deleting, then gone (ebs-deleting-volume). */
export const deleteVolumeRecord = (ctx: Ec2Context, volume: VolumeRecord): void => {
  unlink(ctx, volume);
  volume.state = 'deleting';
  ctx.clock.at(ctx.clock.now() + ctx.latency.deleteVolumeMs, () => ctx.volumes.delete(volume.volumeId));
};

/** Detaches at once, without the detaching phase (instance termination releases its volumes). */
export const releaseVolume = (ctx: Ec2Context, volume: VolumeRecord): void => unlink(ctx, volume);

export const createVolume = async (ctx: Ec2Context, input: CreateVolumeRequest): Promise<Volume> => {
  const zone = input.AvailabilityZone;
  if (!zone) throw missingParameter('AvailabilityZone');
  if (!ctx.availabilityZones.includes(zone))
    throw invalidParameterValue(`Invalid availability zone: [${zone}]`);
  let snapshotSize: number | undefined;
  let snapshotKey: string | undefined;
  if (input.SnapshotId !== undefined) {
    const snapshot = ctx.snapshots.get(input.SnapshotId);
    // Another account's snapshot that was not shared with this one cannot be restored directly.
    if (!snapshot || !canUseSnapshot(ctx, snapshot))
      throw notFound('InvalidSnapshot.NotFound', [input.SnapshotId], 'snapshot');
    // API_CreateVolume: a volume can only be created from a completed snapshot.
    if (snapshot.state !== 'completed')
      throw ec2Error('IncorrectState', `Snapshot '${snapshot.snapshotId}' is not in the 'completed' state.`);
    snapshotSize = snapshot.volumeSize;
    snapshotKey = snapshot.kmsKeyId;
  }
  const size = volumeSizeFor(snapshotSize, input.Size);
  const kmsKeyId = newVolumeKey(ctx, snapshotKey, { encrypted: input.Encrypted, kmsKeyId: input.KmsKeyId });
  // ebs-cloud-watch-events, createVolume: "Creation will fail if an invalid AWS KMS key was
  // provided"; the call itself answers `creating` (API_CreateVolume: the key is authenticated
  // asynchronously), and the volume is then deleted, never `available` (EC2 sends the
  // `deleteVolume` notification for it). The same happens when the caller may not use the key.
  const checking = keyRefusal(ctx, 'CreateVolume', [{ kmsKeyId }]);
  const refusal = checking && (await checking);
  const volume = newVolume(ctx, {
    size,
    snapshotId: input.SnapshotId,
    availabilityZone: zone,
    volumeType: input.VolumeType,
    tags: tagsFor(input.TagSpecifications, 'volume'),
    kmsKeyId,
  });
  const generation = volume.generation;
  ctx.clock.at(ctx.clock.now() + ctx.latency.createVolumeMs, () => {
    if (volume.generation !== generation || volume.state !== 'creating') return;
    if (refusal) deleteVolumeRecord(ctx, volume);
    else volume.state = 'available';
  });
  return toSdkVolume(volume);
};

/**
 * API_AttachVolume errors and ebs-attaching-volume rules, checked in this order: the volume must
 * not be attached already (VolumeInUse) and must be available (IncorrectState); it must be in the
 * instance's AZ (InvalidVolume.ZoneMismatch); the instance must be running or stopped
 * (IncorrectState); the device must be a valid name (InvalidParameterValue) not in use
 * (InvalidParameterValue); the instance must have a free attachment slot (AttachmentLimitExceeded).
 */
export const attachVolume = async (
  ctx: Ec2Context,
  input: AttachVolumeRequest,
): Promise<VolumeAttachment> => {
  let { volume, instance, device } = attachable(ctx, input);
  // An encrypted volume is attached with a grant EC2 creates on the caller's behalf (KMS
  // Developer Guide, "How Amazon EBS uses AWS KMS": CreateGrant during AttachVolume); without the
  // key ("the next time the encrypted EBS volume is attached to an EC2 instance, the attachment
  // fails", KMS "How unusable KMS keys affect data keys") EC2 refuses the call. The code
  // CustomerKeyHasBeenRevoked is what EC2 answers in reported cases; no AWS page lists it.
  const checking = keyRefusal(ctx, 'AttachVolume', [volume]);
  if (checking) {
    const refusal = await checking;
    if (refusal) {
      throw ec2Error(
        'CustomerKeyHasBeenRevoked',
        `Volume ${volume.volumeId} cannot be attached. The encrypted volume was unable to access the KMS master key (${refusal.keyArn}).`,
      );
    }
    // Checked again: other calls may have run while the caller's IAM was evaluated.
    ({ volume, instance, device } = attachable(ctx, input));
  }
  const attachment: VolumeAttachmentRecord = {
    instanceId: instance.instanceId,
    device,
    deleteOnTermination: false,
    state: 'attaching',
    attachTime: ctx.clock.now(),
  };
  linkAttachment(ctx, volume, attachment);
  const generation = volume.generation;
  ctx.clock.at(ctx.clock.now() + ctx.latency.attachMs, () => {
    if (volume.generation === generation && volume.attachment === attachment) attachment.state = 'attached';
  });
  return toSdkAttachment(volume, attachment);
};

const attachable = (
  ctx: Ec2Context,
  input: AttachVolumeRequest,
): { volume: VolumeRecord; instance: InstanceRecord; device: string } => {
  const volume = volumeOrThrow(ctx, input.VolumeId);
  if (!input.InstanceId) throw missingParameter('InstanceId');
  const instance = ctx.instances.get(input.InstanceId);
  if (!instance) throw notFound('InvalidInstanceID.NotFound', [input.InstanceId], 'instance');
  if (!input.Device) throw missingParameter('Device');
  if (volume.attachment)
    throw ec2Error('VolumeInUse', `${volume.volumeId} is already attached to an instance`);
  if (volume.state !== 'available')
    throw ec2Error('IncorrectState', `Volume '${volume.volumeId}' is not 'available'.`);
  if (volume.availabilityZone !== instance.availabilityZone) {
    throw ec2Error(
      'InvalidVolume.ZoneMismatch',
      `The volume '${volume.volumeId}' is not in the same availability zone as instance '${instance.instanceId}'`,
    );
  }
  if (instance.state !== 'running' && instance.state !== 'stopped')
    throw ec2Error('IncorrectState', `Instance '${instance.instanceId}' is not 'running'.`);
  if (!DEVICE_NAME.test(input.Device))
    throw invalidParameterValue(
      `Value (${input.Device}) for parameter device is invalid. ${input.Device} is not a valid EBS device name.`,
    );
  const current = attachedVolumes(ctx, instance.instanceId);
  if (current.some((attached) => attached.attachment?.device === input.Device))
    throw invalidParameterValue(`Attachment point ${input.Device} is already in use`);
  if (current.length >= MAX_VOLUME_ATTACHMENTS) {
    throw ec2Error(
      'AttachmentLimitExceeded',
      `Instance '${instance.instanceId}' has reached its limit of ${MAX_VOLUME_ATTACHMENTS} volume attachments`,
    );
  }
  return { volume, instance, device: input.Device };
};

const ROOT_BUSY_STATES = new Set(['pending', 'running', 'stopping', 'shutting-down']);

/**
 * API_DetachVolume: the volume must be attached (IncorrectState), to the named instance and
 * device if given (InvalidAttachment.NotFound). ebs-detaching-volume: the root volume can only be
 * detached from a stopped instance; Force does not lift that (IncorrectState).
 */
export const detachVolume = (ctx: Ec2Context, input: DetachVolumeRequest): VolumeAttachment => {
  const volume = volumeOrThrow(ctx, input.VolumeId);
  const attachment = volume.attachment;
  if (!attachment)
    throw ec2Error('IncorrectState', `Volume '${volume.volumeId}' is in the '${volume.state}' state.`);
  if (
    (input.InstanceId !== undefined && input.InstanceId !== attachment.instanceId) ||
    (input.Device !== undefined && input.Device !== attachment.device)
  ) {
    throw ec2Error(
      'InvalidAttachment.NotFound',
      `Volume '${volume.volumeId}' is not attached to '${input.InstanceId ?? input.Device}'`,
    );
  }
  const instance = ctx.instances.get(attachment.instanceId);
  if (instance && attachment.device === instance.rootDeviceName && ROOT_BUSY_STATES.has(instance.state)) {
    throw ec2Error(
      'IncorrectState',
      `Unable to detach root volume '${volume.volumeId}' from instance '${instance.instanceId}'`,
    );
  }
  if (attachment.state !== 'detaching') {
    attachment.state = 'detaching';
    volume.generation += 1;
    const generation = volume.generation;
    ctx.clock.at(ctx.clock.now() + ctx.latency.detachMs, () => {
      if (volume.generation === generation) unlink(ctx, volume);
    });
  }
  return toSdkAttachment(volume, attachment);
};

/** API_DeleteVolume: an attached volume cannot be deleted (VolumeInUse). */
export const deleteVolume = (ctx: Ec2Context, input: DeleteVolumeRequest): Record<string, never> => {
  const volume = volumeOrThrow(ctx, input.VolumeId);
  if (volume.attachment) {
    throw ec2Error(
      'VolumeInUse',
      `Volume ${volume.volumeId} is currently attached to ${volume.attachment.instanceId}`,
    );
  }
  if (volume.state !== 'deleting') deleteVolumeRecord(ctx, volume);
  return {};
};

const VOLUME_FILTERS: FilterFields<VolumeRecord> = {
  'volume-id': (volume) => [volume.volumeId],
  status: (volume) => [volume.state],
  'availability-zone': (volume) => [volume.availabilityZone],
  'snapshot-id': (volume) => [volume.snapshotId],
  'volume-type': (volume) => [volume.volumeType],
  size: (volume) => [String(volume.size)],
  'fast-restored': (volume) => [String(volume.fastRestored)],
  encrypted: (volume) => [String(volume.kmsKeyId !== undefined)],
  'attachment.instance-id': (volume) => [volume.attachment?.instanceId],
  'attachment.device': (volume) => [volume.attachment?.device],
  'attachment.status': (volume) => [volume.attachment?.state],
  'attachment.delete-on-termination': (volume) => [
    volume.attachment ? String(volume.attachment.deleteOnTermination) : undefined,
  ],
};

export const describeVolumes = async (
  ctx: Ec2Context,
  input: DescribeVolumesRequest,
): Promise<DescribeVolumesResult> => {
  const named = namedOrAll(ctx.volumes, input.VolumeIds, notFoundOf('InvalidVolume.NotFound', 'volume'));
  const { page, nextToken } = describePage(named, input, VOLUME_FILTERS, (volume) => volume.tags);
  return { Volumes: page.map(toSdkVolume), NextToken: nextToken };
};
