import { poolNameSchema } from '../functions/pools/config';
import { TIMINGS } from '../functions/pools/domain/sizing';
import { type BenchArgs, type FlagSpec, numberFlag } from './args';
import { benchPoolSpec, type SimPool, type SimRequest, type SimResult, simulatePools } from './pool-sim';
import { type BenchResult, type Metrics, percentile, type Scenario } from './report';
import { loadTrace, stableUnit, type Trace } from './trace';

/**
 * `npm run bench -- pool`: prestarted pools on a request trace (../shared/BENCHMARKS.md, pool).
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
    description: 'warmboot keeps part of a pool running at or above this request rate (0: stopped tier only)',
    default: '0',
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

const metricsOf = (result: SimResult, pooledIndexes: ReadonlySet<number>): Metrics => {
  const pooled = result.outcomes.filter((_, index) => pooledIndexes.has(index));
  const hits = pooled.filter((outcome) => outcome.path !== 'cold');
  const ready = pooled.map((outcome) => outcome.readySeconds);
  const byPath = (path: string) =>
    pooled.filter((outcome) => outcome.path === path).map((o) => o.readySeconds);
  return {
    pool_hit_ratio: pooled.length === 0 ? Number.NaN : hits.length / pooled.length,
    p50_ready_s: percentile(ready, 50),
    p95_ready_s: percentile(ready, 95),
    idle_cost_usd: result.idleCostUsd,
    refill_cost_usd: result.refillCostUsd,
    members_launched: result.membersLaunched,
    members_wasted: result.membersWasted,
    hot_requests: byPath('hot').length,
    warm_requests: byPath('warm').length,
    cold_requests: byPath('cold').length,
    p50_hot_s: percentile(byPath('hot'), 50),
    p50_warm_s: percentile(byPath('warm'), 50),
    p50_cold_s: percentile(byPath('cold'), 50),
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
  const warmboot = run((image, index) => ({
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
        runningTierAbovePerHour: hotRate > 0 ? hotRate : undefined,
        scaleDownCooldownMinutes: cooldownMinutes,
      },
    }),
  }));
  const warmbootMetrics = metricsOf(warmboot, pooledIndexes);
  const warmbootHit = warmbootMetrics.pool_hit_ratio ?? 0;
  const atOne = metricsOf(fixed(1), pooledIndexes);
  let matched: { size: number; metrics: Metrics } | undefined;
  let largest: { size: number; metrics: Metrics } = { size: 1, metrics: atOne };
  for (let size = 1; size <= maxSize; size++) {
    const metrics = size === 1 ? atOne : metricsOf(fixed(size), pooledIndexes);
    largest = { size, metrics };
    if ((metrics.pool_hit_ratio ?? 0) >= warmbootHit) {
      matched = { size, metrics };
      break;
    }
  }
  const equalService = matched ?? largest;
  const costRatio = warmbootMetrics.idle_cost_usd ?? 0;
  const fixedCost = equalService.metrics.idle_cost_usd ?? 0;
  const unpooled = setup.requests.length - pooledIndexes.size;
  const windows = pooled.filter((image) => platformOf(image) === 'windows');
  return {
    scenario: 'pool',
    trace: trace.path,
    policies: {
      none: metricsOf(runNone(), pooledIndexes),
      'fixed-warm-pool@1': atOne,
      [`fixed-warm-pool@${equalService.size}`]: equalService.metrics,
      warmboot: warmbootMetrics,
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
      warmboot_min_size: minSize,
      scale_down_cooldown_min: cooldownMinutes,
      max_size: maxSize,
      reconcile_period_s: RECONCILE_PERIOD_S,
    },
    notes: [
      `pooled images (80% of the first 24 h): ${pooled.join(', ')}; Windows-like: ${windows.join(', ') || 'none'}`,
      `${unpooled} requests for other images are cold under every policy and not in pool_hit_ratio or p50/p95`,
      matched
        ? `fixed-warm-pool@${matched.size} is the smallest uniform size with pool_hit_ratio >= warmboot's`
        : `no uniform size up to ${maxSize} reached warmboot's pool_hit_ratio; showing size ${largest.size}`,
      `warmboot idle cost = ${(fixedCost > 0 ? costRatio / fixedCost : Number.NaN).toFixed(3)} x fixed-warm-pool at equal service`,
      'idle_cost_usd: ready members waiting for a claim: gp3 GB-hours, plus instance-hours for running (hot) ones; refill_cost_usd: launch + initialize + stop of members before they are ready (same prices)',
      `quota check: max (members counted against max - maxSize) over every reconcile: warmboot ${warmboot.maxOverQuota}`,
      'source: Alibaba cluster-trace-v2026-GenAI request trace; timings: brevdev/ec2-coldboot-research (../shared/data/README.md)',
    ],
  };
};

export const poolScenario: Scenario = {
  name: 'pool',
  description: 'prestarted pools: none vs fixed-warm-pool vs warmboot demand sizing on a request trace',
  flags: Object.values(FLAGS),
  run: runPoolBench,
};
