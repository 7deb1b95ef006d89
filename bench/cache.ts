import { FUNCTIONS } from '../functions/catalog';
import { hostGroupSchema } from '../functions/image-cache/config';
import { loadLoadLatenciesMs, stableUnit, type Trace } from '../local/trace';
import { type BenchArgs, BenchUsageError, bytesFlag, type FlagSpec, flagText, numberFlag } from './args';
import { AIMS, type AimName, aimsOf, CEILING, firstRequestCeiling, oracleBeaten } from './cache-aims';
import { cacheMetrics } from './cache-metrics';
import {
  lfuAffinityPolicy,
  lruPolicy,
  nonePolicy,
  novaAgePolicy,
  oraclePolicy,
  staticPinsPolicy,
} from './cache-policies';
import { type CachePolicy, type FleetConfig, type Launch, simulate } from './cache-sim';
import { type PlannerSettings, warmbootPolicy } from './cache-warmboot';
import type { BenchResult, Metrics, Scenario } from './report';
import { resolveTraces, TRACE_FLAG } from './traces';
import { summarize, traceWindows } from './windows';

/**
 * `cache` scenario (docs/benchmark-definitions.md, "cache"): one trace replayed over one simulated host
 * group under every policy, with the same budget, bandwidth, slots, outage and seed.
 */

const OUTAGE_S = 2 * 3600;

/** The planner settings of a host group that set no planner settings of its own (config.ts). */
const PLANNER_DEFAULTS = hostGroupSchema.parse({
  name: 'defaults',
  cacheBytes: 1,
  cacheDirectory: '/defaults',
});

const FLAGS = {
  hosts: { name: 'hosts', description: 'hosts in the group', default: '8' },
  azs: { name: 'azs', description: 'availability zones the hosts are spread over', default: '2' },
  cacheBytes: { name: 'cache-bytes', description: 'cache budget per host (e.g. 1GiB)', default: '1GiB' },
  bandwidth: {
    name: 'bandwidth',
    description: 'download bandwidth per host, bytes/s (e.g. 125MB = 1 Gbit/s)',
    default: '125MB',
  },
  slots: { name: 'slots', description: 'instances a host runs at once', default: '16' },
  holdS: { name: 'hold-s', description: 'seconds a launched instance occupies its slot', default: '300' },
  seed: { name: 'seed', description: 'seed of the cold-load draws and planner tie-breaks', default: '1' },
  outageStartH: {
    name: 'outage-start-h',
    description: 'start of the 2-hour source outage, hours after the first request (default: busiest 2 h)',
    default: 'busiest',
  },
  policies: {
    name: 'policies',
    description: 'comma-separated subset of policies to run',
    default: 'all',
  },
  keepMargin: {
    name: 'keep-margin',
    description: "warmboot's host group keepMargin (the planner's hysteresis; the default is the product's)",
    default: String(PLANNER_DEFAULTS.keepMargin),
  },
  replicaExponent: {
    name: 'replica-exponent',
    description: "warmboot's host group replicaExponent (how fast extra copies lose value)",
    default: String(PLANNER_DEFAULTS.replicaExponent),
  },
  minScore: {
    name: 'min-score',
    description: "warmboot's host group minScore (decayed popularity below which nothing is prefetched)",
    default: String(PLANNER_DEFAULTS.minScore),
  },
  windowDays: {
    name: 'window-days',
    description:
      'robustness rows: lru-affinity, warmboot and oracle on every N-day slice of each trace (0: none)',
    default: '7',
  },
} satisfies Record<string, FlagSpec>;

export const CACHE_POLICIES = [
  'none',
  'lru',
  'lru-affinity',
  'lfu-affinity',
  'nova-age',
  'static-pins',
  'warmboot',
  'oracle',
] as const;

/** The imageCache function's schedule (`rate(N minutes)` in the catalog), in seconds. */
export const reconcilePeriodS = (schedule = FUNCTIONS.imageCache.schedule): number => {
  const match = /^rate\((\d+) minutes?\)$/.exec(schedule ?? '');
  if (!match) throw new Error(`unexpected imageCache schedule: ${schedule}`);
  return Number(match[1]) * 60;
};

/** Start of the window of `lengthS` holding the most launches (earliest on ties). */
export const busiestWindowStartS = (times: readonly number[], lengthS: number): number => {
  let best = 0;
  let bestStart = times[0] ?? 0;
  let end = 0;
  for (let start = 0; start < times.length; start++) {
    const from = times[start] ?? 0;
    while (end < times.length && (times[end] ?? 0) < from + lengthS) end++;
    if (end - start > best) {
      best = end - start;
      bestStart = from;
    }
  }
  return bestStart;
};

/** Cold load time of every launch, seconds: the same draw for a launch under every policy. */
export const coldLoadDraws = (count: number, latenciesMs: readonly number[], seed: number): number[] =>
  Array.from({ length: count }, (_, index) => {
    const ms = latenciesMs[Math.floor(stableUnit(`load:${seed}:${index}`) * latenciesMs.length)];
    if (ms === undefined) throw new Error('empty load-latency distribution');
    return ms / 1000;
  });

const selectedPolicies = (args: BenchArgs): string[] => {
  const text = flagText(args, FLAGS.policies);
  if (text === 'all') return [...CACHE_POLICIES];
  const names = text.split(',').map((name) => name.trim());
  const unknown = names.filter((name) => !(CACHE_POLICIES as readonly string[]).includes(name));
  if (unknown.length > 0) {
    throw new BenchUsageError(`unknown policy ${unknown.join(', ')}; valid: ${CACHE_POLICIES.join(', ')}`);
  }
  return names;
};

const buildPolicy = (
  name: string,
  launches: readonly Launch[],
  trace: Trace,
  config: FleetConfig,
  seed: number,
  planner: PlannerSettings,
): CachePolicy => {
  switch (name) {
    case 'none':
      return nonePolicy();
    case 'lru':
      return lruPolicy();
    case 'lru-affinity':
      return lruPolicy({ affinity: true });
    case 'lfu-affinity':
      return lfuAffinityPolicy();
    case 'nova-age':
      return novaAgePolicy();
    case 'static-pins':
      return staticPinsPolicy(launches, config.cacheBytes);
    case 'oracle':
      return oraclePolicy(launches);
    case 'warmboot':
      return warmbootPolicy({
        cacheBytes: config.cacheBytes,
        originS: trace.originS,
        imageSizes: Object.fromEntries(launches.map((launch) => [launch.image, launch.sizeBytes])),
        reconcileS: reconcilePeriodS(),
        seed,
        planner,
      });
    default:
      throw new BenchUsageError(`unknown policy ${name}`);
  }
};

/**
 * The planner flags, checked by the host group's own schema (the ranges an operator's
 * configuration must respect), so a sweep can only try settings the product accepts.
 */
const plannerSettings = (args: BenchArgs): PlannerSettings => {
  const settings = {
    keepMargin: numberFlag(args, FLAGS.keepMargin, { min: 0 }),
    replicaExponent: numberFlag(args, FLAGS.replicaExponent, { min: 0 }),
    minScore: numberFlag(args, FLAGS.minScore, { min: 0 }),
  };
  const checked = hostGroupSchema.safeParse({ ...PLANNER_DEFAULTS, ...settings });
  if (!checked.success) {
    const issue = checked.error.issues[0];
    throw new BenchUsageError(`planner setting ${String(issue?.path.join('.'))}: ${issue?.message}`);
  }
  return settings;
};

/** The fleet the flags describe; each trace places its own outage on it. */
type FleetSettings = Omit<FleetConfig, 'outage'>;

interface TraceRun {
  readonly launches: readonly Launch[];
  readonly config: FleetConfig;
  readonly policies: Record<string, Metrics>;
  readonly notes: readonly string[];
}

/** Every selected policy on one trace (or window), plus the first-request ceiling row. */
const runTrace = async (
  trace: Trace,
  fleet: FleetSettings,
  outageStartH: number | 'busiest',
  names: readonly string[],
  seed: number,
  planner: PlannerSettings,
): Promise<TraceRun> => {
  const launches: Launch[] = trace.requests.map((request, index) => ({
    index,
    timeS: request.timeS,
    image: request.image,
    sizeBytes: request.sizeBytes,
  }));
  const outageStartS =
    outageStartH === 'busiest'
      ? busiestWindowStartS(
          launches.map((launch) => launch.timeS),
          OUTAGE_S,
        )
      : outageStartH * 3600;
  const config: FleetConfig = { ...fleet, outage: { startS: outageStartS, endS: outageStartS + OUTAGE_S } };
  const loadS = coldLoadDraws(launches.length, loadLoadLatenciesMs(), seed);
  const policies: Record<string, Metrics> = {};
  const notes: string[] = [];
  for (const name of names) {
    const policy = buildPolicy(name, launches, trace, config, seed, planner);
    const run = await simulate(policy, launches, config, loadS);
    policies[name] = { ...cacheMetrics(run) };
    if ('stats' in policy) notes.push(`${name}: ${JSON.stringify(policy.stats)}`);
  }
  policies[CEILING] = firstRequestCeiling(launches, config.outage);
  return { launches, config, policies, notes };
};

/** The policies the aims compare: what every robustness window runs. */
const WINDOW_POLICIES = ['lru-affinity', 'warmboot', 'oracle'];

const aimNote = (trace: string, aims: Metrics): string =>
  `${trace} aims: ` +
  (Object.keys(AIMS) as AimName[])
    .map(
      (name) =>
        `${name} ${(aims[name] ?? Number.NaN).toFixed(3)} ${aims[`${name}_met`] === 1 ? 'met' : 'NOT met'}`,
    )
    .join('; ');

export const cacheScenario: Scenario = {
  name: 'cache',
  description:
    'replay traces over a simulated host group: warm ratio, ready time, bytes, skew, outage; aims per trace',
  flags: [...Object.values(FLAGS), TRACE_FLAG],
  run: async (args: BenchArgs): Promise<BenchResult> => {
    // Checked before any trace is read or generated: a refused setting costs nothing.
    const planner = plannerSettings(args);
    const traces = resolveTraces(args);
    const seed = numberFlag(args, FLAGS.seed, { integer: true });
    const outageText = flagText(args, FLAGS.outageStartH);
    const outageStartH =
      outageText === 'busiest' ? 'busiest' : numberFlag(args, FLAGS.outageStartH, { min: 0 });
    const windowDays = numberFlag(args, FLAGS.windowDays, { min: 0, integer: true });
    const fleet: FleetSettings = {
      hosts: numberFlag(args, FLAGS.hosts, { min: 1, integer: true }),
      azs: numberFlag(args, FLAGS.azs, { min: 1, integer: true }),
      cacheBytes: bytesFlag(args, FLAGS.cacheBytes),
      bandwidthBytesPerS: bytesFlag(args, FLAGS.bandwidth),
      slots: numberFlag(args, FLAGS.slots, { min: 1, integer: true }),
      holdS: numberFlag(args, FLAGS.holdS, { min: 0 }),
    };
    const names = selectedPolicies(args);
    const policies: Record<string, Metrics> = {};
    const parameters: Record<string, string | number | boolean> = {
      hosts: fleet.hosts,
      azs: fleet.azs,
      cache_bytes: fleet.cacheBytes,
      bandwidth_bytes_per_s: fleet.bandwidthBytesPerS,
      slots: fleet.slots,
      hold_s: fleet.holdS,
      reconcile_s: reconcilePeriodS(),
      seed,
      window_days: windowDays,
      keep_margin: planner.keepMargin,
      replica_exponent: planner.replicaExponent,
      min_score: planner.minScore,
    };
    const notes: string[] = [];
    for (const trace of traces) {
      const run = await runTrace(trace, fleet, outageStartH, names, seed, planner);
      for (const [name, metrics] of Object.entries(run.policies)) policies[`${trace.name}/${name}`] = metrics;
      const distinctBytes = [
        ...new Map(run.launches.map((launch) => [launch.image, launch.sizeBytes])).values(),
      ].reduce((sum, size) => sum + size, 0);
      Object.assign(parameters, {
        [`${trace.name}/launches`]: run.launches.length,
        [`${trace.name}/images`]: run.policies[CEILING]?.cold_starts ?? 0,
        [`${trace.name}/images_total_bytes`]: distinctBytes,
        [`${trace.name}/size_source`]: trace.sizeSource,
        [`${trace.name}/outage_start_s`]: run.config.outage.startS,
        [`${trace.name}/repairs`]: JSON.stringify(trace.repairs),
      });
      notes.push(...run.notes.map((note) => `${trace.name} ${note}`));
      const aims = aimsOf(run.policies);
      if (aims) {
        policies[`${trace.name}/aims`] = aims;
        notes.push(aimNote(trace.name, aims));
      }
      const beaten = oracleBeaten(run.policies);
      notes.push(
        beaten.length === 0
          ? `${trace.name}: the oracle's warm ratio is at least every policy's`
          : `${trace.name}: ORACLE BEATEN on warm ratio by ${beaten.join(', ')} (it is not an upper bound here)`,
      );
      if (windowDays === 0 || !aims) continue;
      const windows = traceWindows(trace, windowDays);
      const perWindow: Metrics[] = [];
      for (const window of windows) {
        const windowRun = await runTrace(window, fleet, 'busiest', WINDOW_POLICIES, seed, planner);
        const windowAims = aimsOf(windowRun.policies);
        if (windowAims)
          perWindow.push({
            ...windowAims,
            warm_ratio: windowRun.policies.warmboot?.warm_ratio ?? Number.NaN,
          });
      }
      const row: Metrics = { windows: perWindow.length };
      for (const metric of ['warm_ratio', ...Object.keys(AIMS)]) {
        const values = perWindow
          .map((metrics) => metrics[metric] ?? Number.NaN)
          .filter((v) => !Number.isNaN(v));
        if (values.length === 0) continue;
        const { min, median, max } = summarize(values);
        Object.assign(row, { [`${metric}_min`]: min, [`${metric}_median`]: median, [`${metric}_max`]: max });
      }
      for (const name of Object.keys(AIMS))
        row[`${name}_met_windows`] = perWindow.filter((metrics) => metrics[`${name}_met`] === 1).length;
      policies[`${trace.name}/windows`] = row;
      notes.push(`${trace.name} windows: ${windows.map((window) => window.name).join(', ')}`);
    }
    return {
      scenario: 'cache',
      trace: traces.map((trace) => trace.name).join(','),
      policies,
      parameters,
      notes: [
        'first-request-ceiling: the first request of every image in the fleet is cold (warm_ratio <= 1 - images/launches); ' +
          'its outage_availability counts window launches of images requested before the window',
        'aims: warm_vs_oracle >= 0.9, cold_vs_lru_affinity >= 1.5, placement_skew <= 1.5, outage_vs_oracle >= -0.05 ' +
          '(<aim>_met = 1 met, 0 not met); <trace>/windows: min/median/max over traceWindows slices (busiest 2 h of each)',
        'ready_s = seconds from the request until the image is usable on the chosen host (0 when warm; slot ' +
          'waits included; the EC2 boot common to all policies excluded). Cold = max(transfer at --bandwidth, ' +
          'a draw from the Alibaba base-model load latency), after waiting for the link and the outage.',
        ...notes,
      ],
    };
  },
};
