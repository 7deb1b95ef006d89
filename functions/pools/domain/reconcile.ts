import { isEncryptionKeyStateReason } from '../../shared/aws-errors';
import { type INSTANCE_STATES, isGoneState as isGone } from '../../shared/schemas/aws-events';
import type { PoolSpec } from '../config';
import { isColdLaunchInFlight } from './claims';
import { isOpen, type LaunchIntent, launchedByPool, poolLaunchToken, sortTagged } from './launch-intents';
import { countsAgainstMax, isPoolMember, type PoolMember, SUPPLY_STATES } from './lifecycle';
import type { SizingDecision } from './sizing';
import { TAG } from './tags';

export type Ec2State = (typeof INSTANCE_STATES)[number];

/** What EC2 says about an instance carrying the pool's tag (from DescribeInstances). */
export interface ObservedInstance {
  readonly instanceId: string;
  readonly state: Ec2State;
  readonly imageId: string;
  readonly instanceType: string;
  readonly availabilityZone: string;
  readonly subnetId: string;
  readonly launchedAt: number;
  readonly tags: Readonly<Record<string, string>>;
  /** The RunInstances ClientToken it was launched with (DescribeInstances `Instance.ClientToken`). */
  readonly clientToken?: string;
  /** EBS volumes attached at describe time (launched with the same pool tags as the instance). */
  readonly volumeIds?: readonly string[];
  /** The StateReason code when EC2 changed its state on its own (e.g. a KMS key it could not use). */
  readonly stateReason?: string;
}

export type InitResult = 'pending' | 'success' | 'failed';

export type RetireReason =
  | 'image-changed'
  | 'max-age'
  | 'init-failed'
  | 'init-timeout'
  | 'agent-never-registered'
  | 'scale-down'
  | 'over-max'
  | 'draining'
  | 'claim-abandoned';

export type PoolAction =
  | {
      readonly kind: 'launch';
      readonly subnetId: string;
      /** Recorded, with its nonce, as a launch intent before the RunInstances (launch-intents.ts). */
      readonly clientToken: string;
      readonly nonce: string;
      readonly imageId: string;
    }
  /** A member record for an instance an open intent launched, written with the intent's closing. */
  | { readonly kind: 'adopt'; readonly member: PoolMember; readonly clientToken: string }
  /** An open intent whose instance already has a member record (written by a launcher that then died). */
  | { readonly kind: 'close-intent'; readonly intent: LaunchIntent; readonly instanceId: string }
  | { readonly kind: 'forget'; readonly member: PoolMember; readonly reason: string }
  | {
      readonly kind: 'initialize';
      readonly member: PoolMember;
      /** The `running` event's handler waits a while for the agent; a reconcile tries once. */
      readonly waitForAgent?: boolean;
    }
  | { readonly kind: 'stop'; readonly member: PoolMember }
  | { readonly kind: 'start'; readonly member: PoolMember }
  | { readonly kind: 'mark-ready'; readonly member: PoolMember; readonly running: boolean }
  | { readonly kind: 'complete-cold-claim'; readonly member: PoolMember }
  | { readonly kind: 'release'; readonly member: PoolMember }
  | { readonly kind: 'hand-over'; readonly member: PoolMember }
  | { readonly kind: 'retire'; readonly member: PoolMember; readonly reason: RetireReason }
  | { readonly kind: 'terminate'; readonly member: PoolMember };

export interface ReconcileInput {
  readonly spec: PoolSpec;
  readonly draining: boolean;
  readonly members: readonly PoolMember[];
  /**
   * Every instance tagged `warmboot:pool=<name>`, including ones without a member record; the tag
   * only selects them: which ones warmboot launched, the `intents` say.
   */
  readonly observed: readonly ObservedInstance[];
  /** The pool's launch intents of the last LAUNCH_INTENT_TTL_MS, open and closed. */
  readonly intents: readonly LaunchIntent[];
  /** Random, fresh for each reconcile: part of every launch's ClientToken (poolLaunchToken). */
  readonly launchNonce: string;
  /** The AMI the pool's image reference resolves to now (SSM aliases are resolved every reconcile). */
  readonly currentImageId: string;
  readonly sizing: Pick<SizingDecision, 'targetSize' | 'runningSize' | 'retireSurplusAfterIdleMs'>;
  /** Latest known result of each initializing member's init command (ListCommandInvocations). */
  readonly initResults: ReadonlyMap<string, InitResult>;
  /**
   * Request ids of the pool's unfinished claims. Their members are the claim saga's to finish
   * (the reconcile resumes or gives up the claim itself); the claimed-member timeout applies once
   * the claim is finished or unknown.
   */
  readonly openClaims?: ReadonlySet<string>;
  readonly now: number;
}

/** How long EC2's eventually consistent Describe* may not yet show a fresh launch. */
export const LAUNCH_VISIBILITY_GRACE_MS = 5 * 60_000;
/** A claim holds a member at most this long before reconcile releases or retires it. */
export const CLAIM_TIMEOUT_MS = 15 * 60_000;
/** Re-issue a stop or start that EC2 has not carried out after this long. */
export const POWER_RETRY_MS = 5 * 60_000;
/**
 * How long a member may stay `joining` (running, SSM agent not registered) before it is retired
 * as `agent-never-registered`. A first registration takes tens of seconds on Linux and minutes on
 * Windows (AWS: Windows first-boot tasks take "a few minutes", up to 15); an agent that was
 * refused credentials (no instance profile with AmazonSSMManagedInstanceCore, DHMC off) tries
 * again only 25 to 30 minutes later (amazon-ssm-agent credential refresher). Past these limits the
 * member is not coming: retiring it frees its slot and names the cause (docs/pools.md).
 */
export const AGENT_REGISTRATION_DEADLINE_MS = { linux: 10 * 60_000, windows: 30 * 60_000 } as const;

export const agentRegistrationDeadlineMs = (spec: PoolSpec): number =>
  AGENT_REGISTRATION_DEADLINE_MS[spec.initialization.platform];

/**
 * After a member was retired as `agent-never-registered`, the pool keeps at most one member on its
 * way (launching or joining) until a member launched since has registered, or for this long after
 * that member's launch (EC2 shows a terminated instance about an hour): every other launch would
 * most likely wait in vain the same way (no instance profile with the SSM core policy, DHMC off),
 * and the one probe notices when the operator has fixed it.
 */
export const AGENT_FAILURE_HOLD_MS = 60 * 60_000;

/**
 * Whether launches are held to one probe because the pool's agents did not register lately.
 * `observed`: only instances the pool launched (launchedByPool), so a tag someone else put on
 * an instance of theirs holds nothing.
 */
export const agentRegistrationHold = (
  observed: readonly ObservedInstance[],
  members: readonly PoolMember[],
  now: number,
): boolean => {
  const failedLaunches = observed
    .filter(
      (instance) =>
        instance.tags[TAG.retiredFor] === 'agent-never-registered' &&
        now - instance.launchedAt < AGENT_FAILURE_HOLD_MS,
    )
    .map((instance) => instance.launchedAt);
  if (failedLaunches.length === 0) return false;
  const lastFailure = Math.max(...failedLaunches);
  const registered = (member: PoolMember) =>
    !['launching', 'joining', 'retiring', 'terminated'].includes(member.state);
  return !members.some((member) => member.launchedAt > lastFailure && registered(member));
};

/**
 * After a member's launch ended because EC2 could not use an EBS encryption key for the role
 * (state reason Client.InternalError or Client.InvalidKMSKey.*: the key is not in `ebsKmsKeyArns`,
 * or disabled), the pool launches nothing for this long: every launch would die the same way.
 */
export const KEY_FAILURE_HOLD_MS = 15 * 60_000;

/**
 * The pool's latest launch that EC2 ended for its EBS key, within KEY_FAILURE_HOLD_MS; else
 * undefined. `observed`: only instances the pool launched (launchedByPool).
 */
export const encryptionKeyHold = (
  observed: readonly ObservedInstance[],
  now: number,
): ObservedInstance | undefined =>
  observed
    .filter(
      (instance) =>
        isGone(instance.state) &&
        isEncryptionKeyStateReason(instance.stateReason) &&
        now - instance.launchedAt < KEY_FAILURE_HOLD_MS,
    )
    .sort((a, b) => b.launchedAt - a.launchedAt)[0];

/** A start EC2 ended for the member's EBS key: starting it again would fail the same way. */
const stoppedByEncryptionKey = (instance: ObservedInstance | undefined): boolean =>
  instance?.state === 'stopped' && isEncryptionKeyStateReason(instance.stateReason);

export const staleReason = (
  member: PoolMember,
  spec: PoolSpec,
  currentImageId: string,
  initResult: InitResult | undefined,
  now: number,
): RetireReason | undefined => {
  if (member.state === 'initializing' && initResult === 'failed') return 'init-failed';
  if (member.state === 'joining' && now - member.stateSince > agentRegistrationDeadlineMs(spec)) {
    return 'agent-never-registered';
  }
  if (
    member.state === 'initializing' &&
    now - member.stateSince > spec.initialization.timeoutMinutes * 60_000
  ) {
    return 'init-timeout';
  }
  if (!isPoolMember(member)) return undefined;
  if (member.imageId !== currentImageId) return 'image-changed';
  if (now - member.launchedAt > spec.maxAgeHours * 3_600_000) return 'max-age';
  return undefined;
};

/**
 * A member record for an instance an open intent of the pool launched but that has none (the
 * launcher died between RunInstances and the member write). Origin and claim come from the
 * intent, never from tags. It is `launching`: no init command is ever sent to an instance without
 * a member record, so whatever its `warmboot:member-state` tag says, it was never initialized.
 */
export const adoptInstance = (
  pool: string,
  instance: ObservedInstance,
  intent: LaunchIntent,
  now: number,
): PoolMember => {
  const claimId = intent.origin === 'claim' ? intent.claimId : undefined;
  return {
    pool,
    instanceId: instance.instanceId,
    origin: intent.origin,
    state: 'launching',
    running: instance.state === 'running' || instance.state === 'pending',
    imageId: instance.imageId,
    instanceType: instance.instanceType,
    availabilityZone: instance.availabilityZone,
    subnetId: instance.subnetId,
    launchedAt: instance.launchedAt,
    stateSince: now,
    version: 0,
    ...(claimId === undefined ? {} : { claimId }),
    reason: 'adopted',
  };
};

/** Per-member decision from its record, what EC2 shows, and its init result (level-triggered). */
const memberAction = (
  member: PoolMember,
  instance: ObservedInstance | undefined,
  input: ReconcileInput,
): PoolAction | undefined => {
  const { spec, now } = input;
  if (member.state === 'terminated' || member.state === 'handed-over') {
    return { kind: 'forget', member, reason: member.state };
  }
  if (instance === undefined || isGone(instance.state)) {
    if (
      instance === undefined &&
      member.state === 'launching' &&
      now - member.stateSince < LAUNCH_VISIBILITY_GRACE_MS
    ) {
      return undefined;
    }
    return { kind: 'forget', member, reason: instance === undefined ? 'instance not found' : instance.state };
  }
  if (member.state === 'retiring') return { kind: 'terminate', member };
  if (member.state === 'claimed') {
    if (instance.tags[TAG.pool] === undefined) return { kind: 'hand-over', member };
    if (member.claimId !== undefined && input.openClaims?.has(member.claimId)) return undefined;
    if (now - member.stateSince <= CLAIM_TIMEOUT_MS) return undefined;
    // A stopped member still carrying only pool tags was never started for the requester: give it back.
    return instance.state === 'stopped' && member.origin === 'pool'
      ? { kind: 'release', member }
      : { kind: 'retire', member, reason: 'claim-abandoned' };
  }
  const stale = staleReason(
    member,
    spec,
    input.currentImageId,
    input.initResults.get(member.instanceId),
    now,
  );
  if (stale !== undefined) return { kind: 'retire', member, reason: stale };
  if (input.draining && isPoolMember(member)) return { kind: 'retire', member, reason: 'draining' };
  switch (member.state) {
    case 'launching':
    case 'joining':
      return instance.state === 'running' ? { kind: 'initialize', member } : undefined;
    case 'initializing': {
      if (member.initCommandId === undefined) {
        return instance.state === 'running' ? { kind: 'initialize', member } : undefined;
      }
      if (input.initResults.get(member.instanceId) !== 'success') return undefined;
      return afterInitialization(member, input.members, input.sizing.runningSize);
    }
    case 'stopping':
      if (instance.state === 'stopped') return { kind: 'mark-ready', member, running: false };
      return now - member.stateSince > POWER_RETRY_MS ? { kind: 'stop', member } : undefined;
    case 'starting':
      if (instance.state === 'running') return { kind: 'mark-ready', member, running: true };
      // The start did not happen (capacity): keep it as a stopped ready member.
      return now - member.stateSince > POWER_RETRY_MS && instance.state === 'stopped'
        ? { kind: 'mark-ready', member, running: false }
        : undefined;
    case 'ready':
      if (member.running && instance.state === 'stopped')
        return { kind: 'mark-ready', member, running: false };
      return undefined;
    default:
      return undefined;
  }
};

const oldestFirst = (a: PoolMember, b: PoolMember): number =>
  a.launchedAt - b.launchedAt || a.instanceId.localeCompare(b.instanceId);

/**
 * The level-triggered reconcile of one pool: from the member records, what EC2 shows, the
 * resolved image and the sizing target, the actions that bring the pool to its target. Pure.
 * Invariant: members counted against max (launching … retiring) plus launches never exceed
 * `spec.maxSize`; if they already do (max lowered), ready members are retired.
 */
export const reconcilePool = (input: ReconcileInput): PoolAction[] => {
  const { spec, now } = input;
  const actions: PoolAction[] = [];
  const observedById = new Map(input.observed.map((instance) => [instance.instanceId, instance]));
  const known = new Set(input.members.map((member) => member.instanceId));
  const adopted: PoolMember[] = [];
  for (const { instance, intent } of sortTagged(spec.name, input.observed, known, input.intents, now)
    .adoptable) {
    const member = adoptInstance(spec.name, instance, intent, now);
    adopted.push(member);
    actions.push({ kind: 'adopt', member, clientToken: intent.clientToken });
  }
  const openIntents = new Map(
    input.intents.filter((intent) => isOpen(intent, now)).map((intent) => [intent.clientToken, intent]),
  );
  for (const member of input.members) {
    const token = observedById.get(member.instanceId)?.clientToken;
    const intent = token === undefined ? undefined : openIntents.get(token);
    if (intent) actions.push({ kind: 'close-intent', intent, instanceId: member.instanceId });
  }
  const launchedHere = launchedByPool(spec.name, input.observed, input.intents);

  const settled = new Map<string, PoolAction>();
  for (const member of input.members) {
    const action = memberAction(member, observedById.get(member.instanceId), input);
    if (action !== undefined) {
      settled.set(member.instanceId, action);
      actions.push(action);
    }
  }
  const leaving = (member: PoolMember): boolean => {
    const action = settled.get(member.instanceId);
    return action?.kind === 'retire' || action?.kind === 'forget';
  };
  const all = [...input.members, ...adopted];
  const counted = all.filter(
    (member) => countsAgainstMax(member) && settled.get(member.instanceId)?.kind !== 'forget',
  );
  const supply = all.filter(
    (member) => isPoolMember(member) && SUPPLY_STATES.includes(member.state) && !leaving(member),
  );

  // Over max (the quota was lowered) or above target: retire ready members, stopped and oldest
  // first. Over max they go at once; merely above target (demand fell) only those that idled past
  // the break-even time, because retiring a member that a later claim would take means paying its
  // launch and initialization again; the rest leave by being claimed without a refill.
  const target = input.draining ? 0 : Math.min(input.sizing.targetSize, spec.maxSize);
  const overMax = Math.max(0, counted.length - spec.maxSize);
  const surplus = Math.max(0, supply.length - target);
  const idleEnough = (member: PoolMember): boolean =>
    input.sizing.retireSurplusAfterIdleMs === undefined ||
    now - member.stateSince >= input.sizing.retireSurplusAfterIdleMs;
  const ready = supply
    .filter((member) => member.state === 'ready' && !settled.has(member.instanceId))
    .sort((a, b) => Number(a.running) - Number(b.running) || oldestFirst(a, b));
  const overMaxRetired = ready.slice(0, overMax);
  const scaledDown = ready
    .slice(overMax)
    .filter(idleEnough)
    .slice(0, Math.max(0, surplus - overMaxRetired.length));
  const retirable = [...overMaxRetired, ...scaledDown];
  for (const member of retirable) {
    const reason: RetireReason = overMaxRetired.includes(member) ? 'over-max' : 'scale-down';
    settled.set(member.instanceId, { kind: 'retire', member, reason });
    actions.push({ kind: 'retire', member, reason });
  }
  const remainingSupply = supply.length - retirable.length;

  const unheld = encryptionKeyHold(launchedHere, now)
    ? 0
    : Math.max(
        0,
        Math.min(
          target - remainingSupply,
          // Claims' cold launches under way use the pool's room too (security review H4).
          spec.maxSize - counted.length - all.filter(isColdLaunchInFlight).length,
        ),
      );
  const onTheirWay = supply.filter((member) => member.state === 'launching' || member.state === 'joining');
  const launches = agentRegistrationHold(launchedHere, input.members, now)
    ? Math.min(unheld, Math.max(0, 1 - onTheirWay.length))
    : unheld;
  const perSubnet = new Map(spec.subnets.map((subnet) => [subnet, 0]));
  for (const member of supply) perSubnet.set(member.subnetId, (perSubnet.get(member.subnetId) ?? 0) + 1);
  for (let index = 0; index < launches; index++) {
    const [subnetId] =
      [...perSubnet.entries()].sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]))[0] ?? [];
    if (subnetId === undefined) break;
    perSubnet.set(subnetId, (perSubnet.get(subnetId) ?? 0) + 1);
    actions.push({
      kind: 'launch',
      subnetId,
      imageId: input.currentImageId,
      clientToken: poolLaunchToken({ pool: spec.name, subnetId, now, index, nonce: input.launchNonce }),
      nonce: input.launchNonce,
    });
  }

  // Running tier: keep `runningSize` ready members running, start or stop the difference.
  if (!input.draining) {
    const idle = supply.filter((member) => member.state === 'ready' && !settled.has(member.instanceId));
    const runningNow =
      supply.filter((member) => member.state === 'starting').length +
      idle.filter((member) => member.running).length;
    const wanted = Math.min(input.sizing.runningSize, target);
    if (runningNow < wanted) {
      for (const member of idle
        .filter((m) => !m.running && !stoppedByEncryptionKey(observedById.get(m.instanceId)))
        .sort(oldestFirst)
        .slice(0, wanted - runningNow)) {
        actions.push({ kind: 'start', member });
      }
    } else if (runningNow > wanted) {
      for (const member of idle
        .filter((m) => m.running)
        .sort(oldestFirst)
        .slice(0, runningNow - wanted)) {
        actions.push({ kind: 'stop', member });
      }
    }
  }
  return actions;
};

/** Where a newly initialized member goes: running when the hot tier is short, otherwise stopped. */
export const afterInitialization = (
  member: PoolMember,
  members: readonly PoolMember[],
  runningSize: number,
): PoolAction => {
  if (member.origin === 'claim') return { kind: 'complete-cold-claim', member };
  const running = members.filter(
    (other) => (other.state === 'ready' && other.running) || other.state === 'starting',
  ).length;
  return running < runningSize ? { kind: 'mark-ready', member, running: true } : { kind: 'stop', member };
};
