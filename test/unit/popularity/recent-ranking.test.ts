import { describe, expect, it } from 'vitest';
import { MemoryPopularityStore } from '../../../functions/popularity/adapters/memory-popularity-store';
import { RANKING_MAX_AGE_MS, RecentRanking } from '../../../functions/popularity/adapters/recent-ranking';
import { rankAmong } from '../../../functions/popularity/domain/counters';
import { decayParameters } from '../../../functions/popularity/domain/decay';
import { GLOBAL_SCOPE } from '../../../functions/popularity/domain/scope';

const decay = decayParameters(24);
const start = Date.UTC(2026, 0, 5, 8);

const storeWith = async (launches: Record<string, number>) => {
  const store = new MemoryPopularityStore({ decay, shards: 8 });
  let event = 0;
  for (const [image, count] of Object.entries(launches))
    for (let i = 0; i < count; i++)
      await store.recordLaunch({ eventId: `e${event++}`, at: start, images: [{ image, count: 1 }] });
  const reads: number[] = [];
  const reader = {
    topK: (...args: Parameters<MemoryPopularityStore['topK']>) => {
      reads.push(args[2]);
      return store.topK(...args);
    },
  };
  return { store, reads, ranking: new RecentRanking(reader, decay, RANKING_MAX_AGE_MS) };
};

describe('a scope ranking remembered for a minute', () => {
  it('reads the scope once a minute, decaying the remembered scores to the caller’s time', async () => {
    const { ranking, reads, store } = await storeWith({ 'ami-a': 4, 'ami-b': 2 });
    const first = await ranking.topK(GLOBAL_SCOPE, 3, start);
    // A launch after the read is not in the remembered ranking until the next read.
    await store.recordLaunch({ eventId: 'late', at: start + 1_000, images: [{ image: 'ami-c', count: 1 }] });
    const later = await ranking.topK(GLOBAL_SCOPE, 3, start + 30_000);
    expect(reads).toEqual([start]);
    expect(later.map((entry) => entry.image)).toEqual(['ami-a', 'ami-b']);
    expect(later[0]?.score).toBeCloseTo((first[0]?.score ?? 0) * 2 ** (-30_000 / decay.halfLifeMs), 12);
    expect(later[0]?.score).toBeLessThan(first[0]?.score ?? 0);

    const fresh = await ranking.topK(GLOBAL_SCOPE, 3, start + RANKING_MAX_AGE_MS);
    expect(reads).toEqual([start, start + RANKING_MAX_AGE_MS]);
    expect(fresh.map((entry) => entry.image)).toEqual(['ami-a', 'ami-b', 'ami-c']);
  });

  it('takes in the fresh scores this process reads, keeping the K best', async () => {
    const { ranking, reads } = await storeWith({ 'ami-a': 4, 'ami-b': 2, 'ami-c': 1 });
    await ranking.topK(GLOBAL_SCOPE, 3, start);
    ranking.update(GLOBAL_SCOPE, 'ami-d', 3, start + 1_000);
    ranking.update(GLOBAL_SCOPE, 'ami-a', 0.5, start + 1_000);
    const top = await ranking.topK(GLOBAL_SCOPE, 3, start + 1_000);
    expect(reads).toEqual([start]);
    expect(top.map((entry) => entry.image)).toEqual(['ami-d', 'ami-b', 'ami-c']);
    expect(top[0]?.score).toBeCloseTo(3, 12);
  });

  it('reads again for a longer list, another scope, or a time before the read', async () => {
    const { ranking, reads } = await storeWith({ 'ami-a': 1 });
    await ranking.topK(GLOBAL_SCOPE, 3, start);
    await ranking.topK(GLOBAL_SCOPE, 2, start + 1);
    await ranking.topK(GLOBAL_SCOPE, 5, start + 2);
    await ranking.topK({ kind: 'az', az: 'us-east-1a' }, 5, start + 3);
    await ranking.topK(GLOBAL_SCOPE, 5, start - 1);
    expect(reads).toEqual([start, start + 2, start + 3, start - 1]);
  });
});

describe('where an image ranks among the others', () => {
  const ranked = [
    { image: 'ami-a', score: 5, launches: 5 },
    { image: 'ami-c', score: 3, launches: 3 },
    { image: 'ami-d', score: 1, launches: 1 },
  ];

  it('places the image by its own score, ignoring its entry in an older ranking', () => {
    expect(rankAmong(ranked, 'ami-d', 4)).toBe(1);
    expect(rankAmong(ranked, 'ami-z', 0.5)).toBe(3);
    expect(rankAmong(ranked, 'ami-a', 6)).toBe(0);
  });

  it('breaks a tie by image id, as the ranking does', () => {
    expect(rankAmong(ranked, 'ami-b', 3)).toBe(1);
    expect(rankAmong(ranked, 'ami-e', 3)).toBe(2);
  });
});
