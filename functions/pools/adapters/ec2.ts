import {
  CreateTagsCommand,
  DeleteTagsCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeVolumesCommand,
  type EC2Client,
  type Instance,
  ModifyInstanceAttributeCommand,
  RunInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import {
  GetCommandInvocationCommand,
  GetParameterCommand,
  SendCommandCommand,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { callAws } from '../../shared/aws-errors';
import { DependencyError, NotFoundError, UnmanagedResourceError } from '../../shared/errors';
import { attributeChange, CHANGED_INSTANCE_ATTRIBUTES } from '../../shared/instance-attributes';
import { collectPages } from '../../shared/pagination';
import { isGoneState as isGone } from '../../shared/schemas/aws-events';
import { deployedDocumentName, PINNED_DOCUMENT_VERSION } from '../../shared/ssm-document';
import type { PoolSpec } from '../config';
import { documentNamed } from '../documents';
import { ImageOwnerNotAllowedError } from '../domain/admission';
import type { Ec2State, InitResult, ObservedInstance } from '../domain/reconcile';
import { isManagedBy, TAG } from '../domain/tags';

/** Exactly the EC2 calls pools and claims make. Destructive calls check the pool tag first. */
export interface PoolEc2 {
  /** Throws ImageOwnerNotAllowedError unless the AMI is owned by an allowed owner (every launch checks too). */
  checkImageOwner(imageId: string): Promise<void>;
  describePool(pool: string): Promise<ObservedInstance[]>;
  describe(instanceId: string): Promise<ObservedInstance | undefined>;
  launch(input: {
    spec: PoolSpec;
    imageId: string;
    subnetId: string;
    clientToken: string;
    instanceType?: string;
    tags: Record<string, string>;
  }): Promise<ObservedInstance>;
  start(instance: ObservedInstance, pool: string): Promise<void>;
  stop(instance: ObservedInstance, pool: string): Promise<void>;
  terminate(instance: ObservedInstance, pool: string): Promise<void>;
  resize(instance: ObservedInstance, pool: string, instanceType: string): Promise<void>;
  tag(instanceId: string, tags: Record<string, string>): Promise<void>;
  untag(instanceId: string, keys: readonly string[]): Promise<void>;
  /**
   * Removes tag keys from the instance's attached volumes (RunInstances tagged them like the
   * instance); fenced on the instance carrying `warmboot:pools=true` and `warmboot:pool=<pool>`.
   */
  untagVolumes(instance: ObservedInstance, pool: string, keys: readonly string[]): Promise<void>;
}

export interface PoolSsm {
  /** Resolves an image reference: an AMI id as is, an SSM parameter to its current value. */
  resolveImage(image: string): Promise<string>;
  send(instanceId: string, document: string, parameters: Record<string, string[]>): Promise<string>;
  result(commandId: string, instanceId: string): Promise<InitResult>;
}

const observe = (instance: Instance): ObservedInstance => ({
  instanceId: instance.InstanceId ?? '',
  state: (instance.State?.Name ?? 'pending') as Ec2State,
  imageId: instance.ImageId ?? '',
  instanceType: instance.InstanceType ?? '',
  availabilityZone: instance.Placement?.AvailabilityZone ?? '',
  subnetId: instance.SubnetId ?? '',
  launchedAt: instance.LaunchTime ? new Date(instance.LaunchTime).getTime() : 0,
  tags: Object.fromEntries((instance.Tags ?? []).map((tag) => [tag.Key ?? '', tag.Value ?? ''])),
  ...(instance.ClientToken ? { clientToken: instance.ClientToken } : {}),
  volumeIds: (instance.BlockDeviceMappings ?? []).flatMap((mapping) =>
    mapping.Ebs?.VolumeId ? [mapping.Ebs.VolumeId] : [],
  ),
  ...(instance.StateReason?.Code ? { stateReason: instance.StateReason.Code } : {}),
});

const fence = (instance: ObservedInstance, pool: string): void => {
  if (!isManagedBy(instance.tags, pool)) {
    throw new UnmanagedResourceError(
      `${instance.instanceId} does not carry ${TAG.optIn}=true and ${TAG.pool}=${pool}`,
    );
  }
};

/**
 * The device name of an AMI's root volume. A launch can resize the root only by mapping exactly
 * this name; a mapping under another name (`/dev/xvda` on an Ubuntu or RHEL AMI whose root is
 * `/dev/sda1`) adds a second, empty volume and leaves the root at the AMI's size (EC2 user guide,
 * "Block device mappings"; finding R7). An AMI never changes its root device, so the answer is
 * kept for the life of the adapter.
 */
const rootDeviceNames = (client: EC2Client, allowedImageOwners: readonly string[]) => {
  const known = new Map<string, string>();
  return async (imageId: string): Promise<string> => {
    const cached = known.get(imageId);
    if (cached) return cached;
    // Only images of the allowed owners (security review C2): DescribeImages `Owners` takes the
    // same words (self, amazon, aws-marketplace, aws-backup-vault, account IDs) and describes an
    // image of anyone else as no image (EC2 API reference, DescribeImages). IAM's `ec2:Owner`
    // condition on RunInstances is the second fence (infra/capabilities/pools.ts).
    const output = await callAws('DescribeImages', () =>
      client.send(new DescribeImagesCommand({ ImageIds: [imageId], Owners: [...allowedImageOwners] })),
    );
    if (!output.Images?.length) throw new ImageOwnerNotAllowedError(imageId, allowedImageOwners);
    const root = output.Images[0]?.RootDeviceName;
    if (!root) throw new NotFoundError(`image ${imageId} has no root device name (DescribeImages)`);
    known.set(imageId, root);
    return root;
  };
};

/**
 * IMDSv2 only (security review M2). The hop limit is 1, so the instance's credentials do not
 * reach anything one network hop away; 2 when the pool pulls container images, because a
 * container on a bridge network is one hop further and gets no IMDSv2 token with a limit of 1
 * (EC2 user guide, "Configure the Instance Metadata Service options": in a container
 * environment a hop limit of 1 can cause issues; "Instance metadata access considerations").
 */
export const metadataOptions = (spec: PoolSpec) =>
  ({
    HttpTokens: 'required',
    HttpPutResponseHopLimit: spec.initialization.containerImages.length > 0 ? 2 : 1,
    HttpEndpoint: 'enabled',
  }) as const;

export const sdkPoolEc2 = (client: EC2Client, allowedImageOwners: readonly string[]): PoolEc2 => {
  const rootDeviceOf = rootDeviceNames(client, allowedImageOwners);
  return {
    async checkImageOwner(imageId) {
      await rootDeviceOf(imageId);
    },
    describePool: (pool) =>
      collectPages(async (nextToken) => {
        const output = await callAws('DescribeInstances', () =>
          client.send(
            new DescribeInstancesCommand({
              Filters: [{ Name: `tag:${TAG.pool}`, Values: [pool] }],
              MaxResults: 1000,
              NextToken: nextToken,
            }),
          ),
        );
        const items = (output.Reservations ?? []).flatMap((reservation) =>
          (reservation.Instances ?? []).map(observe),
        );
        return { items, ...(output.NextToken ? { nextToken: output.NextToken } : {}) };
      }),
    async describe(instanceId) {
      const output = await callAws('DescribeInstances', () =>
        client.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] })),
      ).catch((error: unknown) => {
        if (error instanceof NotFoundError) return undefined;
        throw error;
      });
      const instance = output?.Reservations?.[0]?.Instances?.[0];
      return instance ? observe(instance) : undefined;
    },
    async launch({ spec, imageId, subnetId, clientToken, instanceType, tags }) {
      const tagList = Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
      const rootDevice = await rootDeviceOf(imageId);
      const output = await callAws('RunInstances', () =>
        client.send(
          new RunInstancesCommand({
            ImageId: imageId,
            InstanceType: (instanceType ?? spec.instanceType) as never,
            MinCount: 1,
            MaxCount: 1,
            SubnetId: subnetId,
            ClientToken: clientToken,
            ...(spec.launchTemplate
              ? {
                  LaunchTemplate: {
                    LaunchTemplateId: spec.launchTemplate.id,
                    Version: spec.launchTemplate.version,
                  },
                }
              : {}),
            ...(spec.securityGroups.length > 0 ? { SecurityGroupIds: [...spec.securityGroups] } : {}),
            ...(spec.instanceProfile ? { IamInstanceProfile: { Name: spec.instanceProfile } } : {}),
            ...(spec.keyName ? { KeyName: spec.keyName } : {}),
            MetadataOptions: metadataOptions(spec),
            BlockDeviceMappings: [
              {
                DeviceName: rootDevice,
                Ebs: { VolumeSize: spec.volumeSizeGiB, VolumeType: 'gp3', DeleteOnTermination: true },
              },
            ],
            TagSpecifications: [
              { ResourceType: 'instance', Tags: tagList },
              { ResourceType: 'volume', Tags: tagList },
            ],
          }),
        ),
      );
      const instance = output.Instances?.[0];
      if (!instance?.InstanceId) throw new DependencyError('RunInstances returned no instance');
      return observe(instance);
    },
    async start(instance, pool) {
      fence(instance, pool);
      await callAws('StartInstances', () =>
        client.send(new StartInstancesCommand({ InstanceIds: [instance.instanceId] })),
      );
    },
    async stop(instance, pool) {
      fence(instance, pool);
      await callAws('StopInstances', () =>
        client.send(new StopInstancesCommand({ InstanceIds: [instance.instanceId] })),
      );
    },
    async terminate(instance, pool) {
      fence(instance, pool);
      // EC2 is eventually consistent: an instance already shutting down needs no second call.
      if (isGone(instance.state)) return;
      await callAws('TerminateInstances', () =>
        client.send(new TerminateInstancesCommand({ InstanceIds: [instance.instanceId] })),
      );
    },
    async resize(instance, pool, instanceType) {
      fence(instance, pool);
      await callAws('ModifyInstanceAttribute', () =>
        client.send(
          new ModifyInstanceAttributeCommand(
            attributeChange(
              { InstanceId: instance.instanceId, InstanceType: { Value: instanceType } },
              CHANGED_INSTANCE_ATTRIBUTES.pools,
            ),
          ),
        ),
      );
    },
    async tag(instanceId, tags) {
      await callAws('CreateTags', () =>
        client.send(
          new CreateTagsCommand({
            Resources: [instanceId],
            Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
          }),
        ),
      );
    },
    async untag(instanceId, keys) {
      await callAws('DeleteTags', () =>
        client.send(new DeleteTagsCommand({ Resources: [instanceId], Tags: keys.map((Key) => ({ Key })) })),
      );
    },
    async untagVolumes(instance, pool, keys) {
      fence(instance, pool);
      const volumeIds = instance.volumeIds ?? [];
      if (volumeIds.length === 0) return;
      // A hand-over retried after a crash finds volumes it already untagged. IAM lets the claim
      // untag only volumes that still carry the pool tag (UntagPoolMemberVolumes), so DeleteTags
      // on those would be denied: only the volumes still tagged are untagged.
      const output = await callAws('DescribeVolumes', () =>
        client.send(
          new DescribeVolumesCommand({
            VolumeIds: [...volumeIds],
            Filters: [{ Name: 'tag-key', Values: [TAG.pool] }],
          }),
        ),
      );
      const stillTagged = (output.Volumes ?? []).flatMap((volume) =>
        volume.VolumeId ? [volume.VolumeId] : [],
      );
      if (stillTagged.length === 0) return;
      await callAws('DeleteTags', () =>
        client.send(new DeleteTagsCommand({ Resources: stillTagged, Tags: keys.map((Key) => ({ Key })) })),
      );
    },
  };
};

const TERMINAL_FAILURES = new Set([
  'Failed',
  'Cancelled',
  'TimedOut',
  'Undeliverable',
  'Terminated',
  'InvalidPlatform',
  'AccessDenied',
  'DeliveryTimedOut',
  'ExecutionTimedOut',
]);

/** The deployed (content-addressed) name of a pool document named by its logical name. */
const deployedName = (logicalName: string): string => {
  const document = documentNamed(logicalName);
  if (!document) throw new NotFoundError(`SSM document ${logicalName} is not one warmboot deploys`);
  return deployedDocumentName(document);
};

export const sdkPoolSsm = (client: SSMClient): PoolSsm => ({
  async resolveImage(image) {
    if (!image.startsWith('/')) return image;
    const output = await callAws('GetParameter', () => client.send(new GetParameterCommand({ Name: image })));
    const value = output.Parameter?.Value;
    if (!value) throw new DependencyError(`SSM parameter ${image} has no value`);
    return value;
  },
  async send(instanceId, document, parameters) {
    const output = await callAws('SendCommand', () =>
      client.send(
        new SendCommandCommand({
          InstanceIds: [instanceId],
          DocumentName: deployedName(document),
          DocumentVersion: PINNED_DOCUMENT_VERSION,
          Parameters: parameters,
        }),
      ),
    );
    const commandId = output.Command?.CommandId;
    if (!commandId) throw new DependencyError('SendCommand returned no command id');
    return commandId;
  },
  async result(commandId, instanceId) {
    try {
      const output = await callAws('GetCommandInvocation', () =>
        client.send(new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instanceId })),
      );
      if (output.Status === 'Success') return 'success';
      return output.Status && TERMINAL_FAILURES.has(output.Status) ? 'failed' : 'pending';
    } catch (error) {
      if (error instanceof NotFoundError) return 'pending';
      throw error;
    }
  },
});
