import { ConflictError } from '../../shared/errors';

/**
 * A pool member's lifecycle. Every state change is checked against this table and written
 * conditionally on the previous state and version, so a duplicate or reordered event cannot move
 * a member backwards and two writers cannot both win.
 *
 *   launching → joining → initializing → stopping → ready(stopped) → claimed → handed-over
 *                                      ↘ ready(running) ↗            ↘ ready (claim released)
 *   ready(stopped) → starting → ready(running) → stopping     (running tier)
 *   any live state → retiring → terminated
 *
 * A claim's own cold launch (origin `claim`) skips the pool: initializing → claimed.
 *
 * `joining`: EC2 says running, but the SSM agent has not registered yet, so the init command
 * cannot be sent (SendCommand answers InvalidInstanceId). A member leaves it when the command
 * is sent, or is retired (`agent-never-registered`) once its registration deadline passed.
 * `launching → initializing` stays allowed for members recorded by an older release.
 */
export const MEMBER_STATES = [
  'launching',
  'joining',
  'initializing',
  'stopping',
  'starting',
  'ready',
  'claimed',
  'handed-over',
  'retiring',
  'terminated',
] as const;
export type MemberState = (typeof MEMBER_STATES)[number];

export const TRANSITIONS: Readonly<Record<MemberState, readonly MemberState[]>> = {
  launching: ['joining', 'initializing', 'retiring', 'terminated'],
  joining: ['initializing', 'retiring', 'terminated'],
  initializing: ['stopping', 'ready', 'claimed', 'retiring', 'terminated'],
  stopping: ['ready', 'retiring', 'terminated'],
  starting: ['ready', 'retiring', 'terminated'],
  ready: ['claimed', 'starting', 'stopping', 'retiring', 'terminated'],
  claimed: ['handed-over', 'ready', 'retiring', 'terminated'],
  'handed-over': [],
  retiring: ['terminated'],
  terminated: [],
};

export class IllegalTransitionError extends ConflictError {
  readonly from: MemberState;
  readonly to: MemberState;
  constructor(instanceId: string, from: MemberState, to: MemberState) {
    super(`member ${instanceId}: illegal transition ${from} → ${to}`);
    this.name = 'IllegalTransitionError';
    this.from = from;
    this.to = to;
  }
}

export const canTransition = (from: MemberState, to: MemberState): boolean => TRANSITIONS[from].includes(to);

export interface PoolMember {
  readonly pool: string;
  readonly instanceId: string;
  /** `pool`: idle capacity the pool keeps; `claim`: a claim's own cold launch (the requester's server). */
  readonly origin: 'pool' | 'claim';
  readonly state: MemberState;
  /** For ready members: whether the instance is running (hot tier) or stopped (warm tier). */
  readonly running: boolean;
  readonly imageId: string;
  readonly instanceType: string;
  readonly availabilityZone: string;
  readonly subnetId: string;
  readonly launchedAt: number;
  readonly stateSince: number;
  /** Incremented by every write; conditional writes compare it. */
  readonly version: number;
  readonly initCommandId?: string;
  /** Set while claimed, and from the start on a claim's own cold launch. */
  readonly claimId?: string;
  readonly reason?: string;
}

/** The member after a checked transition (pure; the store writes it conditionally on `version`). */
export const transition = (
  member: PoolMember,
  to: MemberState,
  now: number,
  changes: Partial<Pick<PoolMember, 'running' | 'initCommandId' | 'claimId' | 'reason'>> = {},
): PoolMember => {
  if (!canTransition(member.state, to)) throw new IllegalTransitionError(member.instanceId, member.state, to);
  if (to === 'claimed' && member.state === 'initializing' && member.origin !== 'claim') {
    throw new IllegalTransitionError(member.instanceId, member.state, to);
  }
  return { ...member, ...changes, state: to, stateSince: now, version: member.version + 1 };
};

/** States that hold an instance the pool pays for: they count against the pool's max. */
export const COUNTED_STATES: readonly MemberState[] = MEMBER_STATES.filter(
  (state) => state !== 'handed-over' && state !== 'terminated',
);
/** States that will become (or are) ready members: the pool's supply toward its target size. */
export const SUPPLY_STATES: readonly MemberState[] = COUNTED_STATES.filter(
  (state) => state !== 'claimed' && state !== 'retiring',
);

/** A claim's own cold launch is the requester's server, not idle pool capacity. */
export const isPoolMember = (member: PoolMember): boolean => member.origin === 'pool';

export const countsAgainstMax = (member: PoolMember): boolean =>
  isPoolMember(member) && COUNTED_STATES.includes(member.state);
