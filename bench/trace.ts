import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { formatTraceCsv, type Trace, traceLabel } from '../local/trace';
import { type BenchArgs, BenchUsageError, type FlagSpec, flagText, numberFlag, switchFlag } from './args';
import type { BenchResult, Metrics, Scenario } from './report';
import { generateTrace, type TraceGenOptions } from './trace-gen';
import { PRESETS, type PresetOptions, presetTraceName, resolveTraces, TRACE_FLAG } from './traces';
import { summarize } from './windows';

/**
 * `npm run bench -- trace`: writes a generated trace as a CSV the loader reads back
 * (`--preset NAME [knob flags] --out FILE`), or describes traces (`--describe --traces …`, or
 * `--describe --preset NAME [knob flags]` for a generated one without writing it). See
 * docs/benchmarks.md, "Traces".
 */

const DAY_S = 86_400;

/** The generator's knobs as flags: each defaults to the chosen preset's value. */
const KNOBS: readonly {
  readonly flag: string;
  readonly key: keyof PresetOptions;
  readonly description: string;
}[] = [
  { flag: 'seed', key: 'seed', description: 'seed of the generator' },
  { flag: 'days', key: 'days', description: 'days of requests' },
  { flag: 'launches-per-day', key: 'launchesPerDay', description: 'launches each day' },
  {
    flag: 'zipf-exponent',
    key: 'zipfExponent',
    description: 'Zipf exponent of image popularity (higher = more skewed)',
  },
  { flag: 'initial-images', key: 'initialImages', description: 'images in the catalog at the start' },
  { flag: 'new-images-per-day', key: 'newImagesPerDay', description: 'new images a day, each taking a rank' },
  { flag: 'drift', key: 'drift', description: 'rank swaps a day, as a fraction of the catalog' },
  { flag: 'diurnal-amplitude', key: 'diurnalAmplitude', description: 'daily load swing, 0 (flat) to 1' },
  { flag: 'peak-hour', key: 'peakHourUtc', description: 'hour of peak load, UTC' },
  { flag: 'tenants', key: 'tenants', description: 'tenants owning the images' },
  { flag: 'tenant-skew', key: 'tenantSkew', description: 'Zipf exponent of image ownership over tenants' },
  { flag: 'windows-share', key: 'windowsShare', description: 'share of images that are Windows' },
  { flag: 'size-scale', key: 'sizeScale', description: 'multiplier on the Docker Hub sizes' },
];

const knobSpec = (knob: (typeof KNOBS)[number]): FlagSpec => ({
  name: knob.flag,
  description: knob.description,
  default: Object.entries(PRESETS)
    .map(([preset, options]) => `${preset} ${options[knob.key]}`)
    .join(', '),
});

const FLAGS = {
  preset: { name: 'preset', description: 'preset to generate from', default: 'zipf-churn' },
  out: { name: 'out', description: 'write the generated trace to this CSV file', default: 'none' },
  describe: {
    name: 'describe',
    description: 'describe --traces (or the generated trace when --preset or a knob is given)',
    default: 'false',
    switch: true,
  },
} satisfies Record<string, FlagSpec>;

/** The generator options the flags ask for, and the name of the trace they give. */
const generatorOptions = (args: BenchArgs): PresetOptions & { readonly name: string } => {
  const preset = flagText(args, FLAGS.preset);
  const base = PRESETS[preset];
  if (!base)
    throw new BenchUsageError(`--preset must be one of ${Object.keys(PRESETS).join(', ')}, got '${preset}'`);
  const overrides: { -readonly [K in keyof PresetOptions]?: number } = {};
  for (const knob of KNOBS) {
    if (args.flags.has(knob.flag)) overrides[knob.key] = numberFlag(args, knobSpec(knob));
  }
  const options: PresetOptions = { ...base, ...overrides };
  const changed = KNOBS.filter((knob) => knob.key !== 'seed' && knob.key in overrides).map(
    (knob) => `${knob.flag}=${options[knob.key]}`,
  );
  const seeded = presetTraceName(preset, options.seed);
  return { ...options, name: changed.length === 0 ? seeded : `${seeded}(${changed.join(',')})` };
};

/** The generator's range errors name its option; say which flag instead. */
const generate = (options: TraceGenOptions): Trace => {
  try {
    return generateTrace(options);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    const knob = KNOBS.find((candidate) => error.message.includes(` ${candidate.key} must`));
    throw new BenchUsageError(knob ? error.message.replace(knob.key, `--${knob.flag}`) : error.message);
  }
};

/** What a reader needs to tell traces apart: size, spread, skew and churn. */
const describe = (trace: Trace): Metrics => {
  const counts = new Map<string, number>();
  const firstDay = new Map<string, number>();
  const sizes = new Map<string, number>();
  const perDay = new Map<number, Map<string, number>>();
  const windowsImages = new Set<string>();
  let withPlatform = 0;
  for (const request of trace.requests) {
    const day = Math.floor(request.timeS / DAY_S);
    counts.set(request.image, (counts.get(request.image) ?? 0) + 1);
    if (!firstDay.has(request.image)) firstDay.set(request.image, day);
    sizes.set(request.image, request.sizeBytes);
    perDay.set(day, (perDay.get(day) ?? new Map()).set(request.image, request.sizeBytes));
    if (request.platform !== undefined) withPlatform++;
    if (request.platform === 'windows') windowsImages.add(request.image);
  }
  const launches = trace.requests.length;
  const days = (trace.requests.at(-1)?.timeS ?? 0) / DAY_S;
  const dayCount = Math.floor(days) + 1;
  const topTen = [...counts.values()].sort((a, b) => b - a).slice(0, 10);
  const median = (values: readonly number[]): number => summarize(values).median;
  const dayImages = [...perDay.values()];
  return {
    launches,
    images: counts.size,
    images_total_bytes: [...sizes.values()].reduce((sum, size) => sum + size, 0),
    days: Math.round(days * 100) / 100,
    top10_share: topTen.reduce((sum, count) => sum + count, 0) / launches,
    images_per_day_median: median(dayImages.map((images) => images.size)),
    image_bytes_per_day_median: median(
      dayImages.map((images) => [...images.values()].reduce((sum, size) => sum + size, 0)),
    ),
    new_images_per_day:
      dayCount < 2 ? Number.NaN : [...firstDay.values()].filter((day) => day > 0).length / (dayCount - 1),
    windows_image_share: withPlatform === 0 ? Number.NaN : windowsImages.size / counts.size,
  };
};

const repairsNote = (trace: Trace): string => {
  const entries = Object.entries(trace.repairs);
  return `${trace.name} (${trace.format}${trace.path === null ? '' : `, ${traceLabel(trace.path)}`}) repairs: ${
    entries.length === 0 ? 'none' : entries.map(([reason, count]) => `${reason} ${count}`).join(', ')
  }`;
};

const DESCRIPTION_NOTES = [
  'top10_share = launches of the 10 most requested images / all launches; images_per_day_median = median ' +
    'distinct images a day (image_bytes_per_day_median: their total size); new_images_per_day = images first requested after the first day / days after it; ' +
    'windows_image_share = images with platform windows / images (n/a: the trace has no platform).',
];

export const traceScenario: Scenario = {
  name: 'trace',
  description:
    'write a generated trace (--out FILE) or describe traces (--describe): size, skew, churn, repairs',
  flags: [TRACE_FLAG, FLAGS.preset, ...KNOBS.map(knobSpec), FLAGS.out, FLAGS.describe],
  run: async (args: BenchArgs): Promise<BenchResult> => {
    const out = args.flags.get(FLAGS.out.name);
    const describing = switchFlag(args, FLAGS.describe);
    const generating = args.flags.has(FLAGS.preset.name) || KNOBS.some((knob) => args.flags.has(knob.flag));
    const listing = args.flags.has(TRACE_FLAG.name) || args.trace !== undefined;
    if (out === undefined && !describing) {
      throw new BenchUsageError('trace needs --out FILE (write a generated trace) or --describe');
    }
    if (listing && (out !== undefined || generating)) {
      throw new BenchUsageError(
        '--traces/--trace only go with --describe; --preset and the knobs generate a trace',
      );
    }
    if (out === undefined && !generating) {
      const traces = resolveTraces(args);
      return {
        scenario: 'trace',
        trace: traces.map((trace) => trace.name).join(','),
        policies: Object.fromEntries(traces.map((trace) => [trace.name, describe(trace)])),
        notes: [...traces.map(repairsNote), ...DESCRIPTION_NOTES],
      };
    }
    const options = generatorOptions(args);
    const trace = generate(options);
    if (out !== undefined) {
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, formatTraceCsv(trace));
    }
    const { name, ...knobs } = options;
    return {
      scenario: 'trace',
      trace: name,
      policies: { [name]: describe(trace) },
      parameters: { preset: flagText(args, FLAGS.preset), ...knobs },
      notes: [
        ...(out === undefined ? [] : [`wrote ${out}: replay it with --traces ${out} (or --trace ${out})`]),
        ...DESCRIPTION_NOTES,
      ],
    };
  },
};
