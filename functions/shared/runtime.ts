import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { z } from 'zod';
import { type AwsClients, createAwsClients } from './aws-clients';
import { type Clock, systemClock } from './clock';
import { envString, loadConfig } from './config';

/**
 * Everything a handler needs from the outside world. Built once per Lambda execution
 * environment by `productionRuntime()`, or by the local cloud with a virtual clock and the
 * simulator under the same SDK clients.
 */
export interface Runtime {
  /** The deployed function's name: the namespace of its idempotency records. */
  readonly functionName: string;
  readonly clock: Clock;
  readonly random: () => number;
  readonly clients: AwsClients;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly tracer: Tracer;
  /** Name of the Powertools idempotency table; absent disables idempotency (unit tests only). */
  readonly idempotencyTable?: string;
  readonly env: Readonly<Record<string, string | undefined>>;
}

export const METRICS_NAMESPACE = 'Warmboot';

const runtimeEnv = z.object({
  AWS_LAMBDA_FUNCTION_NAME: envString,
  AWS_REGION: envString,
  IDEMPOTENCY_TABLE: envString,
});

let production: Runtime | undefined;

/** The composition root for Lambda: one set of clients per execution environment. */
export const productionRuntime = (serviceName: string): Runtime => {
  if (production) return production;
  const env = loadConfig(runtimeEnv, process.env);
  const tracer = new Tracer({ serviceName });
  const clients = createAwsClients({ region: env.AWS_REGION });
  for (const client of Object.values(clients)) tracer.captureAWSv3Client(client);
  production = {
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    clock: systemClock,
    random: Math.random,
    clients,
    logger: new Logger({ serviceName }),
    metrics: new Metrics({ namespace: METRICS_NAMESPACE, serviceName }),
    tracer,
    idempotencyTable: env.IDEMPOTENCY_TABLE,
    env: process.env,
  };
  return production;
};
