import { defaultShelvingSettings } from '../functions/shelving/config';
import { limitsOf } from '../functions/shelving/domain/pacer';
import { ec2Latencies } from '../local/latency';
import { type BenchArgs, type FlagSpec, numberFlag } from './args';
import type { BenchResult, Metrics, Scenario } from './report';
import { buildShelvedFleet, DATA_GIB, type Fleet, ROOT_GIB } from './unshelve-fleet';
import {
  LAZY_LOAD_MIB_PER_SECOND,
  type ReadyTimes,
  runNaive,
  runSnapshotRestore,
  runWarmboot,
} from './unshelve-policies';

/**
 * `npm run bench -- unshelve [--count N] [--json FILE]` (docs/benchmark-definitions.md, unshelve).
 *
 * For each N, three identical fleets are built on the EC2 simulator (calibrated latencies, the
 * published token buckets): N instances with a root and data volumes, some on Dedicated Hosts,
 * all shelved by warmboot, half of them offloaded. Then each policy unshelves every instance and
 * the simulator's own counters give api_calls and throttled; all_ready_s is virtual time.
 */

const COUNT: FlagSpec = {
  name: 'count',
  description: 'one fleet size instead of 10, 100 and 500',
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

const SECOND = 1000;

export interface UnshelveBound {
  readonly boundSeconds: number;
  readonly criticalPathSeconds: number;
  readonly bucketSeconds: number;
  readonly bottleneck: string;
  /** Calls (or instances, for `.instances` buckets) the path requires, per token bucket. */
  readonly calls: Readonly<Record<string, number>>;
  /** Also a lower bound: a bucket's calls cannot start before the path makes them possible. */
  readonly pipelineBoundSeconds: number;
}

const drainSeconds = (action: string, bucket: 'requests' | 'instances', count: number): number => {
  const limits = bucket === 'requests' ? limitsOf(action).requests : limitsOf(action).instances;
  if (!limits || count <= limits.capacity) return 0;
  return (count - limits.capacity) / limits.refillPerSecond;
};

/**
 * BENCHMARKS.md bound_s for the reattach path: the larger of (a) one instance's critical path at
 * the simulator's latencies and (b) the time the buckets need to admit every call the path
 * requires. Counted: per offloaded instance one CreateTags (its recorded tags), one DetachVolume
 * (fresh root), 1 + dataVolumes AttachVolume; per call of up to 1000 instances RunInstances
 * (one per distinct launch configuration), StopInstances, StartInstances. Describe calls and the
 * cleanup after ready (DeleteVolume, DeleteTags, restoring DeleteOnTermination) are not counted.
 */
export const reattachBound = (
  fast: number,
  start: number,
  dataVolumes: number,
  configurations: number,
): UnshelveBound => {
  const l = ec2Latencies('calibrated');
  const launch = (l.runInstancesApiMs + l.launchPendingMs) / SECOND;
  const stop = (l.mutatingApiMs + l.stoppingMs) / SECOND;
  const detach = (l.mutatingApiMs + l.detachMs) / SECOND;
  const attach = (l.mutatingApiMs + l.attachMs) / SECOND;
  const startUp = (l.startInstancesApiMs + l.startPendingMs) / SECOND;
  const fastPath = launch + stop + detach + attach + startUp;
  const critical = fast > 0 ? fastPath : start > 0 ? startUp : 0;
  const calls: Record<string, number> = {
    'RunInstances.requests': fast > 0 ? Math.max(configurations, Math.ceil(fast / 1000)) : 0,
    'RunInstances.instances': fast,
    'StartInstances.requests': Math.ceil((fast + start) / 1000),
    'StartInstances.instances': fast + start,
    'StopInstances.instances': fast,
    'CreateTags.requests': fast,
    'DetachVolume.requests': fast,
    'AttachVolume.requests': fast * (1 + dataVolumes),
  };
  const drains = Object.entries(calls).map(([key, count]) => {
    const [action = '', bucket = 'requests'] = key.split('.');
    return { key, seconds: drainSeconds(action, bucket as 'requests' | 'instances', count) };
  });
  const worst = drains.reduce((a, b) => (b.seconds > a.seconds ? b : a), { key: 'none', seconds: 0 });
  // Attach and detach need a replacement that exists: data attaches from `launch`, the fresh
  // root's detach from `launch + stop`; after a bucket's last call the path still has to finish.
  const attachPipeline =
    fast > 0
      ? launch +
        drainSeconds('AttachVolume', 'requests', calls['AttachVolume.requests'] ?? 0) +
        attach +
        startUp
      : 0;
  const detachPipeline =
    fast > 0 ? launch + stop + drainSeconds('DetachVolume', 'requests', fast) + detach + attach + startUp : 0;
  // The last replacement cannot launch before the RunInstances bucket admits its call (one call
  // per replacement when private IPs are kept), and then has its whole path ahead of it.
  const launchPipeline =
    fast > 0 ? drainSeconds('RunInstances', 'requests', calls['RunInstances.requests'] ?? 0) + fastPath : 0;
  return {
    boundSeconds: Math.max(critical, worst.seconds),
    criticalPathSeconds: critical,
    bucketSeconds: worst.seconds,
    bottleneck: worst.key,
    calls,
    pipelineBoundSeconds: Math.max(critical, worst.seconds, attachPipeline, detachPipeline, launchPipeline),
  };
};

/** The snapshot path: one RunInstances per instance (each has its own snapshots), then lazy load. */
export const snapshotBound = (count: number, largestVolumeGiB: number): UnshelveBound => {
  const l = ec2Latencies('calibrated');
  const critical =
    (l.runInstancesApiMs + l.launchPendingMs) / SECOND + (largestVolumeGiB * 1024) / LAZY_LOAD_MIB_PER_SECOND;
  const bucket = drainSeconds('RunInstances', 'requests', count);
  return {
    boundSeconds: Math.max(critical, bucket),
    criticalPathSeconds: critical,
    bucketSeconds: bucket,
    bottleneck: 'RunInstances.requests',
    calls: { 'RunInstances.requests': count, 'RunInstances.instances': count },
    pipelineBoundSeconds: Math.max(critical, bucket + critical),
  };
};

const statsTotals = (fleet: Fleet): { calls: number; throttled: number } =>
  Object.values(fleet.simulator.stats()).reduce(
    (total, api) => ({ calls: total.calls + api.calls, throttled: total.throttled + api.throttled }),
    { calls: 0, throttled: 0 },
  );

const measure = async (
  fleetOf: () => Promise<Fleet>,
  run: (fleet: Fleet) => Promise<ReadyTimes>,
  bound: UnshelveBound,
): Promise<Metrics> => {
  const fleet = await fleetOf();
  const before = statsTotals(fleet);
  const ready = await fleet.clock.run(() => run(fleet));
  const after = statsTotals(fleet);
  const times = [...ready.values()];
  const failed = times.filter((time) => Number.isNaN(time)).length;
  const allReady = failed > 0 ? Number.NaN : Math.max(...times);
  const calls = after.calls - before.calls;
  return {
    all_ready_s: round(allReady),
    api_calls: calls,
    api_calls_per_instance: round(calls / times.length),
    throttled: after.throttled - before.throttled,
    bound_s: round(bound.boundSeconds),
    ratio_to_bound: round(allReady / bound.boundSeconds),
    pipeline_bound_s: round(bound.pipelineBoundSeconds),
    failed,
  };
};

const round = (value: number): number => Math.round(value * 100) / 100;

export interface UnshelveBenchOptions {
  readonly counts: readonly number[];
  readonly hostShare: number;
  readonly dataVolumes: number;
  readonly seed: number;
}

export const runUnshelveBench = async (options: UnshelveBenchOptions): Promise<BenchResult> => {
  const policies: Record<string, Metrics> = {};
  const notes: string[] = [];
  for (const count of options.counts) {
    const fleetOf = () =>
      buildShelvedFleet({
        count,
        hostShare: options.hostShare,
        dataVolumes: options.dataVolumes,
        seed: options.seed,
      });
    const fast = Math.ceil(count / 2);
    const onHosts = Math.round(count * options.hostShare);
    // Launch configurations: shared tenancy, plus per host and affinity; a replacement that keeps
    // its private IP (the default) is a launch of its own (API_RunInstances PrivateIpAddress).
    const batchedConfigurations = 1 + Math.ceil(onHosts / 48);
    const reattach = reattachBound(fast, count - fast, options.dataVolumes, fast);
    const batched = reattachBound(fast, count - fast, options.dataVolumes, batchedConfigurations);
    const snapshot = snapshotBound(count, options.dataVolumes > 0 ? DATA_GIB : ROOT_GIB);
    policies[`warmboot N=${count}`] = await measure(fleetOf, runWarmboot, reattach);
    policies[`warmboot, new IPs N=${count}`] = await measure(
      fleetOf,
      (fleet) => runWarmboot(fleet, { ...defaultShelvingSettings, keepPrivateIp: false }),
      batched,
    );
    policies[`naive N=${count}`] = await measure(fleetOf, runNaive, batched);
    policies[`snapshot-restore N=${count}`] = await measure(fleetOf, runSnapshotRestore, snapshot);
    notes.push(
      `N=${count}: reattach bound = max(critical path ${round(reattach.criticalPathSeconds)} s, buckets ${round(reattach.bucketSeconds)} s on ${reattach.bottleneck}); calls counted ${JSON.stringify(reattach.calls)}`,
      `N=${count}: with new IPs (keepPrivateIp off) replacements batch: buckets ${round(batched.bucketSeconds)} s on ${batched.bottleneck}`,
    );
  }
  notes.push(
    'ratio_to_bound = all_ready_s / bound_s; pipeline_bound_s also counts that attach/detach calls cannot start before a replacement exists (still a lower bound)',
    `snapshot-restore ready = running + initialization of the largest restored volume at ${LAZY_LOAD_MIB_PER_SECOND} MiB/s (EBS provisioned initialization rate maximum)`,
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
    },
    notes,
  };
};

export const unshelveScenario: Scenario = {
  name: 'unshelve',
  description: 'shelve N instances, offload half, unshelve all: warmboot vs naive vs snapshot-restore',
  flags: [COUNT, HOST_SHARE, DATA_VOLUMES, SEED],
  run: (args: BenchArgs) => {
    const countText = args.flags.get(COUNT.name);
    const counts =
      countText === undefined ? [10, 100, 500] : [numberFlag(args, COUNT, { min: 1, integer: true })];
    return runUnshelveBench({
      counts,
      hostShare: numberFlag(args, HOST_SHARE, { min: 0 }),
      dataVolumes: numberFlag(args, DATA_VOLUMES, { min: 0, integer: true }),
      seed: numberFlag(args, SEED, { integer: true }),
    });
  },
};
