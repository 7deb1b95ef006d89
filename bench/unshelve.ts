import { startDynamoDbLocal } from '../local/dynamodb-local';
import { ec2Latencies } from '../local/latency';
import { type BenchArgs, BenchUsageError, type FlagSpec, flagText, numberFlag } from './args';
import type { BenchResult, Metrics, Scenario } from './report';
import {
  inPlaceBound,
  LAZY_LOAD_MIB_PER_SECOND,
  reattachBound,
  SLOWEST_PROVISIONED_MIB_PER_SECOND,
  snapshotBound,
  type UnshelveBound,
} from './unshelve-bounds';
import { buildShelvedFleet, DATA_GIB, type Fleet, type FleetOptions, ROOT_GIB } from './unshelve-fleet';
import { type ReadyTimes, runNaive, runSnapshotRestore, runWarmboot } from './unshelve-policies';

/**
 * `npm run bench -- unshelve [--count N] [--json FILE]` (docs/benchmark-definitions.md, unshelve).
 *
 * For each N, one identical fleet per policy is built on the strict local cloud (local/cloud.ts:
 * calibrated EC2 latencies, the published token buckets, DynamoDB Local, the local EventBridge,
 * IAM on every call of the deployed function): N instances with a root and data volumes, some on
 * Dedicated Hosts, shelved by the deployed shelving function, half of them offloaded. Then each
 * policy unshelves every instance; the simulator's own counters give api_calls and throttled;
 * all_ready_s is virtual time.
 */

const COUNT: FlagSpec = {
  name: 'count',
  description: 'fleet sizes, comma-separated (all: 10,100,500)',
  default: 'all',
};
const HOST_SHARE: FlagSpec = {
  name: 'host-share',
  description: 'share of instances on Dedicated Hosts',
  default: '0.1',
};
const DATA_VOLUMES: FlagSpec = {
  name: 'data-volumes',
  description: 'data volumes per instance',
  default: '1',
};
const SEED: FlagSpec = { name: 'seed', description: 'simulator seed', default: '1' };
const SWAP_SWEEP: FlagSpec = {
  name: 'swap-sweep',
  description:
    "seconds the replace-root task's reboot onto the new root takes (the simulator's replaceRootSwapMs), comma-separated, each run as its own in-place policy ('none': no sweep)",
  default: 'none',
};
const BASELINES: FlagSpec = {
  name: 'baselines',
  description:
    "'yes': also the naive and snapshot-restore baselines and the new-IP and concurrency-1 settings; 'no': only warmboot's paths, in place, pool member (running and stopped) and stopped swap (and the sweep)",
  default: 'yes',
};
/** The bench's rows besides the sweep, each measured on a fleet of its own. */
const RUNS = [
  'in-place',
  'pool-member',
  'stopped-pool-member',
  'stopped-swap',
  'new-ips',
  'concurrency-1',
  'naive',
  'restore-offloaded',
  'restore-all',
] as const;
type UnshelveRun = (typeof RUNS)[number];
/** What `--baselines no` keeps: warmboot's paths. */
const WARMBOOT_PATHS: readonly UnshelveRun[] = [
  'in-place',
  'pool-member',
  'stopped-pool-member',
  'stopped-swap',
];
const RUNS_FLAG: FlagSpec = {
  name: 'runs',
  description: `comma-separated rows to measure (${RUNS.join(', ')}) or 'all'; --baselines no keeps only warmboot's paths of them`,
  default: 'all',
};
const RESERVED_CONCURRENCY: FlagSpec = {
  name: 'reserved-concurrency',
  description: "the shelving function's reserved concurrency ('none': the stack's default)",
  default: 'none',
};

const statsTotals = (fleet: Fleet): { calls: number; throttled: number } =>
  Object.values(fleet.simulator.stats()).reduce(
    (total, api) => ({ calls: total.calls + api.calls, throttled: total.throttled + api.throttled }),
    { calls: 0, throttled: 0 },
  );

const round = (value: number): number => Math.round(value * 100) / 100;

/** Throttled calls per API during the run (`throttled_<Api>`), so a throttle count says which bucket. */
const throttledByApi = (
  before: Readonly<Record<string, { readonly throttled: number }>>,
  after: Readonly<Record<string, { readonly throttled: number }>>,
): Metrics =>
  Object.fromEntries(
    Object.entries(after).flatMap(([api, stats]) => {
      const throttled = stats.throttled - (before[api]?.throttled ?? 0);
      return throttled > 0 ? [[`throttled_${api}`, throttled]] : [];
    }),
  );

/** Reads are Describe*, Get* and List*; every other EC2 call changes something. */
const isMutating = (api: string): boolean => !/^(Describe|Get|List)/.test(api);

/**
 * The mutating calls of the run, per API (`calls_<Api>`) and in total: issue 19 aims at three per
 * instance on the in-place path (launch, data attach, replace).
 */
const mutatingByApi = (
  before: Readonly<Record<string, { readonly calls: number }>>,
  after: Readonly<Record<string, { readonly calls: number }>>,
): { total: number; metrics: Metrics } => {
  let total = 0;
  const metrics = Object.fromEntries(
    Object.entries(after).flatMap(([api, stats]) => {
      const calls = stats.calls - (before[api]?.calls ?? 0);
      if (calls <= 0 || !isMutating(api)) return [];
      total += calls;
      return [[`calls_${api}`, calls]];
    }),
  );
  return { total, metrics };
};

const readyMetrics = (ready: ReadyTimes, prefix = ''): Metrics => {
  const times = [...ready.values()];
  const failed = times.filter((time) => Number.isNaN(time)).length;
  const done = times.filter((time) => !Number.isNaN(time));
  return {
    [`${prefix}all_ready_s`]: round(failed > 0 ? Number.NaN : Math.max(...times)),
    [`${prefix}mean_ready_s`]: round(done.reduce((sum, time) => sum + time, 0) / done.length),
  };
};

/**
 * Builds a fleet, runs one policy on it and reads the EC2 counters around the run. `ready` picks
 * the times all_ready_s is judged on; `extra` adds metrics of the same run.
 */
const measure = async <T>(
  fleetOf: () => Promise<Fleet>,
  run: (fleet: Fleet) => Promise<T>,
  ready: (outcome: T) => ReadyTimes,
  bound: UnshelveBound,
  extra: (outcome: T) => Metrics = () => ({}),
): Promise<Metrics> => {
  const fleet = await fleetOf();
  try {
    const before = statsTotals(fleet);
    const apisBefore = fleet.simulator.stats();
    const outcome = await run(fleet);
    const after = statsTotals(fleet);
    const apisAfter = fleet.simulator.stats();
    const byApi = throttledByApi(apisBefore, apisAfter);
    const mutating = mutatingByApi(apisBefore, apisAfter);
    const times = ready(outcome);
    const calls = after.calls - before.calls;
    const metrics = readyMetrics(times);
    const allReady = metrics.all_ready_s ?? Number.NaN;
    return {
      ...metrics,
      ...extra(outcome),
      api_calls: calls,
      api_calls_per_instance: round(calls / times.size),
      mutating_calls_per_instance: round(mutating.total / times.size),
      ...mutating.metrics,
      throttled: after.throttled - before.throttled,
      ...byApi,
      bound_s: round(bound.boundSeconds),
      ratio_to_bound: round(allReady / bound.boundSeconds),
      causal_bound_s: round(bound.causalBoundSeconds),
      ratio_to_causal_bound: round(allReady / bound.causalBoundSeconds),
      failed: [...times.values()].filter((time) => Number.isNaN(time)).length,
    };
  } finally {
    await fleet.stop();
  }
};

export interface UnshelveBenchOptions {
  readonly counts: readonly number[];
  readonly hostShare: number;
  readonly dataVolumes: number;
  readonly seed: number;
  readonly reservedConcurrency: number | undefined;
  /** Swap durations (s) for the in-place restart sweep; empty: none. */
  readonly swapSweep: readonly number[];
  /** The rows to measure (the sweep aside). */
  readonly runs: ReadonlySet<UnshelveRun>;
}

const wallClock = async <T>(label: string, task: () => Promise<T>): Promise<T> => {
  const started = performance.now();
  try {
    return await task();
  } finally {
    process.stderr.write(
      `unshelve: ${label} took ${((performance.now() - started) / 1000).toFixed(0)} s wall time\n`,
    );
  }
};

export const runUnshelveBench = async (options: UnshelveBenchOptions): Promise<BenchResult> => {
  const policies: Record<string, Metrics> = {};
  const notes: string[] = [];
  const dynamodb = await startDynamoDbLocal();
  try {
    for (const count of options.counts) {
      const fleetOf =
        (extra: Partial<FleetOptions> = {}) =>
        () =>
          buildShelvedFleet({
            count,
            hostShare: options.hostShare,
            dataVolumes: options.dataVolumes,
            seed: options.seed,
            dynamodbEndpoint: dynamodb.endpoint,
            ...(options.reservedConcurrency !== undefined
              ? { reservedConcurrency: options.reservedConcurrency }
              : {}),
            ...extra,
          });
      // The baselines unshelve a fleet warmboot shelved, with warmboot removed first.
      const baselineFleet = fleetOf({ removable: true });
      const withoutWarmboot =
        <T>(run: (fleet: Fleet) => Promise<T>) =>
        (fleet: Fleet) => {
          fleet.removeWarmboot();
          return fleet.cloud.run(() => run(fleet));
        };
      const fast = Math.ceil(count / 2);
      const onHosts = Math.round(count * options.hostShare);
      // Launch configurations: shared tenancy, plus per host and affinity; a replacement that keeps
      // its private IP (the default) is a launch of its own (API_RunInstances PrivateIpAddress).
      const batchedConfigurations = 1 + Math.ceil(onHosts / 48);
      const latencies = ec2Latencies('calibrated');
      const taskMs = (swapMs: number) =>
        latencies.replaceRootPendingMs + swapMs + latencies.replaceRootBootMs;
      const inPlaceOf = (configurations: number, swapMs: number) =>
        inPlaceBound({
          fast,
          start: count - fast,
          dataVolumes: options.dataVolumes,
          configurations,
          taskMs: taskMs(swapMs),
        });
      const inPlace = inPlaceOf(fast, latencies.replaceRootSwapMs);
      const inPlaceBatched = inPlaceOf(batchedConfigurations, latencies.replaceRootSwapMs);
      const reattach = reattachBound(fast, count - fast, options.dataVolumes, fast);
      const batched = reattachBound(fast, count - fast, options.dataVolumes, batchedConfigurations);
      const largest = options.dataVolumes > 0 ? DATA_GIB : ROOT_GIB;
      const identity = (times: ReadyTimes) => times;
      await wallClock(`N=${count}`, async () => {
        const { runs } = options;
        // The default: in place wherever EC2 and the record allow it (issue 19).
        if (runs.has('in-place'))
          policies[`warmboot N=${count}`] = await measure(fleetOf(), runWarmboot, identity, inPlace);
        // Pools serve unshelve: a running member stands in for each offloaded record's launch. Its
        // bound is the in-place one, which counts a launch this path does not make.
        if (runs.has('pool-member'))
          policies[`warmboot, pool member N=${count}`] = await measure(
            fleetOf({ poolMembers: fast }),
            runWarmboot,
            identity,
            inPlace,
          );
        // The same from the warm tier: each taken member is started, then replaced in place.
        if (runs.has('stopped-pool-member'))
          policies[`warmboot, stopped pool member N=${count}`] = await measure(
            fleetOf({ poolMembers: fast, poolTier: 'stopped' }),
            runWarmboot,
            identity,
            inPlace,
          );
        // The fallback path, for every record: stop, detach, attach, start.
        if (runs.has('stopped-swap'))
          policies[`warmboot, stopped swap N=${count}`] = await measure(
            fleetOf({ settings: { replaceRootInPlace: false } }),
            runWarmboot,
            identity,
            reattach,
          );
        for (const swapSeconds of options.swapSweep) {
          const swapMs = swapSeconds * 1000;
          policies[`warmboot, in-place swap ${swapSeconds} s N=${count}`] = await measure(
            fleetOf({ latencyOverrides: { replaceRootSwapMs: swapMs } }),
            runWarmboot,
            identity,
            inPlaceOf(fast, swapMs),
          );
        }
        if (runs.has('new-ips'))
          policies[`warmboot, new IPs N=${count}`] = await measure(
            fleetOf({ settings: { keepPrivateIp: false } }),
            runWarmboot,
            identity,
            inPlaceBatched,
          );
        // The recommended setting (README, reservedConcurrency): one invocation at a time, so one
        // pacer spends the buckets and the events wait their turn in the async queue.
        if (runs.has('concurrency-1') && options.reservedConcurrency === undefined) {
          policies[`warmboot, reserved concurrency 1 N=${count}`] = await measure(
            fleetOf({ reservedConcurrency: 1 }),
            runWarmboot,
            identity,
            inPlace,
          );
        }
        if (runs.has('naive'))
          policies[`naive N=${count}`] = await measure(
            baselineFleet,
            withoutWarmboot(runNaive),
            identity,
            batched,
          );
        for (const scope of ['offloaded', 'all'] as const) {
          if (!runs.has(scope === 'all' ? 'restore-all' : 'restore-offloaded')) continue;
          policies[`snapshot-restore, ${scope === 'all' ? 'all' : 'offloaded only'} N=${count}`] =
            await measure(
              baselineFleet,
              withoutWarmboot((fleet) => runSnapshotRestore(fleet, scope)),
              (times) => times.hydrated,
              scope === 'all' ? snapshotBound(count, 0, largest) : snapshotBound(fast, count - fast, largest),
              (times) => ({
                ...readyMetrics(times.running, 'running_'),
                ...readyMetrics(times.hydratedSlowest, `at_${SLOWEST_PROVISIONED_MIB_PER_SECOND}_mibps_`),
              }),
            );
        }
      });
      notes.push(
        `N=${count}: in-place bound = max(critical path ${round(inPlace.criticalPathSeconds)} s, buckets ${round(inPlace.bucketSeconds)} s on ${inPlace.bottleneck}); calls counted ${JSON.stringify(inPlace.calls)}`,
        `N=${count}: reattach bound = max(critical path ${round(reattach.criticalPathSeconds)} s, buckets ${round(reattach.bucketSeconds)} s on ${reattach.bottleneck}); calls counted ${JSON.stringify(reattach.calls)}`,
        `N=${count}: with new IPs (keepPrivateIp off) replacements batch: buckets ${round(batched.bucketSeconds)} s on ${batched.bottleneck}`,
      );
    }
  } finally {
    await dynamodb.stop();
  }
  notes.push(
    'warmboot: the deployed shelving function on the local cloud, one Unshelve Instances request on the request bus (PutEvents, bus policy and IAM evaluated), then only its EC2 state-change events and 1-minute schedule; every call it makes evaluated against its synthesized role; ready = its Instance Unshelved fact; api_calls counted up to the minute after the last fact (cleanup included)',
    'baselines: the same fleet shelved by the deployed function, which is then removed; their EC2 calls are an outside principal the local cloud does not evaluate IAM for',
    'ratio_to_bound = all_ready_s / bound_s; causal_bound_s: the least any client needs, also counting that an attach needs a launched replacement, a root attach a detached fresh root and a start its root (data volumes may attach after the start)',
    `snapshot-restore all_ready_s = running + initialization of the largest restored volume at ${LAZY_LOAD_MIB_PER_SECOND} MiB/s (EBS provisioned initialization rate maximum; the default rate is not published and fluctuates); at_${SLOWEST_PROVISIONED_MIB_PER_SECOND}_mibps_all_ready_s at the slowest provisioned rate; running_all_ready_s without initialization; offloaded only: stopped instances are started, not restored`,
    'naive: one instance per call, all workflows at once, no client pacing, 5 s polling per instance, backoff on throttle',
  );
  return {
    scenario: 'unshelve',
    trace: null,
    policies,
    parameters: {
      counts: options.counts.join(','),
      offloaded: 'half',
      hostShare: options.hostShare,
      dataVolumes: options.dataVolumes,
      rootGiB: ROOT_GIB,
      dataGiB: DATA_GIB,
      seed: options.seed,
      latency: 'calibrated',
      reservedConcurrency: options.reservedConcurrency ?? 'none',
      replaceRootTaskSeconds:
        'pending 1 + swap 16.4 (swept) + boot 3.0 (local/latency.ts, an assumption: AWS publishes none)',
    },
    notes,
  };
};

const reservedConcurrencyFlag = (args: BenchArgs): number | undefined => {
  const text = flagText(args, RESERVED_CONCURRENCY);
  if (text === 'none') return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1 || value > 1000) {
    throw new BenchUsageError(`--${RESERVED_CONCURRENCY.name} must be 'none' or an integer from 1 to 1000`);
  }
  return value;
};

const countsFlag = (args: BenchArgs): number[] => {
  const text = flagText(args, COUNT);
  if (text === 'all') return [10, 100, 500];
  return text.split(',').map((part) => {
    const value = Number(part);
    if (part.trim() === '' || !Number.isInteger(value) || value < 1) {
      throw new BenchUsageError(
        `--${COUNT.name} must be 'all' or positive integers separated by commas, got '${text}'`,
      );
    }
    return value;
  });
};

const swapSweepFlag = (args: BenchArgs): number[] => {
  const text = flagText(args, SWAP_SWEEP);
  if (text === 'none') return [];
  return text.split(',').map((part) => {
    const value = Number(part);
    if (part.trim() === '' || !Number.isFinite(value) || value <= 0 || value > 600) {
      throw new BenchUsageError(
        `--${SWAP_SWEEP.name} must be 'none' or seconds (0 to 600) separated by commas, got '${text}'`,
      );
    }
    return value;
  });
};

/** `--runs`, narrowed to warmboot's paths by `--baselines no`. */
const runsFlag = (args: BenchArgs): ReadonlySet<UnshelveRun> => {
  const baselines = flagText(args, BASELINES);
  if (baselines !== 'yes' && baselines !== 'no')
    throw new BenchUsageError(`--${BASELINES.name} must be 'yes' or 'no', got '${baselines}'`);
  const text = flagText(args, RUNS_FLAG);
  const named = text === 'all' ? [...RUNS] : text.split(',').map((part) => part.trim());
  const unknown = named.filter((name) => !(RUNS as readonly string[]).includes(name));
  if (unknown.length > 0 || named.length === 0)
    throw new BenchUsageError(
      `--${RUNS_FLAG.name} must be 'all' or names from ${RUNS.join(', ')}, got '${text}'`,
    );
  const runs = named as UnshelveRun[];
  return new Set(baselines === 'yes' ? runs : runs.filter((run) => WARMBOOT_PATHS.includes(run)));
};

export const unshelveScenario: Scenario = {
  name: 'unshelve',
  description:
    'shelve N instances, offload half, unshelve all: the deployed function on the local cloud vs naive vs snapshot-restore',
  flags: [COUNT, HOST_SHARE, DATA_VOLUMES, SEED, RESERVED_CONCURRENCY, SWAP_SWEEP, BASELINES, RUNS_FLAG],
  run: (args: BenchArgs) => {
    const counts = countsFlag(args);
    return runUnshelveBench({
      counts,
      hostShare: numberFlag(args, HOST_SHARE, { min: 0 }),
      dataVolumes: numberFlag(args, DATA_VOLUMES, { min: 0, integer: true }),
      seed: numberFlag(args, SEED, { integer: true }),
      reservedConcurrency: reservedConcurrencyFlag(args),
      swapSweep: swapSweepFlag(args),
      runs: runsFlag(args),
    });
  },
};
