import * as z from 'zod';
import { FUNCTION_IDS } from '../catalog';
import type { BucketLimits } from './ec2-buckets';

/**
 * The account budget's decisions, pure and with time passed in (functions/shared/ec2-budget.ts
 * applies them). EC2's buckets belong to the whole account and Region (ec2-buckets.ts), and other
 * clients use them too: warmboot, all its functions and all their execution environments
 * together, keeps to `share` of each bucket's published refill rate and capacity.
 */

/** The deployment's setting `accountBudget` (infra/config.ts), passed to every EC2-calling function. */
export const accountBudgetSchema = z
  .object({
    /** warmboot's share of every EC2 bucket, 0 < share ≤ 1. */
    share: z.number().gt(0).max(1).default(0.1),
    /**
     * A function with its own share (shelving's bulk unshelve wants more): it draws on a budget of
     * its own of that share, in addition to the one the other functions share.
     */
    functions: z.partialRecord(z.enum(FUNCTION_IDS), z.number().gt(0).max(1)).default({}),
  })
  .strict()
  .superRefine((settings, context) => {
    // The budgets add up: above 1 warmboot alone could empty a bucket and throttle itself.
    const own = Object.values(settings.functions);
    const shared = FUNCTION_IDS.some((id) => settings.functions[id] === undefined) ? settings.share : 0;
    const total = own.reduce((sum, share) => sum + share, shared);
    if (total > 1 + 1e-9) {
      context.addIssue({
        code: 'custom',
        path: ['functions'],
        message: `share (${shared}) and the functions' own shares add up to ${Number(total.toFixed(6))}; warmboot's total share of a bucket must be at most 1`,
      });
    }
  });
export type AccountBudgetSettings = z.infer<typeof accountBudgetSchema>;

/** The environment variable carrying `accountBudget` (JSON) into a function. */
export const ACCOUNT_BUDGET_ENV = 'ACCOUNT_BUDGET' as const;

/** Budgets without a function of their own: one per bucket, every such function's. */
const SHARED_POOL = 'shared';

/** What one function draws on: its share, and the pool of budget items it shares with others. */
export interface FunctionShare {
  readonly share: number;
  /** `shared`, or the function's id when it has a share of its own. */
  readonly pool: string;
}

export const functionShare = (settings: AccountBudgetSettings, functionId: string): FunctionShare => {
  const own = settings.functions[functionId as keyof AccountBudgetSettings['functions']];
  return own === undefined ? { share: settings.share, pool: SHARED_POOL } : { share: own, pool: functionId };
};

/**
 * `share` of a bucket. The capacity is at least one token, or a bucket as small as RunInstances'
 * (5) would admit no call at all at a 10 % share; the sustained rate stays at the share.
 */
export const shareOf = (limits: BucketLimits, share: number): BucketLimits => ({
  capacity: Math.max(1, limits.capacity * share),
  refillPerSecond: limits.refillPerSecond * share,
});

/**
 * What a store-failure fallback allows one execution environment alone: a tenth of the share
 * (at least one token of burst). It knows nothing of the others, so it assumes ten of them.
 */
export const FALLBACK_FRACTION = 0.1;

/** A bucket's level, as the store keeps it. */
export interface BucketLevel {
  /** May be negative: calls that reserved tokens ahead of the refill (debt). */
  readonly tokens: number;
  /** Epoch ms of the refill `tokens` includes. */
  readonly refilledAt: number;
}

/** A bucket never seen before is full. */
const fullBucket = (limits: BucketLimits, now: number): BucketLevel => ({
  tokens: limits.capacity,
  refilledAt: now,
});

/** The level at `now`: refilled by elapsed time × rate, up to the capacity. Time never runs back. */
export const refill = (level: BucketLevel, limits: BucketLimits, now: number): BucketLevel => {
  const elapsedSeconds = Math.max(0, now - level.refilledAt) / 1000;
  return {
    tokens: Math.min(limits.capacity, level.tokens + elapsedSeconds * limits.refillPerSecond),
    refilledAt: Math.max(level.refilledAt, now),
  };
};

/**
 * How long a lease's extra tokens stay usable. Leased tokens are spent by the environment without
 * a store write, any time until they expire (unused ones are lost); the bucket counts them as
 * spent at their expiry (`reservation`), so a lease never adds to a later burst and over any
 * T seconds warmboot's calls on a bucket stay within share × (capacity + refill × T).
 */
export const LEASE_MS = 1_000;

/**
 * The lease size: a call takes its own tokens plus, from what the bucket holds beyond them, up to
 * one second of the share's refill (LEASE_MS). A store write then serves about as many calls as
 * the share admits per second (a 10 % share: 2 DescribeInstances, 1 mutating call), so the writes
 * never outnumber the calls and an environment never hoards more than a second of the budget.
 */
export const leaseExtra = (limits: BucketLimits, tokens: number): number =>
  Math.max(0, Math.floor((limits.refillPerSecond * LEASE_MS) / 1000) - tokens);

export type LeaseDecision =
  | {
      readonly granted: true;
      /** The level to store. */
      readonly next: BucketLevel;
      /** Tokens taken beyond the call's own, for the environment's later calls (until LEASE_MS). */
      readonly extra: number;
      /** How long the call waits before it goes: until the refill covers its reservation. */
      readonly waitMs: number;
    }
  | {
      readonly granted: false;
      /** When to ask again: the debt would stay too deep until then. */
      readonly retryInMs: number;
    };

/** Waits are rounded up by this much, so float rounding never arrives a hair early. */
const SAFETY_MS = 1;

const msUntil = (tokens: number, limits: BucketLimits): number =>
  tokens <= 0 ? 0 : Math.ceil((tokens / limits.refillPerSecond) * 1000) + SAFETY_MS;

/**
 * Takes `tokens` for one call and up to `wantExtra` more for the environment's next calls.
 *
 * The call may reserve into debt (the level goes negative) and then waits until the refill has
 * covered it, so callers across environments go in the order they reserved, at the share's rate,
 * with one store write each. The debt is bounded by one bucket (or by the call, when one call
 * takes more than the bucket holds, like a RunInstances of more instances than the share's
 * capacity): beyond that the caller asks again later, so no call reserves far into the future.
 * Extra tokens come only from what is there beyond the call's own, never from debt.
 */
export const lease = (
  level: BucketLevel | undefined,
  limits: BucketLimits,
  tokens: number,
  wantExtra: number,
  now: number,
): LeaseDecision => {
  const current = refill(level ?? fullBucket(limits, now), limits, now);
  const debtLimit = Math.max(limits.capacity, tokens);
  const after = current.tokens - tokens;
  if (after < -debtLimit) {
    return { granted: false, retryInMs: msUntil(-debtLimit - after, limits) };
  }
  const extra = Math.min(wantExtra, Math.max(0, Math.floor(after)));
  return {
    granted: true,
    next: { tokens: after - extra, refilledAt: current.refilledAt },
    extra,
    waitMs: msUntil(-after, limits),
  };
};

/**
 * The shared store keeps a bucket as one number, `fullAt`: the moment it is full again if nobody
 * takes more (the theoretical arrival time of GCRA, the generic cell rate algorithm). At `now`
 * before that moment it holds capacity − (fullAt − now) × rate tokens, negative while calls have
 * reserved ahead of the refill; from that moment on, it is full. One number lets every reservation
 * on a bucket in use be a single atomic addition, which concurrent environments never lose to
 * each other, where a read and a conditional write of the level lose to every other writer.
 */
export const levelAt = (fullAt: number | undefined, limits: BucketLimits, now: number): BucketLevel => ({
  tokens:
    fullAt === undefined || fullAt <= now
      ? limits.capacity
      : limits.capacity - ((fullAt - now) / 1000) * limits.refillPerSecond,
  refilledAt: now,
});

/** How far `tokens` move a bucket's fullAt. */
const spanMs = (tokens: number, limits: BucketLimits): number => (tokens / limits.refillPerSecond) * 1000;

export type Reservation =
  | {
      /** The bucket is full: store `fullAt` if it still is, with `extra` tokens leased beyond the call's. */
      readonly kind: 'restart';
      readonly fullAt: number;
      readonly extra: number;
    }
  | {
      /**
       * The bucket is in use: add `byMs` to its fullAt if that is still at most `atMost`, the
       * deepest debt a call may reserve into (one bucket, or the call itself when it is larger).
       */
      readonly kind: 'extend';
      readonly byMs: number;
      readonly atMost: number;
    };

/**
 * How to reserve `tokens` on a bucket last seen at `fullAt`: restart it when full (with up to
 * `wantExtra` more for the environment's next calls, from what it holds beyond the call's own and
 * the lease's hold-back), else extend it (no extra: extra tokens never come from debt).
 */
export const reservation = (
  fullAt: number | undefined,
  limits: BucketLimits,
  tokens: number,
  wantExtra: number,
  now: number,
): Reservation => {
  if (fullAt === undefined || fullAt < now) {
    // Beyond the call's own tokens and the second of refill the lease holds back, so the call
    // itself never waits for its own lease (a bucket of 2 refilled at 2 a second leases nothing).
    const heldBackTokens = (limits.refillPerSecond * LEASE_MS) / 1000;
    const extra = Math.min(wantExtra, Math.max(0, Math.floor(limits.capacity - tokens - heldBackTokens)));
    // The extra tokens may go any time until the lease expires: counted as spent then, the latest
    // they can be, the bucket never refills ahead of calls still to come. Counted as spent now, a
    // lease spent just before it expires would meet a bucket refilled meanwhile (measured: 115
    // DescribeInstances within 85 ms against a bucket of 100 in the unshelve bench).
    const ownFullAt = now + spanMs(tokens, limits);
    return {
      kind: 'restart',
      fullAt: extra > 0 ? Math.max(ownFullAt, now + LEASE_MS) + spanMs(extra, limits) : ownFullAt,
      extra,
    };
  }
  const debtLimit = Math.max(limits.capacity, tokens);
  return {
    kind: 'extend',
    byMs: spanMs(tokens, limits),
    atMost: now + spanMs(limits.capacity + debtLimit - tokens, limits),
  };
};

/** How long a call waits once its reservation moved the bucket to `fullAt`: until it is out of debt. */
export const reservedWaitMs = (fullAt: number, limits: BucketLimits, now: number): number =>
  msUntil(-levelAt(fullAt, limits, now).tokens, limits);

/** When an extension refused at the debt limit may be asked again: once fullAt is back at `atMost`. */
export const extendRetryInMs = (fullAt: number, atMost: number): number =>
  Math.max(0, Math.ceil(fullAt - atMost)) + SAFETY_MS;

/**
 * How many more calls of one token the bucket admits by `now + withinMs`, counting the
 * reservations already made (a level in debt admits fewer). Reserves nothing.
 */
export const admissible = (
  level: BucketLevel | undefined,
  limits: BucketLimits,
  withinMs: number,
  now: number,
): number => {
  const current = refill(level ?? fullBucket(limits, now), limits, now);
  return Math.max(0, Math.floor(current.tokens + (withinMs / 1000) * limits.refillPerSecond));
};

/**
 * How long until the bucket has admitted `calls` more calls of one token, counting the
 * reservations already made. Reserves nothing.
 */
export const admittedWithinMs = (
  level: BucketLevel | undefined,
  limits: BucketLimits,
  calls: number,
  now: number,
): number => msUntil(calls - refill(level ?? fullBucket(limits, now), limits, now).tokens, limits);
