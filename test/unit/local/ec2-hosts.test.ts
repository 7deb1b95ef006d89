import {
  AllocateHostsCommand,
  DescribeHostsCommand,
  ModifyInstancePlacementCommand,
  ReleaseHostsCommand,
  type RunInstancesCommandInput,
  StartInstancesCommand,
  StopInstancesCommand,
} from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { classifyAwsError } from '../../../functions/shared/aws-errors';
import { type Cloud, createCloud, runInstances, ZONE_A } from './ec2-harness';

const launchOnHosts = (
  cloud: Cloud,
  placement: RunInstancesCommandInput['Placement'],
  instanceType: RunInstancesCommandInput['InstanceType'] = 'm7i.4xlarge',
) =>
  runInstances(cloud, { InstanceType: instanceType, Placement: { AvailabilityZone: ZONE_A, ...placement } });

/** A Dedicated Host for m7i.4xlarge in ZONE_A; `spec` adds auto-placement or a vCPU count. */
const m7iHost = (cloud: Cloud, spec: { autoPlacement?: 'on'; totalVCpus?: number } = {}) =>
  cloud.ec2.allocateHost({ availabilityZone: ZONE_A, instanceType: 'm7i.4xlarge', ...spec });

describe('Dedicated Hosts', () => {
  it('AllocateHosts creates hosts that DescribeHosts reports with their capacity', async () => {
    const cloud = await createCloud();

    const allocated = await cloud.run(() =>
      cloud.ec2Client.send(
        new AllocateHostsCommand({ AvailabilityZone: ZONE_A, InstanceType: 'm7i.4xlarge', Quantity: 2 }),
      ),
    );
    const described = await cloud.run(() =>
      cloud.ec2Client.send(new DescribeHostsCommand({ HostIds: allocated.HostIds })),
    );

    expect(allocated.HostIds).toHaveLength(2);
    expect(described.Hosts?.[0]?.AvailableCapacity?.AvailableInstanceCapacity).toEqual([
      { InstanceType: 'm7i.4xlarge', AvailableCapacity: 6, TotalCapacity: 6 },
    ]);
  });

  it('InsufficientHostCapacity on a full Dedicated Host', async () => {
    const cloud = await createCloud();
    const hostId = m7iHost(cloud, { totalVCpus: 32 });
    await launchOnHosts(cloud, { HostId: hostId });
    await launchOnHosts(cloud, { HostId: hostId });

    const error = await launchOnHosts(cloud, { HostId: hostId }).catch((caught: unknown) => caught);

    expect(error).toMatchObject({ name: 'InsufficientHostCapacity' });
    expect(classifyAwsError(error)).toBe('insufficient-capacity');
  });

  it('Tenancy host without HostId picks a host with auto-placement and room in the AZ', async () => {
    const cloud = await createCloud();
    const manual = m7iHost(cloud);
    const full = m7iHost(cloud, { autoPlacement: 'on', totalVCpus: 16 });
    const open = m7iHost(cloud, { autoPlacement: 'on' });
    await launchOnHosts(cloud, { HostId: full });

    const reservation = await launchOnHosts(cloud, { Tenancy: 'host' });

    expect(reservation.Instances?.[0]?.Placement).toMatchObject({ Tenancy: 'host', HostId: open });
    expect(reservation.Instances?.[0]?.Placement?.HostId).not.toBe(manual);
  });

  it('a host for one instance type refuses other types', async () => {
    const cloud = await createCloud();
    const hostId = m7iHost(cloud);

    await expect(launchOnHosts(cloud, { HostId: hostId }, 'm7i.large')).rejects.toMatchObject({
      name: 'InvalidParameterValue',
    });
  });

  it('a stopped instance with affinity host restarts only on its host', async () => {
    const cloud = await createCloud();
    const hostId = m7iHost(cloud, { totalVCpus: 16 });
    m7iHost(cloud, { autoPlacement: 'on' });
    const reservation = await launchOnHosts(cloud, { HostId: hostId, Affinity: 'host' });
    const instanceId = reservation.Instances?.[0]?.InstanceId ?? '';
    await cloud.settle();
    await cloud.run(() => cloud.ec2Client.send(new StopInstancesCommand({ InstanceIds: [instanceId] })));
    await cloud.settle();
    await launchOnHosts(cloud, { HostId: hostId });

    const start = cloud.run(() =>
      cloud.ec2Client.send(new StartInstancesCommand({ InstanceIds: [instanceId] })),
    );

    await expect(start).rejects.toMatchObject({ name: 'InsufficientHostCapacity' });
  });

  it('ModifyInstancePlacement needs a stopped instance', async () => {
    const cloud = await createCloud();
    const hostId = m7iHost(cloud);
    const reservation = await launchOnHosts(cloud, {});
    const instanceId = reservation.Instances?.[0]?.InstanceId ?? '';
    await cloud.settle();
    const move = () =>
      cloud.run(() =>
        cloud.ec2Client.send(
          new ModifyInstancePlacementCommand({ InstanceId: instanceId, HostId: hostId, Affinity: 'host' }),
        ),
      );

    await expect(move()).rejects.toMatchObject({ name: 'IncorrectInstanceState' });
    await cloud.run(() => cloud.ec2Client.send(new StopInstancesCommand({ InstanceIds: [instanceId] })));
    await cloud.settle();
    await expect(move()).resolves.toMatchObject({ Return: true });
    expect(cloud.ec2.instance(instanceId)).toMatchObject({ hostId, tenancy: 'host', affinity: 'host' });
  });

  it('a host with running instances is not released', async () => {
    const cloud = await createCloud();
    const hostId = m7iHost(cloud);
    await launchOnHosts(cloud, { HostId: hostId });

    const answer = await cloud.run(() =>
      cloud.ec2Client.send(new ReleaseHostsCommand({ HostIds: [hostId] })),
    );

    expect(answer.Successful).toEqual([]);
    expect(answer.Unsuccessful?.[0]?.ResourceId).toBe(hostId);
  });
});
