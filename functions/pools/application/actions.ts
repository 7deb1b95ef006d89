import { boundedWait, type Deadline, NO_DEADLINE } from '../../shared/deadline';
import { ConflictError, IncorrectStateError, ValidationError } from '../../shared/errors';
import { failedItem, type ItemResult, itemErrorOf } from '../../shared/results';
import { retrying } from '../../shared/retry';
import { OPTED_IN } from '../../shared/tags';
import type { PoolSpec } from '../config';
import type { PoolsDependencies } from '../dependencies';
import type { ClaimHealing } from '../domain/claims';
import type { LaunchIntent } from '../domain/launch-intents';
import { type MemberState, type PoolMember, transition } from '../domain/lifecycle';
import type { ObservedInstance, PoolAction } from '../domain/reconcile';
import { TAG } from '../domain/tags';
import { initParameters } from '../schemas';
import { deleteMember, writeMember } from './members';

/**
 * Time an action may take once started (RunInstances alone answers in ~5 s; then DynamoDB and
 * CreateTags): no action starts, and no wait runs into, the last this much of the invocation.
 */
export const ACTION_RESERVE_MS = 15_000;

/**
 * EC2 reports `running` before the SSM agent has registered the instance (tens of seconds after
 * boot on Linux, minutes on Windows; never without an instance profile carrying
 * AmazonSSMManagedInstanceCore or Default Host Management Configuration), and SendCommand refuses
 * an unregistered node with InvalidInstanceId. The `running` event's handler waits up to
 * `AGENT_WAIT_MS` (within its deadline) so a Linux member starts initializing at once; a member
 * whose agent is still not registered stays `joining`, and each reconcile tries once more until
 * its registration deadline (`agent-never-registered`, domain/reconcile.ts).
 */
const AGENT_WAIT_MS = 90_000;
const AGENT_RETRY = { baseMs: 5_000, capMs: 20_000 } as const;

export const deadlineOf = (deps: PoolsDependencies): Deadline => deps.deadline ?? NO_DEADLINE;

/** One applied action's outcome: which action, on which member, launch or claim. */
export type ActionResult = ItemResult<{ readonly action: PoolAction['kind'] | ClaimHealing['kind'] }>;

/** The init command's id, or undefined while the agent has not registered (InvalidInstanceId). */
const sendOnceRegistered = async (
  deps: PoolsDependencies,
  instanceId: string,
  document: string,
  parameters: Record<string, string[]>,
  waitMs: number,
): Promise<string | undefined> => {
  const giveUpAt = deps.clock.now() + boundedWait(deadlineOf(deps), waitMs, ACTION_RESERVE_MS);
  try {
    return await retrying(() => deps.ssm.send(instanceId, document, parameters), {
      ...AGENT_RETRY,
      attempts: Number.POSITIVE_INFINITY,
      sleep: (ms) => deps.clock.sleep(ms),
      random: deps.random,
      retryable: (error) => error instanceof IncorrectStateError,
      remainingMs: () => giveUpAt - deps.clock.now(),
    });
  } catch (error) {
    if (error instanceof IncorrectStateError) return undefined;
    throw error;
  }
};

const memberTags = (pool: string, state: MemberState): Record<string, string> => ({
  [TAG.optIn]: OPTED_IN,
  [TAG.pool]: pool,
  [TAG.memberState]: state,
});

/** Conditional write of a transition, then the member-state tag (the tag only mirrors the record). */
const move = async (
  deps: PoolsDependencies,
  member: PoolMember,
  to: MemberState,
  now: number,
  changes: Parameters<typeof transition>[3] = {},
): Promise<PoolMember> => {
  const next = await writeMember(deps.store, member, transition(member, to, now, changes));
  if (to !== 'terminated' && to !== 'handed-over') {
    await deps.ec2.tag(member.instanceId, { [TAG.memberState]: to });
  }
  return next;
};

/** A conditional write that changes nothing but the version: this invocation's turn. */
const touch = (deps: PoolsDependencies, member: PoolMember): Promise<PoolMember> =>
  writeMember(deps.store, member, { ...member, version: member.version + 1 });

const requireInstance = async (deps: PoolsDependencies, instanceId: string): Promise<ObservedInstance> => {
  const instance = await deps.ec2.describe(instanceId);
  if (!instance) throw new ValidationError('instanceId', `${instanceId} not found`);
  return instance;
};

/** Records a launch intent; another launch under its ClientToken ends the caller's launch. */
export const recordLaunchIntent = async (deps: PoolsDependencies, intent: LaunchIntent): Promise<void> => {
  if (!(await deps.store.recordLaunchIntent(intent)))
    throw new ConflictError(`launch intent ${intent.clientToken} exists for another launch`);
};

/** The member of a launched instance, closing its intent: refused if either was written already. */
const recordLaunch = async (deps: PoolsDependencies, member: PoolMember, clientToken: string) => {
  if (!(await deps.store.recordLaunch(member, clientToken)))
    throw new ConflictError(`member ${member.instanceId} exists or launch intent ${clientToken} is not open`);
};

/** Applies one decision through the adapters; every state change is a conditional write first. */
const applyAction = async (
  deps: PoolsDependencies,
  spec: PoolSpec,
  action: PoolAction,
  now: number,
): Promise<void> => {
  switch (action.kind) {
    case 'launch': {
      // The intent first: an instance this launch leaves without a member record (a crash before
      // the write below) is adopted by the next reconcile because its ClientToken names the intent.
      await recordLaunchIntent(deps, {
        clientToken: action.clientToken,
        pool: spec.name,
        subnetId: action.subnetId,
        count: 1,
        origin: 'pool',
        nonce: action.nonce,
        createdAt: now,
      });
      const instance = await deps.ec2.launch({
        spec,
        imageId: action.imageId,
        subnetId: action.subnetId,
        clientToken: action.clientToken,
        tags: memberTags(spec.name, 'launching'),
      });
      await recordLaunch(
        deps,
        {
          pool: spec.name,
          instanceId: instance.instanceId,
          origin: 'pool',
          state: 'launching',
          running: true,
          imageId: action.imageId,
          instanceType: instance.instanceType || spec.instanceType,
          availabilityZone: instance.availabilityZone,
          subnetId: instance.subnetId || action.subnetId,
          launchedAt: now,
          stateSince: now,
          version: 0,
        },
        action.clientToken,
      );
      return;
    }
    case 'adopt':
      await recordLaunch(deps, action.member, action.clientToken);
      return;
    case 'close-intent':
      // Already closed is as good: the intent adopts nothing any more either way.
      await deps.store.closeLaunchIntent(spec.name, action.intent.clientToken, action.instanceId);
      return;
    case 'forget':
      await deleteMember(deps.store, action.member);
      return;
    case 'initialize': {
      // Each attempt is a conditional write first (launching → joining, or a version bump of a
      // joining member): of two invocations only one sends. A crash after the send leaves the
      // member joining, and the next attempt sends again (the init document is idempotent).
      const { member } = action;
      const attempt =
        member.state === 'launching'
          ? await move(deps, member, 'joining', now)
          : member.state === 'joining'
            ? await touch(deps, member)
            : member; // initializing without a command id, as an older release recorded it
      const commandId = await sendOnceRegistered(
        deps,
        member.instanceId,
        spec.initialization.documentName,
        initParameters(spec),
        action.waitForAgent === true ? AGENT_WAIT_MS : 0,
      );
      if (commandId === undefined) return; // still joining: the next reconcile tries again
      if (attempt.state === 'joining') {
        await move(deps, attempt, 'initializing', deps.clock.now(), { initCommandId: commandId });
      } else {
        await writeMember(deps.store, attempt, {
          ...attempt,
          initCommandId: commandId,
          version: attempt.version + 1,
        });
      }
      return;
    }
    case 'stop': {
      const instance = await requireInstance(deps, action.member.instanceId);
      if (action.member.state !== 'stopping') await move(deps, action.member, 'stopping', now);
      await deps.ec2.stop(instance, spec.name);
      return;
    }
    case 'start': {
      const instance = await requireInstance(deps, action.member.instanceId);
      await move(deps, action.member, 'starting', now);
      await deps.ec2.start(instance, spec.name);
      return;
    }
    case 'mark-ready':
      if (action.member.state === 'ready') {
        await writeMember(deps.store, action.member, {
          ...action.member,
          running: action.running,
          version: action.member.version + 1,
        });
      } else {
        await move(deps, action.member, 'ready', now, { running: action.running });
      }
      return;
    case 'complete-cold-claim': {
      const claimed = await move(deps, action.member, 'claimed', now);
      // The claim function finishes the hand-over (ownership, personalization, Server Ready).
      await deps.facts.publish([
        { detailType: 'Request Server', detail: { requestId: claimed.claimId, resume: true }, resources: [] },
      ]);
      return;
    }
    case 'release':
      await move(deps, action.member, 'ready', now, { running: false, claimId: undefined });
      return;
    case 'hand-over':
      await deleteMember(deps.store, await move(deps, action.member, 'handed-over', now));
      return;
    case 'retire': {
      const instance = await deps.ec2.describe(action.member.instanceId);
      const retiring = await move(deps, action.member, 'retiring', now, { reason: action.reason });
      if (instance && action.reason === 'agent-never-registered')
        await deps.ec2.tag(instance.instanceId, { [TAG.retiredFor]: action.reason });
      if (instance) await deps.ec2.terminate(instance, spec.name);
      else await deleteMember(deps.store, retiring);
      return;
    }
    case 'terminate': {
      const instance = await requireInstance(deps, action.member.instanceId);
      await deps.ec2.terminate(instance, spec.name);
      return;
    }
  }
};

/**
 * Heals one unfinished claim: a stalled saga is resumed by the claim function (`Request Server`
 * with `resume`, the same event a finished cold launch sends), one given up is failed — a
 * conditional write, so a claim someone drives meanwhile is left alone — and reported.
 */
const applyHealing = async (deps: PoolsDependencies, healing: ClaimHealing, now: number): Promise<void> => {
  const { claim } = healing;
  if (healing.kind === 'resume-claim') {
    await deps.facts.publish([
      { detailType: 'Request Server', detail: { requestId: claim.requestId, resume: true }, resources: [] },
    ]);
    return;
  }
  const { leaseUntil: _lapsed, ...rest } = claim;
  const failed = {
    ...rest,
    step: 'failed' as const,
    error: healing.error,
    updatedAt: now,
    version: claim.version + 1,
  };
  if (!(await deps.store.updateClaim(claim, failed)))
    throw new ConflictError(`claim ${claim.requestId} is not at version ${claim.version}`);
  await deps.facts.publish([
    {
      detailType: 'Server Request Failed',
      detail: {
        requestId: claim.requestId,
        pool: claim.pool,
        ...(claim.instanceId ? { instanceId: claim.instanceId } : {}),
        error: healing.error,
      },
    },
  ]);
};

const idOf = (action: PoolAction | ClaimHealing): string => {
  if (action.kind === 'launch') return action.clientToken;
  if (action.kind === 'close-intent') return action.instanceId;
  return 'claim' in action ? action.claim.requestId : action.member.instanceId;
};

interface Applied {
  readonly results: ActionResult[];
  /** Actions left to the next reconcile because this invocation was running out of time. */
  readonly deferred: number;
}

/**
 * Applies the actions in order, each a result; actions that would start in the last
 * `ACTION_RESERVE_MS` of the invocation are left to the next reconcile (`deferred`), which
 * decides them again from what it then finds.
 */
export const applyAll = async (
  deps: PoolsDependencies,
  spec: PoolSpec,
  actions: readonly (PoolAction | ClaimHealing)[],
  now: number,
): Promise<Applied> => {
  const results: ActionResult[] = [];
  for (const [index, action] of actions.entries()) {
    if (deadlineOf(deps).remainingMs() < ACTION_RESERVE_MS)
      return { results, deferred: actions.length - index };
    const id = idOf(action);
    try {
      if ('claim' in action) await applyHealing(deps, action, now);
      else await applyAction(deps, spec, action, now);
      results.push({ id, ok: true, action: action.kind });
    } catch (error) {
      results.push(failedItem(id, itemErrorOf(error), { action: action.kind }));
    }
  }
  return { results, deferred: 0 };
};

/** The results of actions applied for one event, and how many were left for lack of time. */
export const applied = ({ results, deferred }: Applied) => ({
  results,
  ...(deferred > 0 ? { deferred } : {}),
});
