import { FUNCTIONS } from '../functions/catalog';
import { loadLoadLatenciesMs, loadTrace, stableUnit, type Trace, traceLabel } from '../local/trace';
import { type BenchArgs, BenchUsageError, bytesFlag, type FlagSpec, flagText, numberFlag } from './args';
import { cacheMetrics } from './cache-metrics';
import { lruPolicy, nonePolicy, novaAgePolicy, oraclePolicy, staticPinsPolicy } from './cache-policies';
import { type CachePolicy, type FleetConfig, type Launch, simulate } from './cache-sim';
import { warmbootPolicy } from './cache-warmboot';
import type { BenchResult, Metrics, Scenario } from './report';

/**
 * `cache` scenario (docs/benchmark-definitions.md, "cache"): one trace replayed over one simulated host
 * group under every policy, with the same budget, bandwidth, slots, outage and seed.
 */

const OUTAGE_S = 2 * 3600;

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
} satisfies Record<string, FlagSpec>;

export const CACHE_POLICIES = [
  'none',
  'lru',
  'lru-affinity',
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
): CachePolicy => {
  switch (name) {
    case 'none':
      return nonePolicy();
    case 'lru':
      return lruPolicy();
    case 'lru-affinity':
      return lruPolicy({ affinity: true });
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
      });
    default:
      throw new BenchUsageError(`unknown policy ${name}`);
  }
};

export const cacheScenario: Scenario = {
  name: 'cache',
  description: 'replay a trace over a simulated host group: warm ratio, ready time, bytes, skew, outage',
  flags: Object.values(FLAGS),
  run: async (args: BenchArgs): Promise<BenchResult> => {
    const trace = loadTrace(args.trace);
    const seed = numberFlag(args, FLAGS.seed, { integer: true });
    const launches: Launch[] = trace.requests.map((request, index) => ({
      index,
      timeS: request.timeS,
      image: request.image,
      sizeBytes: request.sizeBytes,
    }));
    const outageText = flagText(args, FLAGS.outageStartH);
    const outageStartS =
      outageText === 'busiest'
        ? busiestWindowStartS(
            launches.map((launch) => launch.timeS),
            OUTAGE_S,
          )
        : numberFlag(args, FLAGS.outageStartH, { min: 0 }) * 3600;
    const config: FleetConfig = {
      hosts: numberFlag(args, FLAGS.hosts, { min: 1, integer: true }),
      azs: numberFlag(args, FLAGS.azs, { min: 1, integer: true }),
      cacheBytes: bytesFlag(args, FLAGS.cacheBytes),
      bandwidthBytesPerS: bytesFlag(args, FLAGS.bandwidth),
      slots: numberFlag(args, FLAGS.slots, { min: 1, integer: true }),
      holdS: numberFlag(args, FLAGS.holdS, { min: 0 }),
      outage: { startS: outageStartS, endS: outageStartS + OUTAGE_S },
    };
    const loadS = coldLoadDraws(launches.length, loadLoadLatenciesMs(), seed);
    const policies: Record<string, Metrics> = {};
    const notes: string[] = [];
    for (const name of selectedPolicies(args)) {
      const policy = buildPolicy(name, launches, trace, config, seed);
      const run = await simulate(policy, launches, config, loadS);
      policies[name] = { ...cacheMetrics(run) };
      if ('stats' in policy) notes.push(`${name}: ${JSON.stringify(policy.stats)}`);
    }
    const distinct = new Set(launches.map((launch) => launch.image)).size;
    const distinctBytes = [
      ...new Map(launches.map((launch) => [launch.image, launch.sizeBytes])).values(),
    ].reduce((sum, size) => sum + size, 0);
    return {
      scenario: 'cache',
      trace: traceLabel(trace.path),
      policies,
      parameters: {
        launches: launches.length,
        skipped_rows: trace.skippedRows,
        images: distinct,
        images_total_bytes: distinctBytes,
        size_source: trace.sizeSource,
        hosts: config.hosts,
        azs: config.azs,
        cache_bytes: config.cacheBytes,
        bandwidth_bytes_per_s: config.bandwidthBytesPerS,
        slots: config.slots,
        hold_s: config.holdS,
        reconcile_s: reconcilePeriodS(),
        outage_start_s: config.outage.startS,
        outage_end_s: config.outage.endS,
        seed,
      },
      notes: [
        `compulsory-miss bound: warm_ratio <= 1 - ${distinct}/${launches.length} = ${(1 - distinct / launches.length).toFixed(4)} ` +
          '(first request of each image is cold for every policy)',
        'ready_s = seconds from the request until the image is usable on the chosen host (0 when warm; slot ' +
          'waits included; the EC2 boot common to all policies excluded). Cold = max(transfer at --bandwidth, ' +
          'a draw from the Alibaba base-model load latency), after waiting for the link and the outage.',
        ...notes,
      ],
    };
  },
};
