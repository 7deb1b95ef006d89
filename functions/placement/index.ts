import { productionRuntime } from '../shared/runtime';
import { createPlacementHandler } from './handler';

// Not traced: a caller may be waiting on the advice (function URL), and its only calls are reads of
// the image cache's table and one fact; Lambda's active tracing still records each invocation.
export const handler = createPlacementHandler(productionRuntime('placement'));
