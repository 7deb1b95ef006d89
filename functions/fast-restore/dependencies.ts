import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { popularityStoreFor } from '../popularity/adapters/dynamodb-popularity-store';
import type { PopularityReader } from '../popularity/adapters/popularity-store';
import { loadPopularityConfig } from '../popularity/config';
import { type FactPublisher, factPublisher } from '../shared/adapters/facts';
import type { ClientsWith } from '../shared/aws-clients';
import type { Clock } from '../shared/clock';
import type { Runtime } from '../shared/runtime';
import { ec2FastRestore, type FastRestoreEc2 } from './adapters/ec2-fast-restore';
import { DynamoFsrRecords, type FsrRecordStore } from './adapters/fsr-records';
import type { FastRestoreConfig, FastRestoreSettings } from './config';

export interface FastRestoreDependencies {
  readonly ec2: FastRestoreEc2;
  readonly records: FsrRecordStore;
  readonly popularity: PopularityReader;
  readonly facts: FactPublisher;
  readonly metrics: Metrics;
  readonly logger: Pick<Logger, 'warn' | 'info'>;
  readonly settings: FastRestoreSettings;
  readonly clock: Pick<Clock, 'now'>;
  readonly random: () => number;
}

/** The composition root: production adapters over the runtime's clients. */
export const fastRestoreDependencies = (
  runtime: Runtime<ClientsWith<'ec2'>>,
  config: FastRestoreConfig,
): FastRestoreDependencies => ({
  ec2: ec2FastRestore(runtime.clients.ec2, config.settings.allowedSnapshotOwners),
  records: new DynamoFsrRecords(runtime.clients.documents, config.tables.imageCache),
  // Popularity is read with popularity's own settings: same half-life, same shard count.
  popularity: popularityStoreFor(runtime, loadPopularityConfig(runtime.env)),
  facts: factPublisher(runtime),
  metrics: runtime.metrics,
  logger: runtime.logger,
  settings: config.settings,
  clock: runtime.clock,
  random: runtime.random,
});
