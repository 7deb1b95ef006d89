import type { Instance, RunInstancesCommandInput, Volume, VolumeType } from '@aws-sdk/client-ec2';
import type { LaunchRequest } from '../domain/bulk';
import type { InstanceStateName, ObservedInstance, ObservedVolume, VolumeStateName } from '../domain/types';

/** EC2's answers in the domain's terms, and RunInstances from the domain's launch request. */

/** EC2 accepts at most 200 values per filter. */
export const FILTER_VALUES_MAX = 200;

export const tagsOf = (
  tags: readonly { Key?: string; Value?: string }[] | undefined,
): Record<string, string> =>
  Object.fromEntries((tags ?? []).flatMap((tag) => (tag.Key ? [[tag.Key, tag.Value ?? '']] : [])));

export const toObservedInstance = (instance: Instance): ObservedInstance | undefined => {
  if (!instance.InstanceId) return undefined;
  const placement = instance.Placement ?? {};
  const tenancy =
    placement.Tenancy === 'host' || placement.Tenancy === 'dedicated' ? placement.Tenancy : 'default';
  return {
    instanceId: instance.InstanceId,
    state: (instance.State?.Name ?? 'pending') as InstanceStateName,
    imageId: instance.ImageId ?? '',
    instanceType: instance.InstanceType ?? '',
    availabilityZone: placement.AvailabilityZone ?? '',
    ...(instance.SubnetId ? { subnetId: instance.SubnetId } : {}),
    ...(instance.VpcId ? { vpcId: instance.VpcId } : {}),
    securityGroupIds: (instance.SecurityGroups ?? []).flatMap((group) =>
      group.GroupId ? [group.GroupId] : [],
    ),
    ...(instance.IamInstanceProfile?.Arn ? { iamInstanceProfileArn: instance.IamInstanceProfile.Arn } : {}),
    ...(instance.KeyName ? { keyName: instance.KeyName } : {}),
    ...(instance.EbsOptimized !== undefined ? { ebsOptimized: instance.EbsOptimized } : {}),
    // EC2 answers "windows" in lower case, although the SDK's enum spells it "Windows".
    ...(String(instance.Platform).toLowerCase() === 'windows' ? { platform: 'windows' as const } : {}),
    ...(instance.MetadataOptions
      ? {
          metadata: {
            hopLimit: instance.MetadataOptions.HttpPutResponseHopLimit ?? 1,
            endpoint:
              instance.MetadataOptions.HttpEndpoint === 'disabled'
                ? ('disabled' as const)
                : ('enabled' as const),
          },
        }
      : {}),
    tenancy,
    ...(placement.HostId ? { hostId: placement.HostId } : {}),
    ...(placement.Affinity === 'host' || placement.Affinity === 'default'
      ? { affinity: placement.Affinity }
      : {}),
    rootDeviceName: instance.RootDeviceName ?? '',
    rootDeviceType: instance.RootDeviceType === 'instance-store' ? 'instance-store' : 'ebs',
    blockDevices: (instance.BlockDeviceMappings ?? []).flatMap((mapping) =>
      mapping.DeviceName && mapping.Ebs?.VolumeId
        ? [
            {
              deviceName: mapping.DeviceName,
              volumeId: mapping.Ebs.VolumeId,
              deleteOnTermination: mapping.Ebs.DeleteOnTermination === true,
            },
          ]
        : [],
    ),
    tags: tagsOf(instance.Tags),
    ...(instance.AmiLaunchIndex !== undefined ? { amiLaunchIndex: instance.AmiLaunchIndex } : {}),
    ...(instance.PrivateIpAddress ? { privateIpAddress: instance.PrivateIpAddress } : {}),
    ...(placement.GroupName ? { placementGroupName: placement.GroupName } : {}),
    ...(placement.PartitionNumber !== undefined ? { partitionNumber: placement.PartitionNumber } : {}),
    ...(instance.LaunchTime ? { launchTime: instance.LaunchTime.getTime() } : {}),
    ...(instance.StateReason?.Code
      ? { stateReason: { code: instance.StateReason.Code, message: instance.StateReason.Message ?? '' } }
      : {}),
  };
};

export const toObservedVolume = (volume: Volume): ObservedVolume | undefined => {
  if (!volume.VolumeId) return undefined;
  const attachment = (volume.Attachments ?? []).find((candidate) => candidate.InstanceId);
  return {
    volumeId: volume.VolumeId,
    state: (volume.State ?? 'available') as VolumeStateName,
    availabilityZone: volume.AvailabilityZone ?? '',
    sizeGiB: volume.Size ?? 0,
    volumeType: volume.VolumeType ?? 'gp3',
    ...(volume.Iops !== undefined ? { iops: volume.Iops } : {}),
    ...(volume.Throughput !== undefined ? { throughput: volume.Throughput } : {}),
    ...(volume.Encrypted !== undefined ? { encrypted: volume.Encrypted } : {}),
    ...(volume.KmsKeyId ? { kmsKeyId: volume.KmsKeyId } : {}),
    ...(attachment?.InstanceId
      ? {
          attachment: {
            instanceId: attachment.InstanceId,
            device: attachment.Device ?? '',
            state: (attachment.State ?? 'attached') as NonNullable<ObservedVolume['attachment']>['state'],
          },
        }
      : {}),
    tags: tagsOf(volume.Tags),
  };
};

const tagSpecification = (resourceType: 'instance' | 'volume', tags: Readonly<Record<string, string>>) => ({
  ResourceType: resourceType,
  Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
});

/** RunInstances as `request` asks, with the recorded key pair only when it still exists (`keyName`). */
export const runInstancesInput = (
  request: LaunchRequest,
  keyName: string | undefined,
): RunInstancesCommandInput => ({
  ClientToken: request.clientToken,
  ImageId: request.imageId,
  InstanceType: request.instanceType as RunInstancesCommandInput['InstanceType'],
  SubnetId: request.subnetId,
  SecurityGroupIds: [...request.securityGroupIds],
  ...(request.iamInstanceProfileArn ? { IamInstanceProfile: { Arn: request.iamInstanceProfileArn } } : {}),
  ...(keyName ? { KeyName: keyName } : {}),
  // IMDSv2 always (security review M2); the hop limit and endpoint as the instance had them.
  MetadataOptions: {
    HttpTokens: 'required',
    HttpPutResponseHopLimit: request.metadata?.hopLimit ?? 1,
    HttpEndpoint: request.metadata?.endpoint ?? 'enabled',
  },
  ...(request.ebsOptimized !== undefined ? { EbsOptimized: request.ebsOptimized } : {}),
  Placement: {
    AvailabilityZone: request.placement.availabilityZone,
    Tenancy: request.placement.tenancy,
    ...(request.placement.hostId ? { HostId: request.placement.hostId } : {}),
    ...(request.placement.affinity ? { Affinity: request.placement.affinity } : {}),
    ...(request.placement.placementGroup
      ? {
          GroupName: request.placement.placementGroup.groupName,
          ...(request.placement.placementGroup.partitionNumber !== undefined
            ? { PartitionNumber: request.placement.placementGroup.partitionNumber }
            : {}),
        }
      : {}),
  },
  ...(request.privateIpAddress ? { PrivateIpAddress: request.privateIpAddress } : {}),
  ...(request.userData ? { UserData: request.userData } : {}),
  ...(request.cpuCredits ? { CreditSpecification: { CpuCredits: request.cpuCredits } } : {}),
  MinCount: request.minCount,
  MaxCount: request.maxCount,
  BlockDeviceMappings: request.devices.map((device) =>
    device.noDevice
      ? { DeviceName: device.deviceName, NoDevice: '' }
      : {
          DeviceName: device.deviceName,
          Ebs: {
            DeleteOnTermination: device.deleteOnTermination,
            ...(device.snapshotId ? { SnapshotId: device.snapshotId } : {}),
            ...(device.sizeGiB !== undefined ? { VolumeSize: device.sizeGiB } : {}),
            ...(device.volumeType ? { VolumeType: device.volumeType as VolumeType } : {}),
            ...(device.iops !== undefined ? { Iops: device.iops } : {}),
            ...(device.throughput !== undefined ? { Throughput: device.throughput } : {}),
          },
        },
  ),
  TagSpecifications: [
    tagSpecification('instance', request.instanceTags),
    tagSpecification('volume', request.volumeTags),
  ],
});
