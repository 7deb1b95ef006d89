import { createEc2Client, createSsmClient } from '../shared/aws-clients';
import { productionRuntime } from '../shared/runtime';
import { xrayTracer } from '../shared/tracing';
import { createPoolsHandler } from './handler';

export const handler = createPoolsHandler(
  productionRuntime('pools', {
    moreClients: (options) => ({ ec2: createEc2Client(options), ssm: createSsmClient(options) }),
    tracer: xrayTracer,
  }),
);
