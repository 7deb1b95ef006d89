import { createEc2Client } from '../shared/aws-clients';
import { productionRuntime } from '../shared/runtime';
import { xrayTracer } from '../shared/tracing';
import { createPopularityHandler } from './handler';

export const handler = createPopularityHandler(
  productionRuntime('popularity', {
    moreClients: (options) => ({ ec2: createEc2Client(options) }),
    tracer: xrayTracer,
  }),
);
