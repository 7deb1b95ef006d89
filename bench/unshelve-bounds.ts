import { requestLimitsOf, resourceLimitsOf } from '../functions/shared/ec2-buckets';
import { ec2Latencies } from '../local/latency';

/**
 * The least time any client could need to unshelve a fleet on the EC2 simulator
 * (docs/benchmark-definitions.md, unshelve): the calibrated latencies and the published token
 * buckets (functions/shared/ec2-buckets.ts).
 */

/**
 * EBS "Initialize Amazon EBS volumes": a volume restored from a snapshot reaches full
 * performance only once every block was downloaded from S3. The default rate "fluctuates" and is
 * not published; the fastest rate a user can buy (Provisioned Rate for Volume Initialization) is
 * 300 MiB/s. The penalty modelled is the time to initialize the largest restored volume at that
 * best rate: a lower bound of the real one.
 */
export const LAZY_LOAD_MIB_PER_SECOND = 300;
/**
 * The slowest provisioned rate (CreateVolume `VolumeInitializationRate`: "Valid range: 100 - 300
 * MiB/s"), reported next to the fastest: with the default rate unpublished, the pair shows how
 * much of the snapshot path's time is initialization.
 */
export const SLOWEST_PROVISIONED_MIB_PER_SECOND = 100;
/** The simulator's latencies are in milliseconds, the bounds in seconds. */
const seconds = (ms: number): number => ms / 1000;

export interface UnshelveBound {
  readonly boundSeconds: number;
  readonly criticalPathSeconds: number;
  readonly bucketSeconds: number;
  readonly bottleneck: string;
  /** Calls (or instances, for `.instances` buckets) the path requires, per token bucket. */
  readonly calls: Readonly<Record<string, number>>;
  /**
   * The least any client needs: also counts that a call cannot start before the path makes it
   * possible (an attach needs a launched replacement, a root attach a detached fresh root, a
   * start its root); data volumes may attach after the start.
   */
  readonly causalBoundSeconds: number;
}

export const drainSeconds = (action: string, bucket: 'requests' | 'instances', count: number): number => {
  const limits = bucket === 'requests' ? requestLimitsOf(action) : resourceLimitsOf(action);
  if (!limits || count <= limits.capacity) return 0;
  return (count - limits.capacity) / limits.refillPerSecond;
};

/** One step of each path at the simulator's calibrated latencies, in seconds (call + transition). */
const calibratedSteps = () => {
  const l = ec2Latencies('calibrated');
  return {
    mutatingApi: seconds(l.mutatingApiMs),
    launch: seconds(l.runInstancesApiMs + l.launchPendingMs),
    stop: seconds(l.mutatingApiMs + l.stoppingMs),
    detach: seconds(l.mutatingApiMs + l.detachMs),
    attach: seconds(l.mutatingApiMs + l.attachMs),
    startUp: seconds(l.startInstancesApiMs + l.startPendingMs),
  };
};

/** A path's bound from its critical path, its slowest bucket and its causal pipelines. */
const boundOf = (
  critical: number,
  worst: { readonly key: string; readonly seconds: number },
  calls: Readonly<Record<string, number>>,
  pipelines: readonly number[],
): UnshelveBound => ({
  boundSeconds: Math.max(critical, worst.seconds),
  criticalPathSeconds: critical,
  bucketSeconds: worst.seconds,
  bottleneck: worst.key,
  calls,
  causalBoundSeconds: Math.max(critical, worst.seconds, ...pipelines),
});

/** The bucket that needs longest to admit `calls` (`Action.requests` / `Action.instances`). */
const slowestBucket = (calls: Readonly<Record<string, number>>): { key: string; seconds: number } =>
  Object.entries(calls)
    .map(([key, count]) => {
      const [action = '', bucket = 'requests'] = key.split('.');
      return { key, seconds: drainSeconds(action, bucket as 'requests' | 'instances', count) };
    })
    .reduce((a, b) => (b.seconds > a.seconds ? b : a), { key: 'none', seconds: 0 });

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
  const { launch, stop, detach, attach, startUp } = calibratedSteps();
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
  const worst = slowestBucket(calls);
  // After a bucket's last call the path still has to finish. Every attach needs a launched
  // replacement; the last one may be a data volume of a replacement already running.
  const attachPipeline =
    fast > 0
      ? launch + drainSeconds('AttachVolume', 'requests', calls['AttachVolume.requests'] ?? 0) + attach
      : 0;
  // The roots go on only once the fresh roots are off, and each replacement starts after its root.
  const rootPipeline =
    fast > 0 ? launch + stop + detach + drainSeconds('AttachVolume', 'requests', fast) + attach + startUp : 0;
  const detachPipeline =
    fast > 0 ? launch + stop + drainSeconds('DetachVolume', 'requests', fast) + detach + attach + startUp : 0;
  // The last replacement cannot launch before the RunInstances bucket admits its call (one call
  // per replacement when private IPs are kept), and then has its whole path ahead of it.
  const launchPipeline =
    fast > 0 ? drainSeconds('RunInstances', 'requests', calls['RunInstances.requests'] ?? 0) + fastPath : 0;
  return boundOf(critical, worst, calls, [attachPipeline, rootPipeline, detachPipeline, launchPipeline]);
};

/**
 * The snapshot path: one RunInstances per restored instance (each has its own snapshots), then
 * initialization of its largest volume; the instances not restored are started (multi-instance).
 */
export const snapshotBound = (restored: number, started: number, largestVolumeGiB: number): UnshelveBound => {
  const { launch, startUp } = calibratedSteps();
  const restore = restored > 0 ? launch + (largestVolumeGiB * 1024) / LAZY_LOAD_MIB_PER_SECOND : 0;
  const critical = Math.max(restore, started > 0 ? startUp : 0);
  const bucket = drainSeconds('RunInstances', 'requests', restored);
  return {
    boundSeconds: Math.max(critical, bucket),
    criticalPathSeconds: critical,
    bucketSeconds: bucket,
    bottleneck: 'RunInstances.requests',
    calls: {
      'RunInstances.requests': restored,
      'RunInstances.instances': restored,
      'StartInstances.instances': started,
    },
    causalBoundSeconds: Math.max(critical, restored > 0 ? bucket + restore : 0),
  };
};

/**
 * bound_s for the in-place path (issue 19): per offloaded instance RunInstances, its data volumes
 * attached while the replacement runs, then one CreateReplaceRootVolumeTask that reboots it onto
 * the retained root (`swapMs`: the simulator's pending + swap + boot of the task, the swept
 * assumption). Counted: per offloaded instance one CreateTags, dataVolumes AttachVolume, one
 * CreateReplaceRootVolumeTask; RunInstances as for the reattach path; StartInstances for the
 * stopped ones. Cleanup after ready is not counted.
 */
export const inPlaceBound = (path: {
  readonly fast: number;
  readonly start: number;
  readonly dataVolumes: number;
  readonly configurations: number;
  /** The replace-root task from the call to the instance back on the new root. */
  readonly taskMs: number;
}): UnshelveBound => {
  const { fast, start, dataVolumes, configurations } = path;
  const steps = calibratedSteps();
  const { launch, startUp } = steps;
  const attach = dataVolumes > 0 ? steps.attach : 0;
  const replace = steps.mutatingApi + seconds(path.taskMs);
  const inPlacePath = launch + attach + replace;
  const critical = fast > 0 ? inPlacePath : start > 0 ? startUp : 0;
  const calls: Record<string, number> = {
    'RunInstances.requests': fast > 0 ? Math.max(configurations, Math.ceil(fast / 1000)) : 0,
    'RunInstances.instances': fast,
    'StartInstances.requests': start > 0 ? Math.ceil(start / 1000) : 0,
    'StartInstances.instances': start,
    'CreateTags.requests': fast,
    'AttachVolume.requests': fast * dataVolumes,
    'CreateReplaceRootVolumeTask.requests': fast,
  };
  const worst = slowestBucket(calls);
  // The replace of the last instance waits for its data attach and its own bucket token.
  const attachPipeline =
    fast > 0 ? launch + drainSeconds('AttachVolume', 'requests', fast * dataVolumes) + attach + replace : 0;
  const replacePipeline =
    fast > 0 ? launch + attach + drainSeconds('CreateReplaceRootVolumeTask', 'requests', fast) + replace : 0;
  const launchPipeline =
    fast > 0
      ? drainSeconds('RunInstances', 'requests', calls['RunInstances.requests'] ?? 0) + inPlacePath
      : 0;
  return boundOf(critical, worst, calls, [attachPipeline, replacePipeline, launchPipeline]);
};
