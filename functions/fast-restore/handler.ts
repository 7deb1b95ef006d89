import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { FSR_STATE_CHANGE, SCHEDULED_EVENT, WARMBOOT } from '../catalog';
import { DynamoPopularityStore } from '../popularity/adapters/dynamodb-popularity-store';
import { loadPopularityConfig } from '../popularity/config';
import { decayParameters } from '../popularity/domain/decay';
import { factPublisher } from '../shared/adapters/facts';
import { EventRegistry, route } from '../shared/event-registry';
import { createLambdaHandler } from '../shared/lambda';
import type { Runtime } from '../shared/runtime';
import { fastSnapshotRestoreStateChangeDetail, scheduledEventDetail } from '../shared/schemas/aws-events';
import { ec2FastRestore } from './adapters/ec2-fast-restore';
import { DynamoFsrRecords } from './adapters/fsr-records';
import { loadFastRestoreConfig } from './config';
import { type FastRestoreDependencies, type FastRestoreRound, runFastRestoreRound } from './round';
import { PLAN_FAST_RESTORE, planFastRestoreSchema } from './schemas';

export type FastRestoreOutcome =
  | FastRestoreRound
  | {
      readonly status: 'state-recorded';
      readonly snapshotId: string;
      readonly availabilityZone: string;
      readonly state: string;
      readonly applied: boolean;
      readonly round?: FastRestoreRound;
    };

export const createFastRestoreRegistry = (
  dependencies: FastRestoreDependencies,
  now: () => number,
): EventRegistry<FastRestoreOutcome> =>
  new EventRegistry<FastRestoreOutcome>([
    route('aws.events', SCHEDULED_EVENT, scheduledEventDetail, () =>
      runFastRestoreRound(dependencies, now(), { dryRun: false }),
    ),
    route(WARMBOOT, PLAN_FAST_RESTORE, planFastRestoreSchema, (event) =>
      runFastRestoreRound(dependencies, now(), { dryRun: event.detail.dryRun }),
    ),
    route('aws.ec2', FSR_STATE_CHANGE, fastSnapshotRestoreStateChangeDetail, async (event) => {
      const pair = { snapshotId: event.detail['snapshot-id'], availabilityZone: event.detail.zone };
      const applied = await dependencies.records.recordState(
        pair,
        event.detail.state,
        Date.parse(event.time),
      );
      const recorded = {
        status: 'state-recorded',
        ...pair,
        state: event.detail.state,
        applied: applied === 'applied',
      } as const;
      // A pair finished disabling: budget is free, so deferred enables can go now.
      if (event.detail.state !== 'disabled' || applied !== 'applied') return recorded;
      return { ...recorded, round: await runFastRestoreRound(dependencies, now(), { dryRun: false }) };
    }),
  ]);

/** The composition root: production adapters over the runtime's clients. */
export const fastRestoreDependencies = (runtime: Runtime): FastRestoreDependencies => {
  const config = loadFastRestoreConfig(runtime.env);
  // Popularity is read with popularity's own settings: same half-life, same shard count.
  const popularity = loadPopularityConfig(runtime.env).settings;
  return {
    ec2: ec2FastRestore(runtime.clients.ec2, config.settings.allowedSnapshotOwners),
    records: new DynamoFsrRecords(runtime.clients.documents, config.imageCacheTable),
    popularity: new DynamoPopularityStore({
      client: runtime.clients.dynamodb,
      tableName: config.popularityTable,
      settings: { decay: decayParameters(popularity.halfLifeHours), shards: popularity.shards },
      dedupeTtlMs: popularity.dedupeTtlHours * 3_600_000,
      sleep: (ms) => runtime.clock.sleep(ms),
      random: runtime.random,
    }),
    facts: factPublisher(runtime),
    metrics: {
      // EMF has no currency unit: USD per hour goes out unit-less, its name says what it is.
      gauge: (name, value) =>
        runtime.metrics.addMetric(
          name,
          name === 'FastRestorePairs' ? MetricUnit.Count : MetricUnit.NoUnit,
          value,
        ),
    },
    logger: runtime.logger,
    settings: config.settings,
    random: runtime.random,
  };
};

export const createFastRestoreHandler = (runtime: Runtime) =>
  createLambdaHandler(
    createFastRestoreRegistry(fastRestoreDependencies(runtime), () => runtime.clock.now()),
    runtime,
  );
