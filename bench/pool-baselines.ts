/**
 * The fixed-pool baselines the pool bench compares warmboot against at equal service
 * (docs/benchmarks.md, pool): the uniform fixed pool's cost-versus-hit curve interpolated at
 * warmboot's hit ratio, and the per-pool static sizes chosen with hindsight. Pure functions over
 * results the replay measured; nothing here simulates.
 */

/** What a policy did for the pooled requests of one pool (or of all pools together). */
export interface ServiceCost {
  /** Pooled requests served from a pool member (hot or warm). */
  readonly hits: number;
  readonly requests: number;
  readonly idleUsd: number;
  readonly refillUsd: number;
}

/** A fixed pool of `size` members per pool (size 0: no pool, every request cold, $0). */
export interface SizedCost extends ServiceCost {
  readonly size: number;
}

const hitRatio = (cost: ServiceCost): number => (cost.requests === 0 ? 0 : cost.hits / cost.requests);
export const totalUsd = (cost: Pick<ServiceCost, 'idleUsd' | 'refillUsd'>): number =>
  cost.idleUsd + cost.refillUsd;

/** The uniform fixed pool's cost at a hit ratio between two measured sizes. */
export interface InterpolatedCost {
  readonly hitRatio: number;
  readonly idleUsd: number;
  readonly refillUsd: number;
  /** The measured sizes it lies between (equal when a size hits the ratio exactly). */
  readonly lowerSize: number;
  readonly upperSize: number;
}

/**
 * The fixed pool's idle and refill cost at hit ratio `hit`: the first measured size whose hit
 * ratio reaches `hit` and the size before it, joined by a straight line in (hit ratio, cost).
 * `curve` is ordered by size and starts at size 0 (the point (0, $0)). Undefined when no size in
 * the curve reaches `hit`.
 */
export const interpolateAtHit = (curve: readonly SizedCost[], hit: number): InterpolatedCost | undefined => {
  const upperIndex = curve.findIndex((point) => hitRatio(point) >= hit);
  const upper = curve[upperIndex];
  if (upper === undefined) return undefined;
  const lower = curve[upperIndex - 1];
  const upperHit = hitRatio(upper);
  if (lower === undefined || upperHit === hit) {
    return {
      hitRatio: hit,
      idleUsd: upper.idleUsd,
      refillUsd: upper.refillUsd,
      lowerSize: upper.size,
      upperSize: upper.size,
    };
  }
  const lowerHit = hitRatio(lower);
  const along = (hit - lowerHit) / (upperHit - lowerHit);
  const between = (a: number, b: number): number => a + (b - a) * along;
  return {
    hitRatio: hit,
    idleUsd: between(lower.idleUsd, upper.idleUsd),
    refillUsd: between(lower.refillUsd, upper.refillUsd),
    lowerSize: lower.size,
    upperSize: upper.size,
  };
};

/** One pool's fixed-size results, ordered by size, starting at size 0. */
export interface PoolCurve {
  readonly pool: string;
  readonly points: readonly SizedCost[];
}

export interface StaticAllocation extends ServiceCost {
  /** The fixed size chosen for each pool. */
  readonly sizes: ReadonlyMap<string, number>;
}

/**
 * The per-pool static pool chosen with hindsight: one fixed size per pool (any measured size,
 * 0 included), picked knowing the whole trace, that serves at least `requiredHits` of the pooled
 * requests at the least idle + refill cost. Exact (a knapsack over pools by hits, capped at
 * `requiredHits`); on equal cost the allocation reached first in pool order wins. Undefined when
 * even the largest measured sizes serve fewer.
 */
export const hindsightStatic = (
  curves: readonly PoolCurve[],
  requiredHits: number,
): StaticAllocation | undefined => {
  const cap = Math.max(0, Math.ceil(requiredHits));
  // best[h]: least cost of the pools so far serving min(hits, cap) = h; choice[p][h]: pool p's point.
  let best = new Float64Array(cap + 1).fill(Number.POSITIVE_INFINITY);
  best[0] = 0;
  const choices: Int32Array[] = [];
  for (const curve of curves) {
    const next = new Float64Array(cap + 1).fill(Number.POSITIVE_INFINITY);
    const choice = new Int32Array(cap + 1).fill(-1);
    for (let h = 0; h <= cap; h++) {
      const before = best[h] ?? Number.POSITIVE_INFINITY;
      if (before === Number.POSITIVE_INFINITY) continue;
      curve.points.forEach((point, index) => {
        const reached = Math.min(cap, h + point.hits);
        const cost = before + totalUsd(point);
        if (cost < (next[reached] ?? Number.POSITIVE_INFINITY)) {
          next[reached] = cost;
          // Packs the predecessor's hit count with the point, so the walk back can find both.
          choice[reached] = h * curve.points.length + index;
        }
      });
    }
    best = next;
    choices.push(choice);
  }
  if ((best[cap] ?? Number.POSITIVE_INFINITY) === Number.POSITIVE_INFINITY) return undefined;
  const sizes = new Map<string, number>();
  let hits = 0;
  let requests = 0;
  let idleUsd = 0;
  let refillUsd = 0;
  let at = cap;
  for (let p = curves.length - 1; p >= 0; p--) {
    const curve = curves[p];
    const packed = choices[p]?.[at];
    if (curve === undefined || packed === undefined || packed < 0)
      throw new Error('knapsack walk-back lost its path');
    const point = curve.points[packed % curve.points.length];
    if (point === undefined) throw new Error('knapsack walk-back lost its path');
    sizes.set(curve.pool, point.size);
    hits += point.hits;
    requests += point.requests;
    idleUsd += point.idleUsd;
    refillUsd += point.refillUsd;
    at = Math.floor(packed / curve.points.length);
  }
  return { sizes, hits, requests, idleUsd, refillUsd };
};

/** The pool aim (issue 18): hit ratio and idle + refill cost against both fixed baselines. */
export const POOL_AIM = {
  minHitRatio: 0.95,
  maxVsInterpolatedFixed: 0.8,
  maxVsHindsightStatic: 1.0,
} as const;

export interface AimJudgement {
  readonly hitRatio: number;
  readonly totalUsd: number;
  /** warmboot's idle + refill ÷ the interpolated fixed pool's (NaN when no fixed size reached its hit ratio). */
  readonly vsInterpolatedFixed: number;
  /** warmboot's idle + refill ÷ the hindsight static pool's (NaN when none reached it). */
  readonly vsHindsightStatic: number;
  readonly met: boolean;
}

/**
 * Judges one run. A baseline that no measured size brings to warmboot's hit ratio gives NaN and
 * the aim counts as not met: the bench could not show the comparison, so it does not claim it.
 */
export const judgeAim = (
  warmboot: ServiceCost,
  fixed: InterpolatedCost | undefined,
  hindsight: StaticAllocation | undefined,
): AimJudgement => {
  const total = totalUsd(warmboot);
  const vsInterpolatedFixed = fixed === undefined ? Number.NaN : total / totalUsd(fixed);
  const vsHindsightStatic = hindsight === undefined ? Number.NaN : total / totalUsd(hindsight);
  return {
    hitRatio: hitRatio(warmboot),
    totalUsd: total,
    vsInterpolatedFixed,
    vsHindsightStatic,
    met:
      hitRatio(warmboot) >= POOL_AIM.minHitRatio &&
      vsInterpolatedFixed <= POOL_AIM.maxVsInterpolatedFixed &&
      vsHindsightStatic <= POOL_AIM.maxVsHindsightStatic,
  };
};
