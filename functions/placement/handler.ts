import { WARMBOOT } from '../catalog';
import type { BaseClients } from '../shared/aws-clients';
import { EventRegistry, route } from '../shared/event-registry';
import { createHandlerChain } from '../shared/lambda-chain';
import type { Runtime } from '../shared/runtime';
import { advise } from './application/advise';
import { loadPlacementConfig } from './config';
import { type PlacementDependencies, placementDependencies } from './dependencies';
import type { PlacementAdvice } from './domain/advise';
import { advisePlacementDetail } from './schemas';

export const createPlacementRegistry = (deps: PlacementDependencies) =>
  new EventRegistry<PlacementAdvice>([
    route(WARMBOOT, 'Advise Placement', advisePlacementDetail, (event) => advise(deps, event.detail)),
  ]);

/**
 * Advice depends on the moment's inventory, so it is not deduplicated by event id: the chain
 * without idempotency (which it then does not bundle either).
 */
export const createPlacementHandler = (runtime: Runtime<BaseClients>) =>
  createHandlerChain(
    createPlacementRegistry(placementDependencies(runtime, loadPlacementConfig(runtime.env))),
    runtime,
  );
