import type { Launch } from './cache-sim';
import type { Metrics } from './report';

/**
 * The bounds and aims of the cache scenario (issue 18, docs/benchmarks.md "cache"), computed from
 * the policies' metrics on one trace (or one window of it).
 */

/** The policy name of the first-request ceiling row. */
export const CEILING = 'first-request-ceiling';

/**
 * The first-request ceiling: every image's first request in the fleet is cold for every policy,
 * every later one could be warm. Over the outage window: launches whose image was requested
 * before the window (an image first asked for during the outage cannot be fetched until it ends).
 */
export const firstRequestCeiling = (
  launches: readonly Launch[],
  outage: { readonly startS: number; readonly endS: number },
): Metrics => {
  const seen = new Set<string>();
  const seenBeforeOutage = new Set<string>();
  let inWindow = 0;
  let stageable = 0;
  for (const launch of launches) {
    const during = launch.timeS >= outage.startS && launch.timeS < outage.endS;
    if (during) {
      inWindow++;
      if (seenBeforeOutage.has(launch.image)) stageable++;
    }
    seen.add(launch.image);
    if (launch.timeS < outage.startS) seenBeforeOutage.add(launch.image);
  }
  return {
    warm_ratio: launches.length === 0 ? Number.NaN : 1 - seen.size / launches.length,
    cold_starts: seen.size,
    outage_availability: inWindow === 0 ? Number.NaN : stageable / inWindow,
    outage_launches: inWindow,
  };
};

/** The aims, each as its measured value and whether it is met (1) or not (0). */
export const AIMS = {
  /** warmboot warm ratio ÷ the oracle's: ≥ 0.9. */
  warm_vs_oracle: { min: 0.9 },
  /** lru-affinity cold starts ÷ warmboot's: ≥ 1.5 (warmboot ≤ 1/1.5 of them). */
  cold_vs_lru_affinity: { min: 1.5 },
  /** warmboot placement skew: ≤ 1.5. */
  placement_skew: { max: 1.5 },
  /** warmboot outage availability − the oracle's: ≥ −0.05. */
  outage_vs_oracle: { min: -0.05 },
} as const;
export type AimName = keyof typeof AIMS;

const met = (name: AimName, value: number): number => {
  const aim: { min?: number; max?: number } = AIMS[name];
  if (Number.isNaN(value)) return Number.NaN;
  return (aim.min === undefined || value >= aim.min) && (aim.max === undefined || value <= aim.max) ? 1 : 0;
};

/**
 * The aims' values on one run (undefined when a policy they compare was not run), plus
 * `oracle_never_loses`: 1 when no policy's warm ratio is above the oracle's.
 */
export const aimsOf = (policies: Readonly<Record<string, Metrics>>): Metrics | undefined => {
  const warmboot = policies.warmboot;
  const oracle = policies.oracle;
  const lruAffinity = policies['lru-affinity'];
  if (!warmboot || !oracle || !lruAffinity) return undefined;
  const value = (metrics: Metrics, name: string) => metrics[name] ?? Number.NaN;
  const values: Record<AimName, number> = {
    warm_vs_oracle: value(warmboot, 'warm_ratio') / value(oracle, 'warm_ratio'),
    cold_vs_lru_affinity: value(lruAffinity, 'cold_starts') / value(warmboot, 'cold_starts'),
    placement_skew: value(warmboot, 'placement_skew'),
    outage_vs_oracle: value(warmboot, 'outage_availability') - value(oracle, 'outage_availability'),
  };
  const aims: Metrics = {};
  for (const name of Object.keys(AIMS) as AimName[]) {
    aims[name] = values[name];
    aims[`${name}_met`] = met(name, values[name]);
  }
  // Not an aim, the stronger baseline's figure beside it: lfu-affinity cold starts ÷ warmboot's.
  const lfuAffinity = policies['lfu-affinity'];
  if (lfuAffinity)
    aims.cold_vs_lfu_affinity = value(lfuAffinity, 'cold_starts') / value(warmboot, 'cold_starts');
  aims.oracle_never_loses = oracleBeaten(policies).length === 0 ? 1 : 0;
  return aims;
};

/** Policies whose warm ratio is above the oracle's (the bound must never lose; none expected). */
export const oracleBeaten = (policies: Readonly<Record<string, Metrics>>): string[] => {
  const bound = policies.oracle?.warm_ratio;
  if (bound === undefined) return [];
  return Object.entries(policies)
    .filter(([name, metrics]) => name !== 'oracle' && name !== CEILING && (metrics.warm_ratio ?? 0) > bound)
    .map(([name]) => name);
};
