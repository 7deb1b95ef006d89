import type {
  CreateImageRequest,
  CreateImageResult,
  DeregisterImageRequest,
  DeregisterImageResult,
  DescribeImagesRequest,
  DescribeImagesResult,
  Image,
  PlatformValues,
  RegisterImageRequest,
  RegisterImageResult,
} from '@aws-sdk/client-ec2';
import type { ImageBootMode } from './compatibility';
import { ec2Error, invalidParameterValue, missingParameter, notFound } from './errors';
import { describePage, namedOrAll, tagList, tagsFor } from './filters';
import { isWellFormedId } from './ids';
import { architectureOfType, imageArchitectureOf } from './instance-types';
import { newSnapshot, snapshotDurationMs } from './snapshots';
import type { Ec2Context, ImageBlockDevice, ImageRecord, Platform, RootDeviceType } from './state';
import { attachedVolumes } from './volumes';

/** AMIs: pending → available once their snapshots complete (creating-an-ami-ebs). */

export interface SeedImage {
  readonly name: string;
  readonly rootSizeGiB: number;
  readonly platform?: Platform;
  readonly rootDeviceType?: RootDeviceType;
  /**
   * The AMI's root device name. Amazon Linux and Debian AMIs use `/dev/xvda`; Ubuntu and RHEL
   * AMIs (and Windows) use `/dev/sda1` (EC2 user guide, "Device names on Linux instances").
   */
  readonly rootDeviceName?: string;
  /**
   * Another account's AMI (e.g. Amazon's public images, owner 137112412989): its snapshots are
   * that account's and not shared with this one unless `snapshotsShared`.
   */
  readonly ownerId?: string;
  /** With `ownerId`: the owner's alias (`amazon` for AWS's public AMIs). */
  readonly ownerAlias?: ImageRecord['ownerAlias'];
  readonly snapshotsShared?: boolean;
  /** Default x86_64; `arm64` for Graviton AMIs. */
  readonly architecture?: 'x86_64' | 'arm64';
  /** Default: none, so the instance type's default boot mode applies (compatibility.ts). */
  readonly bootMode?: ImageBootMode;
  /** Default true; false for an AMI whose OS has no ENA driver. */
  readonly enaSupport?: boolean;
  /** The root snapshot is encrypted with this KMS key (key id, ARN or alias); default unencrypted. */
  readonly rootKmsKeyId?: string;
  readonly imageId?: string;
  readonly tags?: Readonly<Record<string, string>>;
}

const DEFAULT_ROOT_DEVICE: Record<Platform, string> = { linux: '/dev/xvda', windows: '/dev/sda1' };

const assertNameFree = (ctx: Ec2Context, name: string): void => {
  // API_CreateImage / API_RegisterImage: names are unique per account and Region.
  if ([...ctx.images.values()].some((image) => image.name === name))
    throw ec2Error('InvalidAMIName.Duplicate', `AMI name ${name} is already in use by another AMI`);
};

const addImage = (
  ctx: Ec2Context,
  image: Omit<ImageRecord, 'imageId' | 'creationDate'>,
  imageId?: string,
) => {
  const record: ImageRecord = {
    ...image,
    imageId: imageId === undefined ? ctx.ids.next('ami') : ctx.ids.claim(imageId),
    creationDate: ctx.clock.now(),
  };
  ctx.images.set(record.imageId, record);
  return record;
};

/** Seeding: an available AMI with a completed root snapshot (none for instance-store images). */
export const seedImage = (ctx: Ec2Context, seed: SeedImage): string => {
  assertNameFree(ctx, seed.name);
  const platform = seed.platform ?? 'linux';
  const rootDeviceType = seed.rootDeviceType ?? 'ebs';
  const rootDeviceName = seed.rootDeviceName ?? DEFAULT_ROOT_DEVICE[platform];
  const blockDevices: ImageBlockDevice[] =
    rootDeviceType === 'ebs'
      ? [
          {
            deviceName: rootDeviceName,
            snapshotId: newSnapshot(ctx, {
              volumeId: undefined,
              volumeSize: seed.rootSizeGiB,
              description: `root of ${seed.name}`,
              tags: new Map(),
              completed: true,
              ...(seed.ownerId !== undefined ? { ownerId: seed.ownerId } : {}),
              ...(seed.snapshotsShared ? { sharedWithAccount: true } : {}),
              kmsKeyId:
                seed.rootKmsKeyId === undefined
                  ? undefined
                  : (ctx.kms.key(seed.rootKmsKeyId)?.arn ?? seed.rootKmsKeyId),
            }).snapshotId,
            volumeSize: seed.rootSizeGiB,
            volumeType: 'gp3',
            deleteOnTermination: true,
          },
        ]
      : [];
  return addImage(
    ctx,
    {
      name: seed.name,
      ...(seed.ownerId !== undefined ? { ownerId: seed.ownerId, public: true } : {}),
      ...(seed.ownerAlias !== undefined ? { ownerAlias: seed.ownerAlias } : {}),
      architecture: seed.architecture ?? 'x86_64',
      ...(seed.bootMode !== undefined ? { bootMode: seed.bootMode } : {}),
      ...(seed.enaSupport !== undefined ? { enaSupport: seed.enaSupport } : {}),
      description: '',
      state: 'available',
      rootDeviceName,
      rootDeviceType,
      platform,
      blockDevices,
      tags: new Map(Object.entries(seed.tags ?? {})),
    },
    seed.imageId,
  ).imageId;
};

/**
 * API_CreateImage from an EBS-backed instance that is running or stopped: one snapshot per
 * attached volume, and the AMI becomes available when the last snapshot completes. The reboot a
 * running instance goes through without NoReboot is not modelled.
 */
export const createImage = (ctx: Ec2Context, input: CreateImageRequest): CreateImageResult => {
  if (!input.InstanceId) throw missingParameter('InstanceId');
  if (!input.Name) throw missingParameter('Name');
  const instance = ctx.instances.get(input.InstanceId);
  if (!instance) throw notFound('InvalidInstanceID.NotFound', [input.InstanceId], 'instance');
  if (instance.state !== 'running' && instance.state !== 'stopped')
    throw ec2Error(
      'IncorrectInstanceState',
      `Instance '${instance.instanceId}' is not in a valid state for this operation.`,
    );
  if (instance.rootDeviceType !== 'ebs')
    throw ec2Error('UnsupportedOperation', 'CreateImage only supports EBS-backed instances.');
  assertNameFree(ctx, input.Name);
  const snapshotTags = tagsFor(input.TagSpecifications, 'snapshot');
  const blockDevices = attachedVolumes(ctx, instance.instanceId).map((volume): ImageBlockDevice => {
    const snapshot = newSnapshot(ctx, {
      volumeId: volume.volumeId,
      volumeSize: volume.size,
      description: `Created by CreateImage(${instance.instanceId})`,
      tags: new Map(snapshotTags),
      completed: false,
      kmsKeyId: volume.kmsKeyId,
    });
    return {
      deviceName: volume.attachment?.device ?? '',
      snapshotId: snapshot.snapshotId,
      volumeSize: volume.size,
      volumeType: volume.volumeType,
      deleteOnTermination: volume.attachment?.deleteOnTermination ?? true,
    };
  });
  const image = addImage(ctx, {
    name: input.Name,
    description: input.Description ?? '',
    state: 'pending',
    rootDeviceName: instance.rootDeviceName,
    rootDeviceType: 'ebs',
    platform: instance.platform,
    architecture: imageArchitectureOf(architectureOfType(instance.instanceType)),
    blockDevices,
    tags: tagsFor(input.TagSpecifications, 'image'),
  });
  const slowest = Math.max(0, ...blockDevices.map((device) => snapshotDurationMs(ctx, device.volumeSize)));
  ctx.clock.at(ctx.clock.now() + slowest, () => {
    image.state = 'available';
  });
  return { ImageId: image.imageId };
};

/** API_RegisterImage from existing snapshots (EBS-backed); the root device must map a snapshot. */
export const registerImage = (ctx: Ec2Context, input: RegisterImageRequest): RegisterImageResult => {
  if (!input.Name) throw missingParameter('Name');
  const rootDeviceName = input.RootDeviceName ?? DEFAULT_ROOT_DEVICE.linux;
  const blockDevices = (input.BlockDeviceMappings ?? []).flatMap((mapping): ImageBlockDevice[] => {
    const snapshotId = mapping.Ebs?.SnapshotId;
    if (!snapshotId || !mapping.DeviceName) return [];
    const snapshot = ctx.snapshots.get(snapshotId);
    if (!snapshot) throw notFound('InvalidSnapshot.NotFound', [snapshotId], 'snapshot');
    return [
      {
        deviceName: mapping.DeviceName,
        snapshotId,
        volumeSize: mapping.Ebs?.VolumeSize ?? snapshot.volumeSize,
        volumeType: mapping.Ebs?.VolumeType ?? 'gp3',
        deleteOnTermination: mapping.Ebs?.DeleteOnTermination ?? true,
      },
    ];
  });
  if (!blockDevices.some((device) => device.deviceName === rootDeviceName))
    throw invalidParameterValue(
      `The root device name ${rootDeviceName} has no snapshot in the block device mapping`,
    );
  assertNameFree(ctx, input.Name);
  const image = addImage(ctx, {
    name: input.Name,
    description: input.Description ?? '',
    state: 'available',
    rootDeviceName,
    rootDeviceType: 'ebs',
    platform: 'linux',
    architecture: input.Architecture === 'arm64' ? 'arm64' : 'x86_64',
    blockDevices,
    tags: tagsFor(input.TagSpecifications, 'image'),
  });
  return { ImageId: image.imageId };
};

/**
 * EC2 answers `platform` as lowercase "windows" (and omits it for Linux); the SDK's enum spells
 * it "Windows" but passes the wire value through unchanged, so the simulator answers the wire value.
 */
export const platformValue = (platform: Platform): PlatformValues | undefined =>
  platform === 'windows' ? ('windows' as PlatformValues) : undefined;

/** The AMI a launch or describe names: malformed ids and unknown ids are different errors. */
export const imageOrThrow = (ctx: Ec2Context, imageId: string | undefined): ImageRecord => {
  if (!imageId) throw missingParameter('ImageId');
  if (!isWellFormedId('ami', imageId)) throw ec2Error('InvalidAMIID.Malformed', `Invalid id: "${imageId}"`);
  const image = ctx.images.get(imageId);
  if (!image) throw ec2Error('InvalidAMIID.NotFound', `The image id '[${imageId}]' does not exist`);
  return image;
};

const toSdkImage = (ctx: Ec2Context, image: ImageRecord): Image => ({
  ImageId: image.imageId,
  Name: image.name,
  Description: image.description,
  State: image.state,
  OwnerId: image.ownerId ?? ctx.accountId,
  ...(image.ownerAlias !== undefined ? { ImageOwnerAlias: image.ownerAlias } : {}),
  CreationDate: new Date(image.creationDate).toISOString(),
  Architecture: image.architecture,
  ImageType: 'machine',
  Public: image.public === true,
  VirtualizationType: 'hvm',
  Hypervisor: 'xen',
  EnaSupport: true,
  RootDeviceName: image.rootDeviceName,
  RootDeviceType: image.rootDeviceType,
  Platform: platformValue(image.platform),
  PlatformDetails: image.platform === 'windows' ? 'Windows' : 'Linux/UNIX',
  BlockDeviceMappings: image.blockDevices.map((device) => ({
    DeviceName: device.deviceName,
    Ebs: {
      SnapshotId: device.snapshotId,
      VolumeSize: device.volumeSize,
      VolumeType: device.volumeType,
      DeleteOnTermination: device.deleteOnTermination,
      Encrypted: ctx.snapshots.get(device.snapshotId)?.kmsKeyId !== undefined,
      KmsKeyId: ctx.snapshots.get(device.snapshotId)?.kmsKeyId,
    },
  })),
  Tags: tagList(image.tags),
});

export const describeImages = async (
  ctx: Ec2Context,
  input: DescribeImagesRequest,
): Promise<DescribeImagesResult> => {
  const named = namedOrAll(ctx.images, input.ImageIds, (missing) =>
    ec2Error('InvalidAMIID.NotFound', `The image ids '[${missing.join(', ')}]' do not exist`),
  );
  // `Owners`: "a combination of AWS account IDs, self, amazon, aws-backup-vault, and
  // aws-marketplace"; an image of another owner is not described (EC2 API reference, DescribeImages).
  const owners = input.Owners ?? [];
  const ownedBy = (image: ImageRecord): boolean =>
    owners.length === 0 ||
    owners.some((owner) =>
      owner === 'self'
        ? (image.ownerId ?? ctx.accountId) === ctx.accountId
        : owner === image.ownerAlias || owner === (image.ownerId ?? ctx.accountId),
    );
  const { page, nextToken } = describePage(
    [...named].filter(ownedBy),
    input,
    {
      'image-id': (image) => [image.imageId],
      name: (image) => [image.name],
      state: (image) => [image.state],
      'root-device-type': (image) => [image.rootDeviceType],
      platform: (image) => [image.platform === 'windows' ? 'windows' : undefined],
      'owner-id': (image) => [image.ownerId ?? ctx.accountId],
      'block-device-mapping.snapshot-id': (image) => image.blockDevices.map((device) => device.snapshotId),
    },
    (image) => image.tags,
  );
  return { Images: page.map((image) => toSdkImage(ctx, image)), NextToken: nextToken };
};

/** API_DeregisterImage: the AMI goes; its snapshots stay (deregister-ami). */
export const deregisterImage = (ctx: Ec2Context, input: DeregisterImageRequest): DeregisterImageResult => {
  const image = imageOrThrow(ctx, input.ImageId);
  ctx.images.delete(image.imageId);
  return {};
};
