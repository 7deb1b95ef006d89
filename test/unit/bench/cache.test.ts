import { describe, expect, it } from 'vitest';
import { busiestWindowStartS, coldLoadDraws, reconcilePeriodS } from '../../../bench/cache';
import { aimsOf, CEILING, firstRequestCeiling, oracleBeaten } from '../../../bench/cache-aims';
import { cacheMetrics, placementSkew } from '../../../bench/cache-metrics';
import {
  Future,
  lfuAffinityPolicy,
  lruPolicy,
  nonePolicy,
  novaAgePolicy,
  oraclePolicy,
  staticPinsPolicy,
} from '../../../bench/cache-policies';
import { type CachePolicy, Fleet, type FleetConfig, type Launch, simulate } from '../../../bench/cache-sim';

const SIZE = 100;
/** One host, room for two images, instant transfers, no slot pressure, the outage far away. */
const oneHost = (overrides: Partial<FleetConfig> = {}): FleetConfig => ({
  hosts: 1,
  azs: 1,
  cacheBytes: 2 * SIZE,
  bandwidthBytesPerS: 1e12,
  slots: 100,
  holdS: 0,
  outage: { startS: 1e9, endS: 1e9 + 7200 },
  ...overrides,
});
const trace = (...requests: [number, string][]): Launch[] =>
  requests.map(([timeS, image], index) => ({ index, timeS, image, sizeBytes: SIZE }));
/** Which launches found their image warm, every cold load taking `loadS` seconds. */
const warmFlags = async (policy: CachePolicy, launches: Launch[], config = oneHost(), loadS = 20) =>
  (
    await simulate(
      policy,
      launches,
      config,
      launches.map(() => loadS),
    )
  ).outcomes.map((outcome) => outcome.warm);

describe('placementSkew', () => {
  it('is the busiest host over the mean', () => {
    expect(placementSkew([2, 2, 2, 2])).toBe(1);
    expect(placementSkew([3, 1])).toBe(1.5);
    expect(placementSkew([4, 0, 0, 0])).toBe(4);
    expect(placementSkew([0, 0])).toBeNaN();
  });
});

describe('baselines on hand-made traces', () => {
  it('none never hits', async () => {
    expect(await warmFlags(nonePolicy(), trace([0, 'A'], [10, 'A']))).toEqual([false, false]);
  });

  it('lru evicts the least recently used image, not the oldest fetched', async () => {
    // A B A C: C evicts B (A was used more recently; FIFO would evict A); then B evicts C.
    const launches = trace([0, 'A'], [10, 'B'], [20, 'A'], [30, 'C'], [40, 'A'], [50, 'B'], [60, 'A']);

    expect(await warmFlags(lruPolicy(), launches)).toEqual([false, false, true, false, true, false, true]);
  });

  it('lru never evicts an image a running instance uses, and then does not keep the new one', async () => {
    const launches = trace([0, 'A'], [1, 'B'], [2, 'C'], [3, 'C']);

    const warm = await warmFlags(lruPolicy(), launches, oneHost({ holdS: 1000 }));

    expect(warm).toEqual([false, false, false, false]);
  });

  it('lfu-affinity evicts the image used least often on the host, not the least recently used one', async () => {
    // A is used three times, B once; C needs room: LFU evicts B, LRU evicts A (used less recently).
    const launches = trace([0, 'A'], [10, 'A'], [20, 'A'], [30, 'B'], [40, 'C'], [50, 'A'], [60, 'B']);

    expect(await warmFlags(lfuAffinityPolicy(), launches, oneHost(), 0)).toEqual([
      false,
      true,
      true,
      false,
      false,
      true,
      false,
    ]);
    expect(await warmFlags(lruPolicy(), launches, oneHost(), 0)).toEqual([
      false,
      true,
      true,
      false,
      false,
      false,
      false,
    ]);
  });

  it('nova-age only lets images unused for 24 h go, at its periodic check or to make room', async () => {
    const day = 86_400;
    const launches = trace(
      [0, 'A'],
      [10, 'B'],
      [20, 'C'], // no image is 24 h old: C is used once and not kept
      [30, 'C'],
      [40, 'A'],
      [day + 100, 'A'], // A was used at 40: not yet aged at the 86,400 s check
      [day + 5000, 'B'], // B (last use 10 s) was removed at the 86,400 s check
    );

    const warm = await warmFlags(novaAgePolicy(), launches);

    expect(warm).toEqual([false, false, false, false, true, true, false]);
  });

  it('static-pins pins the first day’s most requested image on every host after day one', async () => {
    const day = 86_400;
    // Day one: P twice, Q once → P is pinned (half of a two-image budget). Afterwards X, Y, Z
    // churn the LRU part; P stays on both hosts only because it is pinned.
    const launches = trace(
      [0, 'P'],
      [1, 'Q'],
      [2, 'P'],
      [day + 1, 'X'],
      [day + 2, 'Y'],
      [day + 3, 'Z'],
      [day + 4, 'P'],
      [day + 5, 'P'],
    );
    const config = oneHost({ hosts: 2 });
    const pinned = await warmFlags(staticPinsPolicy(launches, config.cacheBytes), launches, config, 0);
    const lru = await warmFlags(lruPolicy(), launches, config, 0);

    expect(pinned).toEqual([false, false, true, false, false, false, true, true]);
    expect(lru).toEqual([false, false, true, false, false, false, true, false]);
  });
});

describe('bounds and aims', () => {
  it('counts the first request of every image cold, and in the outage those first asked for before it', () => {
    const launches = trace([0, 'A'], [10, 'B'], [20, 'A'], [300, 'A'], [310, 'C'], [320, 'C']);

    expect(firstRequestCeiling(launches, { startS: 300, endS: 400 })).toEqual({
      warm_ratio: 0.5,
      cold_starts: 3,
      outage_availability: 1 / 3,
      outage_launches: 3,
    });
  });

  it('judges each aim as met or not, and names a policy that beats the oracle', () => {
    const row = (warm: number, cold: number, skew = 1, outage = 0.9) => ({
      warm_ratio: warm,
      cold_starts: cold,
      placement_skew: skew,
      outage_availability: outage,
    });
    const aims = aimsOf({
      'lru-affinity': row(0.95, 140),
      warmboot: row(0.96, 100, 1.6, 0.84),
      oracle: row(0.99, 20),
    });

    expect(aims).toMatchObject({
      warm_vs_oracle_met: 1,
      cold_vs_lru_affinity: 1.4,
      cold_vs_lru_affinity_met: 0,
    });
    expect(aims).toMatchObject({ placement_skew_met: 0, outage_vs_oracle_met: 0, oracle_never_loses: 1 });
    expect(oracleBeaten({ oracle: row(0.9, 1), lru: row(0.91, 1), [CEILING]: row(1, 0) })).toEqual(['lru']);
  });
});

describe('oracle', () => {
  it('is cold only for images nobody requested before', async () => {
    const launches = trace([0, 'A'], [10, 'B'], [20, 'C'], [30, 'A'], [40, 'B'], [50, 'C'], [60, 'A']);

    const warm = await warmFlags(oraclePolicy(launches), launches);

    expect(warm).toEqual([false, false, false, true, true, true, true]);
  });

  it('prefetches before the outage what it knows will be needed during it; LRU cannot', async () => {
    // Budget of one image: B displaces A (B is needed sooner); A is needed during the outage.
    const launches = trace([0, 'A'], [100, 'B'], [200, 'B'], [5000, 'A']);
    const config = oneHost({
      cacheBytes: SIZE,
      bandwidthBytesPerS: 10,
      outage: { startS: 1000, endS: 8200 },
    });

    expect(await warmFlags(oraclePolicy(launches), launches, config)).toEqual([false, false, true, true]);
    expect(await warmFlags(lruPolicy(), launches, config)).toEqual([false, false, true, false]);
  });

  it('stages the outage window before it starts and never loses to any policy (an adversarial trace)', async () => {
    // One host, room for four images. A–D are needed throughout the outage; E and F come and go
    // just before it. A just-in-time oracle keeps E and F (needed sooner), then can move only one
    // download in front of the outage, so D's outage launches are all cold, while nova-age (which
    // never lets E or F displace anything) serves the whole window warm and beats it.
    const requests: [number, string][] = [
      [0, 'A'],
      [10, 'B'],
      [20, 'C'],
      [30, 'D'],
    ];
    requests.push([100, 'E'], [110, 'F'], [150, 'E'], [160, 'F']);
    for (let k = 0; k < 5; k++)
      for (const [i, image] of ['A', 'B', 'C', 'D'].entries()) requests.push([300 + 40 * k + i, image]);
    const launches = trace(...requests);
    const config = oneHost({
      cacheBytes: 4 * SIZE,
      bandwidthBytesPerS: 10,
      outage: { startS: 200, endS: 7400 },
    });
    const loads = launches.map(() => 20);
    const run = async (policy: CachePolicy) => ({
      ...cacheMetrics(await simulate(policy, launches, config, loads)),
    });

    const oracle = await run(oraclePolicy(launches));
    const others = await Promise.all(
      [nonePolicy(), lruPolicy(), lruPolicy({ affinity: true }), lfuAffinityPolicy(), novaAgePolicy()].map(
        run,
      ),
    );

    expect(oracle.outage_availability).toBe(firstRequestCeiling(launches, config.outage).outage_availability);
    expect(oracle.outage_availability).toBe(1);
    expect(others[4]?.outage_availability).toBe(1);
    for (const metrics of others) expect(oracle.warm_ratio).toBeGreaterThanOrEqual(metrics.warm_ratio);
    expect(oracleBeaten({ oracle, ...Object.fromEntries(others.map((m, i) => [`p${i}`, m])) })).toEqual([]);
  });

  it('knows the next request of every image', () => {
    const future = new Future(trace([0, 'A'], [10, 'B'], [20, 'A']));

    expect(future.nextUseAfter('A', 0)).toBe(20);
    expect(future.nextUseAfter('A', 20)).toBe(Number.POSITIVE_INFINITY);
    expect(future.nextUseAfter('Z', 0)).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('frame', () => {
  it('refuses a prefetch beyond the budget or during the outage, and counts the bytes of the ones it makes', () => {
    const fleet = new Fleet(oneHost({ bandwidthBytesPerS: 10, outage: { startS: 100, endS: 200 } }));
    const [host] = fleet.hosts;
    if (!host) throw new Error('no host');

    expect(fleet.prefetch(host, 'A', SIZE, 0)).toEqual({ ok: true, startS: 0, doneS: 10 });
    expect(fleet.prefetch(host, 'B', SIZE, 0)).toEqual({ ok: true, startS: 10, doneS: 20 });
    expect(fleet.prefetch(host, 'C', SIZE, 30)).toEqual({ ok: false, reason: 'over-budget' });
    expect(fleet.makeRoom(host, SIZE, 30, [...host.entries.values()])).toBe(true);
    expect(fleet.prefetch(host, 'C', SIZE, 95)).toEqual({ ok: false, reason: 'source-unreachable' });
    expect(host.usedBytes).toBe(SIZE);
    expect(fleet.bytesFetched).toBe(2 * SIZE);
  });

  it('queues fetches on a host link and makes cold launches wait for max(transfer, load)', async () => {
    const launches = trace([0, 'A'], [0, 'B']);
    const config = oneHost({ bandwidthBytesPerS: 10 }); // 100 bytes take 10 s

    const run = await simulate(nonePolicy(), launches, config, [5, 30]);

    expect(run.outcomes.map((outcome) => outcome.readyS)).toEqual([10, 40]);
    expect(run.bytesFetched).toBe(200);
  });

  it('makes a cold launch during the outage wait for the source and counts outage availability', async () => {
    const launches = trace([0, 'A'], [150, 'A'], [160, 'B']);
    const config = oneHost({ outage: { startS: 100, endS: 200 } });

    const metrics = cacheMetrics(await simulate(lruPolicy(), launches, config, [1, 1, 1]));

    expect(metrics.outage_launches).toBe(2);
    expect(metrics.outage_availability).toBe(0.5);
    expect(metrics.p95_ready_s).toBe(41); // B: waits until 200, then loads 1 s
  });

  it('waits for a free slot when every host is full', async () => {
    const launches = trace([0, 'A'], [1, 'A']);
    const config = oneHost({ slots: 1, holdS: 50 });

    const run = await simulate(lruPolicy(), launches, config, [0, 0]);

    expect(run.outcomes[1]?.warm).toBe(true);
    expect(run.outcomes[1]?.readyS).toBeCloseTo(49, 6);
  });
});

describe('scenario helpers', () => {
  it('takes the reconcile period from the imageCache schedule', () => {
    expect(reconcilePeriodS('rate(5 minutes)')).toBe(300);
    expect(() => reconcilePeriodS('cron(0 * * * ? *)')).toThrow('unexpected imageCache schedule');
  });

  it('finds the busiest window', () => {
    expect(busiestWindowStartS([0, 10, 100, 101, 102, 500], 10)).toBe(100);
  });

  it('draws the same cold load time for a launch on every call', () => {
    const latencies = [1000, 2000, 3000, 4000];

    expect(coldLoadDraws(50, latencies, 7)).toEqual(coldLoadDraws(50, latencies, 7));
    expect(new Set(coldLoadDraws(50, latencies, 7))).toEqual(new Set([1, 2, 3, 4]));
  });
});
