import {
  CreatePlacementGroupCommand,
  DeletePlacementGroupCommand,
  DescribeInstanceAttributeCommand,
  DescribeInstanceCreditSpecificationsCommand,
  DescribeInstancesCommand,
  DescribePlacementGroupsCommand,
  ModifyInstanceAttributeCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { type Cloud, createCloud, launch, ZONE_A, ZONE_B } from './ec2-harness';

/**
 * Launch attributes DescribeInstances does not show, and placement groups: user data
 * (instancedata-add-user-data), termination and stop protection (API_RunInstances,
 * API_ModifyInstanceAttribute, API_DescribeInstanceAttribute), the CPU credit option
 * (API_DescribeInstanceCreditSpecifications), placement groups (placement-groups).
 */

const refusal = (promise: Promise<unknown>) => promise.catch((error: unknown) => error);

const attribute = (
  cloud: Cloud,
  instanceId: string,
  Attribute: 'userData' | 'disableApiTermination' | 'disableApiStop',
) =>
  cloud.run(() =>
    cloud.ec2Client.send(new DescribeInstanceAttributeCommand({ InstanceId: instanceId, Attribute })),
  );

const base64 = (text: string) => Buffer.from(text).toString('base64');

describe('user data', () => {
  it('is given back as the base64 text it was launched with, and changes only while stopped', async () => {
    const cloud = await createCloud();
    const instanceId = await launch(cloud, { UserData: base64('#!/bin/sh\necho hi\n') });
    await cloud.settle();
    expect((await attribute(cloud, instanceId, 'userData')).UserData).toEqual({
      Value: base64('#!/bin/sh\necho hi\n'),
    });

    const modify = () =>
      cloud.run(() =>
        cloud.ec2Client.send(
          new ModifyInstanceAttributeCommand({
            InstanceId: instanceId,
            UserData: { Value: new TextEncoder().encode('#cloud-config\n') },
          }),
        ),
      );
    expect(await refusal(modify())).toMatchObject({ name: 'IncorrectInstanceState' });
    await cloud.run(() => cloud.ec2Client.send(new StopInstancesCommand({ InstanceIds: [instanceId] })));
    await cloud.settle();
    await modify();
    expect((await attribute(cloud, instanceId, 'userData')).UserData).toEqual({
      Value: base64('#cloud-config\n'),
    });
  });

  it('answers an empty value for an instance launched without user data', async () => {
    const cloud = await createCloud();
    const instanceId = await launch(cloud);
    expect((await attribute(cloud, instanceId, 'userData')).UserData).toEqual({});
  });

  it.each([
    ['not base64', 'not base64!'],
    ['larger than 16 KB raw', Buffer.alloc(16 * 1024 + 1, 'x').toString('base64')],
  ])('refuses user data %s with InvalidParameterValue', async (_what, userData) => {
    const cloud = await createCloud();
    expect(await refusal(launch(cloud, { UserData: userData }))).toMatchObject({
      name: 'InvalidParameterValue',
    });
  });

  it('accepts exactly 16 KB raw', async () => {
    const cloud = await createCloud();
    const instanceId = await launch(cloud, { UserData: Buffer.alloc(16 * 1024, 'x').toString('base64') });
    expect(instanceId).toMatch(/^i-/);
  });
});

describe('termination and stop protection', () => {
  it('is set at launch and read back with DescribeInstanceAttribute', async () => {
    const cloud = await createCloud();
    const instanceId = await launch(cloud, { DisableApiTermination: true, DisableApiStop: true });
    await cloud.settle();
    expect((await attribute(cloud, instanceId, 'disableApiTermination')).DisableApiTermination).toEqual({
      Value: true,
    });
    expect((await attribute(cloud, instanceId, 'disableApiStop')).DisableApiStop).toEqual({ Value: true });
    expect(
      await refusal(
        cloud.run(() => cloud.ec2Client.send(new StopInstancesCommand({ InstanceIds: [instanceId] }))),
      ),
    ).toMatchObject({ name: 'OperationNotPermitted' });
  });

  it('changes one attribute per ModifyInstanceAttribute call', async () => {
    const cloud = await createCloud();
    const instanceId = await launch(cloud);
    await cloud.settle();
    const refused = await refusal(
      cloud.run(() =>
        cloud.ec2Client.send(
          new ModifyInstanceAttributeCommand({
            InstanceId: instanceId,
            DisableApiTermination: { Value: true },
            DisableApiStop: { Value: true },
          }),
        ),
      ),
    );
    expect(refused).toMatchObject({ name: 'InvalidParameterCombination' });
    expect((await attribute(cloud, instanceId, 'disableApiTermination')).DisableApiTermination).toEqual({
      Value: false,
    });
  });
});

describe('CPU credit option', () => {
  const credits = (cloud: Cloud, InstanceIds: string[]) =>
    cloud.run(() => cloud.ec2Client.send(new DescribeInstanceCreditSpecificationsCommand({ InstanceIds })));

  it('defaults to standard for T2 and unlimited for T3, and keeps the option a launch asked for', async () => {
    const cloud = await createCloud();
    const t2 = await launch(cloud, { InstanceType: 't2.micro' });
    const t3 = await launch(cloud, { InstanceType: 't3.micro' });
    const asked = await launch(cloud, {
      InstanceType: 't3.micro',
      CreditSpecification: { CpuCredits: 'standard' },
    });

    const answer = await credits(cloud, [t2, t3, asked]);
    expect(answer.InstanceCreditSpecifications).toEqual([
      { InstanceId: t2, CpuCredits: 'standard' },
      { InstanceId: t3, CpuCredits: 'unlimited' },
      { InstanceId: asked, CpuCredits: 'standard' },
    ]);
  });

  it('refuses a credit option for a type that is not burstable, and describing one', async () => {
    const cloud = await createCloud();
    expect(
      await refusal(
        launch(cloud, { InstanceType: 'm7i.large', CreditSpecification: { CpuCredits: 'unlimited' } }),
      ),
    ).toMatchObject({ name: 'InvalidParameterCombination' });
    const instanceId = await launch(cloud, { InstanceType: 'm7i.large' });
    expect(await refusal(credits(cloud, [instanceId]))).toMatchObject({ name: 'InvalidParameterValue' });
  });
});

describe('placement groups', () => {
  const createGroup = (
    cloud: Cloud,
    GroupName: string,
    Strategy: 'cluster' | 'spread' | 'partition',
    PartitionCount?: number,
  ) =>
    cloud.run(() =>
      cloud.ec2Client.send(new CreatePlacementGroupCommand({ GroupName, Strategy, PartitionCount })),
    );
  const placementOf = async (cloud: Cloud, instanceId: string) => {
    const answer = await cloud.run(() =>
      cloud.ec2Client.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] })),
    );
    return answer.Reservations?.[0]?.Instances?.[0]?.Placement;
  };

  it('refuses a launch into a group that does not exist with InvalidPlacementGroup.Unknown', async () => {
    const cloud = await createCloud();
    expect(await refusal(launch(cloud, { Placement: { GroupName: 'nowhere' } }))).toMatchObject({
      name: 'InvalidPlacementGroup.Unknown',
    });
    expect(
      await refusal(
        cloud.run(() =>
          cloud.ec2Client.send(new DescribePlacementGroupsCommand({ GroupNames: ['nowhere'] })),
        ),
      ),
    ).toMatchObject({ name: 'InvalidPlacementGroup.Unknown' });
  });

  it('launches into a group, shows it, and keeps a partition a launch asked for', async () => {
    const cloud = await createCloud();
    await createGroup(cloud, 'web', 'spread');
    await createGroup(cloud, 'hdfs', 'partition', 3);
    const spread = await launch(cloud, { Placement: { GroupName: 'web' } });
    const partitioned = await launch(cloud, { Placement: { GroupName: 'hdfs', PartitionNumber: 3 } });

    expect(await placementOf(cloud, spread)).toMatchObject({ GroupName: 'web' });
    expect(await placementOf(cloud, partitioned)).toMatchObject({ GroupName: 'hdfs', PartitionNumber: 3 });
    const described = await cloud.run(() =>
      cloud.ec2Client.send(new DescribePlacementGroupsCommand({ GroupNames: ['hdfs'] })),
    );
    expect(described.PlacementGroups).toEqual([
      expect.objectContaining({
        GroupName: 'hdfs',
        Strategy: 'partition',
        PartitionCount: 3,
        State: 'available',
      }),
    ]);
  });

  it('refuses a partition the group does not have, and a partition number for another strategy', async () => {
    const cloud = await createCloud();
    await createGroup(cloud, 'hdfs', 'partition', 2);
    await createGroup(cloud, 'web', 'spread');
    expect(
      await refusal(launch(cloud, { Placement: { GroupName: 'hdfs', PartitionNumber: 3 } })),
    ).toMatchObject({
      name: 'InvalidParameterValue',
    });
    expect(
      await refusal(launch(cloud, { Placement: { GroupName: 'web', PartitionNumber: 1 } })),
    ).toMatchObject({
      name: 'InvalidParameterCombination',
    });
  });

  it('keeps a cluster group in one AZ while it has instances, and is deleted only once empty', async () => {
    const cloud = await createCloud();
    await createGroup(cloud, 'hpc', 'cluster');
    const member = await launch(cloud, { Placement: { GroupName: 'hpc', AvailabilityZone: ZONE_A } });
    expect(
      await refusal(launch(cloud, { Placement: { GroupName: 'hpc', AvailabilityZone: ZONE_B } })),
    ).toMatchObject({ name: 'InvalidParameterCombination' });
    expect(
      await refusal(
        cloud.run(() => cloud.ec2Client.send(new DeletePlacementGroupCommand({ GroupName: 'hpc' }))),
      ),
    ).toMatchObject({ name: 'InvalidPlacementGroup.InUse' });

    await cloud.run(() => cloud.ec2Client.send(new TerminateInstancesCommand({ InstanceIds: [member] })));
    await cloud.settle();
    const elsewhere = await launch(cloud, { Placement: { GroupName: 'hpc', AvailabilityZone: ZONE_B } });
    expect(await placementOf(cloud, elsewhere)).toMatchObject({ GroupName: 'hpc', AvailabilityZone: ZONE_B });
  });

  it('refuses a second group of the same name', async () => {
    const cloud = await createCloud();
    await createGroup(cloud, 'web', 'spread');
    expect(await refusal(createGroup(cloud, 'web', 'cluster'))).toMatchObject({
      name: 'InvalidPlacementGroup.Duplicate',
    });
  });
});
