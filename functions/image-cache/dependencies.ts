import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { popularityStoreFor } from '../popularity/adapters/dynamodb-popularity-store';
import { loadPopularityConfig } from '../popularity/config';
import { decayParameters } from '../popularity/domain/decay';
import { type FactPublisher, factPublisher } from '../shared/adapters/facts';
import type { ClientsWith } from '../shared/aws-clients';
import type { Clock } from '../shared/clock';
import type { Deadline } from '../shared/deadline';
import type { Runtime } from '../shared/runtime';
import { BatchHostDirectory } from './adapters/batch-hosts';
import { ec2HostDirectory, ec2VolumeLinks, type HostDirectory, type VolumeLinks } from './adapters/ec2';
import { type GroupPopularity, groupPopularity } from './adapters/popularity';
import { type CacheCommands, ssmCacheCommands } from './adapters/ssm';
import { DynamoImageCacheStore, type ImageCacheStore } from './adapters/store';
import type { HostGroup, ImageCacheConfig } from './config';

export interface ImageCacheDependencies {
  readonly groups: readonly HostGroup[];
  readonly region: string;
  /** The account the function runs in: what `self` in a group's allowlists stands for. */
  readonly account: string;
  readonly store: ImageCacheStore;
  readonly hosts: HostDirectory & {
    /** A queue batch's instances, looked up together before its events are handled. */
    prefetch?(instanceIds: readonly string[]): Promise<void>;
  };
  readonly commands: CacheCommands;
  readonly volumes: VolumeLinks;
  readonly popularity: GroupPopularity;
  readonly facts: FactPublisher;
  readonly clock: Clock;
  readonly random: () => number;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** The invocation's time left (Lambda context): the wait for a host's agent ends within it. */
  readonly deadline?: Deadline;
}

/** The composition root: production adapters over the runtime's clients, for one account. */
/** Popularity as the planner reads it, with popularity's own settings (same half-life and shards). */
const popularityOf = (runtime: Runtime): GroupPopularity => {
  const config = loadPopularityConfig(runtime.env);
  return groupPopularity(popularityStoreFor(runtime, config), decayParameters(config.settings.halfLifeHours));
};

export const imageCacheDependencies = (
  runtime: Runtime<ClientsWith<'ec2' | 'ssm'>>,
  config: ImageCacheConfig,
  account: string,
): ImageCacheDependencies => ({
  groups: config.settings.hostGroups,
  region: config.settings.region,
  account,
  store: new DynamoImageCacheStore(runtime.clients.documents, config.tables.imageCache),
  hosts: new BatchHostDirectory(ec2HostDirectory(runtime.clients.ec2)),
  commands: ssmCacheCommands(runtime.clients.ssm),
  volumes: ec2VolumeLinks(runtime.clients.ec2),
  popularity: popularityOf(runtime),
  facts: factPublisher(runtime),
  clock: runtime.clock,
  random: runtime.random,
  logger: runtime.logger,
  metrics: runtime.metrics,
});
