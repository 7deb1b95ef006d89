import { randomBytes } from 'node:crypto';
import type { FactPublisher } from '../shared/adapters/facts';
import type { Clock } from '../shared/clock';
import { boundedWait, type Deadline, NO_DEADLINE } from '../shared/deadline';
import { errorMessage, IncorrectStateError, NotFoundError, ValidationError } from '../shared/errors';
import { pollUntil, retrying } from '../shared/retry';
import { invalidDocumentParameter } from '../shared/ssm-document';
import type { PoolEc2, PoolSsm } from './adapters/ec2';
import type { PoolRecord, PoolStore } from './adapters/store';
import type { PoolSpec } from './config';
import { documentNamed, PERSONALIZE_DOCUMENT } from './documents';
import { type ClaimHealing, healClaims } from './domain/claims';
import { launchedByPool, sortTagged } from './domain/launch-intents';
import { type MemberState, type PoolMember, transition } from './domain/lifecycle';
import {
  afterInitialization,
  encryptionKeyHold,
  type InitResult,
  KEY_FAILURE_HOLD_MS,
  type ObservedInstance,
  type PoolAction,
  reconcilePool,
} from './domain/reconcile';
import { DEMAND_HISTORY_MINUTES, decideSize, demandFromCounts, TIMINGS } from './domain/sizing';
import { TAG } from './domain/tags';

export interface PoolDeps {
  readonly store: PoolStore;
  readonly ec2: PoolEc2;
  readonly ssm: PoolSsm;
  readonly facts: FactPublisher;
  readonly clock: Clock;
  /** Names this invocation's reconcile lease. */
  readonly random: () => number;
  /** The invocation's time left (Lambda context); every wait and every further action fits in it. */
  readonly deadline?: Deadline;
}

/** How long a reconcile may hold its pool's lease before another may take it over (crash). */
export const RECONCILE_LEASE_MS = 5 * 60_000;
/** A reconcile that finds the lease taken waits at most this long for it (within its deadline). */
const LEASE_WAIT_MS = 30_000;
/**
 * Time an action may take once started (RunInstances alone answers in ~5 s; then DynamoDB and
 * CreateTags): no action starts, and no wait runs into, the last this much of the invocation.
 */
export const ACTION_RESERVE_MS = 15_000;
/** What reconciling one more pool needs at least: its reads, the sizing write, one action. */
export const POOL_RESERVE_MS = 30_000;

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

const deadlineOf = (deps: PoolDeps): Deadline => deps.deadline ?? NO_DEADLINE;

/**
 * Random bytes in each reconcile's launch tokens (domain/launch-intents.ts poolLaunchToken): from
 * the system's CSPRNG, not `deps.random`, because the tokens must be impossible to guess.
 */
const LAUNCH_NONCE_BYTES = 16;

/** The init command's id, or undefined while the agent has not registered (InvalidInstanceId). */
const sendOnceRegistered = async (
  deps: PoolDeps,
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

type ActionKind = PoolAction['kind'] | ClaimHealing['kind'];

export type ItemResult =
  | { readonly id: string; readonly ok: true; readonly action: ActionKind }
  | {
      readonly id: string;
      readonly ok: false;
      readonly action: ActionKind;
      readonly error: { code: string; message: string };
    };

/**
 * The init document's parameters for a spec, checked against the document's allowedPatterns.
 * Lists go as one comma-separated String (documents.ts says why); the items' own patterns
 * exclude commas, so the document's list pattern accepts exactly the lists config.ts accepts.
 */
export const initParameters = (spec: PoolSpec): Record<string, string[]> => {
  const init = spec.initialization;
  const parameters = {
    platform: [init.platform],
    packages: [init.packages.join(',')],
    containerImages: [init.containerImages.join(',')],
    generalize: [init.generalize],
  };
  const document = documentNamed(init.documentName);
  if (!document)
    throw new ValidationError('pool.initialization.documentName', `unknown document ${init.documentName}`);
  const invalid = invalidDocumentParameter(document, parameters);
  if (invalid) throw new ValidationError(`pool.initialization.${invalid.parameter}`, invalid.message);
  return parameters;
};

/** From `running` until a member is initialized: its SSM agent registers, then the init runs. */
export const initializeSecondsOf = (spec: PoolSpec): number =>
  spec.initialization.platform === 'windows'
    ? TIMINGS.windowsAgentRegistrationSeconds + TIMINGS.windowsInitializeSeconds
    : TIMINGS.linuxAgentRegistrationSeconds + TIMINGS.linuxInitializeSeconds;

const memberTags = (pool: string, state: MemberState): Record<string, string> => ({
  [TAG.managed]: 'true',
  [TAG.pool]: pool,
  [TAG.memberState]: state,
});

/** Conditional write of a transition, then the member-state tag (the tag only mirrors the record). */
const move = async (
  deps: PoolDeps,
  member: PoolMember,
  to: MemberState,
  now: number,
  changes: Parameters<typeof transition>[3] = {},
): Promise<PoolMember> => {
  const next = transition(member, to, now, changes);
  await deps.store.updateMember(member, next);
  if (to !== 'terminated' && to !== 'handed-over') {
    await deps.ec2.tag(member.instanceId, { [TAG.memberState]: to });
  }
  return next;
};

/** A conditional write that changes nothing but the version: this invocation's turn. */
const touch = async (deps: PoolDeps, member: PoolMember): Promise<PoolMember> => {
  const next = { ...member, version: member.version + 1 };
  await deps.store.updateMember(member, next);
  return next;
};

const requireInstance = async (deps: PoolDeps, instanceId: string): Promise<ObservedInstance> => {
  const instance = await deps.ec2.describe(instanceId);
  if (!instance) throw new ValidationError('instanceId', `${instanceId} not found`);
  return instance;
};

/** Applies one decision through the adapters; every state change is a conditional write first. */
export const applyAction = async (
  deps: PoolDeps,
  spec: PoolSpec,
  action: PoolAction,
  now: number,
): Promise<void> => {
  switch (action.kind) {
    case 'launch': {
      // The intent first: an instance this launch leaves without a member record (a crash before
      // the write below) is adopted by the next reconcile because its ClientToken names the intent.
      await deps.store.recordLaunchIntent({
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
      await deps.store.recordLaunch(
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
      await deps.store.recordLaunch(action.member, action.clientToken);
      return;
    case 'close-intent':
      await deps.store.closeLaunchIntent(spec.name, action.intent.clientToken, action.instanceId);
      return;
    case 'forget':
      await deps.store.deleteMember(action.member);
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
        await deps.store.updateMember(attempt, {
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
        await deps.store.updateMember(action.member, {
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
      await deps.store.deleteMember(await move(deps, action.member, 'handed-over', now));
      return;
    case 'retire': {
      const instance = await deps.ec2.describe(action.member.instanceId);
      const retiring = await move(deps, action.member, 'retiring', now, { reason: action.reason });
      if (instance && action.reason === 'agent-never-registered')
        await deps.ec2.tag(instance.instanceId, { [TAG.retiredFor]: action.reason });
      if (instance) await deps.ec2.terminate(instance, spec.name);
      else await deps.store.deleteMember(retiring);
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
export const applyHealing = async (deps: PoolDeps, healing: ClaimHealing, now: number): Promise<void> => {
  const { claim } = healing;
  if (healing.kind === 'resume-claim') {
    await deps.facts.publish([
      { detailType: 'Request Server', detail: { requestId: claim.requestId, resume: true }, resources: [] },
    ]);
    return;
  }
  const { leaseUntil: _lapsed, ...rest } = claim;
  await deps.store.updateClaim(claim, {
    ...rest,
    step: 'failed',
    error: healing.error,
    updatedAt: now,
    version: claim.version + 1,
  });
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

/**
 * Applies the actions in order, each a result; actions that would start in the last
 * `ACTION_RESERVE_MS` of the invocation are left to the next reconcile (`deferred`), which
 * decides them again from what it then finds.
 */
const applyAll = async (
  deps: PoolDeps,
  spec: PoolSpec,
  actions: readonly (PoolAction | ClaimHealing)[],
  now: number,
): Promise<{ results: ItemResult[]; deferred: number }> => {
  const results: ItemResult[] = [];
  for (const [index, action] of actions.entries()) {
    if (deadlineOf(deps).remainingMs() < ACTION_RESERVE_MS)
      return { results, deferred: actions.length - index };
    const id =
      action.kind === 'launch'
        ? action.clientToken
        : action.kind === 'close-intent'
          ? action.instanceId
          : 'claim' in action
            ? action.claim.requestId
            : action.member.instanceId;
    try {
      if ('claim' in action) await applyHealing(deps, action, now);
      else await applyAction(deps, spec, action, now);
      results.push({ id, ok: true, action: action.kind });
    } catch (error) {
      const code = error instanceof Error && 'code' in error ? String(error.code) : 'Error';
      results.push({ id, ok: false, action: action.kind, error: { code, message: errorMessage(error) } });
    }
  }
  return { results, deferred: 0 };
};

const applied = ({ results, deferred }: { results: ItemResult[]; deferred: number }) => ({
  results,
  ...(deferred > 0 ? { deferred } : {}),
});

export interface ReconcileSummary {
  readonly pool: string;
  readonly targetSize: number;
  readonly runningSize: number;
  readonly ready: number;
  readonly results: ItemResult[];
  /** Actions left to the next reconcile because this invocation was running out of time. */
  readonly deferred?: number;
  /**
   * Set when nothing was applied: another reconcile held the pool's lease the whole time (it
   * applies the changes), or too little of the invocation was left to start.
   */
  readonly skipped?: string;
  /**
   * Live instances carrying the pool's tag that warmboot did not launch (no member record, no
   * open launch intent: someone else tagged them). Never adopted, stopped, handed out or
   * terminated; the handler logs them and counts them in the `ForeignTaggedInstances` metric.
   */
  readonly foreignTagged?: readonly string[];
}

const leaseOwner = (deps: PoolDeps): string =>
  `reconcile-${Math.floor(deps.random() * 2 ** 48).toString(36)}`;

/** Takes the pool's reconcile lease, waiting a little (within the deadline) for a concurrent reconcile to finish. */
const takeLease = async (deps: PoolDeps, pool: string, owner: string): Promise<boolean> => {
  const taken = await pollUntil(
    async () => {
      const now = deps.clock.now();
      return (await deps.store.acquireLease(pool, owner, now, now + RECONCILE_LEASE_MS)) ? true : undefined;
    },
    {
      clock: deps.clock,
      timeoutMs: boundedWait(deadlineOf(deps), LEASE_WAIT_MS, POOL_RESERVE_MS),
      intervalMs: (attempt) => Math.min(1_000 * 2 ** attempt, 15_000),
    },
  );
  return taken === true;
};

/**
 * Level-triggered reconcile of one pool: re-derives everything from DynamoDB + EC2 + SSM under the
 * pool's lease, so the members it counts are not changed by another reconcile's launches, and
 * resumes or gives up the pool's claims that nobody drives any more.
 */
export const reconcileOne = async (deps: PoolDeps, name: string, now: number): Promise<ReconcileSummary> => {
  if (deadlineOf(deps).remainingMs() < POOL_RESERVE_MS) {
    return { pool: name, targetSize: 0, runningSize: 0, ready: 0, results: [], skipped: 'out of time' };
  }
  const owner = leaseOwner(deps);
  if (!(await takeLease(deps, name, owner))) {
    return { pool: name, targetSize: 0, runningSize: 0, ready: 0, results: [], skipped: 'lease held' };
  }
  try {
    const record = await deps.store.getPool(name);
    if (!record) throw new NotFoundError(`pool ${name} is not defined`);
    return await reconcileHeld(deps, record, Math.max(now, deps.clock.now()));
  } finally {
    await deps.store.releaseLease(name, owner);
  }
};

const reconcileHeld = async (deps: PoolDeps, record: PoolRecord, now: number): Promise<ReconcileSummary> => {
  const { spec } = record;
  const [members, observed, currentImageId, counts, claims, intents] = await Promise.all([
    deps.store.listMembers(spec.name),
    deps.ec2.describePool(spec.name),
    deps.ssm.resolveImage(spec.image),
    deps.store.demandCounts(spec.name, now - DEMAND_HISTORY_MINUTES * 60_000),
    deps.store.listOpenClaims(spec.name),
    deps.store.launchIntents(spec.name, now),
  ]);
  const initResults = new Map<string, InitResult>();
  for (const member of members) {
    if (member.state === 'initializing' && member.initCommandId !== undefined) {
      initResults.set(member.instanceId, await deps.ssm.result(member.initCommandId, member.instanceId));
    }
  }
  const sizing = decideSize({
    spec,
    demand: demandFromCounts(counts, now),
    previous: record.sizing,
    initializeSeconds: initializeSecondsOf(spec),
    now,
  });
  await deps.store.saveSizing(spec.name, {
    targetSize: sizing.targetSize,
    runningSize: sizing.runningSize,
    changedAt: sizing.changedAt,
  });
  const actions = reconcilePool({
    spec,
    draining: record.status === 'draining',
    members,
    observed,
    currentImageId,
    sizing,
    initResults,
    openClaims: new Set(claims.map((claim) => claim.requestId)),
    intents,
    launchNonce: randomBytes(LAUNCH_NONCE_BYTES).toString('hex'),
    now,
  });
  const { results, deferred } = await applyAll(
    deps,
    spec,
    [...actions, ...healClaims(claims, members, now)],
    now,
  );
  const held = encryptionKeyHold(launchedByPool(spec.name, observed, intents), now);
  if (held) {
    results.push({
      id: held.instanceId,
      ok: false,
      action: 'launch',
      error: {
        code: 'EncryptionKeyUnusable',
        message: `member ${held.instanceId} ended at launch (${held.stateReason}): EC2 could not use an EBS encryption key for the pools role; no launch for ${KEY_FAILURE_HOLD_MS / 60_000} min. Add the key to ebsKmsKeyArns (or enable it)`,
      },
    });
  }
  const ready = members.filter((member) => member.state === 'ready').length;
  const { foreign } = sortTagged(
    spec.name,
    observed,
    new Set(members.map((member) => member.instanceId)),
    intents,
    now,
  );
  return {
    pool: spec.name,
    targetSize: sizing.targetSize,
    runningSize: sizing.runningSize,
    ready,
    results,
    ...(deferred > 0 ? { deferred } : {}),
    ...(foreign.length > 0 ? { foreignTagged: foreign.map((instance) => instance.instanceId) } : {}),
  };
};

/**
 * The scheduled reconcile: upserts the pools defined in CDK context (`POOLS`, always their
 * configured spec), then reconciles every stored pool.
 */
export const reconcileAllPools = async (
  deps: PoolDeps,
  contextPools: readonly PoolSpec[],
  now: number,
): Promise<ReconcileSummary[]> => {
  const stored = new Map((await deps.store.listPools()).map((record) => [record.spec.name, record]));
  for (const spec of contextPools) {
    const existing = stored.get(spec.name);
    // A deploy-time pool is configuration: an operator record of the same name (Define Pool of an
    // earlier release) never shadows it (security review C2).
    initParameters(spec);
    const record: PoolRecord = { spec, source: 'context', status: existing?.status ?? 'active' };
    await deps.store.putPool(record, now);
    stored.set(spec.name, record);
  }
  const results: ReconcileSummary[] = [];
  for (const name of stored.keys()) results.push(await reconcileOne(deps, name, deps.clock.now()));
  return results;
};

/** An EC2 state change for a member: the event-driven fast path of what reconcile would do. */
export const onInstanceState = async (
  deps: PoolDeps,
  instanceId: string,
  state: ObservedInstance['state'],
  now: number,
) => {
  const member = await deps.store.findMember(instanceId);
  if (!member) return { instanceId, ignored: 'not a pool member' };
  const record = await deps.store.getPool(member.pool);
  if (!record) return { instanceId, ignored: 'pool not defined' };
  let action: PoolAction | undefined;
  if (state === 'terminated') action = { kind: 'forget', member, reason: 'terminated' };
  else if (state === 'running' && (member.state === 'launching' || member.state === 'joining'))
    action = { kind: 'initialize', member, waitForAgent: true };
  else if (state === 'running' && member.state === 'starting')
    action = { kind: 'mark-ready', member, running: true };
  else if (state === 'stopped' && member.state === 'stopping')
    action = { kind: 'mark-ready', member, running: false };
  if (!action) return { instanceId, ignored: `no change for ${member.state} on ${state}` };
  return { instanceId, ...applied(await applyAll(deps, record.spec, [action], now)) };
};

/** An SSM status for a member's init command: ready (or stopped first) on success, retire on failure. */
const FINAL_COMMAND_STATUSES = new Set([
  'Success',
  'Failed',
  'Cancelled',
  'TimedOut',
  'DeliveryTimedOut',
  'ExecutionTimedOut',
  'Undeliverable',
  'Terminated',
]);

export const onInitStatus = async (
  deps: PoolDeps,
  input: { instanceId: string; commandId: string; status: string; documentName?: string },
  now: number,
) => {
  // Decided from the event alone, before any read: personalization commands (the claim function
  // waits for those itself) and in-progress statuses change nothing here.
  if (input.documentName === PERSONALIZE_DOCUMENT) {
    return { instanceId: input.instanceId, ignored: 'personalization is followed by the claim' };
  }
  if (!FINAL_COMMAND_STATUSES.has(input.status)) {
    return { instanceId: input.instanceId, ignored: `in progress: ${input.status}` };
  }
  const member = await deps.store.findMember(input.instanceId);
  if (member?.state !== 'initializing' || member.initCommandId !== input.commandId) {
    return { instanceId: input.instanceId, ignored: 'not an initializing member of this command' };
  }
  const record = await deps.store.getPool(member.pool);
  if (!record) return { instanceId: input.instanceId, ignored: 'pool not defined' };
  const action: PoolAction =
    input.status === 'Success'
      ? afterInitialization(
          member,
          await deps.store.listMembers(member.pool),
          record.sizing?.runningSize ?? 0,
        )
      : { kind: 'retire', member, reason: 'init-failed' };
  return { instanceId: input.instanceId, ...applied(await applyAll(deps, record.spec, [action], now)) };
};

/** Accepts a pool spec: its init parameters must pass the document's patterns before it is stored. */
export const definePool = async (
  deps: PoolDeps,
  spec: PoolSpec,
  source: PoolRecord['source'],
  now: number,
) => {
  initParameters(spec);
  const existing = await deps.store.getPool(spec.name);
  const record: PoolRecord = {
    spec,
    source,
    status: 'active',
    ...(existing?.sizing ? { sizing: existing.sizing } : {}),
  };
  await deps.store.putPool(record, now);
  return reconcileOne(deps, spec.name, now);
};

/** Stops refilling and retires every member (claims already under way finish). */
export const drainPool = async (deps: PoolDeps, name: string, now: number): Promise<ReconcileSummary> => {
  if (!(await deps.store.getPool(name))) throw new NotFoundError(`pool ${name} is not defined`);
  await deps.store.setStatus(name, 'draining', now);
  return reconcileOne(deps, name, now);
};
