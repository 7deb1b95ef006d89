import { productionRuntime } from '../shared/runtime';
import { createClaimHandler } from './handler';

export const handler = createClaimHandler(productionRuntime('claim'));
