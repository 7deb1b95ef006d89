import type {
  DescribeAvailabilityZonesRequest,
  DescribeAvailabilityZonesResult,
  DescribeSubnetsRequest,
  DescribeSubnetsResult,
} from '@aws-sdk/client-ec2';
import { ec2Error } from './errors';
import { applyFilters, describePage, namedOrAll } from './filters';
import type { Ec2Context, SubnetRecord, ZoneStateName } from './state';

/** The simulated Region's AZs and subnets: three AZs, a default subnet in each (default-vpc). */

export const VPC_ID = 'vpc-0a1b2c3d4e5f60718';

/** us-east-1 → use1: the prefix of AZ ids (az-ids), e.g. use1-az1. */
const zoneIdPrefix = (region: string): string => {
  const [area = '', direction = '', number = ''] = region.split('-');
  return `${area}${direction.slice(0, 1)}${number}`;
};

export const zoneIdOf = (ctx: Ec2Context, zone: string): string =>
  `${zoneIdPrefix(ctx.region)}-az${ctx.availabilityZones.indexOf(zone) + 1}`;

/**
 * InvalidSubnetID.NotFound, as RunInstances (one subnet) and DescribeSubnets (every missing id,
 * joined in the one singular sentence) answer it.
 */
export const unknownSubnets = (subnetIds: readonly string[]) =>
  ec2Error('InvalidSubnetID.NotFound', `The subnet ID '${subnetIds.join(', ')}' does not exist`);

export const zoneState = (ctx: Ec2Context, zone: string): ZoneStateName =>
  ctx.zoneStates.get(zone) ?? 'available';

/** The default VPC's CIDR block; its default subnets are /20 blocks of it (default-vpc). */
export const VPC_CIDR = '172.31.0.0/16';
const SUBNET_PREFIX = 20;

const IPV4 = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

const addressNumber = (address: string): number =>
  address.split('.').reduce((value, part) => value * 256 + Number(part), 0);

const addressText = (value: number): string =>
  [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');

const cidrRange = (cidrBlock: string): { first: number; size: number } => {
  const [base = '', bits = '32'] = cidrBlock.split('/');
  return { first: addressNumber(base), size: 2 ** (32 - Number(bits)) };
};

/** The /20 block of the default VPC that the `index`-th subnet gets (172.31.0.0/20, 172.31.16.0/20, …). */
export const subnetCidrBlock = (index: number): string => {
  const { first, size } = cidrRange(VPC_CIDR);
  const block = 2 ** (32 - SUBNET_PREFIX);
  if ((index + 1) * block > size)
    throw new Error(`the simulated VPC ${VPC_CIDR} has no room for subnet ${index + 1}`);
  return `${addressText(first + index * block)}/${SUBNET_PREFIX}`;
};

/**
 * subnet-sizing ("Subnet CIDR blocks"): AWS reserves the first four addresses of every subnet
 * (network, VPC router, DNS, future use) and the last one; no instance can have them.
 */
const isReserved = (offset: number, size: number): boolean => offset < 4 || offset === size - 1;

/** Addresses held by instances that are not terminated (their primary network interface exists). */
const addressesInUse = (ctx: Ec2Context, subnetId: string): Set<string> =>
  new Set(
    [...ctx.instances.values()]
      .filter((instance) => instance.subnetId === subnetId && instance.state !== 'terminated')
      .map((instance) => instance.privateIpAddress),
  );

export const availableAddresses = (ctx: Ec2Context, subnet: SubnetRecord): number =>
  cidrRange(subnet.cidrBlock).size - 5 - addressesInUse(ctx, subnet.subnetId).size;

/**
 * API_RunInstances `PrivateIpAddress`: "You must specify a value from the IPv4 address range of the
 * subnet", and it must be free. EC2's answer to an address in use is `InvalidIPAddress.InUse`
 * ("Address … is in use"); an address outside the subnet or reserved by AWS is refused with
 * `InvalidParameterValue` (the API reference names no code for these: the simulator's choice).
 */
export const checkRequestedAddress = (ctx: Ec2Context, subnet: SubnetRecord, address: string): void => {
  if (!IPV4.test(address))
    throw ec2Error(
      'InvalidParameterValue',
      `Invalid value '${address}' for PrivateIpAddress: not an IPv4 address`,
    );
  const { first, size } = cidrRange(subnet.cidrBlock);
  const offset = addressNumber(address) - first;
  if (offset < 0 || offset >= size)
    throw ec2Error(
      'InvalidParameterValue',
      `Address ${address} does not fall within the subnet's address range (${subnet.cidrBlock})`,
    );
  if (isReserved(offset, size))
    throw ec2Error('InvalidParameterValue', `Address ${address} is reserved by AWS in ${subnet.cidrBlock}`);
  if (addressesInUse(ctx, subnet.subnetId).has(address))
    throw ec2Error('InvalidIPAddress.InUse', `Address ${address} is in use.`);
};

/**
 * The primary private IPv4 address of a new instance: the requested one (checked by
 * checkRequestedAddress), or the next free address after the last one handed out, so an address
 * freed by a terminated instance is not handed straight back (EC2 promises nothing either way).
 */
export const assignPrivateAddress = (ctx: Ec2Context, subnet: SubnetRecord, requested?: string): string => {
  if (requested !== undefined) {
    checkRequestedAddress(ctx, subnet, requested);
    return requested;
  }
  const { first, size } = cidrRange(subnet.cidrBlock);
  const used = addressesInUse(ctx, subnet.subnetId);
  for (let step = 0; step < size; step++) {
    const offset = (subnet.nextAddressOffset + step) % size;
    const address = addressText(first + offset);
    if (isReserved(offset, size) || used.has(address)) continue;
    subnet.nextAddressOffset = offset + 1;
    return address;
  }
  throw ec2Error(
    'InsufficientFreeAddressesInSubnet',
    `There are not enough free addresses in subnet '${subnet.subnetId}' to satisfy the requested number of instances.`,
  );
};

export const describeAvailabilityZones = async (
  ctx: Ec2Context,
  input: DescribeAvailabilityZonesRequest,
): Promise<DescribeAvailabilityZonesResult> => {
  const unknown = (input.ZoneNames ?? []).find((zone) => !ctx.availabilityZones.includes(zone));
  if (unknown !== undefined)
    throw ec2Error('InvalidParameterValue', `Invalid availability zone: [${unknown}]`);
  const zones = input.ZoneNames?.length ? input.ZoneNames : ctx.availabilityZones;
  const matching = applyFilters(zones, input.Filters, {
    'zone-name': (zone) => [zone],
    'zone-id': (zone) => [zoneIdOf(ctx, zone)],
    state: (zone) => [zoneState(ctx, zone)],
    'region-name': () => [ctx.region],
  });
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
  const named = namedOrAll(ctx.subnets, input.SubnetIds, unknownSubnets);
  const { page, nextToken } = describePage(named, input, {
    'subnet-id': (subnet) => [subnet.subnetId],
    'availability-zone': (subnet) => [subnet.availabilityZone],
    'vpc-id': () => [VPC_ID],
    'cidr-block': (subnet) => [subnet.cidrBlock],
    state: () => ['available'],
  });
  return {
    Subnets: page.map((subnet) => ({
      SubnetId: subnet.subnetId,
      AvailabilityZone: subnet.availabilityZone,
      AvailabilityZoneId: zoneIdOf(ctx, subnet.availabilityZone),
      VpcId: VPC_ID,
      State: 'available',
      CidrBlock: subnet.cidrBlock,
      AvailableIpAddressCount: availableAddresses(ctx, subnet),
      MapPublicIpOnLaunch: subnet.mapPublicIpOnLaunch,
      DefaultForAz: subnet.mapPublicIpOnLaunch,
      OwnerId: ctx.accountId,
    })),
    NextToken: nextToken,
  };
};
