import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { ParsedEvent } from '../../shared/event-registry';
import type { ItemResult } from '../../shared/results';
import type { Ec2InstanceStateChangeDetail, EcsTaskStateChangeDetail } from '../../shared/schemas/aws-events';
import { hourOf } from '../adapters/launch-quota';
import type { PopularityDependencies } from '../dependencies';
import type { LaunchRecord } from '../domain/counters';
import { launchFromEcsTask, launchFromInstance, launchFromOperator } from '../domain/launches';
import type { ImageLaunched } from '../schemas';
import { recordLaunch } from './record-launch';

/** The result for one delivered event; one bad event or container never aborts the others. */
export type LaunchOutcome = ItemResult<{
  /** False when the event was counted before, or carried nothing to count. */
  readonly recorded: boolean;
  readonly images: readonly string[];
  readonly skipped?: readonly {
    readonly container: string;
    readonly error: { code: string; message: string };
  }[];
  readonly ignored?: string;
}>;

const at = (event: ParsedEvent<unknown>): number => Date.parse(event.time);

const notCounted = (event: ParsedEvent<unknown>, ignored?: string): LaunchOutcome => ({
  id: event.id,
  ok: true,
  recorded: false,
  images: [],
  ...(ignored === undefined ? {} : { ignored }),
});

const count = async (
  dependencies: PopularityDependencies,
  event: ParsedEvent<unknown>,
  record: LaunchRecord,
): Promise<LaunchOutcome> => {
  const { recorded } = await recordLaunch(dependencies, record, at(event));
  const launches = record.images.reduce((sum, { count: n }) => sum + n, 0);
  if (recorded) dependencies.metrics.addMetric('LaunchesRecorded', MetricUnit.Count, launches);
  else dependencies.metrics.addMetric('DuplicateLaunchEvents', MetricUnit.Count, 1);
  return { id: event.id, ok: true, recorded, images: record.images.map(({ image }) => image) };
};

/** A queue batch's running instances, described together before each is counted. */
export const prefetchLaunchedInstances = (
  dependencies: PopularityDependencies,
  events: readonly ParsedEvent<Ec2InstanceStateChangeDetail>[],
): Promise<void> =>
  dependencies.instances.prefetch(
    events.filter(({ detail }) => detail.state === 'running').map(({ detail }) => detail['instance-id']),
  );

/** EC2 running: the instance's image, AZ and host group come from EC2 (the event has only its id). */
export const countInstanceLaunch = async (
  dependencies: PopularityDependencies,
  event: ParsedEvent<Ec2InstanceStateChangeDetail>,
): Promise<LaunchOutcome> => {
  if (event.detail.state !== 'running') return notCounted(event, `state ${event.detail.state}`);
  const instanceId = event.detail['instance-id'];
  const facts = await dependencies.instances.lookup(instanceId);
  if (!facts) {
    // EC2 does not know the instance (gone long ago, or not yet visible): nothing to count,
    // and a retry could only land in the DLQ and wake the alarm.
    dependencies.logger.warn('instance unknown to EC2, launch not recorded', { instanceId });
    return notCounted(event, `instance ${instanceId} unknown to EC2`);
  }
  const launch = launchFromInstance(event.id, at(event), facts);
  if (!launch.ok) return { id: event.id, ok: false, error: launch.error };
  return count(dependencies, event, launch.record);
};

/** ECS task RUNNING: every valid container image counts; invalid ones are skipped and named. */
export const countTaskLaunch = async (
  dependencies: PopularityDependencies,
  event: ParsedEvent<EcsTaskStateChangeDetail>,
): Promise<LaunchOutcome> => {
  if (event.detail.lastStatus !== 'RUNNING')
    return notCounted(event, `lastStatus ${event.detail.lastStatus}`);
  const { record, rejected } = launchFromEcsTask(at(event), event.detail);
  const outcome = record ? await count(dependencies, event, record) : notCounted(event);
  return rejected.length > 0 ? { ...outcome, skipped: rejected } : outcome;
};

/** `Image Launched`: counted within the caller's hourly quota (security review H4). */
export const countReportedLaunch = async (
  dependencies: PopularityDependencies,
  event: ParsedEvent<ImageLaunched>,
): Promise<LaunchOutcome> => {
  const caller = event.caller?.principal ?? `${event.caller?.via ?? 'unknown'}:${event.source}`;
  const limit = dependencies.imageLaunchedPerCallerPerHour;
  const allowed = await dependencies.quota.consume(caller, hourOf(at(event)), event.detail.count, limit);
  if (!allowed) {
    dependencies.logger.warn('Image Launched over the caller quota, not counted', { caller });
    return {
      id: event.id,
      ok: false,
      error: {
        code: 'QuotaExceeded',
        message: `${caller} reported more than ${limit} launches this hour (imageLaunchedPerCallerPerHour)`,
      },
    };
  }
  return count(dependencies, event, launchFromOperator(event.id, at(event), event.detail));
};
