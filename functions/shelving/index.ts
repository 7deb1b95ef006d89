import { createEc2Client } from '../shared/aws-clients';
import { productionRuntime } from '../shared/runtime';
import { xrayTracer } from '../shared/tracing';
import { createShelvingHandler } from './handler';

export const handler = createShelvingHandler(
  productionRuntime('shelving', {
    moreClients: (options) => ({ ec2: createEc2Client(options) }),
    tracer: xrayTracer,
  }),
);
