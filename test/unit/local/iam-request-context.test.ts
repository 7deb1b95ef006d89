import { describe, expect, it } from 'vitest';
import {
  type AuthorizationCheck,
  dynamodbChecks,
  type Ec2ResourceState,
  ec2Checks,
  eventsChecks,
  principalContext,
  ssmChecks,
  UnmodelledCallError,
} from '../../../local/iam/request-context';

const ENV = { partition: 'aws', region: 'us-east-1', accountId: '123456789012' };
const PRINCIPAL = 'arn:aws:sts::123456789012:assumed-role/warmboot-pools-role/warmboot-pools';

type Tags = Record<string, string>;

/** The ARNs of the fleet's managed instance and of its data volume (shelved by record rec-1). */
const INSTANCE_A_ARN = 'arn:aws:ec2:us-east-1:123456789012:instance/i-0000000000000000a';
const VOLUME_B_ARN = 'arn:aws:ec2:us-east-1:123456789012:volume/vol-0000000000000000b';

/** A fleet whose tags the test changes between two calls, as other calls would. */
const fleet = () => {
  const instanceTags = new Map<string, Tags>([['i-0000000000000000a', { 'warmboot:shelving': 'true' }]]);
  const state: Ec2ResourceState = {
    instance: (id) => {
      const tags = instanceTags.get(id);
      return tags
        ? {
            tags,
            instanceType: 'm7i.large',
            availabilityZone: 'us-east-1a',
            tenancy: 'default',
            rootDeviceType: 'ebs',
            rootDeviceName: '/dev/xvda',
            iamInstanceProfile: undefined,
          }
        : undefined;
    },
    volume: (id) =>
      id === 'vol-0000000000000000b'
        ? {
            tags: { 'warmboot:shelved': 'rec-1' },
            availabilityZone: 'us-east-1a',
            size: 30,
            volumeType: 'gp3',
            snapshotId: undefined,
            attachment: { instanceId: 'i-0000000000000000a', device: '/dev/sdf' },
          }
        : undefined,
    attachedVolumes: (instanceId) =>
      instanceId === 'i-0000000000000000a'
        ? [
            { volumeId: 'vol-0000000000000000r', device: '/dev/xvda' },
            { volumeId: 'vol-0000000000000000b', device: '/dev/sdf' },
          ]
        : [],
    snapshot: (id) =>
      id === 'snap-0000000000000000c' ? { tags: { owner: 'images' }, volumeSize: 8 } : undefined,
    image: (id) =>
      id === 'ami-0000000000000000d'
        ? {
            tags: { team: 'base' },
            rootDeviceType: 'ebs',
            rootDeviceName: '/dev/xvda',
            blockDevices: [
              {
                deviceName: '/dev/xvda',
                snapshotId: 'snap-0000000000000000c',
                volumeSize: 8,
                volumeType: 'gp3',
              },
            ],
          }
        : undefined,
    host: (id) =>
      id === 'h-0000000000000000e' ? { tags: { rack: '7' }, availabilityZone: 'us-east-1a' } : undefined,
    subnet: (id) => (id === 'subnet-0000000000000000f' ? { availabilityZone: 'us-east-1a' } : undefined),
  };
  return { state, instanceTags };
};

/** What the local IAM checks for PRINCIPAL's EC2 or SSM call in ENV, on the fleet's `state`. */
const ec2ChecksOn = (state: Ec2ResourceState, operation: string, input: Record<string, unknown>) =>
  ec2Checks(operation, input, ENV, PRINCIPAL, state);
const ssmChecksOn = (state: Ec2ResourceState, operation: string, input: Record<string, unknown>) =>
  ssmChecks(operation, input, ENV, PRINCIPAL, state);

const byResource = (checks: readonly AuthorizationCheck[], action: string, resource: string) =>
  checks.filter((check) => check.action === action && check.resource === resource);

describe('the IAM request context of an EC2 call', () => {
  it('authorizes every resource RunInstances touches, with the request tags of each created type', () => {
    const { state } = fleet();
    const checks = ec2ChecksOn(state, 'RunInstances', {
      ImageId: 'ami-0000000000000000d',
      InstanceType: 'm7i.large',
      MinCount: 1,
      MaxCount: 1,
      SubnetId: 'subnet-0000000000000000f',
      SecurityGroupIds: ['sg-00000000000000001'],
      KeyName: 'builders',
      IamInstanceProfile: { Name: 'warmboot-builder' },
      Placement: { HostId: 'h-0000000000000000e', GroupName: 'spread-1', Tenancy: 'host' },
      BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { VolumeSize: 30, VolumeType: 'gp3' } }],
      TagSpecifications: [
        {
          ResourceType: 'instance',
          Tags: [
            { Key: 'warmboot:pools', Value: 'true' },
            { Key: 'warmboot:pool', Value: 'web' },
          ],
        },
        { ResourceType: 'volume', Tags: [{ Key: 'warmboot:pools', Value: 'true' }] },
      ],
    });

    expect(
      checks.filter((check) => check.action === 'ec2:RunInstances').map((check) => check.resource),
    ).toEqual([
      'arn:aws:ec2:us-east-1::image/ami-0000000000000000d',
      'arn:aws:ec2:us-east-1:123456789012:instance/*',
      'arn:aws:ec2:us-east-1:123456789012:volume/*',
      'arn:aws:ec2:us-east-1::snapshot/snap-0000000000000000c',
      'arn:aws:ec2:us-east-1:123456789012:network-interface/*',
      'arn:aws:ec2:us-east-1:123456789012:subnet/subnet-0000000000000000f',
      'arn:aws:ec2:us-east-1:123456789012:security-group/sg-00000000000000001',
      'arn:aws:ec2:us-east-1:123456789012:key-pair/builders',
      'arn:aws:ec2:us-east-1:123456789012:placement-group/spread-1',
      // No dedicated-host check: the SAR lists no such resource type for RunInstances.
    ]);
    const [instance] = byResource(
      checks,
      'ec2:RunInstances',
      'arn:aws:ec2:us-east-1:123456789012:instance/*',
    );
    expect(instance?.context).toMatchObject({
      'aws:RequestTag/warmboot:pools': 'true',
      'aws:RequestTag/warmboot:pool': 'web',
      'aws:TagKeys': ['warmboot:pools', 'warmboot:pool'],
      'ec2:InstanceType': 'm7i.large',
      'ec2:AvailabilityZone': 'us-east-1a',
      'ec2:Tenancy': 'host',
      'ec2:Region': 'us-east-1',
      'ec2:InstanceProfile': 'arn:aws:iam::123456789012:instance-profile/warmboot-builder',
      'ec2:PlacementGroup': 'arn:aws:ec2:us-east-1:123456789012:placement-group/spread-1',
    });
    const [volume] = byResource(checks, 'ec2:RunInstances', 'arn:aws:ec2:us-east-1:123456789012:volume/*');
    expect(volume?.context).toMatchObject({
      'aws:RequestTag/warmboot:pools': 'true',
      'aws:TagKeys': ['warmboot:pools'],
      'ec2:VolumeSize': '30',
      'ec2:VolumeType': 'gp3',
      'ec2:ParentSnapshot': 'arn:aws:ec2:us-east-1::snapshot/snap-0000000000000000c',
    });
    expect(volume?.context).not.toHaveProperty('aws:RequestTag/warmboot:pool');
    const [image] = byResource(
      checks,
      'ec2:RunInstances',
      'arn:aws:ec2:us-east-1::image/ami-0000000000000000d',
    );
    expect(image?.context).toMatchObject({ 'aws:ResourceTag/team': 'base', 'ec2:ResourceTag/team': 'base' });

    expect(checks.filter((check) => check.action === 'ec2:CreateTags')).toEqual([
      expect.objectContaining({
        resource: 'arn:aws:ec2:us-east-1:123456789012:instance/*',
        context: expect.objectContaining({
          'ec2:CreateAction': 'RunInstances',
          'aws:RequestTag/warmboot:pool': 'web',
        }),
      }),
      expect.objectContaining({
        resource: 'arn:aws:ec2:us-east-1:123456789012:volume/*',
        context: expect.objectContaining({ 'ec2:CreateAction': 'RunInstances' }),
      }),
    ]);
    expect(checks.filter((check) => check.action === 'iam:PassRole')).toEqual([
      expect.objectContaining({
        resource: 'arn:aws:iam::123456789012:role/warmboot-builder',
        context: expect.objectContaining({ 'iam:PassedToService': 'ec2.amazonaws.com' }),
      }),
    ]);
  });

  it('authorizes a launch without subnet or security group on every subnet and group', () => {
    const { state } = fleet();
    const checks = ec2ChecksOn(state, 'RunInstances', {
      ImageId: 'ami-0000000000000000d',
      MinCount: 1,
      MaxCount: 1,
    });
    expect(checks.map((check) => check.resource)).toEqual(
      expect.arrayContaining([
        'arn:aws:ec2:us-east-1:123456789012:subnet/*',
        'arn:aws:ec2:us-east-1:123456789012:security-group/*',
      ]),
    );
    expect(checks.some((check) => check.action === 'ec2:CreateTags' || check.action === 'iam:PassRole')).toBe(
      false,
    );
  });

  it('reads resource tags at the moment of the call', () => {
    const { state, instanceTags } = fleet();
    const terminate = () =>
      ec2ChecksOn(state, 'TerminateInstances', { InstanceIds: ['i-0000000000000000a'] });

    const before = terminate();
    instanceTags.set('i-0000000000000000a', {});
    const after = terminate();

    expect(before[0]?.context).toMatchObject({
      'aws:ResourceTag/warmboot:shelving': 'true',
      'ec2:ResourceTag/warmboot:shelving': 'true',
    });
    expect(after[0]?.resource).toBe(INSTANCE_A_ARN);
    expect(after[0]?.context).not.toHaveProperty('aws:ResourceTag/warmboot:shelving');
  });

  it('authorizes an unknown instance by its ARN, without tags', () => {
    const { state } = fleet();
    const [check] = ec2ChecksOn(state, 'StopInstances', { InstanceIds: ['i-0ffffffffffffffff'] });
    expect(check?.resource).toBe('arn:aws:ec2:us-east-1:123456789012:instance/i-0ffffffffffffffff');
    expect(Object.keys(check?.context ?? {}).some((key) => key.includes('ResourceTag'))).toBe(false);
  });

  it('authorizes the volume and the instance it is attached to when DetachVolume names only the volume', () => {
    const { state } = fleet();
    const checks = ec2ChecksOn(state, 'DetachVolume', { VolumeId: 'vol-0000000000000000b' });
    expect(checks.map((check) => check.resource)).toEqual([VOLUME_B_ARN, INSTANCE_A_ARN]);
    expect(checks[0]?.context).toMatchObject({ 'aws:ResourceTag/warmboot:shelved': 'rec-1' });
  });

  it('gives CreateTags and DeleteTags the tag keys of the request', () => {
    const { state } = fleet();
    const [create] = ec2ChecksOn(state, 'CreateTags', {
      Resources: ['vol-0000000000000000b'],
      Tags: [{ Key: 'warmboot:shelving', Value: 'true' }],
    });
    const [remove] = ec2ChecksOn(state, 'DeleteTags', {
      Resources: ['i-0000000000000000a'],
      Tags: [{ Key: 'warmboot:pool' }],
    });
    expect(create?.context).toMatchObject({
      'aws:RequestTag/warmboot:shelving': 'true',
      'aws:TagKeys': ['warmboot:shelving'],
      'aws:ResourceTag/warmboot:shelved': 'rec-1',
    });
    expect(create?.context).not.toHaveProperty('ec2:CreateAction');
    expect(remove?.context).toMatchObject({ 'aws:TagKeys': ['warmboot:pool'] });
  });

  it('snapshots the instance and each volume CreateSnapshots copies, and tags the snapshots at creation', () => {
    const { state } = fleet();
    const checks = ec2ChecksOn(state, 'CreateSnapshots', {
      InstanceSpecification: { InstanceId: 'i-0000000000000000a', ExcludeBootVolume: true },
      TagSpecifications: [{ ResourceType: 'snapshot', Tags: [{ Key: 'warmboot:shelved', Value: 'rec-1' }] }],
    });
    expect(checks.map((check) => [check.action, check.resource])).toEqual([
      ['ec2:CreateSnapshots', INSTANCE_A_ARN],
      ['ec2:CreateSnapshots', VOLUME_B_ARN],
      ['ec2:CreateSnapshots', 'arn:aws:ec2:us-east-1::snapshot/*'],
      ['ec2:CreateTags', 'arn:aws:ec2:us-east-1::snapshot/*'],
    ]);
    expect(checks[3]?.context).toMatchObject({ 'ec2:CreateAction': 'CreateSnapshots' });
  });

  it('authorizes DescribeInstanceAttribute on the instance, and AssociateAddress on the address and the instance', () => {
    const { state } = fleet();
    const [describe] = ec2ChecksOn(state, 'DescribeInstanceAttribute', {
      InstanceId: 'i-0000000000000000a',
      Attribute: 'userData',
    });
    expect(describe).toMatchObject({
      resource: INSTANCE_A_ARN,
      context: { 'aws:ResourceTag/warmboot:shelving': 'true' },
    });

    const associate = ec2ChecksOn(state, 'AssociateAddress', {
      AllocationId: 'eipalloc-0000000000000000a',
      InstanceId: 'i-0000000000000000a',
      AllowReassociation: false,
    });
    expect(associate.map((check) => [check.action, check.resource])).toEqual([
      ['ec2:AssociateAddress', 'arn:aws:ec2:us-east-1:123456789012:elastic-ip/eipalloc-0000000000000000a'],
      ['ec2:AssociateAddress', INSTANCE_A_ARN],
    ]);
    expect(associate[1]?.context).toMatchObject({ 'aws:ResourceTag/warmboot:shelving': 'true' });
  });

  it('gives ModifyInstanceAttribute the ec2:Attribute keys of what it sets, as the EC2 User Guide forms them', () => {
    const { state } = fleet();
    const attributeKeys = (input: Record<string, unknown>) => {
      const [instance, ...others] = ec2ChecksOn(state, 'ModifyInstanceAttribute', {
        InstanceId: 'i-0000000000000000a',
        ...input,
      });
      const keys = Object.entries(instance?.context ?? {}).filter(([key]) => key.startsWith('ec2:Attribute'));
      return { keys: Object.fromEntries(keys), others: others.map((check) => check.resource) };
    };

    // A property of only `Value`: ec2:Attribute/<property>, its value as a string (a blob base64).
    expect(attributeKeys({ InstanceType: { Value: 'm7i.xlarge' } }).keys).toEqual({
      'ec2:Attribute/InstanceType': 'm7i.xlarge',
    });
    expect(attributeKeys({ DisableApiStop: { Value: false } }).keys).toEqual({
      'ec2:Attribute/DisableApiStop': 'false',
    });
    expect(attributeKeys({ UserData: { Value: Buffer.from('#!/bin/sh') } }).keys).toEqual({
      'ec2:Attribute/UserData': Buffer.from('#!/bin/sh').toString('base64'),
    });
    // The primitive `Attribute` is ec2:Attribute; `Value` follows the rule for a primitive.
    expect(attributeKeys({ Attribute: 'instanceType', Value: 'm7i.xlarge' }).keys).toEqual({
      'ec2:Attribute': 'instanceType',
      'ec2:Attribute/Value': 'm7i.xlarge',
    });
    // A list sets no key; its volumes are authorized on their own.
    expect(
      attributeKeys({
        BlockDeviceMappings: [{ DeviceName: '/dev/sdf', Ebs: { DeleteOnTermination: true } }],
      }),
    ).toEqual({ keys: {}, others: [VOLUME_B_ARN] });
  });

  it('refuses an operation it has no request context for instead of guessing', () => {
    const { state } = fleet();
    expect(() => ec2ChecksOn(state, 'ModifyInstancePlacement', {})).toThrow(UnmodelledCallError);
  });
});

describe('the IAM request context of SSM, EventBridge and DynamoDB calls', () => {
  it('authorizes SendCommand on the document and on each instance with its ssm:resourceTag keys', () => {
    const { state } = fleet();
    const checks = ssmChecksOn(state, 'SendCommand', {
      DocumentName: 'Warmboot-PoolPersonalize',
      InstanceIds: ['i-0000000000000000a'],
    });
    expect(checks.map((check) => check.resource)).toEqual([
      'arn:aws:ssm:us-east-1:123456789012:document/Warmboot-PoolPersonalize',
      INSTANCE_A_ARN,
    ]);
    expect(checks[1]?.context).toMatchObject({ 'ssm:resourceTag/warmboot:shelving': 'true' });
  });

  it('authorizes public AMI alias parameters without an account in their ARN', () => {
    const { state } = fleet();
    const [check] = ssmChecksOn(state, 'GetParameter', {
      Name: '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64',
    });
    expect(check?.resource).toBe(
      'arn:aws:ssm:us-east-1::parameter/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64',
    );
  });

  it('authorizes each PutEvents entry on its bus with its source and detail type', () => {
    const checks = eventsChecks(
      'PutEvents',
      {
        Entries: [
          { Source: 'warmboot', DetailType: 'Server Ready', Detail: '{}' },
          {
            Source: 'aws.ec2',
            DetailType: 'EC2 Instance State-change Notification',
            Detail: '{}',
            EventBusName: 'default',
          },
        ],
      },
      ENV,
      PRINCIPAL,
    );
    expect(checks).toEqual([
      expect.objectContaining({
        resource: 'arn:aws:events:us-east-1:123456789012:event-bus/default',
        context: expect.objectContaining({
          'events:source': 'warmboot',
          'events:detail-type': 'Server Ready',
        }),
      }),
      expect.objectContaining({ context: expect.objectContaining({ 'events:source': 'aws.ec2' }) }),
    ]);
  });

  it('evaluates a PutEvents with the resource policy of the bus it names (by name or ARN)', () => {
    const policy = { Version: '2012-10-17', Statement: [] };
    const policies = new Map([['warmboot-facts', policy]]);
    const checks = eventsChecks(
      'PutEvents',
      {
        Entries: [
          {
            Source: 'warmboot.fact',
            DetailType: 'Server Ready',
            Detail: '{}',
            EventBusName: 'warmboot-facts',
          },
          {
            Source: 'warmboot.fact',
            DetailType: 'Server Ready',
            Detail: '{}',
            EventBusName: 'arn:aws:events:us-east-1:123456789012:event-bus/warmboot-facts',
          },
          { Source: 'warmboot', DetailType: 'Server Ready', Detail: '{}' },
        ],
      },
      ENV,
      PRINCIPAL,
      (bus) => policies.get(bus),
    );

    expect(checks.map((check) => check.resourcePolicy)).toEqual([policy, policy, undefined]);
  });

  it('gives a role session the role’s ARN as aws:PrincipalArn, as IAM does', () => {
    expect(principalContext(PRINCIPAL)).toEqual({
      'aws:PrincipalArn': 'arn:aws:iam::123456789012:role/warmboot-pools-role',
      'aws:PrincipalAccount': '123456789012',
      'aws:PrincipalType': 'AssumedRole',
    });
    expect(principalContext('arn:aws:iam::210987654321:user/alice')).toMatchObject({
      'aws:PrincipalAccount': '210987654321',
      'aws:PrincipalType': 'User',
    });
    expect(principalContext('arn:aws:iam::210987654321:root')).toMatchObject({
      'aws:PrincipalType': 'Account',
    });
  });

  it('needs the item action of every item of a transaction, and the index ARN for an index query', () => {
    const transaction = dynamodbChecks(
      'TransactWriteItems',
      {
        TransactItems: [
          { Put: { TableName: 'wb-pools', Item: {} } },
          { ConditionCheck: { TableName: 'wb-popularity', Key: {} } },
          { Delete: { TableName: 'wb-pools', Key: {} } },
        ],
      },
      ENV,
      PRINCIPAL,
    );
    const query = dynamodbChecks('Query', { TableName: 'wb-pools', IndexName: 'gsi1' }, ENV, PRINCIPAL);

    expect(transaction.map((check) => [check.action, check.resource])).toEqual([
      ['dynamodb:PutItem', 'arn:aws:dynamodb:us-east-1:123456789012:table/wb-pools'],
      ['dynamodb:ConditionCheckItem', 'arn:aws:dynamodb:us-east-1:123456789012:table/wb-popularity'],
      ['dynamodb:DeleteItem', 'arn:aws:dynamodb:us-east-1:123456789012:table/wb-pools'],
    ]);
    expect(query.map((check) => check.resource)).toEqual([
      'arn:aws:dynamodb:us-east-1:123456789012:table/wb-pools/index/gsi1',
    ]);
  });
});
