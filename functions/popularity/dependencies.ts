import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { factPublisher } from '../shared/adapters/facts';
import type { ClientsWith } from '../shared/aws-clients';
import type { Runtime } from '../shared/runtime';
import { DynamoChangeMarkers, popularityStoreFor } from './adapters/dynamodb-popularity-store';
import {
  CachedInstanceDirectory,
  ec2InstanceDirectory,
  type InstanceFacts,
} from './adapters/instance-directory';
import { DynamoLaunchQuota, type LaunchQuota } from './adapters/launch-quota';
import { RANKING_MAX_AGE_MS, RecentRanking } from './adapters/recent-ranking';
import type { RecordLaunchDependencies } from './application/record-launch';
import type { PopularityConfig } from './config';
import { decayParameters } from './domain/decay';

export interface PopularityDependencies extends RecordLaunchDependencies {
  readonly quota: LaunchQuota;
  readonly imageLaunchedPerCallerPerHour: number;
  readonly instances: {
    lookup(instanceId: string): Promise<InstanceFacts | undefined>;
    prefetch(instanceIds: readonly string[]): Promise<void>;
  };
  readonly metrics: Metrics;
  readonly logger: Pick<Logger, 'warn' | 'info'>;
}

/** The composition root: production adapters over the runtime's clients. */
export const popularityDependencies = (
  runtime: Runtime<ClientsWith<'ec2'>>,
  config: PopularityConfig,
): PopularityDependencies => {
  const { tables, settings } = config;
  const store = popularityStoreFor(runtime, config);
  return {
    store,
    ranking: new RecentRanking(store, decayParameters(settings.halfLifeHours), RANKING_MAX_AGE_MS),
    markers: new DynamoChangeMarkers({ client: runtime.clients.dynamodb, tableName: tables.popularity }),
    quota: new DynamoLaunchQuota({ client: runtime.clients.dynamodb, tableName: tables.popularity }),
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
