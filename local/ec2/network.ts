import type {
  DescribeAvailabilityZonesRequest,
  DescribeAvailabilityZonesResult,
  DescribeSubnetsRequest,
  DescribeSubnetsResult,
} from '@aws-sdk/client-ec2';
import { ec2Error } from './errors';
import { applyFilters, paginate, requireAll } from './filters';
import type { Ec2Context, ZoneStateName } from './state';

/** The simulated Region's AZs and subnets: three AZs, a default subnet in each (default-vpc). */

export const VPC_ID = 'vpc-0a1b2c3d4e5f60718';

/** us-east-1 → use1: the prefix of AZ ids (az-ids), e.g. use1-az1. */
const zoneIdPrefix = (region: string): string => {
  const [area = '', direction = '', number = ''] = region.split('-');
  return `${area}${direction.slice(0, 1)}${number}`;
};

export const zoneIdOf = (ctx: Ec2Context, zone: string): string =>
  `${zoneIdPrefix(ctx.region)}-az${ctx.availabilityZones.indexOf(zone) + 1}`;

export const zoneState = (ctx: Ec2Context, zone: string): ZoneStateName =>
  ctx.zoneStates.get(zone) ?? 'available';

/** A /20 default subnet has 4,096 addresses; AWS reserves 5 (subnet-sizing). */
const DEFAULT_SUBNET_ADDRESSES = 4091;

const availableAddresses = (ctx: Ec2Context, subnetId: string): number =>
  DEFAULT_SUBNET_ADDRESSES -
  [...ctx.instances.values()].filter(
    (instance) => instance.subnetId === subnetId && instance.state !== 'terminated',
  ).length;

export const describeAvailabilityZones = async (
  ctx: Ec2Context,
  input: DescribeAvailabilityZonesRequest,
): Promise<DescribeAvailabilityZonesResult> => {
  const unknown = (input.ZoneNames ?? []).find((zone) => !ctx.availabilityZones.includes(zone));
  if (unknown !== undefined)
    throw ec2Error('InvalidParameterValue', `Invalid availability zone: [${unknown}]`);
  const zones = input.ZoneNames?.length ? input.ZoneNames : ctx.availabilityZones;
  const matching = applyFilters(
    zones,
    input.Filters,
    {
      'zone-name': (zone) => [zone],
      'zone-id': (zone) => [zoneIdOf(ctx, zone)],
      state: (zone) => [zoneState(ctx, zone)],
      'region-name': () => [ctx.region],
    },
    () => new Map(),
  );
  return {
    AvailabilityZones: matching.map((zone) => ({
      ZoneName: zone,
      ZoneId: zoneIdOf(ctx, zone),
      State: zoneState(ctx, zone),
      RegionName: ctx.region,
      ZoneType: 'availability-zone',
      OptInStatus: 'opt-in-not-required',
    })),
  };
};

export const describeSubnets = async (
  ctx: Ec2Context,
  input: DescribeSubnetsRequest,
): Promise<DescribeSubnetsResult> => {
  const candidates = input.SubnetIds?.length
    ? requireAll(ctx.subnets, input.SubnetIds, (missing) =>
        ec2Error('InvalidSubnetID.NotFound', `The subnet ID '${missing.join(', ')}' does not exist`),
      )
    : ctx.subnets.values();
  const matching = applyFilters(
    candidates,
    input.Filters,
    {
      'subnet-id': (subnet) => [subnet.subnetId],
      'availability-zone': (subnet) => [subnet.availabilityZone],
      'vpc-id': () => [VPC_ID],
      state: () => ['available'],
    },
    () => new Map(),
  );
  const { page, nextToken } = paginate(matching, input.MaxResults, input.NextToken);
  return {
    Subnets: page.map((subnet) => ({
      SubnetId: subnet.subnetId,
      AvailabilityZone: subnet.availabilityZone,
      AvailabilityZoneId: zoneIdOf(ctx, subnet.availabilityZone),
      VpcId: VPC_ID,
      State: 'available',
      AvailableIpAddressCount: availableAddresses(ctx, subnet.subnetId),
      MapPublicIpOnLaunch: subnet.mapPublicIpOnLaunch,
      DefaultForAz: subnet.mapPublicIpOnLaunch,
      OwnerId: ctx.accountId,
    })),
    NextToken: nextToken,
  };
};
