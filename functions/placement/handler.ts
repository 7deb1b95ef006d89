import { WARMBOOT } from '../catalog';
import { DynamoImageCacheStore, type ImageCacheStore } from '../image-cache/adapters/store';
import { type HostGroup, loadImageCacheConfig } from '../image-cache/config';
import { type FactPublisher, factPublisher } from '../shared/adapters/facts';
import type { Clock } from '../shared/clock';
import { NotFoundError } from '../shared/errors';
import { EventRegistry, route } from '../shared/event-registry';
import { createLambdaHandler } from '../shared/lambda';
import type { Runtime } from '../shared/runtime';
import { advisePlacement, type PlacementAdvice } from './domain/advise';
import { type AdvisePlacementDetail, advisePlacementDetail } from './schemas';

export interface PlacementDependencies {
  readonly groups: readonly HostGroup[];
  readonly store: Pick<ImageCacheStore, 'loadGroup' | 'getImages'>;
  readonly facts: FactPublisher;
  readonly clock: Clock;
}

/**
 * Reads the group's inventory, asks the pure `advisePlacement`, publishes the advice as a
 * `Placement Advised` fact and, when it chose hosts without the image, a `Plan Cache` request
 * that warms exactly those hosts. A synchronous invoke gets the advice as the result.
 */
export const advise = async (
  deps: PlacementDependencies,
  request: AdvisePlacementDetail,
): Promise<PlacementAdvice> => {
  const group = deps.groups.find((candidate) => candidate.name === request.hostGroup);
  if (!group) throw new NotFoundError(`host group ${request.hostGroup} is not configured (HOST_GROUPS)`);
  const state = await deps.store.loadGroup(group.name);
  const image = (await deps.store.getImages([request.imageId])).get(request.imageId);
  const advice = advisePlacement({
    image: request.imageId,
    count: request.count,
    hostGroup: group.name,
    ...(request.azs ? { azs: request.azs } : {}),
    hosts: state.hosts
      .filter((host) => host.status === 'running')
      .map((host) => {
        const slots = request.freeSlots?.[host.instanceId];
        return {
          instanceId: host.instanceId,
          availabilityZone: host.availabilityZone,
          entries: state.entries.filter((entry) => entry.instanceId === host.instanceId),
          ...(slots !== undefined ? { freeSlots: slots } : {}),
        };
      }),
    ...(image ? { imageBytes: image.sizeBytes } : {}),
    cacheBytes: group.cacheBytes,
    pins: state.pins,
    now: deps.clock.now(),
  });
  await deps.facts.publish([
    {
      detailType: 'Placement Advised',
      detail: { ...advice },
      resources: advice.placements.map((p) => p.instanceId),
    },
    ...(advice.warmHosts.length > 0
      ? [
          {
            detailType: 'Plan Cache',
            detail: {
              hostGroup: group.name,
              warm: [{ imageId: request.imageId, instanceIds: [...advice.warmHosts] }],
            },
          },
        ]
      : []),
  ]);
  return advice;
};

export const placementRegistry = (deps: PlacementDependencies) =>
  new EventRegistry<PlacementAdvice>([
    route(WARMBOOT, 'Advise Placement', advisePlacementDetail, (event) => advise(deps, event.detail)),
  ]);

export const placementDependencies = (runtime: Runtime): PlacementDependencies => {
  const config = loadImageCacheConfig(runtime.env);
  return {
    groups: config.HOST_GROUPS,
    store: new DynamoImageCacheStore(runtime.clients.documents, config.IMAGE_CACHE_TABLE),
    facts: factPublisher(runtime),
    clock: runtime.clock,
  };
};

/** Advice depends on the moment's inventory, so it is not deduplicated by event id. */
export const createPlacementHandler = (runtime: Runtime) =>
  createLambdaHandler(placementRegistry(placementDependencies(runtime)), runtime, { idempotent: false });
