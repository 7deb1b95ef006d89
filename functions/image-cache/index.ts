import { productionRuntime } from '../shared/runtime';
import { createImageCacheHandler } from './handler';

export const handler = createImageCacheHandler(productionRuntime('imageCache'));
