import { NotFoundError } from '../../shared/errors';
import type { PlacementDependencies } from '../dependencies';
import { advisePlacement, type PlacementAdvice } from '../domain/advise';
import { adviceAdditions, adviceErasAt, recentlyAdvised } from '../domain/recent-advice';
import type { AdvisePlacementDetail } from '../schemas';

/**
 * Reads the group's inventory and placement's own recent advice, asks the pure
 * `advisePlacement`, records the advice against the hosts it chose, publishes the advice as a
 * `Placement Advised` fact and, when it chose hosts without the image, a `Plan Cache` request
 * that warms exactly those hosts. A synchronous invoke gets the advice as the result.
 */
export const advise = async (
  deps: PlacementDependencies,
  request: AdvisePlacementDetail,
): Promise<PlacementAdvice> => {
  const group = deps.groups.find((candidate) => candidate.name === request.hostGroup);
  if (!group) throw new NotFoundError(`host group ${request.hostGroup} is not configured (HOST_GROUPS)`);
  const now = deps.clock.now();
  const [state, images, weights] = await Promise.all([
    deps.store.loadGroup(group.name),
    deps.store.getImages([request.imageId]),
    deps.recentAdvice.weights(group.name, adviceErasAt(now)),
  ]);
  const image = images.get(request.imageId);
  const advised = recentlyAdvised(weights, now);
  // Grouped once: filtering the group's entries per host is quadratic in the group's size.
  const entriesOf = new Map<string, (typeof state.entries)[number][]>();
  for (const entry of state.entries) {
    const list = entriesOf.get(entry.instanceId);
    if (list) list.push(entry);
    else entriesOf.set(entry.instanceId, [entry]);
  }
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
          entries: entriesOf.get(host.instanceId) ?? [],
          recentlyAdvised: advised.get(host.instanceId) ?? 0,
          ...(slots !== undefined ? { freeSlots: slots } : {}),
        };
      }),
    ...(image ? { imageBytes: image.sizeBytes } : {}),
    cacheBytes: group.cacheBytes,
    pins: state.pins,
    now,
  });
  await deps.recentAdvice.add(group.name, adviceAdditions(advice.placements, now));
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
