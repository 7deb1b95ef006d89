import type { PolicyRun } from './cache-sim';
import { percentile } from './report';

/** Max over hosts of instances placed ÷ mean instances placed per host (1 = perfectly even). */
export const placementSkew = (placedPerHost: readonly number[]): number => {
  const total = placedPerHost.reduce((sum, placed) => sum + placed, 0);
  if (placedPerHost.length === 0 || total === 0) return Number.NaN;
  return Math.max(...placedPerHost) / (total / placedPerHost.length);
};

export interface CacheMetrics {
  readonly warm_ratio: number;
  readonly cold_starts: number;
  readonly p50_ready_s: number;
  readonly p95_ready_s: number;
  readonly bytes_fetched: number;
  readonly placement_skew: number;
  readonly outage_availability: number;
  readonly outage_launches: number;
}

/** The metrics of BENCHMARKS.md "cache" for one policy's run. */
export const cacheMetrics = (run: PolicyRun): CacheMetrics => {
  const launches = run.outcomes.length;
  const warm = run.outcomes.filter((outcome) => outcome.warm).length;
  const duringOutage = run.outcomes.filter((outcome) => outcome.inOutage);
  const ready = run.outcomes.map((outcome) => outcome.readyS);
  return {
    warm_ratio: launches === 0 ? Number.NaN : warm / launches,
    cold_starts: launches - warm,
    p50_ready_s: percentile(ready, 50),
    p95_ready_s: percentile(ready, 95),
    bytes_fetched: run.bytesFetched,
    placement_skew: placementSkew(run.placedPerHost),
    outage_availability:
      duringOutage.length === 0
        ? Number.NaN
        : duringOutage.filter((outcome) => outcome.warm).length / duringOutage.length,
    outage_launches: duringOutage.length,
  };
};
