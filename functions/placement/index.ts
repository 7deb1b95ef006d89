import { productionRuntime } from '../shared/runtime';
import { createPlacementHandler } from './handler';

export const handler = createPlacementHandler(productionRuntime('placement'));
