import type { RetryStrategyV2 } from '@smithy/types';
import { AdaptiveRetryStrategy } from '@smithy/util-retry';
import type { Clock } from './clock';

/**
 * Retries live here and nowhere else. SDK calls retry inside the SDK client with the adaptive
 * mode (client-side rate limiting after throttles plus exponential backoff with jitter); work
 * that waits on the world (an SSM command, a capacity shortage) retries through `backoffDelayMs`,
 * with the next attempt time stored in DynamoDB so a reconcile picks it up. The local cloud
 * gives its clients local/retry-strategy.ts: the same decisions, waited on the virtual clock.
 */
export interface RetryPolicy {
  maxAttempts: number;
}

export const defaultRetryPolicy: RetryPolicy = { maxAttempts: 5 };

/** The retry strategy every production SDK client is created with. */
export const productionRetryStrategy = (policy: RetryPolicy = defaultRetryPolicy): RetryStrategyV2 =>
  new AdaptiveRetryStrategy(async () => policy.maxAttempts);

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
