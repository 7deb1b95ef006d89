import {
  AssociateAddressCommand,
  AttachVolumeCommand,
  CreateSnapshotsCommand,
  CreateTagsCommand,
  DeleteSnapshotCommand,
  DeleteTagsCommand,
  DeleteVolumeCommand,
  DescribeAddressesCommand,
  DescribeAvailabilityZonesCommand,
  DescribeHostsCommand,
  DescribeInstanceAttributeCommand,
  DescribeInstanceCreditSpecificationsCommand,
  DescribeInstancesCommand,
  DescribeKeyPairsCommand,
  DescribePlacementGroupsCommand,
  DescribeSnapshotsCommand,
  DescribeSubnetsCommand,
  DescribeVolumesCommand,
  DetachVolumeCommand,
  type EC2Client,
  type Filter,
  type Instance,
  ModifyInstanceAttributeCommand,
  RunInstancesCommand,
  type RunInstancesCommandInput,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
  type Volume,
  type VolumeType,
} from '@aws-sdk/client-ec2';
import { callAws } from '../../shared/aws-errors';
import type { Clock } from '../../shared/clock';
import { NotFoundError, UnmanagedResourceError } from '../../shared/errors';
import type { LaunchRequest } from '../domain/bulk';
import { isBurstableType } from '../domain/fidelity';
import type { Pacer } from '../domain/pacer';
import {
  replacementRootDeletionRefusal,
  shelvedSnapshotDeletionRefusal,
  shelvedVolumeDeletionRefusal,
} from '../domain/safety';
import { SHELVED_TAG } from '../domain/tags';
import type {
  CpuCredits,
  ElasticIp,
  InstanceDetails,
  InstanceStateName,
  ObservedAddress,
  ObservedInstance,
  ObservedSnapshot,
  ObservedVolume,
  PlacementGroupRef,
  PlacementObservation,
  ReplacementAttribute,
  ReplacementAttributes,
  VolumeStateName,
  ZoneState,
} from '../domain/types';

/** Exactly the EC2 calls shelving makes, in the domain's terms. */
export interface ShelvingEc2 {
  describeInstances(instanceIds: readonly string[]): Promise<ObservedInstance[]>;
  /** Instances carrying `key` with any of `values` (replacement discovery after a crash). */
  describeInstancesByTag(key: string, values: readonly string[]): Promise<ObservedInstance[]>;
  /** Volumes that exist among `volumeIds` (missing ones are simply absent). */
  describeVolumes(volumeIds: readonly string[]): Promise<ObservedVolume[]>;
  /** Safety snapshots tagged `warmboot:shelved` with one of `recordIds`, by record id. */
  describeShelvedSnapshots(recordIds: readonly string[]): Promise<Map<string, ObservedSnapshot[]>>;
  /** The Region's AZ states and the `available` subnets of `vpcIds` (for a move to another AZ). */
  describePlacement(vpcIds: readonly string[]): Promise<PlacementObservation>;
  /** How many more instances of `instanceType` each host takes now. */
  describeHostRoom(
    hostIds: readonly string[],
    instanceType: (hostId: string) => string,
  ): Promise<Map<string, number>>;
  setDeleteOnTermination(
    instanceId: string,
    devices: readonly { deviceName: string; deleteOnTermination: boolean }[],
  ): Promise<void>;
  createTags(resourceIds: readonly string[], tags: Readonly<Record<string, string>>): Promise<void>;
  deleteTags(resourceIds: readonly string[], keys: readonly string[]): Promise<void>;
  stopInstances(instanceIds: readonly string[], force: boolean): Promise<void>;
  startInstances(instanceIds: readonly string[]): Promise<void>;
  terminateInstances(instanceIds: readonly string[]): Promise<void>;
  createSnapshots(instanceId: string, recordId: string): Promise<void>;
  /** Launched instances with their AmiLaunchIndex. */
  runInstances(request: LaunchRequest): Promise<{ instanceId: string; launchIndex: number }[]>;
  attachVolume(volumeId: string, instanceId: string, device: string): Promise<void>;
  /**
   * How many AttachVolume calls the client-side pacer admits within `withinMs` from now
   * (absent: no pacing, no limit). Lets a round hand attaches out by priority instead of
   * queueing every one of them far into the future.
   */
  attachSlots?(withinMs: number): number;
  detachVolume(volumeId: string, instanceId: string): Promise<void>;
  /**
   * Deletes a replacement's fresh root after re-describing it and checking the data-safety fence
   * (domain/safety.ts). Refuses with UnmanagedResourceError; a volume already gone is success.
   */
  deleteReplacementRoot(
    volumeId: string,
    recordId: string,
    retainedVolumeIds: ReadonlySet<string>,
  ): Promise<void>;
  /** 'Delete Shelved Record' only: re-describes and checks the record's shelved tag first. */
  deleteShelvedVolume(volumeId: string, recordId: string): Promise<void>;
  /**
   * 'Delete Shelved Record' only: re-describes the snapshot and checks it is still tagged with
   * the record and of one of its retained volumes (domain/safety.ts). A snapshot gone is success.
   */
  deleteShelvedSnapshot(
    snapshotId: string,
    recordId: string,
    retainedVolumeIds: ReadonlySet<string>,
  ): Promise<void>;
  /**
   * What a shelve records beyond DescribeInstances (user data, protection, the Elastic IP of the
   * primary private address, the credit option of burstable types, the placement strategy).
   */
  describeShelveDetails(instances: readonly ObservedInstance[]): Promise<InstanceDetails[]>;
  /** DescribeInstanceAttribute, one call per attribute. */
  describeInstanceAttributes(
    instanceId: string,
    attributes: readonly ReplacementAttribute[],
  ): Promise<ReplacementAttributes>;
  /** The Elastic IPs among `allocationIds` that still exist (a released one is simply absent). */
  describeAddresses(allocationIds: readonly string[]): Promise<ObservedAddress[]>;
  /** ModifyInstanceAttribute UserData (the instance must be stopped); `userData` is base64. */
  setUserData(instanceId: string, userData: string): Promise<void>;
  setProtection(
    instanceId: string,
    attribute: 'disableApiTermination' | 'disableApiStop',
    value: boolean,
  ): Promise<void>;
  /** AssociateAddress, never taking the address from another resource (AllowReassociation false). */
  associateAddress(allocationId: string, instanceId: string): Promise<void>;
}

/** EC2 accepts at most 200 values per filter. */
const FILTER_VALUES_MAX = 200;

const chunks = <T>(items: readonly T[], size: number): T[][] => {
  const result: T[][] = [];
  for (let start = 0; start < items.length; start += size) result.push(items.slice(start, start + size));
  return result;
};

const tagsOf = (tags: readonly { Key?: string; Value?: string }[] | undefined): Record<string, string> =>
  Object.fromEntries((tags ?? []).flatMap((tag) => (tag.Key ? [[tag.Key, tag.Value ?? '']] : [])));

const toObservedInstance = (instance: Instance): ObservedInstance | undefined => {
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

const toObservedVolume = (volume: Volume): ObservedVolume | undefined => {
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

/** The SDK implementation. Every call waits for the pacer first, then goes through callAws. */
export const sdkShelvingEc2 = (client: EC2Client, pacer: Pacer, clock: Clock): ShelvingEc2 => {
  const paced = async <T>(operation: string, instances: number, call: () => Promise<T>): Promise<T> => {
    const waitMs = pacer.reserve(operation, instances, clock.now());
    if (waitMs > 0) await clock.sleep(waitMs);
    return callAws(operation, call);
  };

  /**
   * Whether a recorded key pair still exists. A replacement is launched with the shelved
   * instance's key pair so it looks as it was, but that key may have been deleted since; RunInstances
   * would then refuse the whole launch (InvalidKeyPair.NotFound, finding R12). The key is not
   * needed to log in: the retained (or restored) root carries its own authorized_keys.
   */
  const keyPairExists = async (keyName: string): Promise<boolean> => {
    try {
      await paced('DescribeKeyPairs', 0, () =>
        client.send(new DescribeKeyPairsCommand({ KeyNames: [keyName] })),
      );
      return true;
    } catch (error) {
      if (error instanceof NotFoundError) return false;
      throw error;
    }
  };

  const describeInstancesFiltered = async (filters: Filter[]): Promise<ObservedInstance[]> => {
    const found: ObservedInstance[] = [];
    let nextToken: string | undefined;
    do {
      const token = nextToken;
      const page = await paced('DescribeInstances', 0, () =>
        client.send(
          new DescribeInstancesCommand({
            Filters: filters,
            MaxResults: 1000,
            ...(token ? { NextToken: token } : {}),
          }),
        ),
      );
      for (const reservation of page.Reservations ?? []) {
        for (const instance of reservation.Instances ?? []) {
          const observed = toObservedInstance(instance);
          if (observed) found.push(observed);
        }
      }
      nextToken = page.NextToken;
    } while (nextToken);
    return found;
  };

  const describeVolumesFiltered = async (filters: Filter[]): Promise<ObservedVolume[]> => {
    const found: ObservedVolume[] = [];
    let nextToken: string | undefined;
    do {
      const token = nextToken;
      const page = await paced('DescribeVolumes', 0, () =>
        client.send(
          new DescribeVolumesCommand({
            Filters: filters,
            MaxResults: 500,
            ...(token ? { NextToken: token } : {}),
          }),
        ),
      );
      for (const volume of page.Volumes ?? []) {
        const observed = toObservedVolume(volume);
        if (observed) found.push(observed);
      }
      nextToken = page.NextToken;
    } while (nextToken);
    return found;
  };

  const describeOneVolume = async (volumeId: string): Promise<ObservedVolume | undefined> =>
    (await describeVolumesFiltered([{ Name: 'volume-id', Values: [volumeId] }]))[0];

  /** DescribeInstanceAttribute, one call per attribute (the API reads one at a time). */
  const describeAttributes = async (
    instanceId: string,
    attributes: readonly ReplacementAttribute[],
  ): Promise<ReplacementAttributes> => {
    const answers = await Promise.all(
      attributes.map(async (attribute): Promise<ReplacementAttributes> => {
        const answer = await paced('DescribeInstanceAttribute', 0, () =>
          client.send(new DescribeInstanceAttributeCommand({ InstanceId: instanceId, Attribute: attribute })),
        );
        switch (attribute) {
          case 'userData':
            return { userData: answer.UserData?.Value ?? null };
          case 'disableApiTermination':
            return { disableApiTermination: answer.DisableApiTermination?.Value === true };
          case 'disableApiStop':
            return { disableApiStop: answer.DisableApiStop?.Value === true };
        }
      }),
    );
    return Object.assign({}, ...answers) as ReplacementAttributes;
  };

  return {
    async describeInstances(instanceIds) {
      const found: ObservedInstance[] = [];
      for (const ids of chunks([...new Set(instanceIds)], FILTER_VALUES_MAX)) {
        found.push(...(await describeInstancesFiltered([{ Name: 'instance-id', Values: ids }])));
      }
      return found;
    },
    async describeInstancesByTag(key, values) {
      const found: ObservedInstance[] = [];
      for (const part of chunks([...new Set(values)], FILTER_VALUES_MAX)) {
        found.push(...(await describeInstancesFiltered([{ Name: `tag:${key}`, Values: part }])));
      }
      return found;
    },
    async describePlacement(vpcIds) {
      const zones = await paced('DescribeAvailabilityZones', 0, () =>
        client.send(new DescribeAvailabilityZonesCommand({})),
      );
      const subnets: PlacementObservation['subnets'][number][] = [];
      let nextToken: string | undefined;
      do {
        const token = nextToken;
        const page = await paced('DescribeSubnets', 0, () =>
          client.send(
            new DescribeSubnetsCommand({
              Filters: [
                { Name: 'vpc-id', Values: [...new Set(vpcIds)] },
                { Name: 'state', Values: ['available'] },
              ],
              MaxResults: 1000,
              ...(token ? { NextToken: token } : {}),
            }),
          ),
        );
        for (const subnet of page.Subnets ?? []) {
          if (!subnet.SubnetId || !subnet.VpcId || !subnet.AvailabilityZone) continue;
          subnets.push({
            subnetId: subnet.SubnetId,
            vpcId: subnet.VpcId,
            availabilityZone: subnet.AvailabilityZone,
            availableIpAddressCount: subnet.AvailableIpAddressCount ?? 0,
            mapPublicIpOnLaunch: subnet.MapPublicIpOnLaunch ?? false,
          });
        }
        nextToken = page.NextToken;
      } while (nextToken);
      return {
        zones: new Map(
          (zones.AvailabilityZones ?? []).flatMap((zone) =>
            zone.ZoneName && zone.State ? [[zone.ZoneName, zone.State as ZoneState] as const] : [],
          ),
        ),
        subnets,
      };
    },
    async describeVolumes(volumeIds) {
      const found: ObservedVolume[] = [];
      for (const ids of chunks([...new Set(volumeIds)], FILTER_VALUES_MAX)) {
        found.push(...(await describeVolumesFiltered([{ Name: 'volume-id', Values: ids }])));
      }
      return found;
    },
    async describeShelvedSnapshots(recordIds) {
      const byRecord = new Map<string, ObservedSnapshot[]>();
      for (const ids of chunks([...new Set(recordIds)], FILTER_VALUES_MAX)) {
        let nextToken: string | undefined;
        do {
          const token = nextToken;
          const page = await paced('DescribeSnapshots', 0, () =>
            client.send(
              new DescribeSnapshotsCommand({
                OwnerIds: ['self'],
                Filters: [{ Name: `tag:${SHELVED_TAG}`, Values: ids }],
                ...(token ? { NextToken: token } : {}),
              }),
            ),
          );
          for (const snapshot of page.Snapshots ?? []) {
            const recordId = tagsOf(snapshot.Tags)[SHELVED_TAG];
            if (!recordId || !snapshot.SnapshotId || !snapshot.VolumeId) continue;
            const list = byRecord.get(recordId) ?? [];
            list.push({
              snapshotId: snapshot.SnapshotId,
              volumeId: snapshot.VolumeId,
              state: (snapshot.State ?? 'pending') as ObservedSnapshot['state'],
              startedAt: snapshot.StartTime?.getTime() ?? 0,
            });
            byRecord.set(recordId, list);
          }
          nextToken = page.NextToken;
        } while (nextToken);
      }
      return byRecord;
    },
    async describeHostRoom(hostIds, instanceType) {
      const room = new Map<string, number>();
      for (const ids of chunks([...new Set(hostIds)], FILTER_VALUES_MAX)) {
        const answer = await paced('DescribeHosts', 0, () =>
          client.send(new DescribeHostsCommand({ HostIds: ids })),
        );
        for (const host of answer.Hosts ?? []) {
          if (!host.HostId || host.State !== 'available') continue;
          const type = instanceType(host.HostId);
          const capacity = host.AvailableCapacity?.AvailableInstanceCapacity?.find(
            (entry) => entry.InstanceType === type,
          );
          room.set(host.HostId, capacity?.AvailableCapacity ?? 0);
        }
      }
      return room;
    },
    async setDeleteOnTermination(instanceId, devices) {
      // One ModifyInstanceAttribute per device: the API changes one attribute per call.
      for (const device of devices) {
        await paced('ModifyInstanceAttribute', 0, () =>
          client.send(
            new ModifyInstanceAttributeCommand({
              InstanceId: instanceId,
              BlockDeviceMappings: [
                { DeviceName: device.deviceName, Ebs: { DeleteOnTermination: device.deleteOnTermination } },
              ],
            }),
          ),
        );
      }
    },
    async createTags(resourceIds, tags) {
      await paced('CreateTags', 0, () =>
        client.send(
          new CreateTagsCommand({
            Resources: [...resourceIds],
            Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
          }),
        ),
      );
    },
    async deleteTags(resourceIds, keys) {
      await paced('DeleteTags', 0, () =>
        client.send(
          new DeleteTagsCommand({ Resources: [...resourceIds], Tags: keys.map((Key) => ({ Key })) }),
        ),
      );
    },
    async stopInstances(instanceIds, force) {
      await paced('StopInstances', instanceIds.length, () =>
        client.send(new StopInstancesCommand({ InstanceIds: [...instanceIds], Force: force })),
      );
    },
    async startInstances(instanceIds) {
      await paced('StartInstances', instanceIds.length, () =>
        client.send(new StartInstancesCommand({ InstanceIds: [...instanceIds] })),
      );
    },
    async terminateInstances(instanceIds) {
      await paced('TerminateInstances', instanceIds.length, () =>
        client.send(new TerminateInstancesCommand({ InstanceIds: [...instanceIds] })),
      );
    },
    async createSnapshots(instanceId, recordId) {
      await paced('CreateSnapshots', 0, () =>
        client.send(
          new CreateSnapshotsCommand({
            InstanceSpecification: { InstanceId: instanceId, ExcludeBootVolume: false },
            Description: `warmboot safety copy for shelve record ${recordId}`,
            TagSpecifications: [{ ResourceType: 'snapshot', Tags: [{ Key: SHELVED_TAG, Value: recordId }] }],
          }),
        ),
      );
    },
    async runInstances(request) {
      const keyName = request.keyName && (await keyPairExists(request.keyName)) ? request.keyName : undefined;
      const input: RunInstancesCommandInput = {
        ClientToken: request.clientToken,
        ImageId: request.imageId,
        InstanceType: request.instanceType as RunInstancesCommandInput['InstanceType'],
        SubnetId: request.subnetId,
        SecurityGroupIds: [...request.securityGroupIds],
        ...(request.iamInstanceProfileArn
          ? { IamInstanceProfile: { Arn: request.iamInstanceProfileArn } }
          : {}),
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
      };
      const answer = await paced('RunInstances', request.maxCount, () =>
        client.send(new RunInstancesCommand(input)),
      );
      return (answer.Instances ?? []).flatMap((instance, position) =>
        instance.InstanceId
          ? [{ instanceId: instance.InstanceId, launchIndex: instance.AmiLaunchIndex ?? position }]
          : [],
      );
    },
    async attachVolume(volumeId, instanceId, device) {
      await paced('AttachVolume', 0, () =>
        client.send(new AttachVolumeCommand({ VolumeId: volumeId, InstanceId: instanceId, Device: device })),
      );
    },
    attachSlots(withinMs) {
      return pacer.admissible('AttachVolume', withinMs, clock.now());
    },
    async detachVolume(volumeId, instanceId) {
      await paced('DetachVolume', 0, () =>
        client.send(new DetachVolumeCommand({ VolumeId: volumeId, InstanceId: instanceId })),
      );
    },
    async deleteReplacementRoot(volumeId, recordId, retainedVolumeIds) {
      const volume = await describeOneVolume(volumeId);
      if (!volume) return;
      const refusal = replacementRootDeletionRefusal(volume, recordId, retainedVolumeIds);
      if (refusal) throw new UnmanagedResourceError(`refusing DeleteVolume: ${refusal}`);
      await paced('DeleteVolume', 0, () => client.send(new DeleteVolumeCommand({ VolumeId: volumeId })));
    },
    async deleteShelvedVolume(volumeId, recordId) {
      const volume = await describeOneVolume(volumeId);
      if (!volume) return;
      const refusal = shelvedVolumeDeletionRefusal(volume, recordId);
      if (refusal) throw new UnmanagedResourceError(`refusing DeleteVolume: ${refusal}`);
      await paced('DeleteVolume', 0, () => client.send(new DeleteVolumeCommand({ VolumeId: volumeId })));
    },
    async deleteShelvedSnapshot(snapshotId, recordId, retainedVolumeIds) {
      const page = await paced('DescribeSnapshots', 0, () =>
        client.send(
          new DescribeSnapshotsCommand({
            OwnerIds: ['self'],
            // A filter, not SnapshotIds: a snapshot already gone answers empty, not NotFound.
            Filters: [{ Name: 'snapshot-id', Values: [snapshotId] }],
          }),
        ),
      );
      const snapshot = page.Snapshots?.[0];
      if (!snapshot) return;
      const refusal = shelvedSnapshotDeletionRefusal(
        { snapshotId, volumeId: snapshot.VolumeId ?? '', tags: tagsOf(snapshot.Tags) },
        recordId,
        retainedVolumeIds,
      );
      if (refusal) throw new UnmanagedResourceError(`refusing DeleteSnapshot: ${refusal}`);
      try {
        await paced('DeleteSnapshot', 0, () =>
          client.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId })),
        );
      } catch (error) {
        // Already gone (a retried or concurrent deletion): the same outcome.
        if (!(error instanceof NotFoundError)) throw error;
      }
    },
    async describeShelveDetails(instances) {
      if (instances.length === 0) return [];
      const ids = instances.map((instance) => instance.instanceId);
      const privateIpOf = new Map(
        instances.map((instance) => [instance.instanceId, instance.privateIpAddress]),
      );
      // The address of the primary private IP only: the one a replacement can get back with
      // AssociateAddress InstanceId (secondary addresses and interfaces are not recreated).
      const elasticIps = new Map<string, ElasticIp>();
      for (const part of chunks(ids, FILTER_VALUES_MAX)) {
        const answer = await paced('DescribeAddresses', 0, () =>
          client.send(new DescribeAddressesCommand({ Filters: [{ Name: 'instance-id', Values: part }] })),
        );
        for (const address of answer.Addresses ?? []) {
          if (!address.InstanceId || !address.AllocationId || !address.PublicIp) continue;
          if (address.PrivateIpAddress !== privateIpOf.get(address.InstanceId)) continue;
          elasticIps.set(address.InstanceId, {
            allocationId: address.AllocationId,
            publicIp: address.PublicIp,
          });
        }
      }
      const credits = new Map<string, CpuCredits>();
      const burstable = instances.filter((instance) => isBurstableType(instance.instanceType));
      for (const part of chunks(
        burstable.map((instance) => instance.instanceId),
        1000,
      )) {
        const answer = await paced('DescribeInstanceCreditSpecifications', 0, () =>
          client.send(new DescribeInstanceCreditSpecificationsCommand({ InstanceIds: part })),
        );
        for (const entry of answer.InstanceCreditSpecifications ?? []) {
          if (entry.InstanceId && (entry.CpuCredits === 'standard' || entry.CpuCredits === 'unlimited'))
            credits.set(entry.InstanceId, entry.CpuCredits);
        }
      }
      const groupNames = [
        ...new Set(
          instances.flatMap((instance) => (instance.placementGroupName ? [instance.placementGroupName] : [])),
        ),
      ];
      const strategies = new Map<string, PlacementGroupRef['strategy']>();
      if (groupNames.length > 0) {
        // By filter: a group shared from another account is absent rather than an error.
        const answer = await paced('DescribePlacementGroups', 0, () =>
          client.send(
            new DescribePlacementGroupsCommand({ Filters: [{ Name: 'group-name', Values: groupNames }] }),
          ),
        );
        for (const group of answer.PlacementGroups ?? []) {
          const strategy = group.Strategy;
          if (
            group.GroupName &&
            (strategy === 'cluster' || strategy === 'spread' || strategy === 'partition')
          )
            strategies.set(group.GroupName, strategy);
        }
      }
      return Promise.all(
        instances.map(async (instance): Promise<InstanceDetails> => {
          const attributes = await describeAttributes(instance.instanceId, [
            'userData',
            'disableApiTermination',
            'disableApiStop',
          ]);
          const elasticIp = elasticIps.get(instance.instanceId);
          const cpuCredits = credits.get(instance.instanceId);
          const strategy = instance.placementGroupName
            ? strategies.get(instance.placementGroupName)
            : undefined;
          return {
            instanceId: instance.instanceId,
            ...(attributes.userData ? { userData: attributes.userData } : {}),
            disableApiTermination: attributes.disableApiTermination === true,
            disableApiStop: attributes.disableApiStop === true,
            ...(elasticIp ? { elasticIp } : {}),
            ...(cpuCredits ? { cpuCredits } : {}),
            ...(strategy ? { placementGroupStrategy: strategy } : {}),
          };
        }),
      );
    },
    describeInstanceAttributes: describeAttributes,
    async describeAddresses(allocationIds) {
      const found: ObservedAddress[] = [];
      for (const part of chunks([...new Set(allocationIds)], FILTER_VALUES_MAX)) {
        // By filter: a released address is absent, where AllocationIds would fail the whole call.
        const answer = await paced('DescribeAddresses', 0, () =>
          client.send(new DescribeAddressesCommand({ Filters: [{ Name: 'allocation-id', Values: part }] })),
        );
        for (const address of answer.Addresses ?? []) {
          if (!address.AllocationId || !address.PublicIp) continue;
          found.push({
            allocationId: address.AllocationId,
            publicIp: address.PublicIp,
            ...(address.InstanceId ? { instanceId: address.InstanceId } : {}),
          });
        }
      }
      return found;
    },
    async setUserData(instanceId, userData) {
      await paced('ModifyInstanceAttribute', 0, () =>
        client.send(
          new ModifyInstanceAttributeCommand({
            InstanceId: instanceId,
            // The raw bytes: the SDK encodes this blob on the wire.
            UserData: { Value: Buffer.from(userData, 'base64') },
          }),
        ),
      );
    },
    async setProtection(instanceId, attribute, value) {
      await paced('ModifyInstanceAttribute', 0, () =>
        client.send(
          new ModifyInstanceAttributeCommand({
            InstanceId: instanceId,
            ...(attribute === 'disableApiTermination'
              ? { DisableApiTermination: { Value: value } }
              : { DisableApiStop: { Value: value } }),
          }),
        ),
      );
    },
    async associateAddress(allocationId, instanceId) {
      await paced('AssociateAddress', 0, () =>
        client.send(
          new AssociateAddressCommand({
            AllocationId: allocationId,
            InstanceId: instanceId,
            AllowReassociation: false,
          }),
        ),
      );
    },
  };
};
