import { describe, expect, it } from 'vitest';
import type { HostImageEntry } from '../../../functions/image-cache/domain/model';
import { formatWarmList, parseWarmList } from '../../../functions/image-cache/domain/warm-list';
import { advisePlacement, type PlacementHost } from '../../../functions/placement/domain/advise';

const NOW = Date.parse('2026-01-10T12:00:00Z');
const GB = 1_000_000_000;
const entry = (imageId: string, state: HostImageEntry['state'] = 'cached'): HostImageEntry => ({
  imageId,
  state,
  bytes: GB,
  since: NOW - 1,
  attempts: 0,
});
const host = (
  instanceId: string,
  az: string,
  images: HostImageEntry[] = [],
  extra: Partial<PlacementHost> = {},
) => ({
  instanceId,
  availabilityZone: az,
  entries: images,
  ...extra,
});

const advise = (
  hosts: PlacementHost[],
  count: number,
  extra: { azs?: string[]; imageBytes?: number; pins?: string[] } = {},
) => advisePlacement({ image: 'web', count, hostGroup: 'g', hosts, cacheBytes: 4 * GB, now: NOW, ...extra });

const perHost = (advice: ReturnType<typeof advise>) =>
  Object.fromEntries(advice.placements.map((placement) => [placement.instanceId, placement.count]));

describe('advisePlacement', () => {
  it('spreads across AZs first and gives no warm host more than its share', () => {
    const hosts = [
      host('i-a1', 'az-a', [entry('web')]),
      host('i-a2', 'az-a', [entry('web')]),
      host('i-a3', 'az-a', [entry('web')]),
      host('i-b1', 'az-b', [entry('web')]),
    ];

    const advice = advise(hosts, 6);

    expect(advice.share).toBe(2);
    expect(Math.max(...advice.placements.map((placement) => placement.count))).toBeLessThanOrEqual(2);
    const byAz = advice.placements.reduce<Record<string, number>>((sum, placement) => {
      sum[placement.availabilityZone] = (sum[placement.availabilityZone] ?? 0) + placement.count;
      return sum;
    }, {});
    expect(byAz).toEqual({ 'az-a': 4, 'az-b': 2 });
    expect(advice.spread).toBe('even');
    expect(advice.warmHosts).toEqual([]);
  });

  it('reports a partial spread when only one host holds the image, and falls back to hosts with room', () => {
    const hosts = [
      host('i-warm', 'az-a', [entry('web')]),
      host('i-room', 'az-b'),
      host('i-full', 'az-b', [entry('x'), entry('y'), entry('z'), entry('w')]),
    ];

    const advice = advise(hosts, 4, { imageBytes: GB });

    expect(advice.share).toBe(4);
    expect(perHost(advice)).toEqual({ 'i-warm': 4 });
    expect(advice.spread).toBe('partial');
    expect(advice.reasons).toContain('only one host holds the image');
  });

  it('places on cold hosts with room and starts their warm when warm hosts have no free slots', () => {
    const hosts = [
      host('i-warm', 'az-a', [entry('web')], { freeSlots: 1 }),
      host('i-fetching', 'az-b', [entry('web', 'fetching')]),
      host('i-room', 'az-b'),
    ];

    const advice = advise(hosts, 5, { imageBytes: GB });

    expect(perHost(advice)).toEqual({ 'i-warm': 1, 'i-fetching': 2, 'i-room': 2 });
    expect(advice.warmHosts).toEqual(['i-room']);
    expect(advice.spread).toBe('partial');
    expect(advice.unplaced).toBe(0);
  });

  it('honours the requested AZs and says when they hold no warm host', () => {
    const hosts = [
      host('i-a', 'az-a', [entry('web')]),
      host('i-b', 'az-b', [entry('web')]),
      host('i-c', 'az-c'),
    ];

    const advice = advise(hosts, 2, { azs: ['az-b', 'az-c'] });

    expect(perHost(advice)).toEqual({ 'i-b': 2 });
    expect(advice.reasons).toContain('no warm host in az-c');
    expect(advice.unplaced).toBe(0);
  });

  it('reports instances that fit nowhere', () => {
    const advice = advise([host('i-a', 'az-a', [entry('web')], { freeSlots: 1 })], 3);

    expect(advice.placed).toBe(1);
    expect(advice.unplaced).toBe(2);
    expect(advice.spread).toBe('partial');
  });

  it('sends a launch to a host already downloading the image, not to a lighter one that would start another download', () => {
    const hosts = [
      host('i-a', 'az-a', [], { recentlyAdvised: 0 }),
      host('i-z', 'az-b', [entry('web', 'fetching')], { recentlyAdvised: 9 }),
    ];

    const advice = advise(hosts, 1, { imageBytes: GB });

    expect(perHost(advice)).toEqual({ 'i-z': 1 });
    expect(advice.warmHosts).toEqual([]);
  });

  it('places a cold launch on a full host that can evict unpinned images, never displacing pins', () => {
    const full = [entry('x'), entry('y'), entry('z'), entry('w')];
    const pinnedFull = [entry('p1'), entry('p2'), entry('p3'), entry('p4')];
    const hosts = [
      host('i-pinned', 'az-a', pinnedFull, { recentlyAdvised: 0 }),
      host('i-full', 'az-b', full, { recentlyAdvised: 5 }),
    ];

    const advice = advise(hosts, 1, { imageBytes: GB, pins: ['p1', 'p2', 'p3', 'p4'] });

    expect(perHost(advice)).toEqual({ 'i-full': 1 });
    expect(advice.warmHosts).toEqual(['i-full']);
    expect(advice.unplaced).toBe(0);
  });

  it('prefers a cold host with free room over one that must evict', () => {
    const hosts = [
      host('i-full', 'az-a', [entry('x'), entry('y'), entry('z'), entry('w')], { recentlyAdvised: 0 }),
      host('i-room', 'az-b', [entry('x')], { recentlyAdvised: 5 }),
    ];

    expect(perHost(advise(hosts, 1, { imageBytes: GB }))).toEqual({ 'i-room': 1 });
  });
});

describe('warm-list tag', () => {
  it('round-trips and stays within the 256-character tag value limit', () => {
    const ids = Array.from({ length: 40 }, (_, index) => `registry.example.com/team/image-${index}:v1`);

    const value = formatWarmList(ids);
    const parsed = parseWarmList(value);

    expect(value.length).toBeLessThanOrEqual(256);
    expect(parsed.imageIds).toEqual(ids.slice(0, parsed.imageIds.length));
    expect(parsed.imageIds.length + parsed.omitted).toBe(40);
    expect(parseWarmList(formatWarmList(['a', 'b']))).toEqual({ imageIds: ['a', 'b'], omitted: 0 });
    expect(formatWarmList([])).toBe('v1');
  });
});
