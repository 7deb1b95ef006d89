import type { PoolEc2 } from '../../pools/adapters/ec2';
import type { PoolStore } from '../../pools/adapters/store';
import { deleteMember, writeMember } from '../../pools/application/members';
import { type PoolMember, transition } from '../../pools/domain/lifecycle';
import { isManagedBy } from '../../pools/domain/tags';
import { isGoneState } from '../../shared/schemas/aws-events';
import { OPT_IN_TAG, OPTED_IN } from '../../shared/tags';
import type { ShelvingDependencies } from '../dependencies';
import type { Action } from '../domain/actions';
import {
  choosePoolMember,
  mayServe,
  POOL_MEMBER_TAGS,
  poolClaimId,
  poolMemberLost,
  poolMemberTaken,
  poolServeSkipReason,
} from '../domain/pool-members';
import type { ShelfRecord } from '../domain/types';
import { writeDecision } from './decisions';
import type { FailCalls } from './progress';

/** The pools model the shelving function works on when pools serve unshelve (`unshelveFromPools`). */
export interface PoolAccess {
  readonly store: PoolStore;
  readonly ec2: Pick<PoolEc2, 'describe' | 'untag' | 'untagVolumes'>;
}

type HandOver = Extract<Action, { readonly kind: 'hand-over-pool-member' }>;

/**
 * Before the fast path launches, each record that may (domain/pool-members.ts) takes a running
 * member of a pool that serves unshelve instead, through the claim's own provenance checks: the
 * member record's conditional `ready → claimed` write under the record's claim id, then the
 * record's write naming it as the replacement. Counted as a claim for the pool's sizing. Answers
 * the records that need no launch now: those that took a member, and those whose take failed
 * part-way (the next round finds the member again by its claim id).
 */
export const takePoolMembers = async (
  deps: ShelvingDependencies,
  records: readonly ShelfRecord[],
  fail: FailCalls,
): Promise<Set<string>> => {
  const served = new Set<string>();
  const pools = deps.pools;
  const eligible = records.filter(
    (record) =>
      record.unshelve?.batch === undefined && poolServeSkipReason(record, deps.settings) === undefined,
  );
  if (pools === undefined || eligible.length === 0) return served;
  const listed = new Map<string, PoolMember[]>();
  try {
    for (const pool of deps.settings.unshelveFromPools) listed.set(pool, await pools.store.listMembers(pool));
  } catch (error) {
    // The pools table cannot be read: these records launch as usual.
    fail([], error);
    return served;
  }
  for (const record of eligible) {
    try {
      if (await takeOne(deps, pools.store, record, listed)) served.add(record.recordId);
    } catch (error) {
      fail([record.recordId], error);
      served.add(record.recordId);
    }
  }
  return served;
};

const takeOne = async (
  deps: ShelvingDependencies,
  store: PoolStore,
  record: ShelfRecord,
  listed: Map<string, PoolMember[]>,
): Promise<boolean> => {
  const claimId = poolClaimId(record);
  const now = deps.clock.now();
  // A run that died between the member's claim and the record's write took this one already.
  for (const [pool, members] of listed) {
    const mine = members.find((member) => member.claimId === claimId && member.state === 'claimed');
    if (mine) {
      await writeDecision(deps, record, poolMemberTaken(record, pool, mine.instanceId, now), now);
      return true;
    }
  }
  let candidates = [...listed].flatMap(([pool, members]) =>
    members.filter((member) => mayServe(record, member)).map((member) => ({ pool, member })),
  );
  if (candidates.length === 0) return false;
  const observed = new Map(
    (await deps.ec2.describeInstances(candidates.map(({ member }) => member.instanceId))).map((instance) => [
      instance.instanceId,
      instance,
    ]),
  );
  for (;;) {
    const chosen = choosePoolMember(
      record,
      candidates.map((candidate) => ({ ...candidate, instance: observed.get(candidate.member.instanceId) })),
    );
    if (!chosen) return false;
    const claimed = transition(chosen.member, 'claimed', now, { claimId });
    const won = await store.updateMember(chosen.member, claimed);
    // Either way no other record of this round may pick it.
    listed.set(
      chosen.pool,
      (listed.get(chosen.pool) ?? []).filter((member) => member.instanceId !== chosen.member.instanceId),
    );
    candidates = candidates.filter((candidate) => candidate.member.instanceId !== chosen.member.instanceId);
    if (!won) continue; // a claim (or another unshelve) took it first
    await store.recordRequest(chosen.pool, now);
    const written = await writeDecision(
      deps,
      record,
      poolMemberTaken(record, chosen.pool, chosen.member.instanceId, now),
      now,
    );
    // The record moved on meanwhile (another handling): the member goes back, untouched.
    if (!written)
      await writeMember(store, claimed, transition(claimed, 'ready', now, { claimId: undefined }));
    return true;
  }
};

/**
 * The pool hands the member over to the record, as it does to a claim: the member and its
 * volumes opt in to shelving, the pool tags come off its volumes, then off the instance (their
 * fence is the instance's pool tags), and the member record ends. Only while the member is still claimed under the record's claim id: a member the
 * pools reconcile took back first (released or retired after its claim timeout) is not the
 * record's, which then launches as usual. Idempotent from any point.
 */
export const handOverPoolMember = async (
  deps: ShelvingDependencies,
  record: ShelfRecord,
  action: HandOver,
): Promise<void> => {
  const pools = deps.pools;
  const now = deps.clock.now();
  if (pools === undefined) {
    // The deployment stopped letting pools serve unshelve while this record held a member: the
    // function may no longer read the pools table nor take the pool tags off. Nothing of the
    // record is on the member yet (the hand-over comes first), so the record gives it up and
    // launches as usual; the pools reconcile takes the member back when its claim times out.
    const why = `pools no longer serve unshelve (unshelveFromPools is empty): member ${action.instanceId} of pool ${action.pool} given up`;
    await writeDecision(deps, record, poolMemberLost(record, why, now), now);
    return;
  }
  const instance = await pools.ec2.describe(action.instanceId);
  // Gone: the saga sees it gone and launches a replacement.
  if (!instance || isGoneState(instance.state)) return;
  const member = await pools.store.findMember(action.instanceId);
  const ours =
    member?.claimId === action.claimId && (member.state === 'claimed' || member.state === 'handed-over');
  if (isManagedBy(instance.tags, action.pool)) {
    if (!ours) {
      const why = `pool ${action.pool} took member ${action.instanceId} back (${member?.state ?? 'no record'}) before it was handed over`;
      await writeDecision(deps, record, poolMemberLost(record, why, now), now);
      return;
    }
    // It opts in to shelving first: the shelving role changes only what carries that tag (its
    // IAM lets it write that one tag on members of the pools that serve unshelve), and the pool
    // tags come off under it.
    await deps.ec2.createTags([action.instanceId, ...(instance.volumeIds ?? [])], {
      [OPT_IN_TAG.shelving]: OPTED_IN,
    });
    await pools.ec2.untagVolumes(instance, action.pool, POOL_MEMBER_TAGS);
    await pools.ec2.untag(action.instanceId, POOL_MEMBER_TAGS);
  }
  if (!ours || member === undefined) return;
  const handedOver =
    member.state === 'claimed'
      ? await writeMember(pools.store, member, transition(member, 'handed-over', now))
      : member;
  await deleteMember(pools.store, handedOver);
};
