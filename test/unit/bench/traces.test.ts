import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BenchArgs } from '../../../bench/args';
import { generateTrace, type TraceGenOptions } from '../../../bench/trace-gen';
import { PRESETS, resolveTraces, TRACE_FLAG } from '../../../bench/traces';
import { summarize, traceWindows } from '../../../bench/windows';
import { formatTraceCsv, loadTrace, type Trace } from '../../../local/trace';

const dir = mkdtempSync(join(tmpdir(), 'warmboot-traces-test-'));
const SIZES = [100, 200, 300, 400, 500];
const BASE: TraceGenOptions = {
  name: 'test',
  seed: 7,
  days: 6,
  launchesPerDay: 1_000,
  zipfExponent: 1,
  initialImages: 200,
  newImagesPerDay: 5,
  drift: 0.05,
  diurnalAmplitude: 0.5,
  peakHourUtc: 14,
  tenants: 10,
  tenantSkew: 1,
  windowsShare: 0.3,
  sizeScale: 1,
  imageSizes: SIZES,
};
const gen = (overrides: Partial<TraceGenOptions> = {}): Trace => generateTrace({ ...BASE, ...overrides });

const topTenShare = (trace: Trace): number => {
  const counts = new Map<string, number>();
  for (const request of trace.requests) counts.set(request.image, (counts.get(request.image) ?? 0) + 1);
  const top = [...counts.values()].sort((a, b) => b - a).slice(0, 10);
  return top.reduce((sum, count) => sum + count, 0) / trace.requests.length;
};
/** Images first requested after day 0, per day after it. */
const newPerDay = (trace: Trace): number => {
  const seen = new Set<string>();
  let fresh = 0;
  for (const request of trace.requests) {
    if (!seen.has(request.image) && request.timeS >= 86_400) fresh++;
    seen.add(request.image);
  }
  return fresh / (BASE.days - 1);
};
const args = (flags: Record<string, string>, trace?: string): BenchArgs => ({
  scenario: 'cache',
  flags: new Map(Object.entries(flags)),
  ...(trace === undefined ? {} : { trace }),
});

describe('generateTrace', () => {
  it('gives the same trace for the same seed and another for another seed', () => {
    expect(gen().requests).toEqual(gen().requests);
    expect(gen({ seed: 8 }).requests).not.toEqual(gen().requests);
  });

  it('launches exactly launchesPerDay a day, in time order from 0, more of them near the peak hour', () => {
    const trace = gen();
    const times = trace.requests.map((request) => request.timeS);
    const perDay = [0, 1, 2, 3, 4, 5].map(
      (day) => times.filter((t) => Math.floor(t / 86_400) === day).length,
    );
    const hourOf = (t: number) => Math.floor(((t + trace.originS) % 86_400) / 3600);

    expect(times[0]).toBe(0);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(perDay.reduce((a, b) => a + b, 0)).toBe(6_000);
    expect(Math.min(...perDay.slice(1, 5))).toBeGreaterThan(950);
    expect(times.filter((t) => hourOf(t) === 14).length).toBeGreaterThan(
      2 * times.filter((t) => hourOf(t) === 2).length,
    );
  });

  it('a higher Zipf exponent gives the most requested images a larger share', () => {
    expect(topTenShare(gen({ zipfExponent: 1.3 }))).toBeGreaterThan(
      topTenShare(gen({ zipfExponent: 0.7 })) + 0.2,
    );
  });

  it('more new images a day shows more images for the first time each day', () => {
    expect(newPerDay(gen({ newImagesPerDay: 50 }))).toBeGreaterThan(
      newPerDay(gen({ newImagesPerDay: 0 })) + 20,
    );
  });

  it('drift changes which images are the most requested from the first day to the last', () => {
    const topTenOfDay = (trace: Trace, day: number): Set<string> =>
      new Set(
        [
          ...trace.requests
            .filter((request) => Math.floor(request.timeS / 86_400) === day)
            .reduce(
              (counts, request) => counts.set(request.image, (counts.get(request.image) ?? 0) + 1),
              new Map(),
            )
            .entries(),
        ]
          .sort((a, b) => b[1] - a[1])
          .slice(0, 10)
          .map(([image]) => image),
      );
    const kept = (trace: Trace): number => {
      const last = topTenOfDay(trace, 5);
      return [...topTenOfDay(trace, 0)].filter((image) => last.has(image)).length;
    };

    expect(kept(gen({ drift: 0, newImagesPerDay: 0 }))).toBeGreaterThanOrEqual(7);
    expect(kept(gen({ drift: 1, newImagesPerDay: 0 }))).toBeLessThanOrEqual(4);
  });

  it('gives each image one size from the sample times the scale, one tenant and one platform, Windows at the share', () => {
    const trace = gen({ sizeScale: 10, windowsShare: 0.3 });
    const byImage = new Map<string, Set<string>>();
    for (const request of trace.requests) {
      const key = `${request.sizeBytes}|${request.tenant}|${request.platform}`;
      byImage.set(request.image, (byImage.get(request.image) ?? new Set()).add(key));
      expect(SIZES.map((size) => size * 10)).toContain(request.sizeBytes);
    }
    const platforms = [...byImage.values()].map((keys) => [...keys][0]?.split('|')[2]);
    const windows = platforms.filter((platform) => platform === 'windows').length / platforms.length;

    expect([...byImage.values()].every((keys) => keys.size === 1)).toBe(true);
    expect(windows).toBeGreaterThan(0.22);
    expect(windows).toBeLessThan(0.38);
    expect(gen({ windowsShare: 0 }).requests.every((request) => request.platform === 'linux')).toBe(true);
  });

  it('names the field of an option out of range', () => {
    expect(() => gen({ windowsShare: 1.5 })).toThrow('windowsShare must be in [0, 1], got 1.5');
    expect(() => gen({ days: 0 })).toThrow('days must be an integer ≥ 1');
  });

  it('round-trips through the generic CSV and the loader with nothing repaired', () => {
    const trace = gen({ days: 2 });
    const path = join(dir, 'generated.csv');
    writeFileSync(path, formatTraceCsv(trace));

    const loaded = loadTrace(path);

    expect(loaded.requests).toEqual(trace.requests);
    expect(loaded.repairs).toEqual({});
    expect(loaded.format).toBe('generic');
  });
});

describe('resolveTraces', () => {
  it('defaults to alibaba and the two presets, named for what they are', () => {
    const traces = resolveTraces(args({}));

    expect(TRACE_FLAG.default).toBe('alibaba,zipf-churn,long-tail');
    expect(traces.map((trace) => [trace.name, trace.format])).toEqual([
      ['alibaba', 'alibaba'],
      ['zipf-churn-seed1', 'synthetic'],
      ['long-tail-seed1', 'synthetic'],
    ]);
  });

  it('the presets differ in skew and churn', () => {
    const [churn, tail] = resolveTraces(args({ traces: 'zipf-churn,long-tail' }));
    if (!churn || !tail) throw new Error('two traces expected');

    expect(topTenShare(churn)).toBeGreaterThan(0.4);
    expect(topTenShare(tail)).toBeLessThan(0.05);
    expect(PRESETS['long-tail']?.newImagesPerDay).toBeGreaterThan(
      100 * (PRESETS['zipf-churn']?.newImagesPerDay ?? 0),
    );
  });

  it('reads a CSV path, another seed of a preset, or --trace FILE alone', () => {
    const path = join(dir, 'mine.csv');
    writeFileSync(path, 'timestamp_s,image,size_bytes\n1,a,10\n');

    expect(resolveTraces(args({ traces: `${path},zipf-churn-seed2` })).map((trace) => trace.name)).toEqual([
      path,
      'zipf-churn-seed2',
    ]);
    expect(resolveTraces(args({}, path)).map((trace) => trace.name)).toEqual([path]);
  });

  it('names what is wrong with a list', () => {
    expect(() => resolveTraces(args({ traces: 'nope' }))).toThrow(
      "--traces: 'nope' is not alibaba, a preset (zipf-churn, long-tail, or <preset>-seed<N>) or an existing CSV file",
    );
    expect(() => resolveTraces(args({ traces: 'alibaba,alibaba' }))).toThrow('--traces names alibaba twice');
    expect(() => resolveTraces(args({ traces: 'alibaba' }, 'x.csv'))).toThrow('either --traces or --trace');
  });
});

describe('traceWindows and summarize', () => {
  it('cuts whole 7-day windows, re-based to their own start, dropping the partial rest', () => {
    const trace = gen({ days: 16, launchesPerDay: 100 });

    const windows = traceWindows(trace);

    expect(windows.map((window) => window.name)).toEqual(['test#w1', 'test#w2']);
    const inWeek = (week: number) =>
      trace.requests.filter((request) => Math.floor(request.timeS / (7 * 86_400)) === week);
    expect(windows.map((window) => window.requests.length)).toEqual([inWeek(0).length, inWeek(1).length]);
    expect(windows[1]?.requests[0]?.timeS).toBe((inWeek(1)[0]?.timeS ?? 0) - 7 * 86_400);
    expect(inWeek(2).length).toBeGreaterThan(0);
    expect(windows[1]?.originS).toBe(trace.originS + 7 * 86_400);
  });

  it('gives the days of a trace shorter than two windows, and a one-day trace itself', () => {
    const threeDays = gen({ days: 3, launchesPerDay: 100 });
    const oneDay = gen({ days: 1, launchesPerDay: 100 });

    expect(traceWindows(threeDays).map((window) => [window.name, window.requests.length])).toEqual([
      ['test#d1', 100],
      ['test#d2', 100],
      ['test#d3', 100],
    ]);
    expect(traceWindows(oneDay)).toEqual([oneDay]);
  });

  it('summarizes min, median and max', () => {
    expect(summarize([3, 1, 2])).toEqual({ min: 1, median: 2, max: 3 });
    expect(summarize([4, 1, 2, 3])).toEqual({ min: 1, median: 2.5, max: 4 });
    expect(() => summarize([])).toThrow('no values');
  });
});
