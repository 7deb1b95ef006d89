import { poolNameSchema } from '../functions/pools/config';
import { TIMINGS } from '../functions/pools/domain/sizing';
import { loadTrace, stableUnit, type Trace, traceLabel } from '../local/trace';
import { type BenchArgs, type FlagSpec, numberFlag } from './args';
import { benchPoolSpec, type SimPool, type SimRequest, type SimResult, simulatePools } from './pool-sim';
import { type BenchResult, type Metrics, percentile, type Scenario } from './report';

/**
 * `npm run bench -- pool`: prestarted pools on a request trace (docs/benchmark-definitions.md, pool).
 * Pooled images: those that make 80% of the requests in the first 24 h (at most 50). Policies,
 * all on the same trace in one run: none (cold launch + initialize every time), fixed-warm-pool
 * (Auto Scaling warm-pool semantics: one fixed size, stopped tier, refilled after each claim) at
 * size 1 and at the smallest uniform size whose hit ratio reaches warmboot's, and warmboot
 * (Erlang-loss demand sizing + the running tier for the hottest pools).
 */

const FLAGS = {
  linuxInit: { name: 'linux-init-s', description: 'Linux member initialization, seconds', default: '120' },
  windowsInit: {
    name: 'windows-init-s',
    description: 'Windows-like initialization (sysprep, OOBE), seconds; >= 900',
    default: '900',
  },
  windowsShare: {
    name: 'windows-share',
    description: 'share of images that are Windows-like (chosen by a hash of the image id)',
    default: '0.25',
  },
  volume: { name: 'volume-gib', description: 'root volume per member, GiB (gp3)', default: '30' },
  ebsPrice: { name: 'ebs-gb-month-usd', description: 'gp3 storage price, USD per GB-month', default: '0.08' },
  instancePrice: {
    name: 'instance-hour-usd',
    description: 'instance price, USD per hour (m7i.large, us-east-1 on-demand)',
    default: '0.1008',
  },
  target: { name: 'target-hit-share', description: 'warmboot sizing target (Erlang-loss)', default: '0.99' },
  hot: {
    name: 'running-tier-above-per-hour',
    description:
      'warmboot: the hottest pools keep members running in hours at or above this rate (0: stopped tier only)',
    default: '120',
  },
  hotPools: {
    name: 'running-tier-pools',
    description: 'warmboot: how many of the hottest pools (first-24 h requests) get the running tier',
    default: '1',
  },
  hotShare: {
    name: 'running-tier-hit-share',
    description: 'warmboot: share of requests the running members serve hot (Erlang-B on 21.2 s)',
    default: '0.5',
  },
  cooldown: {
    name: 'scale-down-cooldown-min',
    description: 'warmboot: minutes between two one-member scale-down steps',
    default: '30',
  },
  minSize: { name: 'min-size', description: 'warmboot pools: min size', default: '0' },
  maxSize: { name: 'max-size', description: 'every pool: max size (the quota)', default: '40' },
  personalize: { name: 'personalize-s', description: 'personalization over SSM, seconds', default: '3' },
} as const satisfies Record<string, FlagSpec>;

const INSTANCE_TYPE = 'm7i.large';
const RECONCILE_PERIOD_S = 120;
const TERMINATE_S = 30;

interface Setup {
  readonly trace: Trace;
  readonly pooled: readonly string[];
  readonly requests: readonly SimRequest[];
  readonly platformOf: (image: string) => 'linux' | 'windows';
  readonly initOf: (image: string) => number;
}

/** Images making `share` of the requests in the first `windowS` seconds, most requested first. */
export const pooledImages = (
  trace: Trace,
  options: { share?: number; windowS?: number; maxPools?: number } = {},
): string[] => {
  const { share = 0.8, windowS = 86_400, maxPools = 50 } = options;
  const counts = new Map<string, number>();
  for (const request of trace.requests) {
    if (request.timeS >= windowS) break;
    counts.set(request.image, (counts.get(request.image) ?? 0) + 1);
  }
  const total = [...counts.values()].reduce((sum, n) => sum + n, 0);
  const ranked = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const chosen: string[] = [];
  let covered = 0;
  for (const [image, count] of ranked) {
    if (covered >= share * total || chosen.length >= maxPools) break;
    chosen.push(image);
    covered += count;
  }
  return chosen;
};

/** A valid pool name for an opaque image id (ids may hold `/`, `+`, `=`). */
const poolNameFor = (image: string, index: number): string => {
  const candidate = image.toLowerCase();
  return poolNameSchema.safeParse(candidate).success ? candidate : `pool-${index}`;
};

/** A path's median, or no key at all when no request took that path (metrics are numbers). */
const medianOf = (name: string, samples: readonly number[]): Metrics =>
  samples.length === 0 ? {} : { [name]: percentile(samples, 50) };

const metricsOf = (result: SimResult, pooledIndexes: ReadonlySet<number>): Metrics => {
  const pooled = result.outcomes.filter((_, index) => pooledIndexes.has(index));
  const hits = pooled.filter((outcome) => outcome.path !== 'cold');
  const ready = pooled.map((outcome) => outcome.readySeconds);
  const byPath = (path: string) =>
    pooled.filter((outcome) => outcome.path === path).map((o) => o.readySeconds);
  return {
    pool_hit_ratio: pooled.length === 0 ? 0 : hits.length / pooled.length,
    ...medianOf('p50_ready_s', ready),
    ...(ready.length === 0 ? {} : { p95_ready_s: percentile(ready, 95) }),
    idle_cost_usd: result.idleCostUsd,
    refill_cost_usd: result.refillCostUsd,
    members_launched: result.membersLaunched,
    members_wasted: result.membersWasted,
    hot_requests: byPath('hot').length,
    warm_requests: byPath('warm').length,
    cold_requests: byPath('cold').length,
    ...medianOf('p50_hot_s', byPath('hot')),
    ...medianOf('p50_warm_s', byPath('warm')),
    ...medianOf('p50_cold_s', byPath('cold')),
  };
};

export const runPoolBench = async (args: BenchArgs): Promise<BenchResult> => {
  const linuxInit = numberFlag(args, FLAGS.linuxInit, { min: 0 });
  const windowsInit = numberFlag(args, FLAGS.windowsInit, { min: 900 });
  const windowsShare = numberFlag(args, FLAGS.windowsShare, { min: 0 });
  const volumeGiB = numberFlag(args, FLAGS.volume, { min: 8, integer: true });
  const prices = {
    ebsGbMonthUsd: numberFlag(args, FLAGS.ebsPrice, { min: 0 }),
    instanceHourUsd: numberFlag(args, FLAGS.instancePrice, { min: 0 }),
  };
  const targetHitShare = numberFlag(args, FLAGS.target, { min: 0.5 });
  const hotRate = numberFlag(args, FLAGS.hot, { min: 0 });
  const hotPools = numberFlag(args, FLAGS.hotPools, { min: 0, integer: true });
  const hotShare = numberFlag(args, FLAGS.hotShare, { min: 0.1 });
  const minSize = numberFlag(args, FLAGS.minSize, { min: 0, integer: true });
  const cooldownMinutes = numberFlag(args, FLAGS.cooldown, { min: 1, integer: true });
  const maxSize = numberFlag(args, FLAGS.maxSize, { min: 1, integer: true });
  const personalizeSeconds = numberFlag(args, FLAGS.personalize, { min: 0 });

  const trace = loadTrace(args.trace);
  const pooled = pooledImages(trace);
  const platformOf = (image: string): 'linux' | 'windows' =>
    stableUnit(`platform:${image}`) < windowsShare ? 'windows' : 'linux';
  const initOf = (image: string): number => (platformOf(image) === 'windows' ? windowsInit : linuxInit);
  const setup: Setup = {
    trace,
    pooled,
    platformOf,
    initOf,
    requests: trace.requests.map((request) => ({
      timeS: request.timeS,
      pool: request.image,
      instanceType: request.instanceType ?? INSTANCE_TYPE,
    })),
  };
  const pooledSet = new Set(pooled);
  const pooledIndexes = new Set(
    setup.requests.flatMap((request, index) => (pooledSet.has(request.pool) ? [index] : [])),
  );
  const timings = {
    personalizeSeconds,
    terminateSeconds: TERMINATE_S,
    reconcilePeriodSeconds: RECONCILE_PERIOD_S,
  };
  const run = (poolOf: (image: string, index: number) => SimPool): SimResult =>
    simulatePools({
      requests: setup.requests,
      pools: new Map(pooled.map((image, index) => [image, poolOf(image, index)])),
      coldInitializeSeconds: initOf,
      prices,
      timings,
    });
  const runNone = (): SimResult =>
    simulatePools({
      requests: setup.requests,
      pools: new Map(),
      coldInitializeSeconds: initOf,
      prices,
      timings,
    });
  const fixed = (size: number) =>
    run((image, index) => ({
      initializeSeconds: initOf(image),
      spec: benchPoolSpec({
        name: poolNameFor(image, index),
        instanceType: INSTANCE_TYPE,
        volumeGiB,
        platform: platformOf(image),
        minSize: size,
        maxSize: size,
        sizing: { mode: 'fixed' },
      }),
    }));
  type Variant = { readonly runningTier: boolean; readonly retireSurplus: 'at-once' | 'after-break-even' };
  const warmbootRun = (variant: Variant): SimResult =>
    run((image, index) => ({
      initializeSeconds: initOf(image),
      spec: benchPoolSpec({
        name: poolNameFor(image, index),
        instanceType: INSTANCE_TYPE,
        volumeGiB,
        platform: platformOf(image),
        minSize,
        maxSize,
        sizing: {
          mode: 'demand',
          targetHitShare,
          // pooledImages ranks by first-24 h requests: the running tier goes to the hottest only.
          ...(variant.runningTier && index < hotPools
            ? { runningTierAbovePerHour: hotRate, runningTierHitShare: hotShare }
            : {}),
          scaleDownCooldownMinutes: cooldownMinutes,
          retireSurplus: variant.retireSurplus,
          instanceHourUsd: prices.instanceHourUsd,
          ebsGbMonthUsd: prices.ebsGbMonthUsd,
        },
      }),
    }));
  const hotPoolNames = pooled.slice(0, hotPools);
  const hotTier = hotRate > 0 && hotPools > 0;
  const variants: Record<string, Variant> = {
    warmboot: { runningTier: hotTier, retireSurplus: 'at-once' },
    ...(hotTier
      ? { 'warmboot-stopped-only': { runningTier: false, retireSurplus: 'at-once' } as const }
      : {}),
    'warmboot-break-even': { runningTier: hotTier, retireSurplus: 'after-break-even' },
  };
  const warmboots = Object.entries(variants).map(([name, variant]) => {
    const result = warmbootRun(variant);
    return { name, result, metrics: metricsOf(result, pooledIndexes) };
  });
  const fixedBySize = new Map<number, Metrics>();
  const fixedMetrics = (size: number): Metrics => {
    let metrics = fixedBySize.get(size);
    if (metrics === undefined) {
      metrics = metricsOf(fixed(size), pooledIndexes);
      fixedBySize.set(size, metrics);
    }
    return metrics;
  };
  /** The smallest uniform fixed size whose hit ratio reaches `hit` (or the largest tried). */
  const equalServiceFor = (hit: number): { size: number; metrics: Metrics; matched: boolean } => {
    for (let size = 1; size <= maxSize; size++) {
      const metrics = fixedMetrics(size);
      if ((metrics.pool_hit_ratio ?? 0) >= hit) return { size, metrics, matched: true };
    }
    return { size: maxSize, metrics: fixedMetrics(maxSize), matched: false };
  };
  const comparisons = warmboots.map((entry) => {
    const fixedAt = equalServiceFor(entry.metrics.pool_hit_ratio ?? 0);
    const ratio = (entry.metrics.idle_cost_usd ?? 0) / (fixedAt.metrics.idle_cost_usd ?? Number.NaN);
    const total = (m: Metrics) => (m.idle_cost_usd ?? 0) + (m.refill_cost_usd ?? 0);
    return { ...entry, fixedAt, ratio, totalRatio: total(entry.metrics) / total(fixedAt.metrics) };
  });
  const atOne = fixedMetrics(1);
  const fixedRows: Record<string, Metrics> = { 'fixed-warm-pool@1': atOne };
  for (const entry of comparisons) fixedRows[`fixed-warm-pool@${entry.fixedAt.size}`] = entry.fixedAt.metrics;
  const sortedFixedRows = Object.fromEntries(
    Object.entries(fixedRows).sort((a, b) => Number(a[0].split('@')[1]) - Number(b[0].split('@')[1])),
  );
  const unpooled = setup.requests.length - pooledIndexes.size;
  const windows = pooled.filter((image) => platformOf(image) === 'windows');
  return {
    scenario: 'pool',
    trace: traceLabel(trace.path),
    policies: {
      none: metricsOf(runNone(), pooledIndexes),
      ...sortedFixedRows,
      ...Object.fromEntries(comparisons.map((entry) => [entry.name, entry.metrics])),
    },
    parameters: {
      requests: setup.requests.length,
      pooled_requests: pooledIndexes.size,
      pools: pooled.length,
      instance_type: INSTANCE_TYPE,
      instance_hour_usd: prices.instanceHourUsd,
      gp3_gb_month_usd: prices.ebsGbMonthUsd,
      volume_gib: volumeGiB,
      cold_s: TIMINGS.coldLaunchSeconds,
      start_stopped_s: TIMINGS.startStoppedSeconds,
      running_connect_s: TIMINGS.runningConnectSeconds,
      personalize_s: personalizeSeconds,
      linux_init_s: linuxInit,
      windows_init_s: windowsInit,
      target_hit_share: targetHitShare,
      running_tier_above_per_hour: hotRate,
      running_tier_pools: hotPools,
      running_tier_hit_share: hotShare,
      warmboot_min_size: minSize,
      scale_down_cooldown_min: cooldownMinutes,
      max_size: maxSize,
      reconcile_period_s: RECONCILE_PERIOD_S,
    },
    notes: [
      `pooled images (80% of the first 24 h): ${pooled.join(', ')}; Windows-like: ${windows.join(', ') || 'none'}`,
      `${unpooled} requests for other images are cold under every policy and not in pool_hit_ratio or p50/p95`,
      hotTier
        ? `warmboot (default): demand sizing, surplus retired at once, running tier for ${hotPoolNames.join(', ')} in hours at >= ${hotRate} req/h with running members sized for ${hotShare} hot (Erlang-B on the 21.2 s start); warmboot-stopped-only: without the running tier`
        : 'warmboot: demand sizing, stopped tier only, surplus retired at once',
      'warmboot-break-even: warmboot, but a surplus member is retired only after idling past the break-even time (replacement cost / idle cost per hour)',
      ...comparisons.map((entry) =>
        entry.fixedAt.matched
          ? `${entry.name}: idle cost = ${entry.ratio.toFixed(3)} x fixed-warm-pool@${entry.fixedAt.size} (smallest uniform size with pool_hit_ratio >= its ${(entry.metrics.pool_hit_ratio ?? 0).toFixed(3)}); idle + refill = ${entry.totalRatio.toFixed(3)} x`
          : `${entry.name}: no uniform size up to ${maxSize} reached its pool_hit_ratio; idle cost = ${entry.ratio.toFixed(3)} x fixed-warm-pool@${maxSize}`,
      ),
      'idle_cost_usd: ready members waiting for a claim: gp3 GB-hours, plus instance-hours for running (hot) ones; refill_cost_usd: launch + initialize + stop of members before they are ready (same prices)',
      `quota check: max (members counted against max - maxSize) over every reconcile: ${comparisons.map((entry) => `${entry.name} ${entry.result.maxOverQuota}`).join(', ')}`,
      'source: Alibaba cluster-trace-v2026-GenAI request trace; timings: brevdev/ec2-coldboot-research (data/README.md, docs/ec2-timings.md)',
    ],
  };
};

export const poolScenario: Scenario = {
  name: 'pool',
  description: 'prestarted pools: none vs fixed-warm-pool vs warmboot demand sizing on a request trace',
  flags: Object.values(FLAGS),
  run: runPoolBench,
};
