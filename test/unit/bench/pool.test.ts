import { describe, expect, it } from 'vitest';
import {
  hindsightStatic,
  interpolateAtHit,
  judgeAim,
  type PoolCurve,
  type SizedCost,
} from '../../../bench/pool-baselines';
import { choosePlatforms } from '../../../bench/pool-platform';
import { benchPoolSpec, type SimPool, type SimRequest, simulatePools } from '../../../bench/pool-sim';
import type { Trace, TraceRequest } from '../../../local/trace';

const point = (size: number, hits: number, requests: number, idleUsd: number, refillUsd = 0): SizedCost => ({
  size,
  hits,
  requests,
  idleUsd,
  refillUsd,
});

describe('interpolateAtHit: the fixed pool at warmboot hit ratio', () => {
  const curve = [
    point(0, 0, 100, 0),
    point(1, 50, 100, 10, 5),
    point(2, 90, 100, 20, 9),
    point(3, 95, 100, 30, 10),
  ];

  it('joins the two sizes around the hit ratio by a straight line, not the step to the next size', () => {
    const at = interpolateAtHit(curve, 0.7);

    expect(at).toMatchObject({ lowerSize: 1, upperSize: 2 });
    expect(at?.idleUsd).toBeCloseTo(15);
    expect(at?.refillUsd).toBeCloseTo(7);
  });

  it('takes a size exactly when it hits the ratio, and starts from no pool at $0', () => {
    expect(interpolateAtHit(curve, 0.9)).toMatchObject({ idleUsd: 20, lowerSize: 2, upperSize: 2 });
    expect(interpolateAtHit(curve, 0.25)?.idleUsd).toBeCloseTo(5);
  });

  it('is undefined when no measured size reaches the ratio', () => {
    expect(interpolateAtHit(curve, 0.96)).toBeUndefined();
  });
});

describe('hindsightStatic: the cheapest per-pool sizes serving the hits', () => {
  // A busy pool where members are cheap per hit and a quiet one where they are dear.
  const busy: PoolCurve = {
    pool: 'busy',
    points: [point(0, 0, 90, 0), point(1, 60, 90, 2, 3), point(2, 80, 90, 4, 4), point(3, 88, 90, 8, 4.4)],
  };
  const quiet: PoolCurve = {
    pool: 'quiet',
    points: [point(0, 0, 10, 0), point(1, 7, 10, 2, 0.5), point(2, 9, 10, 4, 0.6)],
  };

  it('gives each pool its own size and picks the least idle + refill cost', () => {
    const allocation = hindsightStatic([busy, quiet], 85);

    expect(Object.fromEntries(allocation?.sizes ?? [])).toEqual({ busy: 2, quiet: 1 });
    expect(allocation).toMatchObject({ hits: 87, requests: 100, idleUsd: 6, refillUsd: 4.5 });
  });

  it('matches an exhaustive search over every allocation', () => {
    let seed = 7;
    const random = (): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let round = 0; round < 30; round++) {
      const curves: PoolCurve[] = ['a', 'b', 'c'].map((pool) => {
        let hits = 0;
        let cost = 0;
        const points = [point(0, 0, 50, 0)];
        for (let size = 1; size <= 4; size++) {
          hits = Math.min(50, hits + Math.floor(random() * 20));
          cost += 1 + random() * 5;
          points.push(point(size, hits, 50, cost * 0.4, cost * 0.6));
        }
        return { pool, points };
      });
      const required = Math.floor(random() * 120);
      let best = Number.POSITIVE_INFINITY;
      for (const a of curves[0]?.points ?? [])
        for (const b of curves[1]?.points ?? [])
          for (const c of curves[2]?.points ?? []) {
            const total = [a, b, c];
            if (total.reduce((sum, p) => sum + p.hits, 0) < required) continue;
            best = Math.min(
              best,
              total.reduce((sum, p) => sum + p.idleUsd + p.refillUsd, 0),
            );
          }
      const found = hindsightStatic(curves, required);

      if (best === Number.POSITIVE_INFINITY) expect(found).toBeUndefined();
      else {
        expect(found?.hits).toBeGreaterThanOrEqual(required);
        expect((found?.idleUsd ?? 0) + (found?.refillUsd ?? 0)).toBeCloseTo(best, 9);
      }
    }
  });
});

describe('judgeAim', () => {
  const fixed = { hitRatio: 0.96, idleUsd: 60, refillUsd: 60, lowerSize: 9, upperSize: 10 };
  const hindsight = { sizes: new Map(), hits: 96, requests: 100, idleUsd: 40, refillUsd: 60 };

  it('needs the hit ratio and idle + refill under both baselines', () => {
    expect(judgeAim({ hits: 96, requests: 100, idleUsd: 30, refillUsd: 60 }, fixed, hindsight)).toMatchObject(
      {
        vsInterpolatedFixed: 0.75,
        vsHindsightStatic: 0.9,
        met: true,
      },
    );
    // Cheaper than the uniform pool by enough, dearer than the hindsight one.
    expect(judgeAim({ hits: 96, requests: 100, idleUsd: 35, refillUsd: 66 }, fixed, hindsight).met).toBe(
      false,
    );
    expect(judgeAim({ hits: 94, requests: 100, idleUsd: 30, refillUsd: 60 }, fixed, hindsight).met).toBe(
      false,
    );
  });

  it('does not claim the aim when a baseline never reached the hit ratio', () => {
    const judged = judgeAim({ hits: 96, requests: 100, idleUsd: 1, refillUsd: 1 }, undefined, hindsight);

    expect(judged.vsInterpolatedFixed).toBeNaN();
    expect(judged.met).toBe(false);
  });
});

const traceOf = (requests: TraceRequest[]): Trace => ({
  name: 'hand-made',
  path: null,
  format: 'synthetic',
  requests,
  originS: 0,
  skippedRows: 0,
  repairs: {},
  sizeSource: 'trace',
});
const requestsFor = (counts: Record<string, number>, platform?: 'linux' | 'windows'): TraceRequest[] =>
  Object.entries(counts).flatMap(([image, count]) =>
    Array.from({ length: count }, (_, index) => ({
      timeS: index,
      image,
      sizeBytes: 1,
      ...(platform ? { platform } : {}),
    })),
  );

describe('choosePlatforms: the Windows/Linux split is an input', () => {
  const counts = { a: 9, b: 8, c: 7, d: 6, e: 5, f: 4, g: 3, h: 2, i: 1 };

  it('takes ranks R, R + round(1/S), ... by requests, whatever the ids are called', () => {
    const choice = choosePlatforms(traceOf(requestsFor(counts)), { windowsShare: 0.25, windowsStart: 2 });

    expect(choice.windows).toEqual(['b', 'f']);
    expect(choice.platformOf('b')).toBe('windows');
    expect(choice.platformOf('a')).toBe('linux');
    const renamed = Object.fromEntries(
      Object.entries(counts).map(([image, count]) => [`x/${image}=`, count]),
    );
    expect(
      choosePlatforms(traceOf(requestsFor(renamed)), { windowsShare: 0.25, windowsStart: 2 }).windows,
    ).toEqual(['x/b=', 'x/f=']);
    expect(
      choosePlatforms(traceOf(requestsFor(counts)), { windowsShare: 0, windowsStart: 1 }).windows,
    ).toEqual([]);
  });

  it('takes an explicit list, refusing ids the trace does not have', () => {
    const trace = traceOf(requestsFor(counts));

    expect(
      choosePlatforms(trace, { windowsImages: ['c', 'a'], windowsShare: 0.25, windowsStart: 1 }).windows,
    ).toEqual(['a', 'c']);
    expect(() =>
      choosePlatforms(trace, { windowsImages: ['zz'], windowsShare: 0.25, windowsStart: 1 }),
    ).toThrow(/--windows-images: zz/);
  });

  it("uses the trace's platform column over any flag, and refuses an image with both", () => {
    const trace = traceOf([...requestsFor({ a: 3 }, 'windows'), ...requestsFor({ b: 5 }, 'linux')]);

    const choice = choosePlatforms(trace, { windowsImages: ['b'], windowsShare: 1, windowsStart: 1 });
    expect(choice.windows).toEqual(['a']);
    expect(choice.source).toMatch(/platform column/);
    const mixed = traceOf([...requestsFor({ a: 1 }, 'windows'), ...requestsFor({ a: 1 }, 'linux')]);
    expect(() => choosePlatforms(mixed, { windowsShare: 0, windowsStart: 1 })).toThrow(/image a .*both/);
  });
});

describe('simulatePools: production sizing inputs', () => {
  const prices = { ebsGbMonthUsd: 0.08, instanceHourUsd: 0.1008 };
  const timings = { personalizeSeconds: 3, terminateSeconds: 30, reconcilePeriodSeconds: 120 };
  const pool = (name: string, sizing: Parameters<typeof benchPoolSpec>[0]['sizing'], size = 0): SimPool => ({
    initializeSeconds: 160,
    spec: benchPoolSpec({
      name,
      instanceType: 'm7i.large',
      volumeGiB: 30,
      platform: 'linux',
      minSize: size,
      maxSize: size === 0 ? 40 : size,
      sizing,
    }),
  });
  const burst = (pool: string, atS: number, count: number): SimRequest[] =>
    Array.from({ length: count }, (_, index) => ({ timeS: atS + index, pool, instanceType: 'm7i.large' }));

  it("keeps production's 24 h of demand history: yesterday's burst grows the pool before today's", () => {
    // 20 requests at 01:00 on day 1; none for the next 23 h, so the pool shrinks back to nothing;
    // the same burst on day 2 finds members only if sizing still reads the counters of day 1.
    const requests = [...burst('m', 3_600, 20), ...burst('m', 86_400 + 3_600, 20)];
    const result = simulatePools({
      requests,
      pools: new Map([
        [
          'm',
          pool('m', {
            mode: 'demand',
            targetHitShare: 0.99,
            scaleDownCooldownMinutes: 30,
            retireSurplus: 'at-once',
          }),
        ],
      ]),
      coldInitializeSeconds: () => 160,
      prices,
      timings,
    });
    const secondDay = result.outcomes.slice(20);

    expect(result.outcomes.slice(0, 20).every((outcome) => outcome.path === 'cold')).toBe(true);
    expect(secondDay.filter((outcome) => outcome.path !== 'cold').length).toBeGreaterThan(0);
  });

  it('bills and serves each pool alone exactly as when replayed with the others', () => {
    const requests = [
      ...burst('a', 0, 5),
      ...burst('b', 200, 7),
      ...burst('a', 900, 6),
      ...burst('b', 1_000, 3),
    ].sort((x, y) => x.timeS - y.timeS);
    const fixed = { mode: 'fixed' } as const;
    const both = simulatePools({
      requests,
      pools: new Map([
        ['a', pool('a', fixed, 2)],
        ['b', pool('b', fixed, 3)],
      ]),
      coldInitializeSeconds: () => 160,
      prices,
      timings,
      endS: 2_000,
    });
    for (const [name, size] of [
      ['a', 2],
      ['b', 3],
    ] as const) {
      const alone = simulatePools({
        requests: requests.filter((request) => request.pool === name),
        pools: new Map([[name, pool(name, fixed, size)]]),
        coldInitializeSeconds: () => 160,
        prices,
        timings,
        endS: 2_000,
      });

      expect(alone.costByPool.get(name)).toEqual(both.costByPool.get(name));
      expect(alone.outcomes).toEqual(both.outcomes.filter((_, index) => requests[index]?.pool === name));
    }
  });
});
