import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type AmiDemand,
  type CurrentPair,
  type FastRestorePlanInput,
  FSR_STATES,
  pairId,
  planFastRestore,
} from '../../../functions/fast-restore/domain/plan';

const MINUTE = 60_000;
const now = Date.UTC(2026, 0, 5, 8);

const demand = (imageId: string, score: number, snapshotIds: string[], az = 'us-east-1a'): AmiDemand => ({
  imageId,
  availabilityZone: az,
  score,
  snapshotIds,
});

const pair = (
  snapshotId: string,
  imageId: string,
  state: CurrentPair['state'] = 'enabled',
  extra: Partial<CurrentPair> = {},
): CurrentPair => ({
  snapshotId,
  availabilityZone: 'us-east-1a',
  state,
  managed: true,
  imageId,
  lastWantedAt: now,
  ...extra,
});

/** A managed pair enabled at `enabledAt`, in `availabilityZone`. */
const enabledPair = (
  snapshotId: string,
  imageId: string,
  enabledAt: number,
  availabilityZone = 'us-east-1a',
) => pair(snapshotId, imageId, 'enabled', { availabilityZone, enabledAt });

const plan = (overrides: Partial<FastRestorePlanInput>) =>
  planFastRestore({
    demand: [],
    current: [],
    budget: { maxPairs: 10, maxUsdPerHour: 100 },
    usdPerPairHour: 0.75,
    topPerAz: 3,
    minScore: 1,
    cooldownMs: 120 * MINUTE,
    hysteresis: 1.5,
    minHoldMs: 60 * MINUTE,
    now,
    ...overrides,
  });

const ids = (pairs: readonly { snapshotId: string }[]) => pairs.map((entry) => entry.snapshotId).sort();

describe('planFastRestore', () => {
  it('enables every snapshot of the hottest AMIs of each AZ', () => {
    const result = plan({
      demand: [
        demand('ami-a', 50, ['snap-a1', 'snap-a2']),
        demand('ami-b', 20, ['snap-b1'], 'us-east-1b'),
        demand('ami-cold', 0.5, ['snap-c1']),
      ],
    });
    expect(ids(result.enable)).toEqual(['snap-a1', 'snap-a2', 'snap-b1']);
    expect(result.target).toEqual({ pairs: 3, usdPerHour: 2.25 });
  });

  it('takes only the top N AMIs per AZ', () => {
    const result = plan({
      topPerAz: 1,
      demand: [demand('ami-a', 50, ['snap-a']), demand('ami-b', 40, ['snap-b'])],
    });
    expect(ids(result.enable)).toEqual(['snap-a']);
  });

  it('stops at the pair budget, filling by score and skipping AMIs that do not fit whole', () => {
    const result = plan({
      budget: { maxPairs: 3, maxUsdPerHour: 100 },
      demand: [
        demand('ami-a', 50, ['snap-a1', 'snap-a2']),
        demand('ami-b', 40, ['snap-b1', 'snap-b2']),
        demand('ami-c', 30, ['snap-c1']),
      ],
    });
    expect(ids(result.enable)).toEqual(['snap-a1', 'snap-a2', 'snap-c1']);
  });

  it('stops at the USD budget: 2.00 USD/h buys two pairs at 0.75', () => {
    const result = plan({
      budget: { maxPairs: 10, maxUsdPerHour: 2 },
      demand: [
        demand('ami-a', 50, ['snap-a']),
        demand('ami-b', 40, ['snap-b']),
        demand('ami-c', 30, ['snap-c']),
      ],
    });
    expect(ids(result.enable)).toEqual(['snap-a', 'snap-b']);
    expect(result.maxPairs).toBe(2);
    expect(result.target.usdPerHour).toBeLessThanOrEqual(2);
  });

  it('keeps a cooling AMI until the cool-down has passed, then disables it', () => {
    const current = [pair('snap-old', 'ami-old', 'enabled', { lastWantedAt: now - 60 * MINUTE })];
    expect(plan({ current }).keep).toMatchObject([{ snapshotId: 'snap-old', reason: 'cooling' }]);
    const later = plan({ current, now: now + 61 * MINUTE });
    expect(later.disable).toMatchObject([{ snapshotId: 'snap-old', reason: 'cooled-down' }]);
  });

  it('does not flap: a challenger needs more than hysteresis × the incumbent score', () => {
    const budget = { maxPairs: 1, maxUsdPerHour: 100 };
    const current = [pair('snap-a', 'ami-a')];
    const close = plan({
      budget,
      current,
      demand: [demand('ami-a', 40, ['snap-a']), demand('ami-b', 50, ['snap-b'])],
    });
    expect(close.disable).toEqual([]);
    expect(close.enable).toEqual([]);
    const clear = plan({
      budget,
      current,
      demand: [demand('ami-a', 40, ['snap-a']), demand('ami-b', 70, ['snap-b'])],
    });
    expect(ids(clear.disable)).toEqual(['snap-a']);
  });

  it('disables before it enables and never exceeds the budget in between', () => {
    const result = plan({
      budget: { maxPairs: 1, maxUsdPerHour: 100 },
      current: [pair('snap-a', 'ami-a')],
      demand: [demand('ami-a', 10, ['snap-a']), demand('ami-b', 100, ['snap-b'])],
    });
    expect(ids(result.disable)).toEqual(['snap-a']);
    // snap-a is still billed while it disables: snap-b waits for the next round.
    expect(result.enable).toEqual([]);
    expect(result.deferred).toMatchObject([{ snapshotId: 'snap-b', reason: 'waiting-for-budget' }]);
    const next = plan({
      budget: { maxPairs: 1, maxUsdPerHour: 100 },
      current: [pair('snap-a', 'ami-a', 'disabled')],
      demand: [demand('ami-a', 10, ['snap-a']), demand('ami-b', 100, ['snap-b'])],
    });
    expect(ids(next.enable)).toEqual(['snap-b']);
  });

  it('counts pairs still disabling against the budget', () => {
    const result = plan({
      budget: { maxPairs: 1, maxUsdPerHour: 100 },
      current: [pair('snap-x', 'ami-x', 'disabling')],
      demand: [demand('ami-a', 10, ['snap-a'])],
    });
    expect(result.enable).toEqual([]);
    expect(ids(result.deferred)).toEqual(['snap-a']);
  });

  it('never disables a pair someone else enabled, and does not pay for it again', () => {
    const foreign = pair('snap-a', 'ami-a', 'enabled', { managed: false });
    const result = plan({
      budget: { maxPairs: 1, maxUsdPerHour: 100 },
      current: [foreign, pair('snap-z', 'ami-z', 'enabled', { managed: false })],
      demand: [demand('ami-a', 50, ['snap-a']), demand('ami-b', 40, ['snap-b'])],
    });
    expect(result.disable).toEqual([]);
    expect(ids(result.enable)).toEqual(['snap-b']);
  });

  it('sheds the lowest-ranked pairs when the budget was lowered below what is on', () => {
    const result = plan({
      budget: { maxPairs: 1, maxUsdPerHour: 100 },
      current: [pair('snap-a', 'ami-a'), pair('snap-b', 'ami-b')],
      demand: [demand('ami-a', 50, ['snap-a']), demand('ami-b', 40, ['snap-b'])],
    });
    expect(ids(result.disable)).toEqual(['snap-b']);
    expect(ids(result.keep)).toEqual(['snap-a']);
  });

  it('marks managed pairs of hot AMIs as wanted now (resets their cool-down)', () => {
    const result = plan({
      current: [pair('snap-a', 'ami-a', 'enabled', { lastWantedAt: now - 100 * MINUTE })],
      demand: [demand('ami-a', 50, ['snap-a'])],
    });
    expect(ids(result.wanted)).toEqual(['snap-a']);
  });

  it('keeps an incumbent that is outside the raw top N but within hysteresis of it (the cut compares score × hysteresis too)', () => {
    const current = [pair('snap-a', 'ami-a', 'enabled', { lastWantedAt: now - 100 * MINUTE })];
    const close = plan({
      topPerAz: 1,
      budget: { maxPairs: 1, maxUsdPerHour: 100 },
      current,
      demand: [demand('ami-a', 40, ['snap-a']), demand('ami-b', 50, ['snap-b'])],
    });
    expect(close.disable).toEqual([]);
    expect(close.enable).toEqual([]);
    expect(close.keep).toMatchObject([{ snapshotId: 'snap-a', reason: 'hot' }]);
    // Still in the top set, so its cool-down restarts.
    expect(ids(close.wanted)).toEqual(['snap-a']);
    const clear = plan({
      topPerAz: 1,
      budget: { maxPairs: 1, maxUsdPerHour: 100 },
      current,
      demand: [demand('ami-a', 40, ['snap-a']), demand('ami-b', 70, ['snap-b'])],
    });
    expect(clear.disable).toMatchObject([{ snapshotId: 'snap-a', reason: 'outranked' }]);
  });

  it('holds a pair for its first billed hour: a clear challenger waits, then takes its place', () => {
    const budget = { maxPairs: 1, maxUsdPerHour: 100 };
    const current = [enabledPair('snap-a', 'ami-a', now - 15 * MINUTE)];
    const demands = [demand('ami-a', 10, ['snap-a']), demand('ami-b', 100, ['snap-b'])];
    const early = plan({ budget, current, demand: demands });
    expect(early.disable).toEqual([]);
    expect(early.enable).toEqual([]);
    expect(early.keep).toMatchObject([{ snapshotId: 'snap-a', reason: 'held' }]);
    expect(early.deferred).toMatchObject([{ snapshotId: 'snap-b', reason: 'waiting-for-hold' }]);
    expect(early.target.pairs).toBe(1);
    const afterHold = plan({ budget, current, demand: demands, now: now + 45 * MINUTE });
    expect(afterHold.disable).toMatchObject([{ snapshotId: 'snap-a', reason: 'outranked' }]);
  });

  it('a longer configured hold keeps the pair longer', () => {
    const result = plan({
      budget: { maxPairs: 1, maxUsdPerHour: 100 },
      minHoldMs: 120 * MINUTE,
      current: [enabledPair('snap-a', 'ami-a', now - 90 * MINUTE)],
      demand: [demand('ami-a', 10, ['snap-a']), demand('ami-b', 100, ['snap-b'])],
    });
    expect(result.disable).toEqual([]);
  });

  it('disables a cooled-down pair only once its hold is over', () => {
    const current = [
      pair('snap-old', 'ami-old', 'enabled', {
        lastWantedAt: now - 30 * MINUTE,
        enabledAt: now - 40 * MINUTE,
      }),
    ];
    const early = plan({ current, cooldownMs: 20 * MINUTE });
    expect(early.disable).toEqual([]);
    expect(early.keep).toMatchObject([{ snapshotId: 'snap-old', reason: 'held' }]);
    const later = plan({ current, cooldownMs: 20 * MINUTE, now: now + 20 * MINUTE });
    expect(later.disable).toMatchObject([{ snapshotId: 'snap-old', reason: 'cooled-down' }]);
  });

  it('the sandbox case: two pairs enabled 15 minutes ago stay, the challengers that outscore them wait', () => {
    const enabledAt = now - 15 * MINUTE;
    const result = plan({
      budget: { maxPairs: 4, maxUsdPerHour: 3 },
      current: [
        enabledPair('snap-m2', 'ami-m2', enabledAt, 'us-east-1b'),
        enabledPair('snap-m2', 'ami-m2', enabledAt, 'us-east-1c'),
        enabledPair('snap-m10', 'ami-m10', enabledAt, 'us-east-1a'),
        enabledPair('snap-m1', 'ami-m1', enabledAt, 'us-east-1b'),
      ],
      demand: [
        demand('ami-m2', 8.8, ['snap-m2'], 'us-east-1a'),
        demand('ami-m10', 3.9, ['snap-m10'], 'us-east-1a'),
        demand('ami-m3', 9.5, ['snap-m3'], 'us-east-1a'),
        demand('ami-m2', 8.7, ['snap-m2'], 'us-east-1b'),
        demand('ami-m1', 3.8, ['snap-m1'], 'us-east-1b'),
        demand('ami-m2', 6.7, ['snap-m2'], 'us-east-1c'),
      ],
    });
    expect(result.disable).toEqual([]);
    expect(result.enable).toEqual([]);
    expect(result.deferred.map(pairId).sort()).toEqual(['snap-m2@us-east-1a', 'snap-m3@us-east-1a']);
    expect(result.deferred.every((entry) => entry.reason === 'waiting-for-hold')).toBe(true);
    expect(result.target).toEqual({ pairs: 4, usdPerHour: 3 });
  });

  it('a held pair does not cost an incumbent its place: the challenger waits for the held slot', () => {
    const result = plan({
      budget: { maxPairs: 2, maxUsdPerHour: 100 },
      current: [
        enabledPair('snap-a', 'ami-a', now - 5 * 60 * MINUTE),
        enabledPair('snap-b', 'ami-b', now - 10 * MINUTE),
      ],
      demand: [
        demand('ami-a', 10, ['snap-a']),
        demand('ami-b', 2, ['snap-b']),
        demand('ami-c', 20, ['snap-c']),
      ],
    });
    expect(result.disable).toEqual([]);
    expect(ids(result.keep)).toEqual(['snap-a', 'snap-b']);
    expect(result.deferred).toMatchObject([{ snapshotId: 'snap-c', reason: 'waiting-for-hold' }]);
  });

  it('sheds held pairs only when the budget was lowered below them, and then stays within it', () => {
    const enabledAt = now - 10 * MINUTE;
    const result = plan({
      budget: { maxPairs: 1, maxUsdPerHour: 100 },
      current: [enabledPair('snap-a', 'ami-a', enabledAt), enabledPair('snap-b', 'ami-b', enabledAt)],
      demand: [demand('ami-a', 50, ['snap-a']), demand('ami-b', 40, ['snap-b'])],
    });
    expect(result.disable).toMatchObject([{ snapshotId: 'snap-b', reason: 'over-budget' }]);
    expect(ids(result.keep)).toEqual(['snap-a']);
    expect(result.target.pairs).toBe(1);
  });

  it('never plans over the budget and never drops a held pair while it fits, whatever the input', () => {
    const snapshots = ['snap-a', 'snap-b', 'snap-c', 'snap-d', 'snap-e'];
    const zones = ['us-east-1a', 'us-east-1b'];
    const pairArbitrary = fc.record({
      snapshot: fc.constantFrom(...snapshots),
      zone: fc.constantFrom(...zones),
      state: fc.constantFrom(...FSR_STATES),
      managed: fc.boolean(),
      enabledMinutesAgo: fc.option(fc.integer({ min: 0, max: 180 }), { nil: undefined }),
      wantedMinutesAgo: fc.integer({ min: 0, max: 300 }),
    });
    const demandArbitrary = fc.record({
      image: fc.integer({ min: 0, max: 4 }),
      zone: fc.constantFrom(...zones),
      score: fc.double({ min: 0, max: 100, noNaN: true }),
      snapshotCount: fc.integer({ min: 1, max: 2 }),
    });
    fc.assert(
      fc.property(
        fc.array(pairArbitrary, { maxLength: 8 }),
        fc.array(demandArbitrary, { maxLength: 8 }),
        fc.integer({ min: 0, max: 4 }),
        fc.integer({ min: 1, max: 3 }),
        (pairs, demands, maxPairs, topPerAz) => {
          const current = [
            ...new Map(pairs.map((entry) => [`${entry.snapshot}@${entry.zone}`, entry])).values(),
          ].map(
            (entry): CurrentPair => ({
              snapshotId: entry.snapshot,
              availabilityZone: entry.zone,
              state: entry.state,
              managed: entry.managed,
              imageId: `ami-${snapshots.indexOf(entry.snapshot)}`,
              lastWantedAt: now - entry.wantedMinutesAgo * MINUTE,
              enabledAt:
                entry.enabledMinutesAgo === undefined ? undefined : now - entry.enabledMinutesAgo * MINUTE,
            }),
          );
          const result = plan({
            budget: { maxPairs, maxUsdPerHour: 100 },
            topPerAz,
            current,
            demand: demands.map((entry) =>
              demand(
                `ami-${entry.image}`,
                entry.score,
                snapshots.slice(entry.image, entry.image + entry.snapshotCount),
                entry.zone,
              ),
            ),
          });
          const billed = current.filter(
            (entry) =>
              entry.managed && ['enabling', 'optimizing', 'enabled', 'disabling'].includes(entry.state),
          ).length;
          // Disables stay billed while they run, so the enables alone must fit what is free now.
          expect(billed + result.enable.length).toBeLessThanOrEqual(Math.max(billed, maxPairs));
          expect(result.target.pairs).toBeLessThanOrEqual(maxPairs);
          const held = current.filter(
            (entry) =>
              entry.managed &&
              ['enabling', 'optimizing', 'enabled'].includes(entry.state) &&
              entry.enabledAt !== undefined &&
              now - entry.enabledAt < 60 * MINUTE,
          );
          for (const disabled of result.disable)
            if (held.some((entry) => pairId(entry) === pairId(disabled)))
              expect([disabled.reason, held.length > maxPairs]).toEqual(['over-budget', true]);
        },
      ),
    );
  });
});
