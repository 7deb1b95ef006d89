import type { PoolMember } from '../../pools/domain/lifecycle';
import { isManagedBy, TAG as POOL_TAG } from '../../pools/domain/tags';
import type { ShelvingSettings } from '../config';
import type { Decision } from './actions';
import { launchState } from './launch-outcomes';
import { inPlaceSkipReason } from './saga/unshelve-in-place';
import type { ObservedInstance, ShelfRecord } from './types';

/**
 * Pools serve unshelve (issue 19): a ready member of a pool the deployment names
 * (`unshelveFromPools`) stands in for the replacement launch, a running one first; a stopped one
 * is started once the pool handed it over (the saga, unshelve-in-place.ts). Its root is then
 * replaced in place with the retained root, so what the member booted does not matter; what must match is what the
 * swap keeps: the instance type, the AZ and subnet, the security groups, the instance profile,
 * the metadata options and the AMI (architecture, boot mode, product codes and its own block
 * devices). What it cannot keep, its private address, is why the setting needs `keepPrivateIp`
 * off; Instance Unshelved names the address it came back with.
 */

/** The pool tags a member carries until it is handed over (as a claim removes them). */
export const POOL_MEMBER_TAGS: readonly string[] = [
  POOL_TAG.pool,
  POOL_TAG.memberState,
  POOL_TAG.optIn,
  POOL_TAG.claim,
];

/** The claim id an unshelve writes on the member it takes: a crashed take finds it again. */
export const poolClaimId = (record: ShelfRecord): string =>
  `unshelve:${record.recordId}:${record.unshelve?.attempt ?? 0}`;

/** Why this record's unshelve may not take a pool member, or undefined when it may. */
export const poolServeSkipReason = (record: ShelfRecord, settings: ShelvingSettings): string | undefined => {
  if (settings.unshelveFromPools.length === 0) return 'no pool serves unshelve (unshelveFromPools)';
  // A member's root is replaced while it runs: only the in-place path can use one.
  const notInPlace = inPlaceSkipReason(record, settings);
  if (notInPlace !== undefined) return notInPlace;
  const { config } = record;
  if (record.unshelve?.poolMember !== undefined) return 'this unshelve took a pool member already';
  if (record.unshelve?.relocation !== undefined) return 'it comes back from the snapshots in another AZ';
  if (config.tenancy !== 'default') return `its tenancy is ${config.tenancy}`;
  if (config.placementGroup !== undefined)
    return `it belongs in placement group ${config.placementGroup.groupName}`;
  // The credit option of a member is not observed (DescribeInstanceCreditSpecifications).
  if (config.cpuCredits !== undefined) return 'its CPU credit option is not checked on pool members';
  return undefined;
};

/**
 * Whether a member could serve the record by what its record alone says (before any describe):
 * idle (ready, running or stopped), the pool's own (not a claim's launch) and of the record's
 * configuration.
 */
export const mayServe = (record: ShelfRecord, member: PoolMember): boolean => {
  const { config } = record;
  return (
    member.state === 'ready' &&
    member.origin === 'pool' &&
    member.claimId === undefined &&
    member.imageId === config.imageId &&
    member.instanceType === config.instanceType &&
    member.availabilityZone === config.availabilityZone &&
    member.subnetId === config.subnetId
  );
};

const sameSet = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && [...a].sort().join(',') === [...b].sort().join(',');

/**
 * Why the member's instance, as EC2 shows it, cannot stand in for the record's replacement, or
 * undefined when it can. Checked again against EC2 because the member record is warmboot's own
 * bookkeeping: the tags prove the pool still holds it, the rest that the swap keeps what matters.
 */
export const memberUnfit = (
  record: ShelfRecord,
  pool: string,
  member: PoolMember,
  instance: ObservedInstance,
): string | undefined => {
  const { config } = record;
  if (!mayServe(record, member)) return 'its record is not a ready member of this configuration';
  if (!isManagedBy(instance.tags, pool)) return `it no longer carries pool ${pool}'s tags`;
  // Not on its way between the two (the pools reconcile starting or stopping it).
  if (instance.state !== (member.running ? 'running' : 'stopped')) return `it is ${instance.state}`;
  if (instance.imageId !== config.imageId || instance.instanceType !== config.instanceType)
    return 'another image or instance type';
  if (instance.subnetId !== config.subnetId || instance.availabilityZone !== config.availabilityZone)
    return 'another subnet';
  if (!sameSet(instance.securityGroupIds, config.securityGroupIds)) return 'other security groups';
  if (instance.iamInstanceProfileArn !== config.iamInstanceProfileArn) return 'another instance profile';
  if (instance.tenancy !== 'default') return `tenancy ${instance.tenancy}`;
  if (
    config.metadata !== undefined &&
    (instance.metadata?.endpoint !== config.metadata.endpoint ||
      instance.metadata.hopLimit !== config.metadata.hopLimit)
  )
    return 'other metadata options';
  if (config.ebsOptimized !== undefined && instance.ebsOptimized !== config.ebsOptimized)
    return 'another EBS optimization';
  // Any volume besides the root would stay on the unshelved instance (or take a data device).
  if (instance.blockDevices.some((device) => device.deviceName !== config.rootDeviceName))
    return 'it has volumes besides its root';
  if (instance.rootDeviceName !== config.rootDeviceName) return 'another root device name';
  return undefined;
};

/**
 * The member that can stand in for the record's replacement: a running one before a stopped one
 * (it saves the start as well as the launch), then the oldest.
 */
export const choosePoolMember = (
  record: ShelfRecord,
  candidates: readonly {
    readonly pool: string;
    readonly member: PoolMember;
    readonly instance?: ObservedInstance;
  }[],
): { readonly pool: string; readonly member: PoolMember } | undefined =>
  [...candidates]
    .sort(
      (a, b) =>
        Number(b.member.running) - Number(a.member.running) ||
        a.member.launchedAt - b.member.launchedAt ||
        a.member.instanceId.localeCompare(b.member.instanceId),
    )
    .find(
      ({ pool, member, instance }) =>
        instance !== undefined && memberUnfit(record, pool, member, instance) === undefined,
    );

/**
 * The record took `instanceId` from `pool` (claimed there under poolClaimId): it is the record's
 * replacement from now on, and its root is replaced in place once the pool hands it over.
 */
export const poolMemberTaken = (
  record: ShelfRecord,
  pool: string,
  instanceId: string,
  now: number,
): Decision => ({
  to: 'unshelve.replace-root',
  set: {
    unshelve: launchState(record, now, {
      path: 'in-place',
      replacementInstanceId: instanceId,
      poolMember: { pool, instanceId, claimId: poolClaimId(record) },
    }),
  },
  actions: [],
  recheckAt: now,
  reason: `took member ${instanceId} of pool ${pool} as the replacement`,
});

/**
 * The pool took its member back before handing it over (the pools reconcile released or retired
 * it after its claim timed out): it is not the record's replacement, which is launched instead.
 * The taken member stays on the record, so this unshelve does not take another.
 */
export const poolMemberLost = (record: ShelfRecord, reason: string, now: number): Decision => ({
  to: 'unshelve.launch',
  set: { unshelve: launchState(record, now, { path: 'fast', replacementInstanceId: undefined, reason }) },
  actions: [],
  recheckAt: now,
  reason,
});
