import {
  AllocateAddressCommand,
  AssociateAddressCommand,
  DescribeAddressesCommand,
  DescribeInstancesCommand,
  DescribeSubnetsCommand,
  DisassociateAddressCommand,
  ReleaseAddressCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { type Cloud, createCloud, launch, ZONE_A } from './ec2-harness';

/**
 * Private and Elastic IP addresses (API_RunInstances `PrivateIpAddress`, subnet-sizing,
 * elastic-ip-addresses-eip, API_AssociateAddress, API_DescribeAddresses).
 */

const subnetOf = async (cloud: Cloud, zone = ZONE_A) => {
  const answer = await cloud.run(() =>
    cloud.ec2Client.send(
      new DescribeSubnetsCommand({ Filters: [{ Name: 'availability-zone', Values: [zone] }] }),
    ),
  );
  const subnet = answer.Subnets?.[0];
  return { subnetId: subnet?.SubnetId ?? '', cidrBlock: subnet?.CidrBlock ?? '' };
};

const privateIpOf = async (cloud: Cloud, instanceId: string): Promise<string | undefined> => {
  const answer = await cloud.run(() =>
    cloud.ec2Client.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] })),
  );
  return answer.Reservations?.[0]?.Instances?.[0]?.PrivateIpAddress;
};

const refusal = (promise: Promise<unknown>) => promise.catch((error: unknown) => error);

describe('private IPv4 addresses', () => {
  it('gives each instance a free address of its subnet, never one AWS reserves', async () => {
    const cloud = await createCloud();
    const { subnetId, cidrBlock } = await subnetOf(cloud);
    expect(cidrBlock).toBe('172.31.0.0/20');
    const first = await launch(cloud, { SubnetId: subnetId });
    const second = await launch(cloud, { SubnetId: subnetId });

    const addresses = [await privateIpOf(cloud, first), await privateIpOf(cloud, second)];
    expect(addresses).toEqual(['172.31.0.4', '172.31.0.5']);
  });

  it('launches with the address asked for, inside the subnet and free', async () => {
    const cloud = await createCloud();
    const { subnetId } = await subnetOf(cloud);
    const instanceId = await launch(cloud, { SubnetId: subnetId, PrivateIpAddress: '172.31.7.20' });
    expect(await privateIpOf(cloud, instanceId)).toBe('172.31.7.20');
  });

  it.each([
    ['outside the subnet', '172.31.16.9', 'InvalidParameterValue'],
    ['the network address', '172.31.0.0', 'InvalidParameterValue'],
    ['the VPC router', '172.31.0.1', 'InvalidParameterValue'],
    ['reserved for the future', '172.31.0.3', 'InvalidParameterValue'],
    ['the last address', '172.31.15.255', 'InvalidParameterValue'],
    ['not an address', '172.31.0.300', 'InvalidParameterValue'],
  ])('refuses an address %s', async (_what, address, code) => {
    const cloud = await createCloud();
    const { subnetId } = await subnetOf(cloud);
    const refused = await refusal(launch(cloud, { SubnetId: subnetId, PrivateIpAddress: address }));
    expect(refused).toMatchObject({ name: code });
    expect(cloud.ec2.instances()).toEqual([]);
  });

  it('refuses an address in use with InvalidIPAddress.InUse, and frees it when the instance terminates', async () => {
    // Measured latencies, so the instance is seen shutting down before it is terminated.
    const cloud = await createCloud({ latency: 'calibrated' });
    const { subnetId } = await subnetOf(cloud);
    const holder = await launch(cloud, { SubnetId: subnetId, PrivateIpAddress: '172.31.0.50' });

    const refused = await refusal(launch(cloud, { SubnetId: subnetId, PrivateIpAddress: '172.31.0.50' }));
    expect(refused).toMatchObject({
      name: 'InvalidIPAddress.InUse',
      message: 'Address 172.31.0.50 is in use.',
    });

    await cloud.run(() => cloud.ec2Client.send(new TerminateInstancesCommand({ InstanceIds: [holder] })));
    // Shutting down: its network interface, and the address, are still there.
    expect(
      await refusal(launch(cloud, { SubnetId: subnetId, PrivateIpAddress: '172.31.0.50' })),
    ).toMatchObject({
      name: 'InvalidIPAddress.InUse',
    });
    await cloud.settle();
    expect(await privateIpOf(cloud, holder)).toBeUndefined();
    const again = await launch(cloud, { SubnetId: subnetId, PrivateIpAddress: '172.31.0.50' });
    expect(await privateIpOf(cloud, again)).toBe('172.31.0.50');
  });

  it('refuses an address for a launch of more than one instance', async () => {
    const cloud = await createCloud();
    const { subnetId } = await subnetOf(cloud);
    const refused = await refusal(
      launch(cloud, { SubnetId: subnetId, PrivateIpAddress: '172.31.0.60', MinCount: 1, MaxCount: 2 }),
    );
    expect(refused).toMatchObject({ name: 'InvalidParameterCombination' });
  });

  it('does not hand a freed address straight back to the next launch', async () => {
    const cloud = await createCloud();
    const { subnetId } = await subnetOf(cloud);
    const first = await launch(cloud, { SubnetId: subnetId });
    const address = await privateIpOf(cloud, first);
    await cloud.run(() => cloud.ec2Client.send(new TerminateInstancesCommand({ InstanceIds: [first] })));
    await cloud.settle();
    const next = await launch(cloud, { SubnetId: subnetId });
    expect(await privateIpOf(cloud, next)).not.toBe(address);
  });
});

describe('Elastic IP addresses', () => {
  const allocate = async (cloud: Cloud) => {
    const answer = await cloud.run(() => cloud.ec2Client.send(new AllocateAddressCommand({ Domain: 'vpc' })));
    return { allocationId: answer.AllocationId ?? '', publicIp: answer.PublicIp ?? '' };
  };
  const addressOf = async (cloud: Cloud, allocationId: string) => {
    const answer = await cloud.run(() =>
      cloud.ec2Client.send(new DescribeAddressesCommand({ AllocationIds: [allocationId] })),
    );
    return answer.Addresses?.[0];
  };

  it('associates an address with an instance, which then shows it, and describes it by instance id', async () => {
    const cloud = await createCloud();
    const instanceId = await launch(cloud);
    await cloud.settle();
    const { allocationId, publicIp } = await allocate(cloud);

    await cloud.run(() =>
      cloud.ec2Client.send(
        new AssociateAddressCommand({ AllocationId: allocationId, InstanceId: instanceId }),
      ),
    );

    const byInstance = await cloud.run(() =>
      cloud.ec2Client.send(
        new DescribeAddressesCommand({ Filters: [{ Name: 'instance-id', Values: [instanceId] }] }),
      ),
    );
    expect(byInstance.Addresses).toEqual([
      expect.objectContaining({
        AllocationId: allocationId,
        InstanceId: instanceId,
        PrivateIpAddress: await privateIpOf(cloud, instanceId),
      }),
    ]);
    const described = await cloud.run(() =>
      cloud.ec2Client.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] })),
    );
    expect(described.Reservations?.[0]?.Instances?.[0]?.PublicIpAddress).toBe(publicIp);
  });

  it('is idempotent for the instance it is on, and refuses to move without AllowReassociation', async () => {
    const cloud = await createCloud();
    const first = await launch(cloud);
    const second = await launch(cloud);
    await cloud.settle();
    const { allocationId } = await allocate(cloud);
    const associate = (instanceId: string, AllowReassociation?: boolean) =>
      cloud.run(() =>
        cloud.ec2Client.send(
          new AssociateAddressCommand({
            AllocationId: allocationId,
            InstanceId: instanceId,
            AllowReassociation,
          }),
        ),
      );

    const once = await associate(first, false);
    const twice = await associate(first, false);
    expect(twice.AssociationId).toBe(once.AssociationId);

    expect(await refusal(associate(second, false))).toMatchObject({ name: 'Resource.AlreadyAssociated' });
    expect((await addressOf(cloud, allocationId))?.InstanceId).toBe(first);

    // "Reassociation is automatic" unless refused.
    await associate(second);
    expect((await addressOf(cloud, allocationId))?.InstanceId).toBe(second);
  });

  it('is disassociated, still allocated, when its instance terminates; released only once free', async () => {
    const cloud = await createCloud();
    const instanceId = await launch(cloud);
    await cloud.settle();
    const { allocationId } = await allocate(cloud);
    const { AssociationId } = await cloud.run(() =>
      cloud.ec2Client.send(
        new AssociateAddressCommand({ AllocationId: allocationId, InstanceId: instanceId }),
      ),
    );
    expect(
      await refusal(
        cloud.run(() => cloud.ec2Client.send(new ReleaseAddressCommand({ AllocationId: allocationId }))),
      ),
    ).toMatchObject({ name: 'InvalidIPAddress.InUse' });

    await cloud.run(() => cloud.ec2Client.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] })));
    await cloud.settle();

    const address = await addressOf(cloud, allocationId);
    expect(address).toMatchObject({ AllocationId: allocationId });
    expect(address?.InstanceId).toBeUndefined();
    expect(
      await refusal(cloud.run(() => cloud.ec2Client.send(new DisassociateAddressCommand({ AssociationId })))),
    ).toMatchObject({ name: 'InvalidAssociationID.NotFound' });
    await cloud.run(() => cloud.ec2Client.send(new ReleaseAddressCommand({ AllocationId: allocationId })));
    expect(
      await refusal(
        cloud.run(() =>
          cloud.ec2Client.send(new DescribeAddressesCommand({ AllocationIds: [allocationId] })),
        ),
      ),
    ).toMatchObject({ name: 'InvalidAllocationID.NotFound' });
  });

  it('refuses an instance that is not running or stopped', async () => {
    const cloud = await createCloud({ latency: 'calibrated' });
    const instanceId = await launch(cloud);
    const { allocationId } = await allocate(cloud);
    // Still pending: the launch has not settled.
    expect(
      await refusal(
        cloud.run(() =>
          cloud.ec2Client.send(
            new AssociateAddressCommand({ AllocationId: allocationId, InstanceId: instanceId }),
          ),
        ),
      ),
    ).toMatchObject({ name: 'IncorrectInstanceState' });
  });
});
