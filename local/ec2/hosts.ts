import type {
  AllocateHostsRequest,
  AllocateHostsResult,
  DescribeHostsRequest,
  DescribeHostsResult,
  Host,
  ReleaseHostsRequest,
  ReleaseHostsResult,
} from '@aws-sdk/client-ec2';
import { ec2Error, invalidParameterValue, missingParameter, notFound, notFoundOf } from './errors';
import { describePage, type FilterFields, namedOrAll, tagList, tagsFor } from './filters';
import type { Ec2Context, HostRecord, InstanceRecord } from './state';

/**
 * Dedicated Hosts (dedicated-hosts-overview, dedicated-hosts-understanding). A host is allocated
 * for one instance type, or for a whole family when instance families are mixed; its capacity
 * is a number of vCPUs that the instances placed on it share. Instances that are not stopped
 * or terminated hold their vCPUs (a stopped instance gives them back).
 */

/** vCPUs of a size, as in the instance-types tables for current generation families. */
export const vCpusOf = (instanceType: string): number => {
  const size = instanceType.split('.')[1] ?? '';
  if (size === 'xlarge') return 4;
  const multiple = /^(\d+)xlarge$/.exec(size);
  if (multiple) return 4 * Number(multiple[1]);
  return 2;
};

export const familyOf = (instanceType: string): string => instanceType.split('.')[0] ?? instanceType;

/** Chosen: a 2-socket host with 96 vCPUs, e.g. 48 large or 12 4xlarge instances. */
export const DEFAULT_HOST_VCPUS = 96;

const HOLDS_CAPACITY = new Set(['pending', 'running', 'stopping', 'shutting-down']);

const instancesOn = (ctx: Ec2Context, host: HostRecord): InstanceRecord[] =>
  [...ctx.instances.values()].filter(
    (instance) => instance.hostId === host.hostId && HOLDS_CAPACITY.has(instance.state),
  );

const usedVCpus = (ctx: Ec2Context, host: HostRecord): number =>
  instancesOn(ctx, host).reduce((sum, instance) => sum + vCpusOf(instance.instanceType), 0);

const supports = (host: HostRecord, instanceType: string): boolean =>
  host.instanceType === undefined
    ? host.instanceFamily === familyOf(instanceType)
    : host.instanceType === instanceType;

const hasRoom = (ctx: Ec2Context, host: HostRecord, instanceType: string, count: number): boolean =>
  host.state === 'available' &&
  supports(host, instanceType) &&
  usedVCpus(ctx, host) + count * vCpusOf(instanceType) <= host.totalVCpus;

export interface HostSpec {
  readonly availabilityZone: string;
  readonly instanceType?: string;
  readonly instanceFamily?: string;
  readonly autoPlacement?: 'on' | 'off';
  readonly totalVCpus?: number;
  readonly hostId?: string;
  readonly tags?: ReadonlyMap<string, string>;
}

export const newHost = (ctx: Ec2Context, spec: HostSpec): HostRecord => {
  if (!ctx.availabilityZones.includes(spec.availabilityZone))
    throw invalidParameterValue(`Invalid availability zone: [${spec.availabilityZone}]`);
  const family = spec.instanceFamily ?? (spec.instanceType ? familyOf(spec.instanceType) : undefined);
  if (family === undefined) throw missingParameter('InstanceType');
  const host: HostRecord = {
    hostId: spec.hostId === undefined ? ctx.ids.next('h') : ctx.ids.claim(spec.hostId),
    availabilityZone: spec.availabilityZone,
    instanceType: spec.instanceType,
    instanceFamily: family,
    totalVCpus: spec.totalVCpus ?? DEFAULT_HOST_VCPUS,
    autoPlacement: spec.autoPlacement ?? 'off',
    state: 'available',
    allocationTime: ctx.clock.now(),
    tags: new Map(spec.tags ?? []),
  };
  ctx.hosts.set(host.hostId, host);
  return host;
};

/** A host named by a call: it must be allocated (available) and in the instance's AZ. */
export const availableHostIn = (ctx: Ec2Context, hostId: string, availabilityZone: string): HostRecord => {
  const host = ctx.hosts.get(hostId);
  if (host?.state !== 'available') throw notFound('InvalidHostID.NotFound', [hostId], 'host');
  if (host.availabilityZone !== availabilityZone)
    throw ec2Error('InvalidParameterCombination', `Host ${host.hostId} is not in ${availabilityZone}`);
  return host;
};

/**
 * Where `count` instances of a type go on Dedicated Hosts (dedicated-hosts-understanding,
 * "Understand auto-placement and affinity"): a named host must exist in the AZ, support the type
 * and have room; without one, any host with auto-placement on and room in the AZ is used. A
 * full host answers InsufficientHostCapacity.
 */
export const chooseHost = (
  ctx: Ec2Context,
  request: { availabilityZone: string; instanceType: string; hostId: string | undefined; count: number },
): HostRecord => {
  if (request.hostId !== undefined) {
    const host = availableHostIn(ctx, request.hostId, request.availabilityZone);
    if (!supports(host, request.instanceType))
      throw invalidParameterValue(
        `Host ${host.hostId} does not support instance type ${request.instanceType}`,
      );
    if (!hasRoom(ctx, host, request.instanceType, request.count))
      throw ec2Error('InsufficientHostCapacity', `Insufficient capacity on host ${host.hostId}.`);
    return host;
  }
  const candidate = [...ctx.hosts.values()].find(
    (host) =>
      host.availabilityZone === request.availabilityZone &&
      host.autoPlacement === 'on' &&
      hasRoom(ctx, host, request.instanceType, request.count),
  );
  if (!candidate) {
    throw ec2Error(
      'InsufficientHostCapacity',
      `There is no Dedicated Host with auto-placement and capacity for ${request.instanceType} in ${request.availabilityZone}.`,
    );
  }
  return candidate;
};

/** API_AllocateHosts. */
export const allocateHosts = (ctx: Ec2Context, input: AllocateHostsRequest): AllocateHostsResult => {
  if (!input.AvailabilityZone) throw missingParameter('AvailabilityZone');
  if (input.InstanceType && input.InstanceFamily)
    throw ec2Error('InvalidParameterCombination', 'Specify either InstanceType or InstanceFamily, not both.');
  if (!input.InstanceType && !input.InstanceFamily) throw missingParameter('InstanceType');
  const quantity = input.Quantity ?? 1;
  const tags = tagsFor(input.TagSpecifications, 'dedicated-host');
  const hostIds = Array.from(
    { length: quantity },
    () =>
      newHost(ctx, {
        availabilityZone: input.AvailabilityZone as string,
        instanceType: input.InstanceType,
        instanceFamily: input.InstanceFamily,
        autoPlacement: input.AutoPlacement === 'on' ? 'on' : 'off',
        tags,
      }).hostId,
  );
  return { HostIds: hostIds };
};

const toSdkHost = (ctx: Ec2Context, host: HostRecord): Host => {
  const placed = instancesOn(ctx, host);
  const available = host.totalVCpus - usedVCpus(ctx, host);
  return {
    HostId: host.hostId,
    AvailabilityZone: host.availabilityZone,
    State: host.state,
    AutoPlacement: host.autoPlacement,
    AllocationTime: new Date(host.allocationTime),
    HostProperties: {
      InstanceType: host.instanceType,
      InstanceFamily: host.instanceFamily,
      TotalVCpus: host.totalVCpus,
      Cores: host.totalVCpus / 2,
      Sockets: 2,
    },
    Instances: placed.map((instance) => ({
      InstanceId: instance.instanceId,
      InstanceType: instance.instanceType,
      OwnerId: ctx.accountId,
    })),
    AvailableCapacity: {
      AvailableVCpus: available,
      AvailableInstanceCapacity: host.instanceType
        ? [
            {
              InstanceType: host.instanceType,
              AvailableCapacity: Math.floor(available / vCpusOf(host.instanceType)),
              TotalCapacity: Math.floor(host.totalVCpus / vCpusOf(host.instanceType)),
            },
          ]
        : [],
    },
    Tags: tagList(host.tags),
  };
};

const HOST_FILTERS: FilterFields<HostRecord> = {
  'availability-zone': (host) => [host.availabilityZone],
  state: (host) => [host.state],
  'instance-type': (host) => [host.instanceType],
  'auto-placement': (host) => [host.autoPlacement],
};

export const describeHosts = async (
  ctx: Ec2Context,
  input: DescribeHostsRequest,
): Promise<DescribeHostsResult> => {
  const named = namedOrAll(ctx.hosts, input.HostIds, notFoundOf('InvalidHostID.NotFound', 'host'));
  // DescribeHosts names its filter list `Filter`, not `Filters`.
  const request = { Filters: input.Filter, MaxResults: input.MaxResults, NextToken: input.NextToken };
  const { page, nextToken } = describePage(named, request, HOST_FILTERS, (host) => host.tags);
  return { Hosts: page.map((host) => toSdkHost(ctx, host)), NextToken: nextToken };
};

/** API_ReleaseHosts: a host with instances on it cannot be released (per-host failure). */
export const releaseHosts = (ctx: Ec2Context, input: ReleaseHostsRequest): ReleaseHostsResult => {
  const successful: string[] = [];
  const unsuccessful: NonNullable<ReleaseHostsResult['Unsuccessful']> = [];
  for (const hostId of input.HostIds ?? []) {
    const host = ctx.hosts.get(hostId);
    if (host?.state !== 'available') {
      unsuccessful.push({
        ResourceId: hostId,
        Error: { Code: 'InvalidHostID.NotFound', Message: `Host ${hostId} not found` },
      });
    } else if (instancesOn(ctx, host).length > 0) {
      unsuccessful.push({
        ResourceId: hostId,
        Error: { Code: 'Client.HostHasInstances', Message: `Host ${hostId} has running instances` },
      });
    } else {
      host.state = 'released';
      successful.push(hostId);
    }
  }
  return { Successful: successful, Unsuccessful: unsuccessful };
};
