import { limitsOf } from '../functions/shelving/domain/pacer';
import { ec2Latencies } from '../local/latency';

/**
 * The least time any client could need to unshelve a fleet on the EC2 simulator
 * (docs/benchmark-definitions.md, unshelve): the calibrated latencies and the published token
 * buckets warmboot's pacer mirrors (functions/shelving/domain/pacer.ts).
 */

/**
 * EBS "Initialize Amazon EBS volumes": a volume restored from a snapshot reaches full
 * performance only once every block was downloaded from S3. The default rate "fluctuates" and is
 * not published; the fastest rate a user can buy (Provisioned Rate for Volume Initialization) is
 * 300 MiB/s. The penalty modelled is the time to initialize the largest restored volume at that
 * best rate: a lower bound of the real one.
 */
export const LAZY_LOAD_MIB_PER_SECOND = 300;
const SECOND = 1000;

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
  return {
    boundSeconds: Math.max(critical, worst.seconds),
    criticalPathSeconds: critical,
    bucketSeconds: worst.seconds,
    bottleneck: worst.key,
    calls,
    causalBoundSeconds: Math.max(
      critical,
      worst.seconds,
      attachPipeline,
      rootPipeline,
      detachPipeline,
      launchPipeline,
    ),
  };
};

/**
 * The snapshot path: one RunInstances per restored instance (each has its own snapshots), then
 * initialization of its largest volume; the instances not restored are started (multi-instance).
 */
export const snapshotBound = (restored: number, started: number, largestVolumeGiB: number): UnshelveBound => {
  const l = ec2Latencies('calibrated');
  const startUp = (l.startInstancesApiMs + l.startPendingMs) / SECOND;
  const restore =
    restored > 0
      ? (l.runInstancesApiMs + l.launchPendingMs) / SECOND +
        (largestVolumeGiB * 1024) / LAZY_LOAD_MIB_PER_SECOND
      : 0;
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
