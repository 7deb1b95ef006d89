import { createEc2Client, createSsmClient } from '../shared/aws-clients';
import { productionRuntime } from '../shared/runtime';
import { xrayTracer } from '../shared/tracing';
import { createClaimHandler } from './handler';

export const handler = createClaimHandler(
  productionRuntime('claim', {
    moreClients: (options) => ({ ec2: createEc2Client(options), ssm: createSsmClient(options) }),
    tracer: xrayTracer,
  }),
);
