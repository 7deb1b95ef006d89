import { CreateTagsCommand } from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { ec2ResourceState } from '../../../local/iam/ec2-state';
import type { OutsideCaller } from '../../../local/iam/evaluator';
import { ec2Checks, UnmodelledCallError } from '../../../local/iam/request-context';
import { ACCOUNT, createCloud, createVolume, launch, REGION, ZONE_A } from './ec2-harness';
import { localIamOn, noFunctionRoles } from './iam-harness';

/**
 * CreateReplaceRootVolumeTask in the local IAM (request-context.ts), as the Service Authorization
 * Reference lists it: instance*, replace-root-volume-task*, volume*; tags on create need
 * ec2:CreateTags on the task. For this action the volume supports no resource-tag key.
 */

const ENV = { partition: 'aws', region: REGION, accountId: ACCOUNT };
const OPERATOR = `arn:aws:iam::${ACCOUNT}:role/operator`;
const instanceArn = (id: string) => `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/${id}`;
const volumeArn = (id: string) => `arn:aws:ec2:${REGION}:${ACCOUNT}:volume/${id}`;
const TASKS = `arn:aws:ec2:${REGION}:${ACCOUNT}:replace-root-volume-task/*`;

const world = async () => {
  const cloud = await createCloud();
  const instanceId = await launch(cloud, {
    Placement: { AvailabilityZone: ZONE_A },
    TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'warmboot:shelving', Value: 'rec-1' }] }],
  });
  const volume = await createVolume(cloud, {
    Size: 8,
    TagSpecifications: [{ ResourceType: 'volume', Tags: [{ Key: 'warmboot:shelved', Value: 'rec-1' }] }],
  });
  await cloud.settle();
  // Only outside callers are evaluated here: no function role is needed.
  const iam = localIamOn(cloud, noFunctionRoles('replace-root'));
  return { cloud, iam, instanceId, volumeId: volume.VolumeId ?? '' };
};

const callerWith = (statements: readonly Record<string, unknown>[]): OutsideCaller => ({
  principalArn: OPERATOR,
  identityPolicies: [{ Version: '2012-10-17', Statement: statements as never }],
});

const replaceOnTagged = (volumeCondition?: Record<string, unknown>) => [
  {
    Effect: 'Allow',
    Action: 'ec2:CreateReplaceRootVolumeTask',
    Resource: `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/*`,
    Condition: { StringLike: { 'aws:ResourceTag/warmboot:shelving': '*' } },
  },
  { Effect: 'Allow', Action: 'ec2:CreateReplaceRootVolumeTask', Resource: TASKS },
  {
    Effect: 'Allow',
    Action: 'ec2:CreateReplaceRootVolumeTask',
    Resource: `arn:aws:ec2:${REGION}:${ACCOUNT}:volume/*`,
    ...(volumeCondition ? { Condition: volumeCondition } : {}),
  },
];

describe('CreateReplaceRootVolumeTask in the local IAM', () => {
  it('authorizes the instance, the new task and the given volume, and CreateTags for tags on create', async () => {
    const { cloud, instanceId, volumeId } = await world();

    const checks = ec2Checks(
      'CreateReplaceRootVolumeTask',
      {
        InstanceId: instanceId,
        VolumeId: volumeId,
        TagSpecifications: [
          { ResourceType: 'replace-root-volume-task', Tags: [{ Key: 'record', Value: 'rec-1' }] },
        ],
      },
      ENV,
      OPERATOR,
      ec2ResourceState(cloud.ec2),
    );

    expect(checks.map((check) => [check.action, check.resource])).toEqual([
      ['ec2:CreateReplaceRootVolumeTask', instanceArn(instanceId)],
      ['ec2:CreateReplaceRootVolumeTask', TASKS],
      ['ec2:CreateReplaceRootVolumeTask', volumeArn(volumeId)],
      ['ec2:CreateTags', TASKS],
    ]);
    expect(checks[0]?.context['aws:ResourceTag/warmboot:shelving']).toBe('rec-1');
    expect(checks[1]?.context['aws:RequestTag/record']).toBe('rec-1');
    expect(checks[2]?.context['ec2:VolumeID']).toBe(volumeId);
    expect(checks[3]?.context['ec2:CreateAction']).toBe('CreateReplaceRootVolumeTask');
  });

  it('allows a policy conditioned on the instance’s tags and the volume’s id', async () => {
    const { iam, instanceId, volumeId } = await world();
    const caller = callerWith(replaceOnTagged({ StringEquals: { 'ec2:VolumeID': volumeId } }));

    expect(
      await iam.ec2CallerDenial(caller, 'CreateReplaceRootVolumeTask', {
        InstanceId: instanceId,
        VolumeId: volumeId,
      }),
    ).toBeUndefined();
  });

  it('denies an instance without the tag the policy asks for', async () => {
    const { cloud, iam, instanceId, volumeId } = await world();
    const caller = callerWith(replaceOnTagged());
    await cloud.run(() =>
      cloud.ec2Client.send(
        new CreateTagsCommand({ Resources: [instanceId], Tags: [{ Key: 'other', Value: '1' }] }),
      ),
    );
    const untagged = await launch(cloud, { Placement: { AvailabilityZone: ZONE_A } });

    expect(
      await iam.ec2CallerDenial(caller, 'CreateReplaceRootVolumeTask', {
        InstanceId: untagged,
        VolumeId: volumeId,
      }),
    ).toMatch(/not authorized to perform: ec2:CreateReplaceRootVolumeTask on resource: .*instance/);
  });

  it('evaluates a tag condition on the volume (the volume resource type’s keys, as iam-simulate reads the SAR)', async () => {
    const { iam, instanceId, volumeId } = await world();
    const shelvedAs = (record: string) =>
      callerWith(replaceOnTagged({ StringEquals: { 'aws:ResourceTag/warmboot:shelved': record } }));
    const input = { InstanceId: instanceId, VolumeId: volumeId };

    expect(
      await iam.ec2CallerDenial(shelvedAs('rec-1'), 'CreateReplaceRootVolumeTask', input),
    ).toBeUndefined();
    expect(await iam.ec2CallerDenial(shelvedAs('rec-2'), 'CreateReplaceRootVolumeTask', input)).toMatch(
      /on resource: .*volume\//,
    );
  });

  it('refuses to guess the modes the simulator does not model', () => {
    expect(() =>
      ec2Checks(
        'CreateReplaceRootVolumeTask',
        { InstanceId: 'i-0123456789abcdef0', SnapshotId: 'snap-0123456789abcdef0' },
        ENV,
        OPERATOR,
        {} as never,
      ),
    ).toThrow(UnmodelledCallError);
  });

  it('authorizes DescribeReplaceRootVolumeTasks on * (no resource types)', () => {
    expect(ec2Checks('DescribeReplaceRootVolumeTasks', {}, ENV, OPERATOR, {} as never)).toEqual([
      expect.objectContaining({ action: 'ec2:DescribeReplaceRootVolumeTasks', resource: '*' }),
    ]);
  });
});
