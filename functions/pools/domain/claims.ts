import { countsAgainstMax, isPoolMember, type PoolMember, SUPPLY_STATES } from './lifecycle';

export const CLAIM_STEPS = [
  'requested',
  'member-claimed',
  'started',
  'personalized',
  'transferred',
  'cold-launching',
  'ready',
  'failed',
] as const;
export type ClaimStep = (typeof CLAIM_STEPS)[number];

export interface ClaimError {
  readonly code: string;
  readonly message: string;
}

/**
 * The claim saga of one request (`CLAIM#<requestId>`). Every write is conditional on `version`,
 * so whoever drives the saga — the first invocation, a Lambda retry, a client retry, a resume the
 * pools reconcile sent — continues from the recorded step and two drivers never both advance it.
 */
export interface ClaimRecord {
  readonly requestId: string;
  readonly step: ClaimStep;
  readonly pool: string;
  /**
   * The validated request, so a resumed claim applies exactly what was asked. Its
   * `personalization` (SSH key, host name, document parameters) is kept only until the server is
   * personalized; then only `personalizationSha256` remains (security review M6).
   */
  readonly request: Record<string, unknown>;
  /** SHA-256 of the canonical request: the same request id with another payload is refused. */
  readonly requestSha256?: string;
  /** SHA-256 of the canonical personalization, once the values themselves are dropped. */
  readonly personalizationSha256?: string;
  readonly requestedAt: number;
  /** When a step was last written (the saga's last progress). */
  readonly updatedAt?: number;
  /**
   * While an invocation drives the saga: until when. Another driver takes the saga over only once
   * this has passed; every step write extends it and a driver that fails gives it up at once.
   */
  readonly leaseUntil?: number;
  readonly instanceId?: string;
  readonly path?: 'hot' | 'warm' | 'cold';
  readonly error?: ClaimError;
  readonly version: number;
}

/** How long a step write holds the saga for its driver (renewed while it waits on EC2 or SSM). */
export const CLAIM_LEASE_MS = 2 * 60_000;
/**
 * A claim not finished this long after the request (a cold one: after its server was initialized)
 * while nobody drives it is given up: failed and reported.
 */
export const CLAIM_GIVE_UP_MS = 15 * 60_000;

export const isTerminal = (step: ClaimStep): boolean => step === 'ready' || step === 'failed';

/** Some invocation is driving the saga now. */
export const isLeased = (claim: ClaimRecord, now: number): boolean =>
  claim.leaseUntil !== undefined && claim.leaseUntil >= now;

export type ClaimHealing =
  | { readonly kind: 'resume-claim'; readonly claim: ClaimRecord }
  | { readonly kind: 'fail-claim'; readonly claim: ClaimRecord; readonly error: ClaimError };

/** A cold launch's server is on its way: launched, waiting for its SSM agent, or initializing. */
export const WAITING_FOR_INIT: readonly PoolMember['state'][] = ['launching', 'joining', 'initializing'];

/** A pool member that will be ready without anyone's claim: launching, initializing, stopping, starting. */
export const isOnItsWay = (member: PoolMember): boolean =>
  isPoolMember(member) && SUPPLY_STATES.includes(member.state) && member.state !== 'ready';

/** A claim's own cold launch until it is handed over. */
export const isColdLaunchInFlight = (member: PoolMember): boolean =>
  member.origin === 'claim' && (WAITING_FOR_INIT.includes(member.state) || member.state === 'claimed');

/**
 * What uses the pool's `maxSize` (security review H4): the members the pool counts and the claims'
 * cold launches not yet handed over. A claim's cold launch waits for room, and the pool's refill
 * leaves room for the cold launches under way, so the two together never exceed it.
 */
export const usesPoolCapacity = (member: PoolMember): boolean =>
  countsAgainstMax(member) || isColdLaunchInFlight(member);

/**
 * What the pools reconcile does about a pool's unfinished claims (pure, level-triggered): a claim
 * nobody has driven for a lease period is resumed (the claim function continues from its step),
 * given up once too old, and a cold launch whose server was retired is failed. Every request so
 * ends in Server Ready or Server Request Failed even if each event about it was lost or its
 * invocations died.
 */
export const healClaims = (
  claims: readonly ClaimRecord[],
  members: readonly PoolMember[],
  now: number,
): ClaimHealing[] => {
  const byInstance = new Map(members.map((member) => [member.instanceId, member]));
  const healing: ClaimHealing[] = [];
  for (const claim of claims) {
    if (isTerminal(claim.step) || isLeased(claim, now)) continue;
    if (now - (claim.updatedAt ?? claim.requestedAt) < CLAIM_LEASE_MS) continue;
    // A cold launch is waited for while its server initializes (the member's init timeout bounds
    // that); the hand-over after it is bounded like a warm claim's, from when the server was ready.
    // A claim gives up when it made no progress for CLAIM_GIVE_UP_MS: one that waited for a
    // member (functions/claim/application/cold-launch.ts, a full pool) counts from its last step, not its request.
    let since = claim.updatedAt ?? claim.requestedAt;
    if (claim.step === 'cold-launching') {
      const member = claim.instanceId === undefined ? undefined : byInstance.get(claim.instanceId);
      if (member && WAITING_FOR_INIT.includes(member.state)) continue;
      if (member && (member.state === 'retiring' || member.state === 'terminated')) {
        healing.push({
          kind: 'fail-claim',
          claim,
          error: {
            code: 'ColdLaunchFailed',
            message: `the server launched for the request (${member.instanceId}) was retired: ${member.reason ?? 'unknown'}`,
          },
        });
        continue;
      }
      since = Math.max(claim.updatedAt ?? claim.requestedAt, member?.stateSince ?? 0);
    }
    if (now - since > CLAIM_GIVE_UP_MS) {
      healing.push({
        kind: 'fail-claim',
        claim,
        error: {
          code: 'ClaimTimedOut',
          message: `the claim did not finish within ${CLAIM_GIVE_UP_MS / 60_000} minutes (stuck at step ${claim.step})`,
        },
      });
      continue;
    }
    healing.push({ kind: 'resume-claim', claim });
  }
  return healing;
};
