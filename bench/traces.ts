import { existsSync } from 'node:fs';
import { loadTrace, type Trace } from '../local/trace';
import { type BenchArgs, BenchUsageError, type FlagSpec } from './args';
import { generateTrace, type TraceGenOptions } from './trace-gen';

/**
 * Which traces a scenario replays: `--traces alibaba,zipf-churn,long-tail`. Each entry is
 * `alibaba` (the Alibaba GenAI trace in data/), a preset name (a generated trace, optionally
 * `<preset>-seed<N>` for another seed) or the path of a CSV file (docs/benchmarks.md, "Traces").
 */
export const TRACE_FLAG: FlagSpec = {
  name: 'traces',
  description:
    'comma-separated traces: alibaba, a preset (zipf-churn, long-tail; <preset>-seed<N> for another seed) or a CSV path',
  default: 'alibaba,zipf-churn,long-tail',
};

export type PresetOptions = Omit<TraceGenOptions, 'name' | 'imageSizes'>;

/**
 * The generated traces every trace-driven scenario runs besides Alibaba: two regimes with
 * different skew and churn, kept to days rather than months to bound the benches' run time.
 * - `zipf-churn`: strong skew (exponent 1.3; the 10 most requested images take ~0.6 of a week's
 *   launches) over a few hundred images, ~160 distinct a day (~3× an 8 × 1 GiB fleet cache),
 *   steady drift and 2 new images a day; 21 days (three 7-day windows) at 2,000 launches a day.
 * - `long-tail`: the regime of the real trace issue 18 describes (one day, 19,752 launches of
 *   5,660 images, ~100× the fleet cache): 20,000 launches and 5,100–5,700 distinct images a day
 *   totalling 96–107× an 8 × 1 GiB fleet cache, weak skew (0.8), heavy drift and 800 new images a
 *   day; 3 days (its windows are the 3 days), not a month, to keep the run short.
 */
export const PRESETS: Readonly<Record<string, PresetOptions>> = {
  'zipf-churn': {
    seed: 1,
    days: 21,
    launchesPerDay: 2_000,
    zipfExponent: 1.3,
    initialImages: 200,
    newImagesPerDay: 2,
    drift: 0.05,
    diurnalAmplitude: 0.6,
    peakHourUtc: 14,
    tenants: 40,
    tenantSkew: 1,
    windowsShare: 0.25,
    sizeScale: 1,
  },
  'long-tail': {
    seed: 1,
    days: 3,
    launchesPerDay: 20_000,
    zipfExponent: 0.8,
    initialImages: 6_000,
    newImagesPerDay: 800,
    drift: 0.3,
    diurnalAmplitude: 0.5,
    peakHourUtc: 14,
    tenants: 400,
    tenantSkew: 0.8,
    windowsShare: 0.25,
    sizeScale: 1,
  },
};

/** `<preset>-seed<N>`: what reports call a generated trace. */
export const presetTraceName = (preset: string, seed: number): string => `${preset}-seed${seed}`;

/** The preset an entry of `--traces` names, with its seed, or undefined when it names none. */
const presetFor = (
  entry: string,
): { readonly preset: string; readonly options: PresetOptions } | undefined => {
  const seeded = /^(.+)-seed(\d+)$/.exec(entry);
  const preset = seeded?.[1] ?? entry;
  const options = PRESETS[preset];
  return options && { preset, options: { ...options, ...(seeded ? { seed: Number(seeded[2]) } : {}) } };
};

const presetNames = (): string => Object.keys(PRESETS).join(', ');

/** One entry of `--traces` loaded or generated. */
const resolveTrace = (entry: string): Trace => {
  if (entry === 'alibaba') return loadTrace(undefined, { name: 'alibaba' });
  const named = presetFor(entry);
  if (named)
    return generateTrace({ ...named.options, name: presetTraceName(named.preset, named.options.seed) });
  if (!existsSync(entry)) {
    throw new BenchUsageError(
      `--traces: '${entry}' is not alibaba, a preset (${presetNames()}, or <preset>-seed<N>) or an existing CSV file`,
    );
  }
  return loadTrace(entry);
};

/**
 * The traces a run replays, in the order given: `--traces` when present; else `--trace FILE`
 * alone; else the default list. Both flags at once is an error (which one wins would be a guess).
 */
export const resolveTraces = (args: BenchArgs): Trace[] => {
  const list = args.flags.get(TRACE_FLAG.name);
  if (list !== undefined && args.trace !== undefined) {
    throw new BenchUsageError('give either --traces or --trace, not both');
  }
  if (args.trace !== undefined) return [resolveTrace(args.trace)];
  const entries = (list ?? TRACE_FLAG.default).split(',').map((entry) => entry.trim());
  if (entries.some((entry) => entry === ''))
    throw new BenchUsageError(`--traces has an empty entry: '${list}'`);
  const twice = entries.find((entry, index) => entries.indexOf(entry) !== index);
  if (twice !== undefined) throw new BenchUsageError(`--traces names ${twice} twice`);
  return entries.map(resolveTrace);
};
