import { productionRuntime } from '../shared/runtime';
import { createShelvingHandler } from './handler';

export const handler = createShelvingHandler(productionRuntime('shelving'));
