import {
  AttachVolumeCommand,
  CreateTagsCommand,
  CreateVolumeCommand,
  DeleteVolumeCommand,
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  DetachVolumeCommand,
  type EC2Client,
  type Instance,
} from '@aws-sdk/client-ec2';
import { callAws, isUnknownInstance } from '../../shared/aws-errors';
import { DependencyError, NotFoundError, UnmanagedResourceError } from '../../shared/errors';
import { collectPages } from '../../shared/pagination';
import { HOST_GROUP_TAG, OPT_IN_TAG, OPTED_IN } from '../../shared/tags';
import { CACHE_VOLUME_IMAGE_TAG } from '../config';

export interface HostInfo {
  readonly instanceId: string;
  readonly hostGroup: string;
  readonly availabilityZone: string;
  readonly state: string;
  /** EBS volumes attached now, with the device names in use. */
  readonly devices: readonly string[];
  /** Opted in to the image cache (`warmboot:image-cache=true`). */
  readonly managed: boolean;
}

/** Exactly the EC2 calls the image cache and placement make. */
export interface HostDirectory {
  /**
   * Instances opted in to the image cache and tagged `warmboot:host-group` (any group when `group`
   * is absent), not terminated: a host without the opt-in is no member of its group.
   */
  groupHosts(group?: string): Promise<HostInfo[]>;
  host(instanceId: string): Promise<HostInfo | undefined>;
  /** CreateTags on an opted-in host only (checked here; IAM conditions are the second fence). */
  tagHost(host: HostInfo, tags: Readonly<Record<string, string>>): Promise<void>;
}

/** A volume warmboot created to link an image (tagged image-cache opt-in + host group + `warmboot:image`). */
export interface CacheVolume {
  readonly volumeId: string;
  readonly imageId: string;
  readonly state: string;
  readonly attachedTo?: string;
  readonly createdAt: number;
}

export interface VolumeState {
  readonly state: string;
  readonly attachedTo?: string;
  /** Tagged `warmboot:image-cache=true` (the cache created it). */
  readonly managed: boolean;
  /** The `warmboot:image` tag: set only on the cache's own link volumes. */
  readonly imageId?: string;
  readonly hostGroup?: string;
}

/** What CreateVolume answered: the volume, and the KMS key EC2 encrypts it with (if any). */
export interface CreatedVolume {
  readonly volumeId: string;
  readonly kmsKeyId?: string;
}

export interface VolumeLinks {
  /** Volumes tagged as this group's linked image volumes (only those: nothing else is listed). */
  cacheVolumes(group: string): Promise<CacheVolume[]>;
  createFromSnapshot(
    snapshotId: string,
    availabilityZone: string,
    tags: Readonly<Record<string, string>>,
  ): Promise<CreatedVolume>;
  state(volumeId: string): Promise<VolumeState | undefined>;
  /** Owner and `warmboot:image` tag of a snapshot this account can see (DescribeSnapshots). */
  snapshot(snapshotId: string): Promise<{ ownerId: string; imageTag?: string } | undefined>;
  attach(volumeId: string, instanceId: string, device: string): Promise<void>;
  detach(volumeId: string, instanceId: string): Promise<void>;
  delete(volumeId: string): Promise<void>;
}

const tagValue = (instance: Instance, key: string) => instance.Tags?.find((tag) => tag.Key === key)?.Value;

const toHost = (instance: Instance): HostInfo | undefined => {
  const group = tagValue(instance, HOST_GROUP_TAG);
  if (!instance.InstanceId || !group) return undefined;
  return {
    instanceId: instance.InstanceId,
    hostGroup: group,
    availabilityZone: instance.Placement?.AvailabilityZone ?? 'unknown',
    state: instance.State?.Name ?? 'unknown',
    devices: (instance.BlockDeviceMappings ?? []).flatMap((mapping) =>
      mapping.DeviceName ? [mapping.DeviceName] : [],
    ),
    managed: tagValue(instance, OPT_IN_TAG.imageCache) === OPTED_IN,
  };
};

export const ec2HostDirectory = (client: EC2Client): HostDirectory => {
  const describe = (input: ConstructorParameters<typeof DescribeInstancesCommand>[0]) =>
    collectPages(async (token) => {
      const output = await callAws('DescribeInstances', () =>
        client.send(new DescribeInstancesCommand({ ...input, ...(token ? { NextToken: token } : {}) })),
      );
      return {
        items: (output.Reservations ?? []).flatMap((reservation) =>
          (reservation.Instances ?? []).flatMap((instance) => toHost(instance) ?? []),
        ),
        nextToken: output.NextToken,
      };
    });
  return {
    groupHosts: (group) =>
      describe({
        Filters: [
          group
            ? { Name: `tag:${HOST_GROUP_TAG}`, Values: [group] }
            : { Name: 'tag-key', Values: [HOST_GROUP_TAG] },
          { Name: `tag:${OPT_IN_TAG.imageCache}`, Values: [OPTED_IN] },
          { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] },
        ],
        MaxResults: 1000,
      }),
    async host(instanceId) {
      try {
        return (await describe({ InstanceIds: [instanceId] }))[0];
      } catch (error) {
        // An event about an instance EC2 does not know (long gone, or not visible yet): not a host.
        if (isUnknownInstance(error)) return undefined;
        throw error;
      }
    },
    async tagHost(host, tags) {
      if (!host.managed)
        throw new UnmanagedResourceError(`${host.instanceId} lacks ${OPT_IN_TAG.imageCache}=${OPTED_IN}`);
      await callAws('CreateTags', () =>
        client.send(
          new CreateTagsCommand({
            Resources: [host.instanceId],
            Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
          }),
        ),
      );
    },
  };
};

export const ec2VolumeLinks = (client: EC2Client): VolumeLinks => ({
  cacheVolumes: (group) =>
    collectPages(async (token) => {
      const output = await callAws('DescribeVolumes', () =>
        client.send(
          new DescribeVolumesCommand({
            Filters: [
              { Name: `tag:${OPT_IN_TAG.imageCache}`, Values: [OPTED_IN] },
              { Name: `tag:${HOST_GROUP_TAG}`, Values: [group] },
              { Name: 'tag-key', Values: [CACHE_VOLUME_IMAGE_TAG] },
            ],
            MaxResults: 500,
            ...(token ? { NextToken: token } : {}),
          }),
        ),
      );
      const items = (output.Volumes ?? []).flatMap((volume): CacheVolume[] => {
        const imageId = volume.Tags?.find((tag) => tag.Key === CACHE_VOLUME_IMAGE_TAG)?.Value;
        if (!volume.VolumeId || !imageId) return [];
        const attachedTo = volume.Attachments?.find(
          (attachment) => attachment.State === 'attached' || attachment.State === 'attaching',
        )?.InstanceId;
        return [
          {
            volumeId: volume.VolumeId,
            imageId,
            state: volume.State ?? 'unknown',
            ...(attachedTo ? { attachedTo } : {}),
            createdAt: volume.CreateTime?.getTime() ?? 0,
          },
        ];
      });
      return { items, nextToken: output.NextToken };
    }),
  async createFromSnapshot(snapshotId, availabilityZone, tags) {
    const output = await callAws('CreateVolume', () =>
      client.send(
        new CreateVolumeCommand({
          SnapshotId: snapshotId,
          AvailabilityZone: availabilityZone,
          VolumeType: 'gp3',
          TagSpecifications: [
            { ResourceType: 'volume', Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) },
          ],
        }),
      ),
    );
    if (!output.VolumeId) throw new DependencyError('CreateVolume returned no volume id');
    return { volumeId: output.VolumeId, ...(output.KmsKeyId ? { kmsKeyId: output.KmsKeyId } : {}) };
  },
  async state(volumeId) {
    const output = await callAws('DescribeVolumes', () =>
      client.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] })),
    );
    const volume = output.Volumes?.[0];
    if (!volume) return undefined;
    const attachedTo = volume.Attachments?.find((attachment) => attachment.State === 'attached')?.InstanceId;
    const tag = (key: string) => volume.Tags?.find((candidate) => candidate.Key === key)?.Value;
    const imageId = tag(CACHE_VOLUME_IMAGE_TAG);
    const hostGroup = tag(HOST_GROUP_TAG);
    return {
      state: volume.State ?? 'unknown',
      ...(attachedTo ? { attachedTo } : {}),
      managed: tag(OPT_IN_TAG.imageCache) === OPTED_IN,
      ...(imageId !== undefined ? { imageId } : {}),
      ...(hostGroup !== undefined ? { hostGroup } : {}),
    };
  },
  async snapshot(snapshotId) {
    try {
      const output = await callAws('DescribeSnapshots', () =>
        client.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] })),
      );
      const snapshot = output.Snapshots?.[0];
      if (!snapshot?.OwnerId) return undefined;
      const imageTag = snapshot.Tags?.find((tag) => tag.Key === CACHE_VOLUME_IMAGE_TAG)?.Value;
      return { ownerId: snapshot.OwnerId, ...(imageTag !== undefined ? { imageTag } : {}) };
    } catch (error) {
      // A snapshot this account may not see is reported by EC2 as not found.
      if (error instanceof NotFoundError) return undefined;
      throw error;
    }
  },
  async attach(volumeId, instanceId, device) {
    await callAws('AttachVolume', () =>
      client.send(new AttachVolumeCommand({ VolumeId: volumeId, InstanceId: instanceId, Device: device })),
    );
  },
  async detach(volumeId, instanceId) {
    await callAws('DetachVolume', () =>
      client.send(new DetachVolumeCommand({ VolumeId: volumeId, InstanceId: instanceId })),
    );
  },
  async delete(volumeId) {
    await callAws('DeleteVolume', () => client.send(new DeleteVolumeCommand({ VolumeId: volumeId })));
  },
});
