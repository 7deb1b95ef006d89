import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { Tracer } from '@aws-lambda-powertools/tracer';
import * as z from 'zod';
import {
  type AwsClients,
  type BaseClients,
  createBaseClients,
  type SharedClientOptions,
  sharedClientOptions,
} from './aws-clients';
import { type Clock, systemClock } from './clock';
import { envString, loadConfig } from './config';
import { accountBudgetFromEnv } from './ec2-budget';

/**
 * Everything a handler needs from the outside world. Built once per Lambda execution
 * environment by `productionRuntime()`, or by the local cloud with a virtual clock and the
 * simulator under the same SDK clients. `C` is the set of SDK clients the function uses (the
 * local cloud's runtime has them all).
 */
export interface Runtime<C extends BaseClients = AwsClients> {
  /** The deployed function's name: the namespace of its idempotency records. */
  readonly functionName: string;
  readonly clock: Clock;
  readonly random: () => number;
  readonly clients: C;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /**
   * X-Ray subsegments for the invocation and every SDK call; absent where they do not earn their
   * cold start (placement: Lambda's active tracing still records the invocation itself).
   */
  readonly tracer?: Tracer;
  /** Name of the Powertools idempotency table; absent disables idempotency (unit tests only). */
  readonly idempotencyTable?: string;
  /**
   * How long before Lambda's timeout middy gives up on the handler (its `timeoutEarlyInMillis`,
   * default 5). Middy times it with a real timer; the local cloud, whose invocations run on a
   * virtual clock and whose bus enforces each function's timeout there, sets 0 (off).
   */
  readonly timeoutEarlyMs?: number;
  readonly env: Readonly<Record<string, string | undefined>>;
}

export const METRICS_NAMESPACE = 'Warmboot';

const runtimeEnv = z.object({
  AWS_LAMBDA_FUNCTION_NAME: envString,
  AWS_REGION: envString,
  IDEMPOTENCY_TABLE: envString,
});

let production: Runtime<BaseClients> | undefined;

export interface ProductionOptions<M> {
  /** The SDK clients beyond the base ones the function calls, e.g. `(o) => ({ ec2: createEc2Client(o) })`. */
  readonly moreClients?: (options: SharedClientOptions) => M;
  /** The function's tracer (functions/shared/tracing.ts `xrayTracer`); without it, no X-Ray SDK is bundled. */
  readonly tracer?: (serviceName: string) => Tracer;
}

/**
 * The composition root for Lambda: one set of clients per execution environment. The entry
 * names what its function uses beyond the base clients, so nothing else is bundled.
 */
export const productionRuntime = <M extends object = Record<never, never>>(
  serviceName: string,
  options: ProductionOptions<M> = {},
): Runtime<BaseClients & M> => {
  if (production) return production as Runtime<BaseClients & M>;
  const env = loadConfig(runtimeEnv, process.env);
  const shared = sharedClientOptions({ region: env.AWS_REGION });
  const base = createBaseClients(shared);
  const logger = new Logger({ serviceName });
  // A function that creates more clients than the base ones calls EC2: its calls take their tokens
  // from the account budget (the service name is the function's catalog id).
  const more = options.moreClients?.({
    ...shared,
    ec2Budget: accountBudgetFromEnv(
      serviceName,
      process.env,
      base.documents,
      systemClock,
      Math.random,
      (error) =>
        logger.warn('account budget store failed; pacing this environment alone for a while', { error }),
    ),
  });
  const clients = { ...base, ...more } as BaseClients & M;
  const tracer = options.tracer?.(serviceName);
  if (tracer) for (const client of Object.values(clients)) tracer.captureAWSv3Client(client);
  const runtime: Runtime<BaseClients & M> = {
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    clock: systemClock,
    random: Math.random,
    clients,
    logger,
    metrics: new Metrics({ namespace: METRICS_NAMESPACE, serviceName }),
    ...(tracer ? { tracer } : {}),
    idempotencyTable: env.IDEMPOTENCY_TABLE,
    env: process.env,
  };
  production = runtime;
  return runtime;
};
