import { describe, expect, it } from 'vitest';
import { MemoryPopularityStore } from '../../../functions/popularity/adapters/memory-popularity-store';
import { counterIncrements } from '../../../functions/popularity/domain/counters';
import { decayParameters } from '../../../functions/popularity/domain/decay';
import { GLOBAL_SCOPE } from '../../../functions/popularity/domain/scope';

const HOUR = 3_600_000;
const settings = { decay: decayParameters(24), shards: 8 };
const start = Date.UTC(2026, 0, 5, 8);

const launch = (
  eventId: string,
  image: string,
  at = start,
  extra: { az?: string; hostGroup?: string } = {},
) => ({
  eventId,
  at,
  images: [{ image, count: 1 }],
  availabilityZone: extra.az,
  hostGroup: extra.hostGroup,
});

describe('counter increments', () => {
  it('counts a launch in the image, image+AZ and image+host-group scopes', () => {
    const increments = counterIncrements(
      launch('e1', 'ami-0abc', start, { az: 'us-east-1a', hostGroup: 'gpu' }),
      settings,
    );
    expect(increments.map((increment) => increment.scope)).toEqual([
      { kind: 'global' },
      { kind: 'az', az: 'us-east-1a' },
      { kind: 'hostGroup', hostGroup: 'gpu' },
    ]);
  });

  it('merges containers of one image into one write (a transaction touches an item once)', () => {
    const increments = counterIncrements(
      {
        eventId: 'e1',
        at: start,
        images: [
          { image: 'nginx:1', count: 1 },
          { image: 'nginx:1', count: 1 },
          { image: 'redis:7', count: 1 },
        ],
      },
      settings,
    );
    expect(increments.map(({ image, launches }) => [image, launches])).toEqual([
      ['nginx:1', 2],
      ['redis:7', 1],
    ]);
  });
});

describe('memory popularity store', () => {
  it('counts each event id once', async () => {
    const store = new MemoryPopularityStore(settings);
    expect(await store.recordLaunch(launch('e1', 'ami-0abc'))).toEqual({ recorded: true });
    expect(await store.recordLaunch(launch('e1', 'ami-0abc'))).toEqual({ recorded: false });
    expect(await store.launches(GLOBAL_SCOPE, 'ami-0abc', start)).toBe(1);
    expect(await store.score(GLOBAL_SCOPE, 'ami-0abc', start)).toBeCloseTo(1, 9);
  });

  it('ranks top K by decayed score, not by raw count', async () => {
    const store = new MemoryPopularityStore(settings);
    // Old favourite: 10 launches three days ago (score 10/8); rising image: 2 launches now (score 2).
    for (let index = 0; index < 10; index++)
      await store.recordLaunch(launch(`old-${index}`, 'old-image', start));
    const now = start + 72 * HOUR;
    await store.recordLaunch(launch('new-1', 'rising-image', now));
    await store.recordLaunch(launch('new-2', 'rising-image', now));
    await store.recordLaunch(launch('new-3', 'one-off', now - 48 * HOUR));
    const top = await store.topK(GLOBAL_SCOPE, 2, now);
    expect(top.map((entry) => entry.image)).toEqual(['rising-image', 'old-image']);
    expect(top[0]?.score).toBeCloseTo(2, 9);
    expect(top[1]?.score).toBeCloseTo(10 / 8, 9);
    expect(top[1]?.launches).toBe(10);
  });

  it('answers top K per AZ and per host group', async () => {
    const store = new MemoryPopularityStore(settings);
    await store.recordLaunch(launch('a', 'ami-0aaa', start, { az: 'us-east-1a', hostGroup: 'web' }));
    await store.recordLaunch(launch('b', 'ami-0bbb', start, { az: 'us-east-1b', hostGroup: 'web' }));
    expect(
      (await store.topK({ kind: 'az', az: 'us-east-1a' }, 5, start)).map((entry) => entry.image),
    ).toEqual(['ami-0aaa']);
    expect(
      (await store.topK({ kind: 'hostGroup', hostGroup: 'web' }, 5, start)).map((entry) => entry.image),
    ).toEqual(['ami-0aaa', 'ami-0bbb']);
  });

  it('filters before taking K', async () => {
    const store = new MemoryPopularityStore(settings);
    await store.recordLaunch({ eventId: 'c', at: start, images: [{ image: 'nginx:1', count: 50 }] });
    await store.recordLaunch(launch('a', 'ami-0aaa'));
    const top = await store.topK(GLOBAL_SCOPE, 1, start, { where: (image) => image.startsWith('ami-') });
    expect(top.map((entry) => entry.image)).toEqual(['ami-0aaa']);
  });

  it('keeps scores continuous across an era rollover', async () => {
    const store = new MemoryPopularityStore(settings);
    const eraLength = 20 * 24 * HOUR;
    const boundary = Math.ceil(start / eraLength) * eraLength;
    await store.recordLaunch(launch('before', 'ami-0abc', boundary - HOUR));
    await store.recordLaunch(launch('after', 'ami-0abc', boundary + HOUR));
    const score = await store.score(GLOBAL_SCOPE, 'ami-0abc', boundary + HOUR);
    expect(score).toBeCloseTo(1 + 2 ** (-2 / 24), 9);
    expect(await store.launches(GLOBAL_SCOPE, 'ami-0abc', boundary + HOUR)).toBe(2);
  });
});
