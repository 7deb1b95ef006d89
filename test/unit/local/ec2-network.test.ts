import { DescribeAvailabilityZonesCommand, DescribeSubnetsCommand } from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { classifyAwsError } from '../../../functions/shared/aws-errors';
import { createCloud, launch, runInstances, ZONE_A, ZONE_B } from './ec2-harness';

describe('Availability Zones and subnets (API_AvailabilityZone, API_Subnet)', () => {
  it('reports a zone state set with setZoneState, and filters on it', async () => {
    const cloud = await createCloud();
    cloud.ec2.setZoneState(ZONE_A, 'impaired');

    const all = await cloud.run(() => cloud.ec2Client.send(new DescribeAvailabilityZonesCommand({})));
    const available = await cloud.run(() =>
      cloud.ec2Client.send(
        new DescribeAvailabilityZonesCommand({ Filters: [{ Name: 'state', Values: ['available'] }] }),
      ),
    );

    expect(all.AvailabilityZones?.find((zone) => zone.ZoneName === ZONE_A)?.State).toBe('impaired');
    expect(available.AvailabilityZones?.map((zone) => zone.ZoneName)).not.toContain(ZONE_A);
  });

  it('admits no launch into an impaired zone: InsufficientInstanceCapacity, classified as capacity', async () => {
    const cloud = await createCloud();
    cloud.ec2.setZoneState(ZONE_A, 'impaired');

    const launchIn = (zone: string) => launch(cloud, { Placement: { AvailabilityZone: zone } });

    const refused = await launchIn(ZONE_A).catch((error: unknown) => error);
    expect(refused).toMatchObject({ name: 'InsufficientInstanceCapacity' });
    expect(classifyAwsError(refused)).toBe('insufficient-capacity');
    await expect(launchIn(ZONE_B)).resolves.toMatch(/^i-/);
  });

  it('lists subnets with their VPC, free addresses and public-IP setting; a deleted subnet is gone', async () => {
    const cloud = await createCloud();
    const privateSubnet = cloud.ec2.addSubnet({ availabilityZone: ZONE_B, mapPublicIpOnLaunch: false });
    await runInstances(cloud, { MinCount: 2, MaxCount: 2, SubnetId: privateSubnet });

    const listed = await cloud.run(() =>
      cloud.ec2Client.send(
        new DescribeSubnetsCommand({ Filters: [{ Name: 'state', Values: ['available'] }] }),
      ),
    );
    const mine = listed.Subnets?.find((subnet) => subnet.SubnetId === privateSubnet);
    expect(mine).toMatchObject({
      AvailabilityZone: ZONE_B,
      VpcId: expect.stringMatching(/^vpc-/),
      MapPublicIpOnLaunch: false,
      AvailableIpAddressCount: 4091 - 2,
    });
    expect(() => cloud.ec2.deleteSubnet(privateSubnet)).toThrow(/DependencyViolation/);

    const unused = cloud.ec2.addSubnet({ availabilityZone: ZONE_B });
    cloud.ec2.deleteSubnet(unused);
    await expect(
      cloud.run(() => cloud.ec2Client.send(new DescribeSubnetsCommand({ SubnetIds: [unused] }))),
    ).rejects.toMatchObject({ name: 'InvalidSubnetID.NotFound' });
  });
});
