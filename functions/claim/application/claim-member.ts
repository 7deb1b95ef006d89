import type { PoolRecord } from '../../pools/adapters/store';
import { writeMember } from '../../pools/application/members';
import { WAITING_FOR_INIT } from '../../pools/domain/claims';
import { type PoolMember, transition } from '../../pools/domain/lifecycle';
import type { ObservedInstance } from '../../pools/domain/reconcile';
import { awsErrorCode } from '../../shared/aws-errors';
import { CapacityError, IncorrectStateError, WarmbootError } from '../../shared/errors';
import { waitFor } from '../../shared/polling';
import { isGoneState as isGone } from '../../shared/schemas/aws-events';
import type { ClaimDependencies } from '../dependencies';
import { type ClaimPath, rankCandidates, wantedInstanceType } from '../domain/choice';
import { nextClaimStep, poolServes, poolUnavailable } from '../domain/saga';
import { coldLaunch } from './cold-launch';
import { finish, handOver } from './hand-over';
import { type ClaimOutcome, coldLaunching, fail, republish } from './outcomes';
import { type Saga, sagaWait } from './saga-lease';

const RUNNING_WAIT_MS = 5 * 60_000;
/** The codes EC2 refuses a resize of a stopped instance with (resize-limitations). */
const RESIZE_REFUSALS: ReadonlySet<string> = new Set([
  'InvalidInstanceAttributeValue',
  'InvalidParameterCombination',
  'UnsupportedOperation',
]);

/** Runs the step the saga's record calls for (domain/saga.ts nextClaimStep). */
export const advance = async (
  deps: ClaimDependencies,
  saga: Saga,
  coldMember?: PoolMember,
): Promise<ClaimOutcome> => {
  const next = nextClaimStep(saga.record, coldMember);
  switch (next.kind) {
    case 'fail':
      return fail(deps, saga, next.error);
    case 'republish':
      return republish(deps, saga.record);
    case 'hand-over':
      return handOver(deps, saga, next.instanceId, next.path);
    case 'finish':
      return finish(deps, saga, next.path);
    case 'claim-member': {
      const record = await deps.store.getPool(saga.record.pool);
      if (!poolServes(saga.record, record)) return fail(deps, saga, poolUnavailable(saga.record));
      return claimMember(deps, saga, record);
    }
  }
};

/**
 * Takes a ready member (or continues with the one this saga already took) and starts it; no
 * member left → cold launch. A crash after the member's conditional write but before the step
 * write is found again by the member's claim id.
 */
export const claimMember = async (
  deps: ClaimDependencies,
  saga: Saga,
  record: PoolRecord,
): Promise<ClaimOutcome> => {
  const spec = record.spec;
  const request = saga.request;
  const requestId = saga.requestId;
  const instanceType = wantedInstanceType(request, spec);
  const tried = new Set<string>();
  for (;;) {
    const members = await deps.store.listMembers(spec.name);
    // What an interrupted run of this saga took already: a claimed member, or its cold launch.
    const mine = members.find(
      (member) =>
        member.claimId === requestId &&
        !tried.has(member.instanceId) &&
        (member.state === 'claimed' ||
          (member.origin === 'claim' && WAITING_FOR_INIT.includes(member.state))),
    );
    if (mine?.origin === 'claim') {
      await saga.step({ step: 'cold-launching', instanceId: mine.instanceId, path: 'cold' });
      // Still initializing: the pools function resumes the claim once it is ready (as after a
      // cold launch this run made); advancing now would take the member's state for a failure.
      if (WAITING_FOR_INIT.includes(mine.state)) return coldLaunching(requestId, mine.instanceId, spec.name);
      return advance(deps, saga, mine);
    }
    let claimed: PoolMember;
    let path: Exclude<ClaimPath, 'cold'>;
    if (mine?.state === 'claimed') {
      claimed = mine;
      path = pathOf(mine);
    } else {
      const [candidate] = rankCandidates(
        members,
        { instanceType, availabilityZone: request.availabilityZone },
        tried,
      );
      if (!candidate) break;
      claimed = transition(candidate.member, 'claimed', deps.clock.now(), { claimId: requestId });
      path = candidate.path;
      if (!(await deps.store.updateMember(candidate.member, claimed))) {
        tried.add(candidate.member.instanceId);
        continue; // another claim won this member
      }
    }
    tried.add(claimed.instanceId);
    if (saga.record.step !== 'member-claimed' || saga.record.instanceId !== claimed.instanceId) {
      await saga.step({ step: 'member-claimed', instanceId: claimed.instanceId, path });
    }
    if (!(await startMember(deps, saga, spec.name, claimed, instanceType))) continue;
    await saga.step({ step: 'started' });
    await deps.facts.publish([
      {
        detailType: 'Server Claimed',
        detail: { pool: spec.name, requestId, instanceId: claimed.instanceId },
      },
    ]);
    return handOver(deps, saga, claimed.instanceId, path);
  }
  return coldLaunch(deps, saga, record);
};

const pathOf = (member: PoolMember): Exclude<ClaimPath, 'cold'> => (member.running ? 'hot' : 'warm');

/**
 * Resizes and starts a claimed member, from whatever EC2 shows (a resumed saga may find it
 * resized or already starting). False when the member cannot serve: vanished (retired), or a
 * start refused for capacity or state (given back to the pool, so the next candidate is tried).
 */
const startMember = async (
  deps: ClaimDependencies,
  saga: Saga,
  pool: string,
  claimed: PoolMember,
  instanceType: string,
): Promise<boolean> => {
  const instance = await deps.ec2.describe(claimed.instanceId);
  if (!instance || isGone(instance.state)) {
    // Terminated behind warmboot's back: the reconcile forgets the record.
    await writeMember(
      deps.store,
      claimed,
      transition(claimed, 'retiring', deps.clock.now(), { reason: 'vanished' }),
    );
    return false;
  }
  let resized = instance.instanceType !== claimed.instanceType;
  let resizing = false;
  try {
    if (instance.state === 'stopped' && instance.instanceType !== instanceType) {
      resizing = true;
      await deps.ec2.resize(instance, pool, instanceType);
      resizing = false;
      resized = instanceType !== claimed.instanceType;
    }
    if (instance.state !== 'running' && instance.state !== 'pending') await deps.ec2.start(instance, pool);
  } catch (error) {
    // A resize EC2 refuses for this member (resize-limitations: architecture or boot mode
    // InvalidInstanceAttributeValue, ENA InvalidParameterCombination, hibernation
    // UnsupportedOperation) is the member's problem, not the request's: it goes back and the next
    // candidate is tried.
    const resizeRefused =
      resizing && error instanceof WarmbootError && RESIZE_REFUSALS.has(awsErrorCode(error.cause));
    if (!(error instanceof CapacityError || error instanceof IncorrectStateError || resizeRefused))
      throw error;
    await giveBack(deps, pool, claimed, instance, resized);
    return false;
  }
  if (instance.state !== 'running') {
    await waitFor(
      'running',
      async () => {
        await saga.keep();
        return (await deps.ec2.describe(claimed.instanceId))?.state === 'running' ? true : undefined;
      },
      sagaWait(deps, RUNNING_WAIT_MS),
    );
  }
  return true;
};

/**
 * A start refused for capacity (or a member not in a startable state): the member goes back to
 * the pool still stopped and pool-tagged, resized back to the type its record says, so the next
 * claim sees what EC2 has. If the resize back fails too, the member is retired instead.
 */
const giveBack = async (
  deps: ClaimDependencies,
  pool: string,
  claimed: PoolMember,
  instance: ObservedInstance,
  resized: boolean,
): Promise<void> => {
  const now = deps.clock.now();
  try {
    if (resized) await deps.ec2.resize(instance, pool, claimed.instanceType);
  } catch (error) {
    if (!(error instanceof WarmbootError)) throw error;
    await writeMember(
      deps.store,
      claimed,
      transition(claimed, 'retiring', now, {
        claimId: undefined,
        reason: `resize back failed: ${error.code}`,
      }),
    );
    return;
  }
  await writeMember(
    deps.store,
    claimed,
    transition(claimed, 'ready', now, { running: false, claimId: undefined }),
  );
};
