import type { RetryErrorInfo, RetryStrategyV2, StandardRetryToken } from '@smithy/types';
import { AdaptiveRetryStrategy, StandardRetryStrategy } from '@smithy/util-retry';
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

/**
 * The same retry decisions as production (the SDK's standard strategy: which errors retry, the
 * backoff with jitter, the retry quota) but the wait happens on `clock`, so a simulated fleet on a
 * virtual clock sees real backoff in virtual time instead of real sleeps.
 */
export class ClockRetryStrategy implements RetryStrategyV2 {
  private readonly standard: StandardRetryStrategy;
  constructor(
    private readonly clock: Clock,
    policy: RetryPolicy = defaultRetryPolicy,
  ) {
    this.standard = new StandardRetryStrategy(async () => policy.maxAttempts);
  }
  acquireInitialRetryToken(scope: string): Promise<StandardRetryToken> {
    return this.standard.acquireInitialRetryToken(scope);
  }
  async refreshRetryTokenForRetry(
    token: StandardRetryToken,
    info: RetryErrorInfo,
  ): Promise<StandardRetryToken> {
    const next = await this.standard.refreshRetryTokenForRetry(token, info);
    await this.clock.sleep(next.getRetryDelay());
    return {
      getRetryCount: () => next.getRetryCount(),
      getRetryDelay: () => 0,
      getRetryCost: () => next.getRetryCost(),
    };
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
