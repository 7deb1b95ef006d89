import { describe, expect, it } from 'vitest';
import { MemoryImageCacheStore } from '../../../functions/image-cache/adapters/memory-store';
import { hostGroupSchema } from '../../../functions/image-cache/config';
import { MemoryRecentAdviceStore } from '../../../functions/placement/adapters/recent-advice';
import { advise } from '../../../functions/placement/application/advise';
import type { PlacementDependencies } from '../../../functions/placement/dependencies';
import {
  ADVICE_DECAY,
  adviceAdditions,
  adviceErasAt,
  recentlyAdvised,
} from '../../../functions/placement/domain/recent-advice';
import type { Fact } from '../../../functions/shared/adapters/facts';

const NOW = Date.parse('2026-01-10T12:00:00Z');
const HALF_LIFE = ADVICE_DECAY.halfLifeMs;
const GROUP = hostGroupSchema.parse({ name: 'g', cacheBytes: 4e9, cacheDirectory: '/var/cache/warmboot' });
const placement = (instanceId: string, count: number) => ({
  instanceId,
  availabilityZone: 'az-a',
  count,
  warm: true,
});

/** Two warm hosts in one AZ holding `web`, over the in-memory stores; time is set per call. */
const group = async () => {
  const store = new MemoryImageCacheStore();
  for (const instanceId of ['i-a', 'i-b']) {
    await store.putHost(
      GROUP.name,
      { instanceId, availabilityZone: 'az-a', status: 'running', joinedAt: 0, inventoriedAt: 0 },
      'absent',
    );
    await store.writeEntry(
      GROUP.name,
      instanceId,
      'web',
      { imageId: 'web', state: 'cached', bytes: 1e9, since: 0, attempts: 0 },
      'absent',
    );
  }
  const facts: Fact[] = [];
  let now = NOW;
  const deps: PlacementDependencies = {
    groups: [GROUP],
    store,
    recentAdvice: new MemoryRecentAdviceStore(),
    facts: { publish: async (published) => void facts.push(...published) },
    clock: { now: () => now, sleep: async () => undefined },
  };
  const adviseAt = async (at: number) => {
    now = at;
    const advice = await advise(deps, { imageId: 'web', count: 1, hostGroup: GROUP.name });
    return advice.placements.map((chosen) => chosen.instanceId);
  };
  return { adviseAt, facts };
};

describe('recent advice (what placement remembers of its own advice)', () => {
  it('decays an advised instance by half every half-life, across eras', () => {
    const additions = adviceAdditions([placement('i-a', 2), placement('i-b', 1)], NOW);

    expect(recentlyAdvised(additions, NOW).get('i-a')).toBeCloseTo(2);
    expect(recentlyAdvised(additions, NOW + HALF_LIFE).get('i-a')).toBeCloseTo(1);
    expect(recentlyAdvised(additions, NOW + 2 * HALF_LIFE).get('i-b')).toBeCloseTo(0.25);
    // An era is 20 half-lives: a weight written in the previous era still counts, decayed.
    const later = NOW + 20 * HALF_LIFE;
    expect(adviceErasAt(later)).toContain(additions[0]?.era);
    expect(recentlyAdvised(additions, later).get('i-a')).toBeCloseTo(2 * 2 ** -20, 12);
    expect(additions.every((addition) => addition.expiresAt > later)).toBe(true);
  });

  it('sends consecutive single launches to alternate warm hosts instead of always the first one', async () => {
    const { adviseAt } = await group();

    const chosen = [];
    for (let step = 0; step < 6; step++) chosen.push(...(await adviseAt(NOW + step * 1000)));

    expect(chosen).toEqual(['i-a', 'i-b', 'i-a', 'i-b', 'i-a', 'i-b']);
  });

  it('forgets old advice: a host advised long ago competes again as a fresh one', async () => {
    const { adviseAt } = await group();
    for (let step = 0; step < 3; step++) await adviseAt(NOW);
    // i-a got 2, i-b 1: i-b goes next while the memory is fresh...
    expect(await adviseAt(NOW + 1000)).toEqual(['i-b']);
    // ...and after 30 half-lives both weigh ~0: the tie falls back to the lower id.
    expect(await adviseAt(NOW + 30 * HALF_LIFE)).toEqual(['i-a']);
  });

  it('publishes the advice, and no Plan Cache when a warm host takes the launch', async () => {
    const { adviseAt, facts } = await group();

    await adviseAt(NOW);

    expect(facts.map((fact) => fact.detailType)).toEqual(['Placement Advised']);
  });
});
