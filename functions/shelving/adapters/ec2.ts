import {
  AssociateAddressCommand,
  AttachVolumeCommand,
  CreateSnapshotsCommand,
  CreateTagsCommand,
  DeleteTagsCommand,
  DescribeAddressesCommand,
  DescribeAvailabilityZonesCommand,
  DescribeHostsCommand,
  DescribeInstancesCommand,
  DescribeKeyPairsCommand,
  DescribeSnapshotsCommand,
  DescribeSubnetsCommand,
  DescribeVolumesCommand,
  DetachVolumeCommand,
  type EC2Client,
  type Filter,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import { callAws } from '../../shared/aws-errors';
import { ec2BudgetOf } from '../../shared/ec2-budget';
import { NotFoundError } from '../../shared/errors';
import { collectPages } from '../../shared/pagination';
import { chunk, type LaunchRequest } from '../domain/bulk';
import type { ImageOwnership } from '../domain/launch-policy';
import { SHELVED_TAG } from '../domain/tags';
import type {
  InstanceDetails,
  ObservedAddress,
  ObservedInstance,
  ObservedRootReplacement,
  ObservedSnapshot,
  ObservedVolume,
  PlacementObservation,
  ReplacementAttribute,
  ReplacementAttributes,
  ZoneState,
} from '../domain/types';

import { attributeChanges } from './ec2-attributes';
import { fencedDeletions } from './ec2-deletions';
import { instanceAttributes, shelveDetails } from './ec2-details';
import { imageOwners } from './ec2-images';
import {
  FILTER_VALUES_MAX,
  runInstancesInput,
  tagsOf,
  toObservedInstance,
  toObservedVolume,
} from './ec2-mapping';
import { instancePower } from './ec2-power';
import { rootReplacement } from './ec2-root-replacement';

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
  /**
   * The AMIs among `imageIds` the account can see, each saying whether one of `allowedOwners`
   * owns it (an AMI that no longer exists is absent).
   */
  describeImageOwners(
    imageIds: readonly string[],
    allowedOwners: readonly string[],
  ): Promise<ImageOwnership[]>;
  /** Launched instances with their AmiLaunchIndex. */
  runInstances(request: LaunchRequest): Promise<{ instanceId: string; launchIndex: number }[]>;
  attachVolume(volumeId: string, instanceId: string, device: string): Promise<void>;
  /**
   * How many calls of `action` (AttachVolume, RunInstances, …) the account budget admits within
   * `withinMs` from now (absent: no pacing, no limit). Lets a round hand calls out by priority
   * and only as far as they go out soon, instead of queueing every one far into the future.
   */
  callSlots?(action: string, withinMs: number): number;
  /** How long until the account budget has admitted `calls` more calls of `action` (absent: no pacing, 0). */
  callQueueMs?(action: string, calls: number): number;
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
  /**
   * CreateReplaceRootVolumeTask with `VolumeId` and DeleteReplacedRootVolume, after re-describing
   * the instance and checking the fence (domain/safety.ts, rootReplacementRefusal).
   */
  replaceRootVolume(request: RootReplacementRequest): Promise<void>;
  /** The newest replace-root-volume task of each of `instanceIds` that has one. */
  describeRootReplacements(instanceIds: readonly string[]): Promise<ObservedRootReplacement[]>;
}

export interface RootReplacementRequest {
  readonly recordId: string;
  readonly instanceId: string;
  /** The replacement the record holds; the instance must be it. */
  readonly replacementInstanceId?: string;
  readonly volumeId: string;
  readonly retainedRootVolumeId: string;
  readonly retainedVolumeIds: ReadonlySet<string>;
  readonly clientToken: string;
}

/**
 * The SDK implementation: every call goes through callAws. The account budget the EC2 client was
 * created with paces every call (functions/shared/ec2-budget.ts), and tells a round how many
 * attaches it may hand out.
 */
export const sdkShelvingEc2 = (client: EC2Client): ShelvingEc2 => {
  const budget = ec2BudgetOf(client);

  /**
   * Whether a recorded key pair still exists. A replacement is launched with the shelved
   * instance's key pair so it looks as it was, but that key may have been deleted since; RunInstances
   * would then refuse the whole launch (InvalidKeyPair.NotFound, finding R12). The key is not
   * needed to log in: the retained (or restored) root carries its own authorized_keys.
   */
  const keyPairExists = async (keyName: string): Promise<boolean> => {
    try {
      await callAws('DescribeKeyPairs', () =>
        client.send(new DescribeKeyPairsCommand({ KeyNames: [keyName] })),
      );
      return true;
    } catch (error) {
      if (error instanceof NotFoundError) return false;
      throw error;
    }
  };

  /** Every page of a Describe call: `send` makes one call, given the previous page's token. */
  const describePages = <Page extends { readonly NextToken?: string | undefined }, T>(
    operation: string,
    send: (nextToken: { NextToken?: string }) => Promise<Page>,
    itemsOf: (page: Page) => readonly T[],
  ): Promise<T[]> =>
    collectPages(async (token) => {
      const page = await callAws(operation, () => send(token ? { NextToken: token } : {}));
      return { items: itemsOf(page), nextToken: page.NextToken };
    });

  const describeInstancesFiltered = (filters: Filter[]): Promise<ObservedInstance[]> =>
    describePages(
      'DescribeInstances',
      (next) => client.send(new DescribeInstancesCommand({ Filters: filters, MaxResults: 1000, ...next })),
      (page) =>
        (page.Reservations ?? [])
          .flatMap((reservation) => reservation.Instances ?? [])
          .flatMap((instance) => toObservedInstance(instance) ?? []),
    );

  const describeVolumesFiltered = (filters: Filter[]): Promise<ObservedVolume[]> =>
    describePages(
      'DescribeVolumes',
      (next) => client.send(new DescribeVolumesCommand({ Filters: filters, MaxResults: 500, ...next })),
      (page) => (page.Volumes ?? []).flatMap((volume) => toObservedVolume(volume) ?? []),
    );

  const describeOneVolume = async (volumeId: string): Promise<ObservedVolume | undefined> =>
    (await describeVolumesFiltered([{ Name: 'volume-id', Values: [volumeId] }]))[0];

  const describeAttributes = instanceAttributes(client);

  return {
    async describeInstances(instanceIds) {
      const found: ObservedInstance[] = [];
      for (const ids of chunk([...new Set(instanceIds)], FILTER_VALUES_MAX)) {
        found.push(...(await describeInstancesFiltered([{ Name: 'instance-id', Values: ids }])));
      }
      return found;
    },
    async describeInstancesByTag(key, values) {
      const found: ObservedInstance[] = [];
      for (const part of chunk([...new Set(values)], FILTER_VALUES_MAX)) {
        found.push(...(await describeInstancesFiltered([{ Name: `tag:${key}`, Values: part }])));
      }
      return found;
    },
    async describePlacement(vpcIds) {
      const zones = await callAws('DescribeAvailabilityZones', () =>
        client.send(new DescribeAvailabilityZonesCommand({})),
      );
      const subnets = await describePages(
        'DescribeSubnets',
        (next) =>
          client.send(
            new DescribeSubnetsCommand({
              Filters: [
                { Name: 'vpc-id', Values: [...new Set(vpcIds)] },
                { Name: 'state', Values: ['available'] },
              ],
              MaxResults: 1000,
              ...next,
            }),
          ),
        (page) =>
          (page.Subnets ?? []).flatMap((subnet) =>
            subnet.SubnetId && subnet.VpcId && subnet.AvailabilityZone
              ? [
                  {
                    subnetId: subnet.SubnetId,
                    vpcId: subnet.VpcId,
                    availabilityZone: subnet.AvailabilityZone,
                    availableIpAddressCount: subnet.AvailableIpAddressCount ?? 0,
                    mapPublicIpOnLaunch: subnet.MapPublicIpOnLaunch ?? false,
                  },
                ]
              : [],
          ),
      );
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
      for (const ids of chunk([...new Set(volumeIds)], FILTER_VALUES_MAX)) {
        found.push(...(await describeVolumesFiltered([{ Name: 'volume-id', Values: ids }])));
      }
      return found;
    },
    async describeShelvedSnapshots(recordIds) {
      const byRecord = new Map<string, ObservedSnapshot[]>();
      for (const ids of chunk([...new Set(recordIds)], FILTER_VALUES_MAX)) {
        const snapshots = await describePages(
          'DescribeSnapshots',
          (next) =>
            client.send(
              new DescribeSnapshotsCommand({
                OwnerIds: ['self'],
                Filters: [{ Name: `tag:${SHELVED_TAG}`, Values: ids }],
                ...next,
              }),
            ),
          (page) => page.Snapshots ?? [],
        );
        for (const snapshot of snapshots) {
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
      }
      return byRecord;
    },
    async describeHostRoom(hostIds, instanceType) {
      const room = new Map<string, number>();
      for (const ids of chunk([...new Set(hostIds)], FILTER_VALUES_MAX)) {
        const answer = await callAws('DescribeHosts', () =>
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
    async createTags(resourceIds, tags) {
      await callAws('CreateTags', () =>
        client.send(
          new CreateTagsCommand({
            Resources: [...resourceIds],
            Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
          }),
        ),
      );
    },
    async deleteTags(resourceIds, keys) {
      await callAws('DeleteTags', () =>
        client.send(
          new DeleteTagsCommand({ Resources: [...resourceIds], Tags: keys.map((Key) => ({ Key })) }),
        ),
      );
    },
    async createSnapshots(instanceId, recordId) {
      await callAws('CreateSnapshots', () =>
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
      const input = runInstancesInput(request, keyName);
      const answer = await callAws('RunInstances', () => client.send(new RunInstancesCommand(input)));
      return (answer.Instances ?? []).flatMap((instance, position) =>
        instance.InstanceId
          ? [{ instanceId: instance.InstanceId, launchIndex: instance.AmiLaunchIndex ?? position }]
          : [],
      );
    },
    async attachVolume(volumeId, instanceId, device) {
      await callAws('AttachVolume', () =>
        client.send(new AttachVolumeCommand({ VolumeId: volumeId, InstanceId: instanceId, Device: device })),
      );
    },
    ...(budget
      ? {
          callSlots: (action: string, withinMs: number) => budget.admissible(action, withinMs),
          callQueueMs: (action: string, calls: number) => budget.admittedWithinMs(action, calls),
        }
      : {}),
    async detachVolume(volumeId, instanceId) {
      await callAws('DetachVolume', () =>
        client.send(new DetachVolumeCommand({ VolumeId: volumeId, InstanceId: instanceId })),
      );
    },
    ...instancePower(client),
    ...attributeChanges(client),
    ...imageOwners(client),
    ...fencedDeletions(client, describeOneVolume),
    ...rootReplacement(
      client,
      async (instanceId) =>
        (await describeInstancesFiltered([{ Name: 'instance-id', Values: [instanceId] }]))[0],
    ),
    describeShelveDetails: (instances) => shelveDetails(client, describeAttributes, instances),
    describeInstanceAttributes: describeAttributes,
    async describeAddresses(allocationIds) {
      const found: ObservedAddress[] = [];
      for (const part of chunk([...new Set(allocationIds)], FILTER_VALUES_MAX)) {
        // By filter: a released address is absent, where AllocationIds would fail the whole call.
        const answer = await callAws('DescribeAddresses', () =>
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
    async associateAddress(allocationId, instanceId) {
      await callAws('AssociateAddress', () =>
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
