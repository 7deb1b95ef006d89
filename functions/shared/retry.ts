import type {
  RetryErrorInfo,
  RetryStrategyV2,
  StandardRetryBackoffStrategy,
  StandardRetryToken,
} from '@smithy/types';
import {
  AdaptiveRetryStrategy,
  DEFAULT_RETRY_DELAY_BASE,
  MAXIMUM_RETRY_DELAY,
  StandardRetryStrategy,
} from '@smithy/util-retry';
import type { Clock } from './clock';

/**
 * Retries live here and nowhere else. SDK calls retry inside the SDK client with the adaptive
 * mode (client-side rate limiting after throttles plus exponential backoff with jitter); work
 * that waits on the world (an SSM command, a capacity shortage) retries through `backoffDelayMs`,
 * with the next attempt time stored in DynamoDB so a reconcile picks it up.
 */
export interface RetryPolicy {
  maxAttempts: number;
}

export const defaultRetryPolicy: RetryPolicy = { maxAttempts: 5 };

/** The retry strategy every production SDK client is created with. */
export const productionRetryStrategy = (policy: RetryPolicy = defaultRetryPolicy): RetryStrategyV2 =>
  new AdaptiveRetryStrategy(async () => policy.maxAttempts);

/** A clock whose time only moves when nothing is in flight (local/clock.ts VirtualClock). */
export interface VirtualTime extends Clock {
  /** Marks real asynchronous work in flight, so virtual time holds still until it settles. */
  trackIo<T>(operation: () => Promise<T>): Promise<T>;
}

/**
 * The SDK's standard full-jitter backoff (base × 2^retries, capped), remembered for the virtual
 * clock. The standard strategy is told 0: since @smithy/core 3 it waits the backoff itself, on a
 * real timer, inside `refreshRetryTokenForRetry`.
 */
class VirtualBackoff implements StandardRetryBackoffStrategy {
  #base = DEFAULT_RETRY_DELAY_BASE;
  delayMs = 0;
  constructor(private readonly random: () => number) {}
  setDelayBase(delay: number): void {
    this.#base = delay;
  }
  computeNextBackoffDelay(retries: number): number {
    this.delayMs = Math.floor(this.random() * Math.min(this.#base * 2 ** retries, MAXIMUM_RETRY_DELAY));
    return 0;
  }
}

/**
 * The same retry decisions as production (the SDK's standard strategy: which errors retry, the
 * attempts, the retry quota, the backoff with jitter) but the wait happens on `clock`, so a
 * simulated fleet on a virtual clock sees real backoff in virtual time instead of real sleeps.
 */
export class ClockRetryStrategy implements RetryStrategyV2 {
  private readonly backoff: VirtualBackoff;
  private readonly standard: StandardRetryStrategy;
  constructor(
    private readonly clock: VirtualTime,
    policy: RetryPolicy = defaultRetryPolicy,
    random: () => number = Math.random,
  ) {
    this.backoff = new VirtualBackoff(random);
    this.standard = new StandardRetryStrategy({ maxAttempts: policy.maxAttempts, backoff: this.backoff });
  }
  acquireInitialRetryToken(scope: string): Promise<StandardRetryToken> {
    return this.standard.acquireInitialRetryToken(scope);
  }
  async refreshRetryTokenForRetry(
    token: StandardRetryToken,
    info: RetryErrorInfo,
  ): Promise<StandardRetryToken> {
    // The standard strategy's zero-length real timer is tracked so virtual time cannot jump past it.
    const next = await this.clock.trackIo(() => this.standard.refreshRetryTokenForRetry(token, info));
    await this.clock.sleep(this.backoff.delayMs);
    return next;
  }
  recordSuccess(token: StandardRetryToken): void {
    this.standard.recordSuccess(token);
  }
}

/**
 * Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"):
 * delay = random(0, min(cap, base * 2^attempt)). `random` is injected so decisions stay pure.
 */
export const backoffDelayMs = (
  attempt: number,
  random: () => number,
  options: { baseMs?: number; capMs?: number } = {},
): number => {
  const base = options.baseMs ?? 1_000;
  const cap = options.capMs ?? 5 * 60_000;
  const ceiling = Math.min(cap, base * 2 ** Math.max(0, attempt));
  return Math.floor(random() * ceiling);
};

export interface RetryingOptions {
  readonly sleep: Clock['sleep'];
  readonly random: () => number;
  /** Attempts in all, the first included. */
  readonly attempts: number;
  /** Whether a failure is worth another attempt; anything else is thrown at once. */
  readonly retryable: (error: unknown) => boolean;
  readonly baseMs?: number;
  readonly capMs?: number;
  /**
   * How long the caller may still wait (its invocation's deadline): no retry whose backoff would
   * not fit is waited for; the last failure is thrown instead.
   */
  readonly remainingMs?: () => number;
}

/**
 * Runs `operation` again after a full-jitter backoff on `clock` while it fails with a retryable
 * error, for conditions the SDK's own retry cannot know are transient (an SSM agent that has not
 * registered yet, a transaction cancelled by a concurrent one). The last failure is thrown.
 */
export const retrying = async <T>(operation: () => Promise<T>, options: RetryingOptions): Promise<T> => {
  for (let attempt = 0; ; attempt++) {
    try {
      return await operation();
    } catch (error) {
      if (attempt + 1 >= options.attempts || !options.retryable(error)) throw error;
      const delay = backoffDelayMs(attempt, options.random, {
        ...(options.baseMs !== undefined ? { baseMs: options.baseMs } : {}),
        ...(options.capMs !== undefined ? { capMs: options.capMs } : {}),
      });
      const remaining = options.remainingMs?.();
      if (remaining !== undefined && (remaining <= 0 || delay > remaining)) throw error;
      await options.sleep(delay);
    }
  }
};

export interface PollOptions {
  readonly clock: Clock;
  /** Give up after this long on `clock`. */
  readonly timeoutMs: number;
  /** Wait before the next check; short first steps keep latency-sensitive paths fast. */
  readonly intervalMs: (attempt: number) => number;
}

/**
 * Checks until `check` yields a value, waiting on `clock` between checks, for EC2 and SSM changes
 * that have no event to wait for (a detach finishing, an instance reaching running). Returns
 * undefined when the time is up; the caller decides whether that is an error.
 */
export const pollUntil = async <T>(
  check: () => Promise<T | undefined>,
  options: PollOptions,
): Promise<T | undefined> => {
  const deadline = options.clock.now() + options.timeoutMs;
  for (let attempt = 0; ; attempt++) {
    const value = await check();
    if (value !== undefined) return value;
    const wait = Math.min(options.intervalMs(attempt), deadline - options.clock.now());
    if (wait <= 0) return undefined;
    await options.clock.sleep(wait);
  }
};
