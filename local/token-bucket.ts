import type { Clock } from '../functions/shared/clock';

export interface TokenBucketLimits {
  /** Maximum tokens (the burst). */
  readonly capacity: number;
  /** Tokens added per second, up to the capacity. */
  readonly refillPerSecond: number;
}

/**
 * A token bucket on a (virtual) clock, as EC2 uses for API throttling (ec2-api-throttling) and
 * EBS for fast snapshot restore credits. It starts full. Refill is continuous rather than in
 * whole-second steps: the sustained rate and the burst are the published ones, only the
 * granularity inside one second differs.
 */
export class TokenBucket {
  readonly #clock: Clock;
  readonly limits: TokenBucketLimits;
  #tokens: number;
  #updatedAt: number;

  constructor(clock: Clock, limits: TokenBucketLimits) {
    this.#clock = clock;
    this.limits = limits;
    this.#tokens = limits.capacity;
    this.#updatedAt = clock.now();
  }

  /** Tokens available now. */
  get tokens(): number {
    this.#refill();
    return this.#tokens;
  }

  /** Take `count` tokens if all of them are there; otherwise take none and return false. */
  tryTake(count = 1): boolean {
    this.#refill();
    if (this.#tokens < count) return false;
    this.#tokens -= count;
    return true;
  }

  #refill(): void {
    const now = this.#clock.now();
    const elapsedSeconds = (now - this.#updatedAt) / 1000;
    this.#updatedAt = now;
    this.#tokens = Math.min(
      this.limits.capacity,
      this.#tokens + elapsedSeconds * this.limits.refillPerSecond,
    );
  }
}
