import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../local/clock';
import { TokenBucket } from '../../../local/token-bucket';

describe('TokenBucket', () => {
  it('allows a burst of its capacity, then refuses', () => {
    const bucket = new TokenBucket(new VirtualClock(), { capacity: 5, refillPerSecond: 2 });

    const answers = Array.from({ length: 6 }, () => bucket.tryTake());

    expect(answers).toEqual([true, true, true, true, true, false]);
  });

  it('refills at its rate in virtual time, never above capacity', async () => {
    const clock = new VirtualClock();
    const bucket = new TokenBucket(clock, { capacity: 5, refillPerSecond: 2 });
    for (let taken = 0; taken < 5; taken++) bucket.tryTake();

    await clock.advanceBy(500);
    expect(bucket.tokens).toBe(1);
    await clock.advanceBy(60_000);
    expect(bucket.tokens).toBe(5);
  });

  it('takes nothing when it cannot take everything asked for', () => {
    const bucket = new TokenBucket(new VirtualClock(), { capacity: 10, refillPerSecond: 1 });

    expect(bucket.tryTake(11)).toBe(false);
    expect(bucket.tokens).toBe(10);
  });
});
