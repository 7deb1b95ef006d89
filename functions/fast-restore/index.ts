import { createEc2Client } from '../shared/aws-clients';
import { productionRuntime } from '../shared/runtime';
import { xrayTracer } from '../shared/tracing';
import { createFastRestoreHandler } from './handler';

export const handler = createFastRestoreHandler(
  productionRuntime('fastRestore', {
    moreClients: (options) => ({ ec2: createEc2Client(options) }),
    tracer: xrayTracer,
  }),
);
