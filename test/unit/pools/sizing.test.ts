import { describe, expect, it } from 'vitest';
import {
  breakEvenIdleMs,
  decideSize,
  demandFromCounts,
  erlangB,
  membersForHitShare,
  planningRate,
  refillSeconds,
} from '../../../functions/pools/domain/sizing';
import { NOW, spec } from './fixtures';

const demandPool = (overrides = {}) =>
  spec({
    minSize: 0,
    maxSize: 20,
    sizing: { mode: 'demand', targetHitShare: 0.95, scaleDownCooldownMinutes: 30, ...overrides },
  });

/** Requests per hour over the last minutes, the last hours, and this hour one day earlier. */
const rates = (shortRatePerHour: number, recentRatePerHour = 0, dailyRatePerHour = 0) => ({
  shortRatePerHour,
  recentRatePerHour,
  dailyRatePerHour,
});

/** decideSize of a demand pool with a 120 s initialization, first sized at NOW unless said. */
type SizeInput = Parameters<typeof decideSize>[0];
const sized = (input: Partial<SizeInput> & Pick<SizeInput, 'demand'>) =>
  decideSize({ spec: demandPool(), previous: undefined, initializeSeconds: 120, now: NOW, ...input });

describe('Erlang-loss sizing', () => {
  it('matches the Erlang-B table (a = 2 Erlang: B(2) = 0.4, B(5) ≈ 0.0367)', () => {
    expect(erlangB(2, 2)).toBeCloseTo(0.4, 10);
    expect(erlangB(5, 2)).toBeCloseTo(0.0367, 4);
    expect(erlangB(0, 3)).toBe(1);
  });

  it('picks the smallest size whose hit share reaches the target', () => {
    const n = membersForHitShare(2, 0.95);
    expect(1 - erlangB(n, 2)).toBeGreaterThanOrEqual(0.95);
    expect(1 - erlangB(n - 1, 2)).toBeLessThan(0.95);
    expect(membersForHitShare(0, 0.95)).toBe(0);
  });

  it('sizes a pool from its request rate and refill time, clamped to [min, max]', () => {
    // 60 requests/h, Linux refill 25.8 + 120 + 10 s → a ≈ 2.6 Erlang.
    const decision = sized({ demand: rates(60, 10) });
    expect(decision.offeredLoad).toBeCloseTo((60 / 3600) * refillSeconds(120, 'stopped'), 6);
    expect(decision.targetSize).toBe(membersForHitShare(decision.offeredLoad, 0.95));
    const capped = sized({ demand: rates(6000), initializeSeconds: 900 });
    expect(capped.targetSize).toBe(20);
  });

  it('scales down by one member per cool-down, and up at once', () => {
    const previous = { targetSize: 8, runningSize: 0, changedAt: NOW - 10 * 60_000 };
    const quiet = rates(0);
    const held = sized({ demand: quiet, previous });
    expect(held.targetSize).toBe(8);
    const later = NOW + 25 * 60_000;
    const stepped = sized({ demand: quiet, previous, now: later });
    expect(stepped.targetSize).toBe(7);
    expect(stepped.changedAt).toBe(later);
    const burst = sized({ demand: rates(600), previous });
    expect(burst.targetSize).toBeGreaterThan(8);
  });

  it('plans for what arrived in the coming hour one day earlier, not for the last six hours', () => {
    const hour = 3_600_000;
    // A busy hour that ended 5 h ago, and 30 requests in the hour that starts now, yesterday.
    const counts = new Map<number, number>();
    for (let minute = 0; minute < 60; minute++) counts.set(NOW - 6 * hour + minute * 60_000, 2);
    for (let minute = 0; minute < 30; minute++) counts.set(NOW - 24 * hour + minute * 2 * 60_000, 1);

    const demand = demandFromCounts(counts, NOW);

    expect(demand).toEqual({ shortRatePerHour: 0, recentRatePerHour: 0, dailyRatePerHour: 30 });
    expect(planningRate(demand)).toBe(30);
  });

  it('keeps part of a hot pool running, and none of a cool one', () => {
    const hot = demandPool({ runningTierAbovePerHour: 100 });
    const busy = sized({ spec: hot, demand: rates(300, 100) });
    expect(busy.runningSize).toBeGreaterThan(0);
    expect(busy.runningSize).toBeLessThanOrEqual(busy.targetSize);
    const cool = sized({ spec: hot, demand: rates(50, 50) });
    expect(cool.runningSize).toBe(0);
  });

  it('break-even: a surplus member is worth keeping for its replacement cost ÷ its idle cost per hour', () => {
    const hour = 3_600_000;
    const prices = { volumeGiB: 30, instanceHourUsd: 0.1008, ebsGbMonthUsd: 0.08 };
    // Linux: (25.8 + 120 + 10) s × ($0.1008 + $0.00329)/h ÷ $0.00329/h ≈ 1.37 h.
    const linux = breakEvenIdleMs({ ...prices, tier: 'stopped', initializeSeconds: 120 });
    expect(linux / hour).toBeCloseTo(1.37, 2);
    // Windows-like: 900 s init → ≈ 8.2 h.
    const windows = breakEvenIdleMs({ ...prices, tier: 'stopped', initializeSeconds: 900 });
    expect(windows / hour).toBeCloseTo(8.23, 1);
    // A running member idles at instance price: replacing it pays off after minutes.
    const running = breakEvenIdleMs({ ...prices, tier: 'running', initializeSeconds: 120 });
    expect(running / 60_000).toBeLessThan(3);
  });

  it('hands reconcile the break-even only when the pool asks for it, at the pool’s prices', () => {
    const decide = (overrides: object) => sized({ spec: demandPool(overrides), demand: rates(60) });
    expect(decide({}).retireSurplusAfterIdleMs).toBeUndefined();
    const defaults = decide({ retireSurplus: 'after-break-even' }).retireSurplusAfterIdleMs ?? 0;
    expect(defaults / 3_600_000).toBeCloseTo(1.37, 2);
    const pricier = decide({ retireSurplus: 'after-break-even', instanceHourUsd: 0.2016 });
    expect(pricier.retireSurplusAfterIdleMs ?? 0).toBeGreaterThan(1.9 * defaults);
  });

  it('sizes the running members for the running-tier share when one is set', () => {
    const decide = (overrides: object) =>
      sized({ spec: demandPool({ runningTierAbovePerHour: 100, ...overrides }), demand: rates(150) });
    // λ = 150/h × 21.2 s → a ≈ 0.88: one running member serves ≥ 50% hot, 0.95 needs three.
    expect(decide({ runningTierHitShare: 0.5 }).runningSize).toBe(1);
    expect(decide({}).runningSize).toBe(membersForHitShare((150 / 3600) * 21.2, 0.95));
    expect(decide({}).runningSize).toBeGreaterThan(1);
  });

  it('keeps minSize for fixed pools, all running for the running tier', () => {
    const fixed = sized({ spec: spec({ minSize: 3, tier: 'running' }), demand: rates(500, 500) });
    expect(fixed).toMatchObject({ targetSize: 3, runningSize: 3 });
  });

  it('turns per-minute counters into a short, a recent and a daily rate', () => {
    const counts = new Map([
      [NOW - 5 * 60_000, 3],
      [NOW - 30 * 60_000, 6],
      [NOW - 7 * 3_600_000, 100],
      [NOW - 23.5 * 3_600_000, 4],
      [NOW - 25 * 3_600_000, 50],
    ]);
    expect(demandFromCounts(counts, NOW)).toEqual({
      shortRatePerHour: 12,
      recentRatePerHour: 9,
      dailyRatePerHour: 4,
    });
  });
});
