import type {
  RetryErrorInfo,
  RetryStrategyV2,
  StandardRetryBackoffStrategy,
  StandardRetryToken,
} from '@smithy/types';
import { DEFAULT_RETRY_DELAY_BASE, MAXIMUM_RETRY_DELAY, StandardRetryStrategy } from '@smithy/util-retry';
import { defaultRetryPolicy, type RetryPolicy } from '../functions/shared/retry';
import type { VirtualClock } from './clock';

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
    private readonly clock: VirtualClock,
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
