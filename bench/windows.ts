import type { Trace } from '../local/trace';

const DAY_S = 86_400;

/** Days the trace reaches: the day of its last request, plus one (a partial last day counts). */
const traceDays = (trace: Trace): number => Math.floor((trace.requests.at(-1)?.timeS ?? 0) / DAY_S) + 1;

/** The requests in [startS, startS + lengthS), re-based to startS, as a trace of its own. */
const slice = (trace: Trace, name: string, startS: number, lengthS: number): Trace => ({
  ...trace,
  name,
  originS: trace.originS + startS,
  requests: trace.requests
    .filter((request) => request.timeS >= startS && request.timeS < startS + lengthS)
    .map((request) => ({ ...request, timeS: request.timeS - startS })),
});

/**
 * Consecutive `days`-day windows of a trace, for robustness rows (the same scenario on every
 * window, reported as min / median / max). Window k covers days [(k−1)·days, k·days) of the trace,
 * is re-based to its own start (time 0 = the window's first second, so day boundaries and the
 * daily cycle stay where they were) and is named `<name>#w<k>`. Only whole windows count: the
 * days after the last one are left out (the Alibaba trace's 23 days give three 7-day windows),
 * since a short window would be compared with full ones. A trace too short for two windows gives
 * its days instead (`<name>#d<k>`, the last one possibly partial), and a trace of a single day
 * gives itself. Slices keep the file's `repairs` and `skippedRows`: they describe the load.
 */
export const traceWindows = (trace: Trace, days = 7): Trace[] => {
  if (!(Number.isInteger(days) && days >= 1))
    throw new RangeError(`window days must be an integer ≥ 1, got ${days}`);
  const total = traceDays(trace);
  const windows = Math.floor(total / days);
  if (windows >= 2) {
    return Array.from({ length: windows }, (_, k) =>
      slice(trace, `${trace.name}#w${k + 1}`, k * days * DAY_S, days * DAY_S),
    );
  }
  if (total >= 2)
    return Array.from({ length: total }, (_, k) => slice(trace, `${trace.name}#d${k + 1}`, k * DAY_S, DAY_S));
  return [trace];
};

export interface Summary {
  readonly min: number;
  readonly median: number;
  readonly max: number;
}

/** Min, median (the mean of the two middle values for an even count) and max of a non-empty list. */
export const summarize = (values: readonly number[]): Summary => {
  if (values.length === 0) throw new RangeError('summarize: no values');
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const median =
    sorted.length % 2 === 1
      ? (sorted[middle] ?? Number.NaN)
      : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
  return { min: sorted[0] ?? Number.NaN, median, max: sorted.at(-1) ?? Number.NaN };
};
