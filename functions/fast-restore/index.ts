import { productionRuntime } from '../shared/runtime';
import { createFastRestoreHandler } from './handler';

export const handler = createFastRestoreHandler(productionRuntime('fastRestore'));
