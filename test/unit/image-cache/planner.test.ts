import { describe, expect, it } from 'vitest';
import { hostGroupSchema } from '../../../functions/image-cache/config';
import type { HostImageEntry, PlannerHost } from '../../../functions/image-cache/domain/model';
import { HEALTHY_SOURCE } from '../../../functions/image-cache/domain/model';
import { type PlanInput, planHostGroup } from '../../../functions/image-cache/domain/planner';

const NOW = Date.parse('2026-01-10T12:00:00Z');
const GB = 1_000_000_000;
const HOUR = 3_600_000;

const group = hostGroupSchema.parse({
  name: 'gpu-a',
  cacheBytes: 10 * GB,
  cacheDirectory: '/var/cache/warmboot',
  warmConcurrency: 5,
  maxErrors: '10%',
  minResidencyMs: 0,
});

const cached = (imageId: string, bytes: number, since = NOW - 24 * HOUR): HostImageEntry => ({
  imageId,
  state: 'cached',
  bytes,
  since,
  attempts: 0,
});

const host = (instanceId: string, entries: HostImageEntry[] = [], az = 'us-east-1a'): PlannerHost => ({
  instanceId,
  availabilityZone: az,
  entries,
});

const plan = (overrides: Partial<PlanInput>) =>
  planHostGroup({
    group,
    hosts: [host('i-1')],
    pins: [],
    scores: [],
    imageSizes: {},
    source: HEALTHY_SOURCE,
    now: NOW,
    random: () => 0.5,
    ...overrides,
  });

const fetchedOn = (result: ReturnType<typeof plan>, imageId: string): string[] =>
  result.commands
    .filter((command) => command.action === 'fetch' && command.imageId === imageId)
    .flatMap((command) => [...command.instanceIds]);

const evictedOn = (result: ReturnType<typeof plan>, imageId: string): string[] =>
  result.commands
    .filter((command) => command.action === 'evict' && command.imageId === imageId)
    .flatMap((command) => [...command.instanceIds]);

describe('planHostGroup', () => {
  it('puts pins on every host and never evicts them, even with zero popularity', () => {
    const result = plan({
      hosts: [host('i-1', [cached('pinned', 6 * GB)]), host('i-2')],
      pins: ['pinned'],
      scores: [{ imageId: 'hot', score: 1_000 }],
      imageSizes: { pinned: 6 * GB, hot: 5 * GB },
    });

    expect(fetchedOn(result, 'pinned')).toEqual(['i-2']);
    expect(evictedOn(result, 'pinned')).toEqual([]);
    expect(result.desired['i-1']?.[0]).toBe('pinned');
    expect(result.desired['i-1']).not.toContain('hot');
  });

  it('keeps every host within its budget at every instant, waiting for evictions to free space', () => {
    const result = plan({
      hosts: [host('i-1', [cached('cold', 8 * GB)])],
      scores: [
        { imageId: 'hot', score: 100 },
        { imageId: 'cold', score: 1 },
      ],
      imageSizes: { hot: 5 * GB, cold: 8 * GB },
    });

    expect(evictedOn(result, 'cold')).toEqual(['i-1']);
    expect(fetchedOn(result, 'hot')).toEqual([]);
    expect(result.deferred).toContainEqual(
      expect.objectContaining({ instanceId: 'i-1', imageId: 'hot', reason: 'awaiting-eviction' }),
    );
  });

  it('chooses by value per byte: two small popular images beat one large one with more launches', () => {
    const result = plan({
      scores: [
        { imageId: 'large', score: 100 },
        { imageId: 'small-a', score: 80 },
        { imageId: 'small-b', score: 70 },
      ],
      imageSizes: { large: 9 * GB, 'small-a': 4 * GB, 'small-b': 4 * GB },
    });

    expect(result.desired['i-1']).toEqual(['small-a', 'small-b']);
    const planned = result.commands.filter((command) => command.action === 'fetch');
    expect(planned.map((command) => command.imageId).sort()).toEqual(['small-a', 'small-b']);
  });

  it('gives popular images more replicas before rare images get any', () => {
    const hosts = [host('i-1'), host('i-2'), host('i-3')];
    const result = plan({
      group: { ...group, cacheBytes: 2 * GB },
      hosts,
      scores: [
        { imageId: 'hot', score: 90 },
        { imageId: 'warm', score: 20 },
        { imageId: 'rare', score: 1 },
      ],
      imageSizes: { hot: GB, warm: GB, rare: GB },
    });

    expect(fetchedOn(result, 'hot')).toHaveLength(3);
    expect(fetchedOn(result, 'warm').length).toBeGreaterThanOrEqual(2);
    expect(fetchedOn(result, 'warm').length + fetchedOn(result, 'rare').length).toBe(3);
  });

  it('sends at most 50 instances per SendCommand with MaxConcurrency and MaxErrors from the group', () => {
    const hosts = Array.from({ length: 120 }, (_, index) => host(`i-${String(index).padStart(3, '0')}`));
    const result = plan({ hosts, pins: ['base'], imageSizes: { base: GB }, maxInflightFetches: 500 });

    const fetches = result.commands.filter((command) => command.action === 'fetch');
    expect(fetches.map((command) => command.instanceIds.length)).toEqual([50, 50, 20]);
    for (const command of fetches) {
      expect(command.maxConcurrency).toBe('5');
      expect(command.maxErrors).toBe('10%');
    }
  });

  it('limits fetches in flight across the group so the image source is not flooded', () => {
    const hosts = Array.from({ length: 80 }, (_, index) => host(`i-${index}`));
    const result = plan({ hosts, pins: ['base'], imageSizes: { base: GB }, maxInflightFetches: 30 });

    expect(fetchedOn(result, 'base')).toHaveLength(30);
    expect(result.deferred.filter((item) => item.reason === 'fetch-window-full')).toHaveLength(50);
  });

  it('retries a failed fetch only after its backoff and gives up after maxFetchAttempts', () => {
    const failed = (imageId: string, attempts: number, retryAt: number): HostImageEntry => ({
      imageId,
      state: 'failed',
      bytes: GB,
      since: NOW - 1,
      attempts,
      retryAt,
    });
    const result = plan({
      hosts: [
        host('i-waiting', [failed('base', 1, NOW + 60_000)]),
        host('i-due', [failed('base', 2, NOW - 1)]),
        host('i-hopeless', [failed('base', group.maxFetchAttempts, NOW - 1)]),
      ],
      pins: ['base'],
      imageSizes: { base: GB },
    });

    expect(fetchedOn(result, 'base')).toEqual(['i-due']);
    expect(result.deferred).toContainEqual(
      expect.objectContaining({ instanceId: 'i-waiting', reason: 'retry-backoff', until: NOW + 60_000 }),
    );
    expect(result.deferred).toContainEqual(
      expect.objectContaining({ instanceId: 'i-hopeless', reason: 'gave-up' }),
    );
  });

  it('during an image-source outage sends no fetch and no eviction, and reports the backoff', () => {
    const result = plan({
      hosts: [host('i-1', [cached('pinned', GB), cached('old', GB)]), host('i-2')],
      pins: ['pinned'],
      scores: [{ imageId: 'hot', score: 100 }],
      imageSizes: { pinned: GB, hot: 9 * GB, old: GB },
      source: { consecutiveFailures: 3, retryAt: NOW + 10 * 60_000 },
    });

    expect(result.commands).toEqual([]);
    expect(result.sourceBackoffUntil).toBe(NOW + 10 * 60_000);
    expect(result.deferred).toContainEqual(
      expect.objectContaining({ instanceId: 'i-2', imageId: 'pinned', reason: 'source-backoff' }),
    );
    expect(result.deferred).toContainEqual(
      expect.objectContaining({ instanceId: 'i-1', imageId: 'old', action: 'evict', reason: 'outage-keep' }),
    );
  });

  it('probes the image source with a single fetch once its backoff has passed', () => {
    const result = plan({
      hosts: [host('i-1'), host('i-2'), host('i-3')],
      pins: ['pinned'],
      imageSizes: { pinned: GB },
      source: { consecutiveFailures: 3, retryAt: NOW - 1 },
    });

    expect(result.commands.flatMap((command) => command.instanceIds)).toHaveLength(1);
  });

  it('keeps a freshly cached image through popularity churn (minResidencyMs)', () => {
    const result = plan({
      group: { ...group, minResidencyMs: HOUR, cacheBytes: GB },
      hosts: [host('i-1', [cached('fresh', GB, NOW - 60_000)])],
      scores: [{ imageId: 'hot', score: 100 }],
      imageSizes: { fresh: GB, hot: GB },
    });

    expect(result.commands).toEqual([]);
    expect(result.desired['i-1']).toEqual(['fresh']);
  });

  it('reports images it cannot plan because their size and source are unknown', () => {
    const result = plan({ pins: ['mystery'], scores: [{ imageId: 'unregistered', score: 5 }] });

    expect(result.unknownImages).toEqual(['mystery', 'unregistered']);
    expect(result.commands).toEqual([]);
  });

  it('does not re-send work that is already in flight and counts it as pending', () => {
    const fetching: HostImageEntry = {
      imageId: 'base',
      state: 'fetching',
      bytes: GB,
      since: NOW,
      attempts: 0,
    };
    const result = plan({ hosts: [host('i-1', [fetching])], pins: ['base'], imageSizes: { base: GB } });

    expect(result.commands).toEqual([]);
    expect(result.pendingActions).toBe(1);
    expect(result.warmRatio).toBe(0);
  });

  it('admits demand on a full host: evicts its least valuable unpinned image and fetches in the same plan', () => {
    const result = plan({
      group: { ...group, cacheBytes: 3 * GB },
      hosts: [host('i-1', [cached('pinned', GB), cached('popular', GB), cached('rare', GB)])],
      pins: ['pinned'],
      requested: [{ instanceId: 'i-1', imageId: 'launched' }],
      scores: [
        { imageId: 'popular', score: 50 },
        { imageId: 'rare', score: 1 },
      ],
      imageSizes: { pinned: GB, popular: GB, rare: GB, launched: GB },
    });

    expect(evictedOn(result, 'rare')).toEqual(['i-1']);
    expect(evictedOn(result, 'popular')).toEqual([]);
    expect(evictedOn(result, 'pinned')).toEqual([]);
    expect(fetchedOn(result, 'launched')).toEqual(['i-1']);
    // Whoever applies the plan sends the evictions before the fetch they make room for.
    expect(result.commands.map((command) => command.action)).toEqual(['evict', 'fetch']);
  });

  it('does not start a popularity prefetch before its eviction has finished (only demand may)', () => {
    const result = plan({
      group: { ...group, cacheBytes: 2 * GB, keepMargin: 0 },
      hosts: [host('i-1', [cached('stale', GB), cached('kept', GB)])],
      scores: [
        { imageId: 'rising', score: 100 },
        { imageId: 'kept', score: 50 },
        { imageId: 'stale', score: 1 },
      ],
      imageSizes: { rising: GB, kept: GB, stale: GB },
    });

    expect(evictedOn(result, 'stale')).toEqual(['i-1']);
    expect(fetchedOn(result, 'rising')).toEqual([]);
    expect(result.deferred).toContainEqual(
      expect.objectContaining({ imageId: 'rising', reason: 'awaiting-eviction' }),
    );
  });

  it('keeps a cached image unless a candidate beats it by keepMargin (hysteresis)', () => {
    const input = (keepMargin: number, rising: number) =>
      plan({
        group: { ...group, cacheBytes: GB, keepMargin },
        hosts: [host('i-1', [cached('incumbent', GB)])],
        scores: [
          { imageId: 'incumbent', score: 10 },
          { imageId: 'rising', score: rising },
        ],
        imageSizes: { incumbent: GB, rising: GB },
      });

    expect(input(3, 30).commands).toEqual([]);
    expect(evictedOn(input(3, 50), 'incumbent')).toEqual(['i-1']);
    expect(evictedOn(input(0, 11), 'incumbent')).toEqual(['i-1']);
  });

  it('keeps existing copies where they are instead of moving them to make way for a new image', () => {
    const result = plan({
      group: { ...group, cacheBytes: GB },
      hosts: [host('i-1', [cached('held', GB)]), host('i-2')],
      scores: [
        { imageId: 'new', score: 25 },
        { imageId: 'held', score: 20 },
      ],
      imageSizes: { new: GB, held: GB },
    });

    expect(result.commands.filter((command) => command.action === 'evict')).toEqual([]);
    expect(result.desired).toEqual({ 'i-1': ['held'], 'i-2': ['new'] });
    expect(fetchedOn(result, 'new')).toEqual(['i-2']);
    expect(fetchedOn(result, 'held')).toEqual([]);
  });
});
