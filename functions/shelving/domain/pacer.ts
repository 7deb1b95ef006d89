/**
 * A client-side mirror of EC2's API token buckets, so bulk work stays inside them instead of
 * hammering into RequestLimitExceeded (the SDK's adaptive retry is only the second line).
 * Figures: AWS EC2 developer guide, ec2-api-throttling (burst / refill per second, per account
 * and Region), as listed in docs/ec2-timings.md.
 *
 * Pure bookkeeping with time passed in: `reserve` answers how long a call must wait before it
 * may go. Reservations may run into debt, so callers queue in arrival order and each waits
 * exactly until the bucket will have refilled its share.
 */
export interface BucketLimits {
  /** Maximum tokens (the burst). */
  readonly capacity: number;
  /** Tokens added per second. */
  readonly refillPerSecond: number;
}

export interface ApiLimits {
  readonly requests: BucketLimits;
  /** Resource-rate bucket (instances per call) of the four instance-lifecycle actions. */
  readonly instances?: BucketLimits;
}

const limits = (capacity: number, refillPerSecond: number): BucketLimits => ({ capacity, refillPerSecond });
/** Every Describe* action not listed: non-mutating, 100 burst, 20/s. */
export const NON_MUTATING = limits(100, 20);
/** Every other mutating action (AttachVolume, DetachVolume, ModifyInstanceAttribute, …): 50 burst, 5/s. */
export const OTHER_MUTATING = limits(50, 5);

/** Each action has its own buckets (ec2-api-throttling); the category only sets their size. */
const PUBLISHED_EC2_LIMITS: Readonly<Record<string, ApiLimits>> = {
  RunInstances: { requests: limits(5, 2), instances: limits(1000, 2) },
  StartInstances: { requests: limits(5, 2), instances: limits(1000, 2) },
  StopInstances: { requests: OTHER_MUTATING, instances: limits(1000, 20) },
  TerminateInstances: { requests: limits(100, 5), instances: limits(1000, 20) },
  CreateVolume: { requests: limits(100, 5) },
  CreateSnapshot: { requests: limits(100, 5) },
  DeleteVolume: { requests: limits(100, 5) },
  CreateTags: { requests: limits(100, 10) },
};

export const limitsOf = (action: string): ApiLimits =>
  PUBLISHED_EC2_LIMITS[action] ?? { requests: action.startsWith('Describe') ? NON_MUTATING : OTHER_MUTATING };

interface BucketState {
  tokens: number;
  updatedAt: number;
}

/** Waits are rounded up by this much so float rounding never arrives a hair early. */
const SAFETY_MS = 1;

export class Pacer {
  readonly #limitsOf: (action: string) => ApiLimits;
  readonly #state = new Map<string, BucketState>();

  constructor(limitsFor: (action: string) => ApiLimits = limitsOf) {
    this.#limitsOf = limitsFor;
  }

  /**
   * Reserves the tokens `action` needs (one request, plus `instances` for the instance-metered
   * actions) and returns how many ms to wait before calling.
   */
  reserve(action: string, instances: number, now: number): number {
    const spec = this.#limitsOf(action);
    let waitMs = this.#take(`${action}.requests`, spec.requests, 1, now);
    if (spec.instances) {
      waitMs = Math.max(
        waitMs,
        this.#take(`${action}.instances`, spec.instances, Math.max(1, instances), now),
      );
    }
    return waitMs > 0 ? Math.ceil(waitMs) + SAFETY_MS : 0;
  }

  /**
   * How many more `action` requests would be admitted by `now + withinMs` (the request bucket,
   * counting the reservations already made). Reserves nothing.
   */
  admissible(action: string, withinMs: number, now: number): number {
    const limits = this.#limitsOf(action).requests;
    const state = this.#state.get(`${action}.requests`);
    const tokens = state
      ? Math.min(
          limits.capacity,
          state.tokens + (Math.max(0, now - state.updatedAt) / 1000) * limits.refillPerSecond,
        )
      : limits.capacity;
    return Math.max(0, Math.floor(tokens + (withinMs / 1000) * limits.refillPerSecond));
  }

  #take(bucket: string, limits: BucketLimits, count: number, now: number): number {
    const state = this.#state.get(bucket) ?? { tokens: limits.capacity, updatedAt: now };
    const elapsed = Math.max(0, now - state.updatedAt) / 1000;
    state.tokens = Math.min(limits.capacity, state.tokens + elapsed * limits.refillPerSecond);
    state.updatedAt = Math.max(state.updatedAt, now);
    state.tokens -= count;
    this.#state.set(bucket, state);
    return state.tokens >= 0 ? 0 : (-state.tokens / limits.refillPerSecond) * 1000;
  }
}
