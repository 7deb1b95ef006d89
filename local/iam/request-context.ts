import type { BlockDeviceMapping, RunInstancesRequest, Tag, TagSpecification } from '@aws-sdk/client-ec2';
import { instanceAttributeKeys } from './instance-attribute-keys';

/**
 * The IAM request context of one AWS call: which action is authorized on which resources, with
 * which condition keys. One call can need several authorizations (RunInstances authorizes every
 * resource it touches and `ec2:CreateTags` for the tags it applies), and AWS allows the call only
 * when every one of them is allowed (IAM User Guide, "Policy evaluation logic"; Service
 * Authorization Reference, "Actions, resources, and condition keys for Amazon EC2": resource types
 * marked required are always authorized, the others when the request uses them).
 *
 * Resource tags are read from the simulators at the moment of the call, so a tag removed by an
 * earlier call is gone for the next one, as in AWS ("Control access to EC2 resources using
 * resource tags", EC2 User Guide). The evaluator drops condition keys an action or resource type
 * does not support (the Service Authorization Reference's lists, from iam-data), so a policy
 * condition on such a key sees it missing, as AWS does.
 */

export interface AuthorizationCheck {
  /** `ec2:RunInstances`, `ssm:SendCommand`, `dynamodb:PutItem`, `iam:PassRole`, … */
  readonly action: string;
  /** The resource ARN, or `*` for actions without resource-level permissions. */
  readonly resource: string;
  readonly context: Readonly<Record<string, string | string[]>>;
  /**
   * The resource's own policy, for services whose resources always have one and need it to allow
   * the call too (a KMS key policy: IAM policies alone give no access to a key, KMS Developer
   * Guide, "Key policies"). Absent: the identity policy decides alone (same account).
   */
  readonly resourcePolicy?: Readonly<Record<string, unknown>>;
}

export interface AwsEnvironment {
  readonly partition: string;
  readonly region: string;
  readonly accountId: string;
}

type Tags = Readonly<Record<string, string>>;

/** What the EC2 simulator holds about a resource at the moment of a call (absent: unknown id). */
export interface Ec2ResourceState {
  instance(id: string):
    | {
        readonly tags: Tags;
        readonly instanceType: string;
        readonly availabilityZone: string;
        readonly tenancy: string;
        readonly rootDeviceType: string;
        readonly rootDeviceName: string;
        readonly iamInstanceProfile: string | undefined;
      }
    | undefined;
  volume(id: string):
    | {
        readonly tags: Tags;
        readonly availabilityZone: string;
        readonly size: number;
        readonly volumeType: string;
        readonly snapshotId: string | undefined;
        readonly attachment: { readonly instanceId: string; readonly device: string } | undefined;
      }
    | undefined;
  /** Volumes attached to an instance (CreateSnapshots reads them). */
  attachedVolumes(instanceId: string): readonly { readonly volumeId: string; readonly device: string }[];
  /** `ownerId`: set only for a snapshot of another account (shared with this one or public). */
  snapshot(
    id: string,
  ): { readonly tags: Tags; readonly volumeSize: number; readonly ownerId?: string } | undefined;
  image(id: string):
    | {
        readonly tags: Tags;
        /** The owning account; absent: this account. */
        readonly ownerId?: string;
        /** The owner's alias (`amazon`, `aws-marketplace`) where AWS gives one. */
        readonly ownerAlias?: string;
        readonly public?: boolean;
        readonly rootDeviceType: string;
        readonly rootDeviceName: string;
        readonly blockDevices: readonly {
          readonly deviceName: string;
          readonly snapshotId: string;
          readonly volumeSize: number;
          readonly volumeType: string;
        }[];
      }
    | undefined;
  host(id: string): { readonly tags: Tags; readonly availabilityZone: string } | undefined;
  subnet(id: string): { readonly availabilityZone: string } | undefined;
}

/** A call the local IAM has no request context for: it is refused loudly instead of guessed. */
export class UnmodelledCallError extends Error {
  constructor(service: string, operation: string, detail = '') {
    super(
      `local IAM: no request context is modelled for ${service}:${operation}${detail ? ` (${detail})` : ''}; ` +
        'add it to local/iam/request-context.ts with the Service Authorization Reference entry it follows',
    );
    this.name = 'UnmodelledCallError';
  }
}

// ARN formats: Service Authorization Reference, "Resource types defined by …" of each service.

const ec2Arn = (env: AwsEnvironment, type: string, id: string): string =>
  `arn:${env.partition}:ec2:${env.region}:${env.accountId}:${type}/${id}`;

/** Images and snapshots have no account in their ARN (`arn:aws:ec2:us-east-1::snapshot/snap-…`). */
const ec2AccountlessArn = (env: AwsEnvironment, type: 'image' | 'snapshot', id: string): string =>
  `arn:${env.partition}:ec2:${env.region}::${type}/${id}`;

/** The ARN resource type of an EC2 id, by its prefix. */
const ARN_TYPE_BY_ID_PREFIX = new Map([
  ['i', 'instance'],
  ['vol', 'volume'],
  ['snap', 'snapshot'],
  ['ami', 'image'],
  ['h', 'dedicated-host'],
  ['subnet', 'subnet'],
  ['sg', 'security-group'],
  ['eni', 'network-interface'],
]);

const ec2ArnOfId = (env: AwsEnvironment, id: string): string => {
  const type = ARN_TYPE_BY_ID_PREFIX.get(id.slice(0, id.indexOf('-')));
  if (type === undefined) throw new UnmodelledCallError('ec2', 'CreateTags/DeleteTags', `resource id ${id}`);
  return type === 'image' || type === 'snapshot' ? ec2AccountlessArn(env, type, id) : ec2Arn(env, type, id);
};

const ASSUMED_ROLE = /^arn:([^:]+):sts::(\d{12}):assumed-role\/([^/]+)\/.+$/;
const IAM_PRINCIPAL = /^arn:[^:]+:iam::(\d{12}):(root|user\/.+|role\/.+)$/;

/**
 * The principal keys of a request (IAM User Guide, "AWS global condition context keys"):
 * `aws:PrincipalArn` is, for a role session, the ARN of its role ("Do not specify the assumed
 * role session ARN as a value for this condition key"), for a user its ARN, for the root user
 * `arn:aws:iam::<account>:root`; `aws:PrincipalType` is AssumedRole, User or Account.
 */
export const principalContext = (principalArn: string): Record<string, string> => {
  const session = ASSUMED_ROLE.exec(principalArn);
  if (session) {
    const [, partition, account, role] = session;
    return {
      'aws:PrincipalArn': `arn:${partition}:iam::${account}:role/${role}`,
      'aws:PrincipalAccount': account as string,
      'aws:PrincipalType': 'AssumedRole',
    };
  }
  const iam = IAM_PRINCIPAL.exec(principalArn);
  if (!iam) throw new Error(`local IAM: ${principalArn} is not a principal ARN it models`);
  const [, account, kind] = iam;
  return {
    'aws:PrincipalArn': principalArn,
    'aws:PrincipalAccount': account as string,
    'aws:PrincipalType': kind === 'root' ? 'Account' : kind?.startsWith('user/') ? 'User' : 'AssumedRole',
  };
};

/** Global keys present in every request (IAM User Guide, "AWS global condition context keys"). */
const globalContext = (env: AwsEnvironment, principalArn: string): Record<string, string> => ({
  'aws:RequestedRegion': env.region,
  ...principalContext(principalArn),
  'aws:SecureTransport': 'true',
  'aws:ViaAWSService': 'false',
});

/** `aws:ResourceTag/<k>` and `ec2:ResourceTag/<k>`: the tags the resource carries now. */
const ec2ResourceTags = (tags: Tags | undefined): Record<string, string> => {
  const context: Record<string, string> = {};
  for (const [key, value] of Object.entries(tags ?? {})) {
    context[`aws:ResourceTag/${key}`] = value;
    context[`ec2:ResourceTag/${key}`] = value;
  }
  return context;
};

/**
 * `aws:RequestTag/<k>` and `aws:TagKeys`: the tags the request applies (EC2 User Guide, "Grant
 * permission to tag resources during creation").
 */
const requestTags = (tags: readonly Tag[]): Record<string, string | string[]> => {
  if (tags.length === 0) return {};
  const context: Record<string, string | string[]> = { 'aws:TagKeys': tags.map((tag) => tag.Key ?? '') };
  for (const tag of tags) context[`aws:RequestTag/${tag.Key ?? ''}`] = tag.Value ?? '';
  return context;
};

const tagsFor = (specifications: readonly TagSpecification[] | undefined, resourceType: string): Tag[] =>
  (specifications ?? [])
    .filter((specification) => specification.ResourceType === resourceType)
    .flatMap((specification) => specification.Tags ?? []);

/**
 * "Grant permission to tag resources during creation" (EC2 User Guide): a create request with
 * TagSpecifications also needs `ec2:CreateTags` on each tagged resource, with `ec2:CreateAction`
 * naming the create action.
 */
const tagOnCreate = (
  env: AwsEnvironment,
  base: Record<string, string>,
  createAction: string,
  specifications: readonly TagSpecification[] | undefined,
  resourceArn: (resourceType: string) => string,
): AuthorizationCheck[] =>
  [...new Set((specifications ?? []).map((specification) => specification.ResourceType ?? ''))]
    .filter((resourceType) => tagsFor(specifications, resourceType).length > 0)
    .map((resourceType) => ({
      action: 'ec2:CreateTags',
      resource: resourceArn(resourceType),
      context: {
        ...base,
        'ec2:Region': env.region,
        'ec2:CreateAction': createAction,
        ...requestTags(tagsFor(specifications, resourceType)),
      },
    }));

const instanceContext = (
  instance: NonNullable<ReturnType<Ec2ResourceState['instance']>> | undefined,
): Record<string, string> =>
  instance
    ? {
        ...ec2ResourceTags(instance.tags),
        'ec2:InstanceType': instance.instanceType,
        'ec2:AvailabilityZone': instance.availabilityZone,
        'ec2:Tenancy': instance.tenancy,
        'ec2:RootDeviceType': instance.rootDeviceType,
        ...(instance.iamInstanceProfile ? { 'ec2:InstanceProfile': instance.iamInstanceProfile } : {}),
      }
    : {};

const volumeContext = (
  volume: NonNullable<ReturnType<Ec2ResourceState['volume']>> | undefined,
  env: AwsEnvironment,
): Record<string, string> =>
  volume
    ? {
        ...ec2ResourceTags(volume.tags),
        'ec2:AvailabilityZone': volume.availabilityZone,
        'ec2:VolumeSize': String(volume.size),
        'ec2:VolumeType': volume.volumeType,
        'ec2:Encrypted': 'false',
        ...(volume.snapshotId
          ? { 'ec2:ParentSnapshot': ec2AccountlessArn(env, 'snapshot', volume.snapshotId) }
          : {}),
      }
    : {};

/**
 * An instance profile's role. The local cloud has no IAM registry of instance profiles; it follows
 * the common convention (and the console's) that a profile is named after its role.
 */
const roleOfInstanceProfile = (env: AwsEnvironment, profile: { Arn?: string; Name?: string }): string => {
  const name = profile.Name ?? (profile.Arn ?? '').split('/').pop() ?? '';
  return `arn:${env.partition}:iam::${env.accountId}:role/${name}`;
};

/** The volumes RunInstances creates: the image's block devices, changed by the request's mappings. */
const launchVolumes = (
  image: ReturnType<Ec2ResourceState['image']>,
  mappings: readonly BlockDeviceMapping[] | undefined,
): { size: number | undefined; volumeType: string; snapshotId: string | undefined; encrypted: boolean }[] => {
  const volumes = new Map<
    string,
    { size: number | undefined; volumeType: string; snapshotId: string | undefined; encrypted: boolean }
  >();
  for (const device of image?.blockDevices ?? []) {
    volumes.set(device.deviceName, {
      size: device.volumeSize,
      volumeType: device.volumeType,
      snapshotId: device.snapshotId,
      encrypted: false,
    });
  }
  for (const mapping of mappings ?? []) {
    const name = mapping.DeviceName ?? '';
    if (mapping.NoDevice !== undefined) {
      volumes.delete(name);
      continue;
    }
    if (!mapping.Ebs) continue;
    const existing = volumes.get(name);
    volumes.set(name, {
      size: mapping.Ebs.VolumeSize ?? existing?.size,
      volumeType: mapping.Ebs.VolumeType ?? existing?.volumeType ?? 'gp2',
      snapshotId: mapping.Ebs.SnapshotId ?? existing?.snapshotId,
      encrypted: mapping.Ebs.Encrypted ?? existing?.encrypted ?? false,
    });
  }
  return [...volumes.values()];
};

/**
 * RunInstances (SAR: image*, instance*, network-interface*, security-group*, subnet*, volume*,
 * key-pair, launch-template, placement-group, snapshot). Resources it creates are
 * `<type>/*`: their ids do not exist yet. A default subnet or security group the request leaves
 * out is authorized as `<type>/*`, which only a policy granting every subnet / group allows.
 */
const runInstances = (
  env: AwsEnvironment,
  base: Record<string, string>,
  input: RunInstancesRequest,
  state: Ec2ResourceState,
): AuthorizationCheck[] => {
  const action = 'ec2:RunInstances';
  const ec2Base = { ...base, 'ec2:Region': env.region, 'ec2:IsLaunchTemplateResource': 'false' };
  const image = input.ImageId ? state.image(input.ImageId) : undefined;
  const subnetId = input.SubnetId ?? input.NetworkInterfaces?.[0]?.SubnetId;
  const availabilityZone =
    (subnetId ? state.subnet(subnetId)?.availabilityZone : undefined) ?? input.Placement?.AvailabilityZone;
  const zone: Record<string, string> = availabilityZone ? { 'ec2:AvailabilityZone': availabilityZone } : {};
  const checks: AuthorizationCheck[] = [];
  if (input.ImageId) {
    checks.push({
      action,
      resource: ec2AccountlessArn(env, 'image', input.ImageId),
      context: {
        ...ec2Base,
        ...ec2ResourceTags(image?.tags),
        'ec2:ImageType': 'machine',
        // SAR, Amazon EC2 condition keys: ec2:Owner is "the owner of the resource (amazon,
        // aws-marketplace, or an AWS account ID)": the alias of an AMI AWS publishes, else the account.
        'ec2:Owner': image?.ownerAlias ?? image?.ownerId ?? env.accountId,
        'ec2:Public': String(image?.public === true),
        ...(image ? { 'ec2:RootDeviceType': image.rootDeviceType } : {}),
      },
    });
  }
  const placementGroup = input.Placement?.GroupName;
  checks.push({
    action,
    resource: ec2Arn(env, 'instance', '*'),
    context: {
      ...ec2Base,
      ...zone,
      ...requestTags(tagsFor(input.TagSpecifications, 'instance')),
      ...(input.InstanceType ? { 'ec2:InstanceType': input.InstanceType } : {}),
      'ec2:Tenancy': input.Placement?.Tenancy ?? 'default',
      'ec2:InstanceMarketType': input.InstanceMarketOptions?.MarketType ?? 'on-demand',
      'ec2:EbsOptimized': String(input.EbsOptimized ?? false),
      ...(image ? { 'ec2:RootDeviceType': image.rootDeviceType } : {}),
      ...(input.IamInstanceProfile
        ? {
            'ec2:InstanceProfile':
              input.IamInstanceProfile.Arn ??
              `arn:${env.partition}:iam::${env.accountId}:instance-profile/${input.IamInstanceProfile.Name ?? ''}`,
          }
        : {}),
      ...(placementGroup ? { 'ec2:PlacementGroup': ec2Arn(env, 'placement-group', placementGroup) } : {}),
      ...(input.MetadataOptions?.HttpTokens
        ? { 'ec2:MetadataHttpTokens': input.MetadataOptions.HttpTokens }
        : {}),
    },
  });
  for (const volume of launchVolumes(image, input.BlockDeviceMappings)) {
    checks.push({
      action,
      resource: ec2Arn(env, 'volume', '*'),
      context: {
        ...ec2Base,
        ...zone,
        ...requestTags(tagsFor(input.TagSpecifications, 'volume')),
        'ec2:VolumeType': volume.volumeType,
        'ec2:Encrypted': String(volume.encrypted),
        ...(volume.size !== undefined ? { 'ec2:VolumeSize': String(volume.size) } : {}),
        ...(volume.snapshotId
          ? { 'ec2:ParentSnapshot': ec2AccountlessArn(env, 'snapshot', volume.snapshotId) }
          : {}),
      },
    });
    if (volume.snapshotId) {
      checks.push({
        action,
        resource: ec2AccountlessArn(env, 'snapshot', volume.snapshotId),
        context: {
          ...ec2Base,
          ...ec2ResourceTags(state.snapshot(volume.snapshotId)?.tags),
          'ec2:Owner': env.accountId,
        },
      });
    }
  }
  checks.push({
    action,
    resource: ec2Arn(env, 'network-interface', '*'),
    context: {
      ...ec2Base,
      ...zone,
      ...requestTags(tagsFor(input.TagSpecifications, 'network-interface')),
      ...(subnetId ? { 'ec2:Subnet': ec2Arn(env, 'subnet', subnetId) } : {}),
    },
  });
  checks.push({ action, resource: ec2Arn(env, 'subnet', subnetId ?? '*'), context: { ...ec2Base, ...zone } });
  const groups = [
    ...(input.SecurityGroupIds ?? []),
    ...(input.NetworkInterfaces ?? []).flatMap((networkInterface) => networkInterface.Groups ?? []),
  ];
  for (const group of groups.length > 0 ? groups : ['*']) {
    checks.push({ action, resource: ec2Arn(env, 'security-group', group), context: ec2Base });
  }
  if (input.KeyName) {
    checks.push({
      action,
      resource: ec2Arn(env, 'key-pair', input.KeyName),
      context: { ...ec2Base, 'ec2:KeyPairName': input.KeyName },
    });
  }
  if (input.LaunchTemplate) {
    checks.push({
      action,
      resource: ec2Arn(env, 'launch-template', input.LaunchTemplate.LaunchTemplateId ?? '*'),
      context: ec2Base,
    });
  }
  if (placementGroup) {
    checks.push({
      action,
      resource: ec2Arn(env, 'placement-group', placementGroup),
      context: { ...ec2Base, 'ec2:PlacementGroupName': placementGroup },
    });
  }
  // A Dedicated Host named in Placement is not a resource RunInstances authorizes: the Service
  // Authorization Reference lists no `dedicated-host` resource type for it (iam-data agrees), so
  // no check is made on the host's ARN.
  checks.push(
    ...tagOnCreate(env, base, 'RunInstances', input.TagSpecifications, (type) => ec2Arn(env, type, '*')),
  );
  if (input.IamInstanceProfile) {
    // "Using an IAM role to grant permissions to applications running on EC2": launching with an
    // instance profile needs iam:PassRole on its role.
    checks.push({
      action: 'iam:PassRole',
      resource: roleOfInstanceProfile(env, input.IamInstanceProfile),
      context: { ...base, 'iam:PassedToService': 'ec2.amazonaws.com' },
    });
  }
  return checks;
};

type Input = Record<string, unknown>;

const strings = (value: unknown): string[] => (Array.isArray(value) ? (value as string[]) : []);

/** Every authorization an EC2 call needs. */
export const ec2Checks = (
  operation: string,
  input: Input,
  env: AwsEnvironment,
  principalArn: string,
  state: Ec2ResourceState,
): AuthorizationCheck[] => {
  const base = globalContext(env, principalArn);
  const ec2Base = { ...base, 'ec2:Region': env.region };
  const action = `ec2:${operation}`;
  const instanceCheck = (instanceId: string): AuthorizationCheck => ({
    action,
    resource: ec2Arn(env, 'instance', instanceId),
    context: { ...ec2Base, ...instanceContext(state.instance(instanceId)) },
  });
  const volumeCheck = (volumeId: string): AuthorizationCheck => ({
    action,
    resource: ec2Arn(env, 'volume', volumeId),
    context: { ...ec2Base, ...volumeContext(state.volume(volumeId), env) },
  });
  const snapshotCheck = (snapshotId: string): AuthorizationCheck => {
    const snapshot = state.snapshot(snapshotId);
    return {
      action,
      resource: ec2AccountlessArn(env, 'snapshot', snapshotId),
      context: {
        ...ec2Base,
        ...ec2ResourceTags(snapshot?.tags),
        // SAR: ec2:Owner is the account that owns the snapshot (another account's, when shared).
        'ec2:Owner': snapshot?.ownerId ?? env.accountId,
        ...(snapshot ? { 'ec2:VolumeSize': String(snapshot.volumeSize) } : {}),
      },
    };
  };
  // SAR: DescribeInstanceAttribute is the one Describe action warmboot uses that takes a resource
  // (instance*), so a policy may limit it to managed instances.
  if (operation === 'DescribeInstanceAttribute') return [instanceCheck(String(input.InstanceId ?? ''))];
  if (operation.startsWith('Describe')) {
    // Describe* support no resource-level permissions (SAR: no resource type listed).
    return [{ action, resource: '*', context: ec2Base }];
  }
  switch (operation) {
    case 'RunInstances':
      return runInstances(env, base, input as unknown as RunInstancesRequest, state);
    case 'StartInstances':
    case 'StopInstances':
    case 'TerminateInstances':
      // SAR: instance* — every listed instance; one denied instance fails the whole call.
      return strings(input.InstanceIds).map(instanceCheck);
    case 'ModifyInstanceAttribute': {
      // SAR: instance*, plus volume / security-group when the request changes them.
      const instanceId = String(input.InstanceId ?? '');
      const devices = (input.BlockDeviceMappings ?? []) as { DeviceName?: string }[];
      const attached = state.attachedVolumes(instanceId);
      const volumes = devices.flatMap(
        (mapping) => attached.find((volume) => volume.device === mapping.DeviceName)?.volumeId ?? [],
      );
      const groups = strings(input.Groups);
      const instance = instanceCheck(instanceId);
      return [
        // The attribute the request sets (ec2:Attribute, ec2:Attribute/<name>): instance-attribute-keys.ts.
        { ...instance, context: { ...instance.context, ...instanceAttributeKeys(input) } },
        ...volumes.map(volumeCheck),
        ...groups.map((group) => ({
          action,
          resource: ec2Arn(env, 'security-group', group),
          context: ec2Base,
        })),
      ];
    }
    case 'CreateTags':
    case 'DeleteTags': {
      // SAR: the tagged resource, with aws:RequestTag / aws:TagKeys of the tags in the request.
      const tags = (input.Tags ?? []) as Tag[];
      const tagContext =
        operation === 'CreateTags'
          ? requestTags(tags)
          : {
              'aws:TagKeys': tags.map((tag) => tag.Key ?? ''),
              ...Object.fromEntries(
                tags
                  .filter((tag) => tag.Value !== undefined)
                  .map((tag) => [`aws:RequestTag/${tag.Key ?? ''}`, tag.Value as string]),
              ),
            };
      return strings(input.Resources).map((resourceId) => ({
        action,
        resource: ec2ArnOfId(env, resourceId),
        context: { ...ec2Base, ...ec2ResourceTags(resourceTagsOf(state, resourceId)), ...tagContext },
      }));
    }
    case 'CreateVolume': {
      const specifications = input.TagSpecifications as TagSpecification[] | undefined;
      const snapshotId = input.SnapshotId as string | undefined;
      return [
        {
          action,
          resource: ec2Arn(env, 'volume', '*'),
          context: {
            ...ec2Base,
            ...requestTags(tagsFor(specifications, 'volume')),
            ...(input.AvailabilityZone ? { 'ec2:AvailabilityZone': String(input.AvailabilityZone) } : {}),
            'ec2:VolumeType': String(input.VolumeType ?? 'gp2'),
            'ec2:Encrypted': String(input.Encrypted ?? false),
            ...(input.Size !== undefined ? { 'ec2:VolumeSize': String(input.Size) } : {}),
            ...(snapshotId ? { 'ec2:ParentSnapshot': ec2AccountlessArn(env, 'snapshot', snapshotId) } : {}),
          },
        },
        ...(snapshotId ? [snapshotCheck(snapshotId)] : []),
        ...tagOnCreate(env, base, 'CreateVolume', specifications, (type) => ec2Arn(env, type, '*')),
      ];
    }
    case 'AttachVolume':
    case 'DetachVolume': {
      // SAR: volume*, instance (the instance the volume goes to or leaves; DetachVolume may name
      // only the volume, and EC2 then authorizes the instance it is attached to).
      const volumeId = String(input.VolumeId ?? '');
      const instanceId =
        (input.InstanceId as string | undefined) ?? state.volume(volumeId)?.attachment?.instanceId;
      return [volumeCheck(volumeId), ...(instanceId ? [instanceCheck(instanceId)] : [])];
    }
    case 'DeleteVolume':
      return [volumeCheck(String(input.VolumeId ?? ''))];
    case 'CreateReplaceRootVolumeTask': {
      // SAR: instance*, replace-root-volume-task*, volume*, image, snapshot. The task is created
      // (`replace-root-volume-task/*`, with the request's tags for it); the volume is the given
      // one (`VolumeId`), with its tags and ec2:VolumeID. The action's row lists only
      // aws:RequestTag, aws:TagKeys, ec2:VolumeID and ec2:VolumeInitializationRate for the volume;
      // the evaluator (iam-simulate) also admits the volume resource type's own keys, its
      // resource tags among them, so a tag condition on the volume is evaluated. Whether AWS
      // supplies them for this action is not documented further (docs/aws-fidelity.md).
      // The modes that restore a new volume (launch state, SnapshotId, ImageId) are not modelled.
      if (input.VolumeId === undefined || input.SnapshotId !== undefined || input.ImageId !== undefined)
        throw new UnmodelledCallError('ec2', operation, 'only the VolumeId mode is modelled');
      const volumeId = String(input.VolumeId);
      const specifications = input.TagSpecifications as TagSpecification[] | undefined;
      const taskTags = requestTags(tagsFor(specifications, 'replace-root-volume-task'));
      const volume = volumeCheck(volumeId);
      return [
        instanceCheck(String(input.InstanceId ?? '')),
        {
          action,
          resource: ec2Arn(env, 'replace-root-volume-task', '*'),
          context: { ...ec2Base, ...taskTags },
        },
        { ...volume, context: { ...volume.context, 'ec2:VolumeID': volumeId } },
        ...tagOnCreate(env, base, 'CreateReplaceRootVolumeTask', specifications, (type) =>
          ec2Arn(env, type, '*'),
        ),
      ];
    }
    case 'CreateSnapshot': {
      const specifications = input.TagSpecifications as TagSpecification[] | undefined;
      return [
        volumeCheck(String(input.VolumeId ?? '')),
        {
          action,
          resource: ec2AccountlessArn(env, 'snapshot', '*'),
          context: { ...ec2Base, ...requestTags(tagsFor(specifications, 'snapshot')) },
        },
        ...tagOnCreate(env, base, 'CreateSnapshot', specifications, (type) =>
          type === 'snapshot' ? ec2AccountlessArn(env, 'snapshot', '*') : ec2Arn(env, type, '*'),
        ),
      ];
    }
    case 'CreateSnapshots': {
      // SAR: instance*, snapshot*, volume* — the instance and each volume it snapshots.
      const source = (input.InstanceSpecification ?? {}) as {
        InstanceId?: string;
        ExcludeBootVolume?: boolean;
        ExcludeDataVolumeIds?: string[];
      };
      const instanceId = source.InstanceId ?? '';
      const rootDeviceName = state.instance(instanceId)?.rootDeviceName;
      const volumes = state
        .attachedVolumes(instanceId)
        .filter((volume) => !(source.ExcludeBootVolume && volume.device === rootDeviceName))
        .map((volume) => volume.volumeId)
        .filter((volumeId) => !(source.ExcludeDataVolumeIds ?? []).includes(volumeId));
      const specifications = input.TagSpecifications as TagSpecification[] | undefined;
      return [
        instanceCheck(instanceId),
        ...volumes.map(volumeCheck),
        {
          action,
          resource: ec2AccountlessArn(env, 'snapshot', '*'),
          context: { ...ec2Base, ...requestTags(tagsFor(specifications, 'snapshot')) },
        },
        ...tagOnCreate(env, base, 'CreateSnapshots', specifications, (type) =>
          type === 'snapshot' ? ec2AccountlessArn(env, 'snapshot', '*') : ec2Arn(env, type, '*'),
        ),
      ];
    }
    case 'DeleteSnapshot':
      return [snapshotCheck(String(input.SnapshotId ?? ''))];
    case 'AssociateAddress': {
      // SAR: elastic-ip, instance, network-interface (each when the request uses it). The
      // simulator's addresses carry no tags, so the elastic-ip context has none.
      const allocationId = String(input.AllocationId ?? '*');
      const instanceId = input.InstanceId as string | undefined;
      return [
        {
          action,
          resource: ec2Arn(env, 'elastic-ip', allocationId),
          context: { ...ec2Base, 'ec2:AllocationId': allocationId, 'ec2:Domain': 'vpc' },
        },
        ...(instanceId ? [instanceCheck(instanceId)] : []),
      ];
    }
    case 'EnableFastSnapshotRestores':
    case 'DisableFastSnapshotRestores':
      return strings(input.SourceSnapshotIds).map(snapshotCheck);
    default:
      throw new UnmodelledCallError('ec2', operation);
  }
};

const resourceTagsOf = (state: Ec2ResourceState, resourceId: string): Tags | undefined => {
  const prefix = resourceId.slice(0, resourceId.indexOf('-'));
  if (prefix === 'i') return state.instance(resourceId)?.tags;
  if (prefix === 'vol') return state.volume(resourceId)?.tags;
  if (prefix === 'snap') return state.snapshot(resourceId)?.tags;
  if (prefix === 'ami') return state.image(resourceId)?.tags;
  if (prefix === 'h') return state.host(resourceId)?.tags;
  return undefined;
};

/** Every authorization an SSM call needs (SAR, "Actions defined by AWS Systems Manager"). */
export const ssmChecks = (
  operation: string,
  input: Input,
  env: AwsEnvironment,
  principalArn: string,
  state: Pick<Ec2ResourceState, 'instance'>,
): AuthorizationCheck[] => {
  const base = globalContext(env, principalArn);
  const action = `ssm:${operation}`;
  switch (operation) {
    case 'SendCommand': {
      // SAR: document*, instance. The instance's tags are `ssm:resourceTag/<k>` (and
      // aws:ResourceTag); "Restricting Run Command access based on tags" (SSM User Guide).
      if (input.Targets !== undefined) throw new UnmodelledCallError('ssm', operation, 'Targets');
      const name = String(input.DocumentName ?? '');
      const document = name.startsWith('arn:')
        ? name
        : `arn:${env.partition}:ssm:${env.region}:${name.startsWith('AWS-') ? '' : env.accountId}:document/${name}`;
      return [
        { action, resource: document, context: base },
        ...strings(input.InstanceIds).map((instanceId) => {
          const context: Record<string, string> = { ...base };
          for (const [key, value] of Object.entries(state.instance(instanceId)?.tags ?? {})) {
            context[`ssm:resourceTag/${key}`] = value;
            context[`aws:ResourceTag/${key}`] = value;
          }
          return { action, resource: ec2Arn(env, 'instance', instanceId), context };
        }),
      ];
    }
    case 'GetParameter':
    case 'GetParameters': {
      const names = operation === 'GetParameter' ? [String(input.Name ?? '')] : strings(input.Names);
      return names.map((name) => {
        const path = name.startsWith('/') ? name : `/${name}`;
        // Public parameters (AMI aliases) are AWS's: no account in their ARN.
        const account = path.startsWith('/aws/service/') ? '' : env.accountId;
        return {
          action,
          resource: `arn:${env.partition}:ssm:${env.region}:${account}:parameter${path}`,
          context: base,
        };
      });
    }
    case 'GetCommandInvocation':
    case 'ListCommandInvocations':
    case 'ListCommands':
    case 'DescribeInstanceInformation':
      // SAR: no resource types (wildcard only).
      return [{ action, resource: '*', context: base }];
    default:
      throw new UnmodelledCallError('ssm', operation);
  }
};

/**
 * PutEvents (SAR, "Actions defined by Amazon EventBridge": event-bus, with events:source and
 * events:detail-type): each entry is authorized on its bus with its own source and detail type,
 * and the bus's resource policy, when it has one, is evaluated with the caller's policies
 * (EventBridge user guide, "Using resource-based policies for Amazon EventBridge").
 */
export const eventsChecks = (
  operation: string,
  input: Input,
  env: AwsEnvironment,
  principalArn: string,
  busPolicy: (busName: string) => Readonly<Record<string, unknown>> | undefined = () => undefined,
): AuthorizationCheck[] => {
  if (operation !== 'PutEvents') throw new UnmodelledCallError('events', operation);
  const base = globalContext(env, principalArn);
  const entries = (input.Entries ?? []) as { Source?: string; DetailType?: string; EventBusName?: string }[];
  return entries.map((entry) => {
    const bus = entry.EventBusName ?? 'default';
    const resource = bus.startsWith('arn:')
      ? bus
      : `arn:${env.partition}:events:${env.region}:${env.accountId}:event-bus/${bus}`;
    const policy = busPolicy(resource.slice(resource.indexOf(':event-bus/') + ':event-bus/'.length));
    return {
      action: 'events:PutEvents',
      resource,
      context: {
        ...base,
        ...(entry.Source !== undefined ? { 'events:source': entry.Source } : {}),
        ...(entry.DetailType !== undefined ? { 'events:detail-type': entry.DetailType } : {}),
      },
      ...(policy ? { resourcePolicy: policy } : {}),
    };
  });
};

/**
 * A call of a function URL whose auth type is AWS_IAM (Lambda developer guide, "Control access to
 * Lambda function URLs"): Lambda authorizes `lambda:InvokeFunctionUrl` with
 * `lambda:FunctionUrlAuthType` (the URL's auth type) and, for URLs created since October 2025,
 * also `lambda:InvokeFunction` with `lambda:InvokedViaFunctionUrl` true, both on the ARN of what the
 * URL invokes (here its alias) and both against the function's resource policy (Service
 * Authorization Reference, AWS Lambda: the keys each action supports).
 */
export const functionUrlChecks = (
  env: AwsEnvironment,
  principalArn: string,
  url: { readonly targetArn: string; readonly authType: string },
  resourcePolicy: Readonly<Record<string, unknown>>,
): AuthorizationCheck[] => {
  const base = globalContext(env, principalArn);
  return [
    {
      action: 'lambda:InvokeFunctionUrl',
      resource: url.targetArn,
      context: { ...base, 'lambda:FunctionUrlAuthType': url.authType, 'lambda:FunctionArn': url.targetArn },
      resourcePolicy,
    },
    {
      action: 'lambda:InvokeFunction',
      resource: url.targetArn,
      context: { ...base, 'lambda:InvokedViaFunctionUrl': 'true' },
      resourcePolicy,
    },
  ];
};

/**
 * What EC2 asks KMS for, as the caller, when it gives an instance a volume encrypted with a
 * customer managed key (launch, start, attach, create): the actions of ebs-encryption-requirements
 * ("Permissions for users") on the key. The request reaches KMS through EC2, so it carries the
 * caller's principal with `aws:ViaAWSService` true, `kms:ViaService` = `ec2.<region>.amazonaws.com`
 * and `kms:CallerAccount` (KMS Developer Guide, "kms:ViaService", "kms:CallerAccount"); the grant
 * EC2 creates for the instance is for an AWS resource (`kms:GrantIsForAWSResource` true, "Grants
 * in AWS KMS"). The key policy is evaluated with the role's policies: the default one lets the
 * account's IAM policies decide. The encryption context (`aws:ebs:id`) and the grant's operations
 * and grantee are not supplied: no warmboot policy conditions on them.
 */
export const ebsKeyUseChecks = (
  env: AwsEnvironment,
  principalArn: string,
  key: { readonly arn: string; readonly policy: Readonly<Record<string, unknown>> },
  actions: readonly string[],
): AuthorizationCheck[] => {
  const context = {
    ...globalContext(env, principalArn),
    'aws:ViaAWSService': 'true',
    'kms:ViaService': `ec2.${env.region}.amazonaws.com`,
    'kms:CallerAccount': env.accountId,
  };
  return actions.map((action) => ({
    action,
    resource: key.arn,
    context: action === 'kms:CreateGrant' ? { ...context, 'kms:GrantIsForAWSResource': 'true' } : context,
    resourcePolicy: key.policy,
  }));
};

const tableArn = (env: AwsEnvironment, table: string): string =>
  table.startsWith('arn:')
    ? table
    : `arn:${env.partition}:dynamodb:${env.region}:${env.accountId}:table/${table}`;

/**
 * Every authorization a DynamoDB request needs, from its JSON body (SAR, "Actions defined by
 * Amazon DynamoDB"; DynamoDB Developer Guide, "Using IAM with DynamoDB transactions": a
 * transaction needs the item action of each of its items, on each item's table).
 */
export const dynamodbChecks = (
  operation: string,
  body: Input,
  env: AwsEnvironment,
  principalArn: string,
): AuthorizationCheck[] => {
  const base = globalContext(env, principalArn);
  const on = (action: string, table: unknown, index?: unknown): AuthorizationCheck => ({
    action: `dynamodb:${action}`,
    resource:
      typeof index === 'string'
        ? `${tableArn(env, String(table))}/index/${index}`
        : tableArn(env, String(table ?? '')),
    context: base,
  });
  switch (operation) {
    case 'GetItem':
    case 'PutItem':
    case 'UpdateItem':
    case 'DeleteItem':
    case 'DescribeTable':
      return [on(operation, body.TableName)];
    case 'Query':
    case 'Scan':
      return [on(operation, body.TableName, body.IndexName)];
    case 'BatchGetItem':
    case 'BatchWriteItem':
      return Object.keys((body.RequestItems ?? {}) as Record<string, unknown>).map((table) =>
        on(operation, table),
      );
    case 'TransactWriteItems':
    case 'TransactGetItems': {
      const actions: Readonly<Record<string, string>> = {
        Put: 'PutItem',
        Update: 'UpdateItem',
        Delete: 'DeleteItem',
        ConditionCheck: 'ConditionCheckItem',
        Get: 'GetItem',
      };
      return ((body.TransactItems ?? []) as Record<string, { TableName?: string }>[]).flatMap((item) =>
        Object.entries(item).map(([kind, request]) => {
          const itemAction = actions[kind];
          if (!itemAction) throw new UnmodelledCallError('dynamodb', operation, `item kind ${kind}`);
          return on(itemAction, request.TableName);
        }),
      );
    }
    default:
      throw new UnmodelledCallError('dynamodb', operation);
  }
};
