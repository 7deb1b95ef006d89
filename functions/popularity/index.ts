import { productionRuntime } from '../shared/runtime';
import { createPopularityHandler } from './handler';

export const handler = createPopularityHandler(productionRuntime('popularity'));
