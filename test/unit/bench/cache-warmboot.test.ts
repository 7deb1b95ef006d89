import { describe, expect, it } from 'vitest';
import { parseArgs } from '../../../bench/args';
import { cacheScenario } from '../../../bench/cache';
import { type FleetConfig, type Launch, simulate } from '../../../bench/cache-sim';
import { warmbootPolicy } from '../../../bench/cache-warmboot';
import { seededRandom } from '../../../local/ec2/ids';

const MB = 1_000_000;
const config: FleetConfig = {
  hosts: 2,
  azs: 2,
  cacheBytes: 300 * MB,
  bandwidthBytesPerS: 100 * MB,
  slots: 10,
  holdS: 60,
  outage: { startS: 1e9, endS: 1e9 + 7200 },
};
const sizes = { hot: 100 * MB, cold: 250 * MB };
const launch = (index: number, timeS: number, image: keyof typeof sizes): Launch => ({
  index,
  timeS,
  image,
  sizeBytes: sizes[image],
});
const policy = () =>
  warmbootPolicy({
    cacheBytes: config.cacheBytes,
    originS: 1_731_600_000,
    imageSizes: sizes,
    reconcileS: 300,
    seed: 1,
  });

describe('warmboot policy (popularity + planner + placement)', () => {
  it('warms a launched image and then places its launches on the hosts that hold it, spread', async () => {
    const launches = Array.from({ length: 40 }, (_, index) => launch(index, index * 60, 'hot'));
    const warmboot = policy();

    const run = await simulate(
      warmboot,
      launches,
      config,
      launches.map(() => 20),
    );

    // Only the very first launch is cold: placement warmed its host, the planner replicated it.
    expect(run.outcomes.filter((outcome) => !outcome.warm).map((outcome) => outcome.host)).toHaveLength(1);
    expect(run.outcomes[0]?.warm).toBe(false);
    expect(Math.min(...run.placedPerHost)).toBeGreaterThan(0);
    expect(warmboot.stats.plans).toBeGreaterThan(0);
  });

  it("plans with the host group's planner settings a sweep gives, and the product's defaults otherwise", async () => {
    const launches = Array.from({ length: 5 }, (_, index) => launch(index, index * 60, 'hot'));
    const settingsPlanned = async (planner?: { replicaExponent: number; keepMargin: number }) => {
      const seen: { replicaExponent: number; keepMargin: number; minScore: number }[] = [];
      const warmboot = warmbootPolicy({
        cacheBytes: config.cacheBytes,
        originS: 1_731_600_000,
        imageSizes: sizes,
        reconcileS: 300,
        seed: 1,
        ...(planner ? { planner } : {}),
        onPlan: ({ group }) => seen.push(group),
      });
      await simulate(
        warmboot,
        launches,
        config,
        launches.map(() => 20),
      );
      return seen[0];
    };

    expect(await settingsPlanned({ replicaExponent: 1, keepMargin: 0 })).toMatchObject({
      replicaExponent: 1,
      keepMargin: 0,
      minScore: 0,
    });
    expect(await settingsPlanned()).toMatchObject({ replicaExponent: 5, keepMargin: 3, minScore: 0 });
  });

  it('refuses a planner setting the host group would refuse, naming it, before reading any trace', async () => {
    const args = parseArgs(
      ['cache', '--traces', 'no-such-trace.csv', '--replica-exponent', '9'],
      ['cache'],
      () => cacheScenario.flags,
    );

    await expect(cacheScenario.run(args)).rejects.toThrow(/planner setting replicaExponent: .*<=8/);
  });

  it('draws the same tie-breakers for the same seed', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);

    expect([a(), a(), a()]).toEqual([b(), b(), b()]);
  });
});
