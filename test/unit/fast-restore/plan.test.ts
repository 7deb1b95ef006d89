import { describe, expect, it } from 'vitest';
import {
  type AmiDemand,
  type CurrentPair,
  type FastRestorePlanInput,
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
});
