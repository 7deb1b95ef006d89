import { FUNCTIONS } from '../functions/catalog';
import { poolNameSchema } from '../functions/pools/config';
import { TIMINGS } from '../functions/pools/domain/sizing';
import { schedulePeriodMs } from '../local/bus';
import type { Platform, Trace } from '../local/trace';
import {
  type AimJudgement,
  hindsightStatic,
  type InterpolatedCost,
  interpolateAtHit,
  judgeAim,
  type PoolCurve,
  type ServiceCost,
  type SizedCost,
  type StaticAllocation,
  totalUsd,
} from './pool-baselines';
import {
  benchPoolSpec,
  type SimOutcome,
  type SimPool,
  type SimPrices,
  type SimRequest,
  type SimResult,
  simulatePools,
} from './pool-sim';
import { type Metrics, percentile } from './report';

/**
 * One trace through the pool bench: warmboot's variants, the uniform fixed pools (Auto Scaling
 * warm-pool semantics) and the per-pool static pools, each on the same requests, and the costs
 * at equal service (bench/pool-baselines.ts).
 */

export interface PoolSettings {
  readonly linuxInitS: number;
  readonly windowsInitS: number;
  readonly volumeGiB: number;
  readonly prices: SimPrices;
  readonly targetHitShare: number;
  /** Rate at or above which the hottest pools keep members running (0: stopped tier only). */
  readonly runningTierAbovePerHour: number;
  readonly runningTierPools: number;
  readonly runningTierHitShare: number;
  readonly cooldownMinutes: number;
  readonly minSize: number;
  readonly maxSize: number;
  readonly personalizeSeconds: number;
}

export interface Variant {
  readonly runningTier: boolean;
  readonly retireSurplus: 'at-once' | 'after-break-even';
}

export const INSTANCE_TYPE = 'm7i.large';
const TERMINATE_S = 30;
const pools = FUNCTIONS.pools;
if (pools.schedule === undefined) throw new Error('the pools function has no reconcile schedule');
/** The pools function's scheduled reconcile, from the catalog the stack deploys. */
export const RECONCILE_PERIOD_S = schedulePeriodMs(pools.schedule) / 1000;

/** Images making `share` of the requests in the first `windowS` seconds, most requested first. */
const pooledImages = (
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

/** A member's time from `running` to initialized, in the replay: SSM agent registration + the init command. */
const replayInitializeSeconds = (settings: PoolSettings, platform: Platform): number =>
  platform === 'windows'
    ? TIMINGS.windowsAgentRegistrationSeconds + settings.windowsInitS
    : TIMINGS.linuxAgentRegistrationSeconds + settings.linuxInitS;

/** Outcomes and bill of one policy on the pooled requests. */
interface Served {
  readonly outcomes: readonly SimOutcome[];
  readonly idleUsd: number;
  readonly refillUsd: number;
  readonly launched: number;
  readonly wasted: number;
}

const serviceOf = (served: Served): ServiceCost => ({
  hits: served.outcomes.filter((outcome) => outcome.path !== 'cold').length,
  requests: served.outcomes.length,
  idleUsd: served.idleUsd,
  refillUsd: served.refillUsd,
});

/** A path's median, or no key at all when no request took that path (metrics are numbers). */
const medianOf = (name: string, samples: readonly number[]): Metrics =>
  samples.length === 0 ? {} : { [name]: percentile(samples, 50) };

const metricsOf = (served: Served): Metrics => {
  const { outcomes } = served;
  const ready = outcomes.map((outcome) => outcome.readySeconds);
  const byPath = (path: SimOutcome['path']) =>
    outcomes.filter((outcome) => outcome.path === path).map((outcome) => outcome.readySeconds);
  const service = serviceOf(served);
  return {
    pool_hit_ratio: service.requests === 0 ? 0 : service.hits / service.requests,
    ...medianOf('p50_ready_s', ready),
    ...(ready.length === 0 ? {} : { p95_ready_s: percentile(ready, 95) }),
    idle_cost_usd: served.idleUsd,
    refill_cost_usd: served.refillUsd,
    total_cost_usd: served.idleUsd + served.refillUsd,
    members_launched: served.launched,
    members_wasted: served.wasted,
    hot_requests: byPath('hot').length,
    warm_requests: byPath('warm').length,
    cold_requests: byPath('cold').length,
    ...medianOf('p50_hot_s', byPath('hot')),
    ...medianOf('p50_warm_s', byPath('warm')),
    ...medianOf('p50_cold_s', byPath('cold')),
  };
};

/** A metric only when it is a number (NaN: the baseline never reached the hit ratio). */
const finite = (name: string, value: number): Metrics => (Number.isFinite(value) ? { [name]: value } : {});

const combine = (parts: readonly Served[]): Served => ({
  outcomes: parts.flatMap((part) => part.outcomes),
  idleUsd: parts.reduce((sum, part) => sum + part.idleUsd, 0),
  refillUsd: parts.reduce((sum, part) => sum + part.refillUsd, 0),
  launched: parts.reduce((sum, part) => sum + part.launched, 0),
  wasted: parts.reduce((sum, part) => sum + part.wasted, 0),
});

export interface VariantResult {
  readonly metrics: Metrics;
  readonly judgement: AimJudgement;
  readonly fixed: InterpolatedCost | undefined;
  readonly hindsight: StaticAllocation | undefined;
  /** Max over every reconcile of (members counted against max − maxSize); ≤ 0: the quota held. */
  readonly maxOverQuota: number;
}

export interface TraceEvaluation {
  readonly pooled: readonly string[];
  readonly pooledRequests: number;
  readonly requests: number;
  /** Baseline and policy rows, by policy name (the first variant's baselines). */
  readonly rows: Record<string, Metrics>;
  readonly variants: Record<string, VariantResult>;
}

/**
 * Runs `variants` (the first is the one the baseline rows are shown for) on `trace`. A uniform
 * fixed pool of size s is the sum of each pool's replay at size s alone: a request only touches
 * its own pool, so that is the same replay as all pools at once. The uniform pool is measured at
 * the sizes that find the first one reaching the best variant's hit ratio (and the size below);
 * each pool alone at every size from 0 until one more member gains it no hit or it serves every
 * request (at most `maxSize`): the hindsight allocation chooses among those.
 */
export const evaluateTrace = (
  trace: Trace,
  settings: PoolSettings,
  platformOf: (image: string) => Platform,
  variants: Readonly<Record<string, Variant>>,
): TraceEvaluation => {
  const pooled = pooledImages(trace);
  const requests: SimRequest[] = trace.requests.map((request) => ({
    timeS: request.timeS,
    pool: request.image,
    instanceType: request.instanceType ?? INSTANCE_TYPE,
  }));
  const initOf = (image: string): number => replayInitializeSeconds(settings, platformOf(image));
  const timings = {
    personalizeSeconds: settings.personalizeSeconds,
    terminateSeconds: TERMINATE_S,
    reconcilePeriodSeconds: RECONCILE_PERIOD_S,
  };
  // Every replay ends at the trace's last request, so a one-pool replay bills as long as the full one.
  const endS = requests.at(-1)?.timeS ?? 0;
  const simulate = (subset: readonly SimRequest[], simPools: ReadonlyMap<string, SimPool>): SimResult =>
    simulatePools({
      requests: subset,
      pools: simPools,
      coldInitializeSeconds: initOf,
      prices: settings.prices,
      timings,
      endS,
    });
  const spec = (
    image: string,
    index: number,
    sizing: Parameters<typeof benchPoolSpec>[0]['sizing'],
    min: number,
    max: number,
  ) =>
    benchPoolSpec({
      name: poolNameFor(image, index),
      instanceType: INSTANCE_TYPE,
      volumeGiB: settings.volumeGiB,
      platform: platformOf(image),
      minSize: min,
      maxSize: max,
      sizing,
    });

  const requestsOf = new Map<string, SimRequest[]>(pooled.map((image) => [image, []]));
  for (const request of requests) requestsOf.get(request.pool)?.push(request);
  const fixedRuns = new Map<string, Served>();
  const fixedRun = (image: string, size: number): Served => {
    const key = `${size}\u0000${image}`;
    const known = fixedRuns.get(key);
    if (known) return known;
    const index = pooled.indexOf(image);
    const simPools = new Map<string, SimPool>(
      size === 0
        ? []
        : [
            [
              image,
              { initializeSeconds: initOf(image), spec: spec(image, index, { mode: 'fixed' }, size, size) },
            ],
          ],
    );
    const result = simulate(requestsOf.get(image) ?? [], simPools);
    const cost = result.costByPool.get(image);
    const served: Served = {
      outcomes: result.outcomes,
      idleUsd: cost?.idleCostUsd ?? 0,
      refillUsd: cost?.refillCostUsd ?? 0,
      launched: result.membersLaunched,
      wasted: result.membersWasted,
    };
    fixedRuns.set(key, served);
    return served;
  };
  const uniform = (size: number): Served => combine(pooled.map((image) => fixedRun(image, size)));

  const pooledSet = new Set(pooled);
  const pooledIndexes = requests.flatMap((request, index) => (pooledSet.has(request.pool) ? [index] : []));
  const hotPools = new Set(pooled.slice(0, settings.runningTierPools));
  const runVariant = (variant: Variant) => {
    const result = simulate(
      requests,
      new Map(
        pooled.map((image, index) => [
          image,
          {
            initializeSeconds: initOf(image),
            spec: spec(
              image,
              index,
              {
                mode: 'demand',
                targetHitShare: settings.targetHitShare,
                // pooledImages ranks by first-24 h requests: the running tier goes to the hottest only.
                ...(variant.runningTier && settings.runningTierAbovePerHour > 0 && hotPools.has(image)
                  ? {
                      runningTierAbovePerHour: settings.runningTierAbovePerHour,
                      runningTierHitShare: settings.runningTierHitShare,
                    }
                  : {}),
                scaleDownCooldownMinutes: settings.cooldownMinutes,
                retireSurplus: variant.retireSurplus,
                instanceHourUsd: settings.prices.instanceHourUsd,
                ebsGbMonthUsd: settings.prices.ebsGbMonthUsd,
              },
              settings.minSize,
              settings.maxSize,
            ),
          },
        ]),
      ),
    );
    const served: Served = {
      outcomes: pooledIndexes.map((index) => result.outcomes[index] as SimOutcome),
      idleUsd: result.idleCostUsd,
      refillUsd: result.refillCostUsd,
      launched: result.membersLaunched,
      wasted: result.membersWasted,
    };
    return { served, maxOverQuota: result.maxOverQuota };
  };
  const runs = Object.entries(variants).map(([name, variant]) => ({ name, ...runVariant(variant) }));

  // The uniform curve around each variant's hit ratio: doubling, then halving, to the first size
  // reaching it (hit ratio grows with size), so sizes far from it are not replayed.
  const sizedCost = (size: number, served: Served): SizedCost => ({ size, ...serviceOf(served) });
  const uniformPoints = new Map<number, SizedCost>();
  const uniformAt = (size: number): SizedCost => {
    let point = uniformPoints.get(size);
    if (point === undefined) {
      point = sizedCost(size, uniform(size));
      uniformPoints.set(size, point);
    }
    return point;
  };
  const reaches = (size: number, hit: number): boolean => {
    const point = uniformAt(size);
    return point.hits / Math.max(1, point.requests) >= hit;
  };
  /** Measures the first uniform size reaching `hit` and the size below it (nothing when none does). */
  const bracket = (hit: number): void => {
    uniformAt(0);
    let below = 0;
    let above = 1;
    while (above < settings.maxSize && !reaches(above, hit)) {
      below = above;
      above = Math.min(settings.maxSize, above * 2);
    }
    if (!reaches(above, hit)) return;
    while (above - below > 1) {
      const middle = Math.floor((below + above) / 2);
      if (reaches(middle, hit)) above = middle;
      else below = middle;
    }
    uniformAt(above - 1);
  };
  for (const run of runs) bracket(serviceOf(run.served).hits / Math.max(1, pooledIndexes.length));
  const uniformCurve = [...uniformPoints.values()].sort((a, b) => a.size - b.size);
  const poolCurves: PoolCurve[] = pooled.map((image) => {
    const points = [sizedCost(0, fixedRun(image, 0))];
    for (let size = 1; size <= settings.maxSize; size++) {
      const point = sizedCost(size, fixedRun(image, size));
      points.push(point);
      const previous = points[size - 1];
      if (point.hits === point.requests || point.hits <= (previous?.hits ?? 0)) break;
    }
    return { pool: image, points };
  });

  const variantResults: Record<string, VariantResult> = {};
  const baselineRows: Record<string, Metrics> = {};
  runs.forEach((run, position) => {
    const service = serviceOf(run.served);
    const fixed = interpolateAtHit(uniformCurve, service.hits / Math.max(1, service.requests));
    const hindsight = hindsightStatic(poolCurves, service.hits);
    const judgement = judgeAim(service, fixed, hindsight);
    variantResults[run.name] = {
      metrics: metricsOf(run.served),
      judgement,
      fixed,
      hindsight,
      maxOverQuota: run.maxOverQuota,
    };
    if (position !== 0) return;
    baselineRows.none = metricsOf(uniform(0));
    baselineRows['fixed-warm-pool@1'] = metricsOf(uniform(1));
    if (fixed) {
      for (const size of new Set([fixed.lowerSize, fixed.upperSize])) {
        if (size > 0) baselineRows[`fixed-warm-pool@${size}`] = metricsOf(uniform(size));
      }
      baselineRows['fixed-interpolated'] = {
        pool_hit_ratio: fixed.hitRatio,
        idle_cost_usd: fixed.idleUsd,
        refill_cost_usd: fixed.refillUsd,
        total_cost_usd: totalUsd(fixed),
      };
    }
    if (hindsight) {
      baselineRows['static-hindsight'] = metricsOf(
        combine(pooled.map((image) => fixedRun(image, hindsight.sizes.get(image) ?? 0))),
      );
    }
  });
  const rows: Record<string, Metrics> = { ...baselineRows };
  for (const [name, result] of Object.entries(variantResults)) {
    rows[name] = {
      ...result.metrics,
      ...finite('vs_fixed_interpolated', result.judgement.vsInterpolatedFixed),
      ...finite('vs_static_hindsight', result.judgement.vsHindsightStatic),
      ...(result.fixed
        ? { idle_vs_fixed_interpolated: (result.metrics.idle_cost_usd ?? 0) / result.fixed.idleUsd }
        : {}),
      aim_met: result.judgement.met ? 1 : 0,
    };
  }
  return {
    pooled,
    pooledRequests: pooledIndexes.length,
    requests: requests.length,
    rows,
    variants: variantResults,
  };
};
