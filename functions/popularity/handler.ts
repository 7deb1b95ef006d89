import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { MetricUnit as MetricUnitValue } from '@aws-lambda-powertools/metrics/types';
import { EC2_STATE_CHANGE, ECS_TASK_STATE, WARMBOOT } from '../catalog';
import { factPublisher } from '../shared/adapters/facts';
import { EventRegistry, type ParsedEvent, route } from '../shared/event-registry';
import { createLambdaHandler } from '../shared/lambda';
import type { Runtime } from '../shared/runtime';
import { ec2InstanceStateChangeDetail, ecsTaskStateChangeDetail } from '../shared/schemas/aws-events';
import { DynamoChangeMarkers, DynamoPopularityStore } from './adapters/dynamodb-popularity-store';
import {
  CachedInstanceDirectory,
  ec2InstanceDirectory,
  type InstanceFacts,
} from './adapters/instance-directory';
import { DynamoLaunchQuota, hourOf, type LaunchQuota } from './adapters/launch-quota';
import { loadPopularityConfig } from './config';
import type { LaunchRecord } from './domain/counters';
import { decayParameters } from './domain/decay';
import { launchFromEcsTask, launchFromInstance, launchFromOperator } from './domain/launches';
import { type RecordLaunchDependencies, recordLaunch } from './record-launch';
import { IMAGE_LAUNCHED, imageLaunchedSchema } from './schemas';

/** The result for one delivered event; one bad event or container never aborts the others. */
export type LaunchOutcome =
  | {
      readonly id: string;
      readonly ok: true;
      /** False when the event was counted before, or carried nothing to count. */
      readonly recorded: boolean;
      readonly images: readonly string[];
      readonly skipped?: readonly {
        readonly container: string;
        readonly error: { code: string; message: string };
      }[];
      readonly ignored?: string;
    }
  | {
      readonly id: string;
      readonly ok: false;
      readonly error: { readonly code: string; readonly message: string };
    };

export interface PopularityDependencies extends RecordLaunchDependencies {
  readonly quota: LaunchQuota;
  readonly imageLaunchedPerCallerPerHour: number;
  readonly instances: { lookup(instanceId: string): Promise<InstanceFacts | undefined> };
  readonly metrics: { addMetric(name: string, unit: MetricUnitValue, value: number): unknown };
  readonly logger: Pick<Runtime['logger'], 'warn' | 'info'>;
}

const at = (event: ParsedEvent<unknown>): number => Date.parse(event.time);

export const createPopularityRegistry = (
  dependencies: PopularityDependencies,
): EventRegistry<LaunchOutcome> => {
  const count = async (event: ParsedEvent<unknown>, record: LaunchRecord): Promise<LaunchOutcome> => {
    const { recorded } = await recordLaunch(dependencies, record, at(event));
    const launches = record.images.reduce((sum, { count: n }) => sum + n, 0);
    if (recorded) dependencies.metrics.addMetric('LaunchesRecorded', MetricUnit.Count, launches);
    else dependencies.metrics.addMetric('DuplicateLaunchEvents', MetricUnit.Count, 1);
    return { id: event.id, ok: true, recorded, images: record.images.map(({ image }) => image) };
  };

  return new EventRegistry<LaunchOutcome>([
    route('aws.ec2', EC2_STATE_CHANGE, ec2InstanceStateChangeDetail, async (event) => {
      if (event.detail.state !== 'running')
        return {
          id: event.id,
          ok: true,
          recorded: false,
          images: [],
          ignored: `state ${event.detail.state}`,
        };
      const instanceId = event.detail['instance-id'];
      const facts = await dependencies.instances.lookup(instanceId);
      if (!facts) {
        // EC2 does not know the instance (gone long ago, or not yet visible): nothing to count,
        // and a retry could only land in the DLQ and wake the alarm.
        dependencies.logger.warn('instance unknown to EC2, launch not recorded', { instanceId });
        return {
          id: event.id,
          ok: true,
          recorded: false,
          images: [],
          ignored: `instance ${instanceId} unknown to EC2`,
        };
      }
      const record = launchFromInstance(event.id, at(event), facts);
      if (!('eventId' in record)) return { id: event.id, ok: false, error: record };
      return count(event, record);
    }),
    route('aws.ecs', ECS_TASK_STATE, ecsTaskStateChangeDetail, async (event) => {
      if (event.detail.lastStatus !== 'RUNNING')
        return {
          id: event.id,
          ok: true,
          recorded: false,
          images: [],
          ignored: `lastStatus ${event.detail.lastStatus}`,
        };
      const { record, rejected } = launchFromEcsTask(at(event), event.detail);
      const outcome = record
        ? await count(event, record)
        : ({ id: event.id, ok: true, recorded: false, images: [] } as const);
      return rejected.length > 0 ? { ...outcome, skipped: rejected } : outcome;
    }),
    route(WARMBOOT, IMAGE_LAUNCHED, imageLaunchedSchema, async (event) => {
      const caller = event.caller?.principal ?? `${event.caller?.via ?? 'unknown'}:${event.source}`;
      const allowed = await dependencies.quota.consume(
        caller,
        hourOf(at(event)),
        event.detail.count,
        dependencies.imageLaunchedPerCallerPerHour,
      );
      if (!allowed) {
        dependencies.logger.warn('Image Launched over the caller quota, not counted', { caller });
        return {
          id: event.id,
          ok: false,
          error: {
            code: 'QuotaExceeded',
            message: `${caller} reported more than ${dependencies.imageLaunchedPerCallerPerHour} launches this hour (imageLaunchedPerCallerPerHour)`,
          },
        };
      }
      return count(event, launchFromOperator(event.id, at(event), event.detail));
    }),
  ]);
};

/** The composition root: production adapters over the runtime's clients. */
export const popularityDependencies = (runtime: Runtime): PopularityDependencies => {
  const { popularityTable, settings } = loadPopularityConfig(runtime.env);
  const counterSettings = { decay: decayParameters(settings.halfLifeHours), shards: settings.shards };
  return {
    store: new DynamoPopularityStore({
      client: runtime.clients.dynamodb,
      tableName: popularityTable,
      settings: counterSettings,
      dedupeTtlMs: settings.dedupeTtlHours * 3_600_000,
      sleep: (ms) => runtime.clock.sleep(ms),
      random: runtime.random,
    }),
    markers: new DynamoChangeMarkers({ client: runtime.clients.dynamodb, tableName: popularityTable }),
    quota: new DynamoLaunchQuota({ client: runtime.clients.dynamodb, tableName: popularityTable }),
    imageLaunchedPerCallerPerHour: settings.imageLaunchedPerCallerPerHour,
    facts: factPublisher(runtime),
    instances: new CachedInstanceDirectory(
      ec2InstanceDirectory(runtime.clients.ec2),
      settings.instanceCacheSize,
      () => runtime.clock.sleep(0),
    ),
    logger: runtime.logger,
    metrics: runtime.metrics,
    topK: settings.topK,
    scoreThreshold: settings.scoreThreshold,
    changedMinIntervalMs: settings.changedMinIntervalSeconds * 1000,
    localGate: new Map(),
  };
};

export const createPopularityHandler = (runtime: Runtime) =>
  createLambdaHandler(createPopularityRegistry(popularityDependencies(runtime)), runtime);
