import { describe, expect, it } from 'vitest';
import { shardOf, shardsNeeded } from '../../../functions/popularity/domain/shard';

describe('write sharding', () => {
  it('puts a redelivered event on the same shard', () => {
    expect(shardOf('3f1c2b6e-8d2a-4c1e-9a55-6c0f1d2e7b41', 8)).toBe(
      shardOf('3f1c2b6e-8d2a-4c1e-9a55-6c0f1d2e7b41', 8),
    );
  });

  it('spreads event ids evenly over the shards', () => {
    const counts = new Array<number>(8).fill(0);
    for (let index = 0; index < 8_000; index++) {
      const shard = shardOf(`event-${index}`, 8);
      counts[shard] = (counts[shard] ?? 0) + 1;
    }
    for (const count of counts) expect(count).toBeGreaterThan(850);
    for (const count of counts) expect(count).toBeLessThan(1_150);
  });

  it('needs 2 shards per 1,000 WCU of transactional writes: 1,000 launches/s of one image need 2', () => {
    expect(shardsNeeded(1_000)).toBe(2);
    expect(shardsNeeded(4_000)).toBe(8);
    expect(shardsNeeded(1)).toBe(1);
  });
});
