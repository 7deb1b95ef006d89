import { DynamoImageCacheStore, type ImageCacheStore } from '../image-cache/adapters/store';
import type { HostGroup } from '../image-cache/config';
import { type FactPublisher, factPublisher } from '../shared/adapters/facts';
import type { BaseClients } from '../shared/aws-clients';
import type { Clock } from '../shared/clock';
import type { Runtime } from '../shared/runtime';
import { DynamoRecentAdviceStore, type RecentAdviceStore } from './adapters/recent-advice';
import type { PlacementConfig } from './config';

export interface PlacementDependencies {
  readonly groups: readonly HostGroup[];
  readonly store: Pick<ImageCacheStore, 'loadGroup' | 'getImages'>;
  readonly recentAdvice: RecentAdviceStore;
  readonly facts: FactPublisher;
  readonly clock: Clock;
}

/**
 * The composition root: the image cache's table (its group state read only; placement writes
 * only its own advised-weight items there) and the facts bus.
 */
export const placementDependencies = (
  runtime: Runtime<BaseClients>,
  config: PlacementConfig,
): PlacementDependencies => ({
  groups: config.settings.hostGroups,
  store: new DynamoImageCacheStore(runtime.clients.documents, config.tables.imageCache),
  recentAdvice: new DynamoRecentAdviceStore(runtime.clients.documents, config.tables.imageCache),
  facts: factPublisher(runtime),
  clock: runtime.clock,
});
