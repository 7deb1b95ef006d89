import { productionRuntime } from '../shared/runtime';
import { createPoolsHandler } from './handler';

export const handler = createPoolsHandler(productionRuntime('pools'));
