import { IdempotencyConfig } from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import { makeHandlerIdempotent } from '@aws-lambda-powertools/idempotency/middleware';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { eventBridgeFacts, WARMBOOT_SOURCE } from './adapters/facts';
import type { InvocationDeadline } from './deadline';
import type { DispatchResult, EventRegistry } from './event-registry';
import type { Runtime } from './runtime';

export type LambdaHandler<R> = (event: unknown, context: Context) => Promise<DispatchResult<R>>;

export interface LambdaOptions {
  /** Deduplicate on the EventBridge event id (default true). */
  readonly idempotent?: boolean;
  /** How long a completed event id is remembered, seconds (default 1 hour). */
  readonly idempotencyWindowSeconds?: number;
  /** Set from each invocation's context before the handler runs, so the handler's waits can end in time. */
  readonly deadline?: InvocationDeadline;
}

/**
 * The middy + Powertools chain every warmboot function shares: logger with the event id as
 * correlation id, EMF metrics, tracing, idempotency on the event id, then the parser registry.
 * Rejected input is logged, counted and, for operator requests, reported back as a
 * `Request Rejected` fact; it is never retried.
 */
export const createLambdaHandler = <R>(
  registry: EventRegistry<R>,
  runtime: Runtime,
  options: LambdaOptions = {},
): LambdaHandler<R> => {
  const facts = eventBridgeFacts(runtime.clients.events);
  const dispatch = async (event: unknown, context?: Context): Promise<DispatchResult<R>> => {
    options.deadline?.begin(context);
    const outcome = await registry.dispatch(event);
    if (outcome.status === 'ignored') {
      runtime.logger.info('event ignored', { reason: outcome.reason });
    } else if (outcome.status === 'rejected') {
      runtime.logger.error('event rejected', { error: outcome.error });
      runtime.metrics.addMetric('RejectedEvents', MetricUnit.Count, 1);
      await reportRejection(event, outcome.error, facts);
    }
    return outcome;
  };
  const chain = middy(dispatch)
    .use(captureLambdaHandler(runtime.tracer))
    .use(injectLambdaContext(runtime.logger, { correlationIdPath: 'id' }))
    .use(logMetrics(runtime.metrics, { captureColdStartMetric: true }));
  if (options.idempotent !== false && runtime.idempotencyTable) {
    chain.use(
      makeHandlerIdempotent({
        // Several functions receive the same EventBridge event (one rule each); the prefix keeps
        // one function's record of an event id from answering for another's.
        keyPrefix: runtime.functionName,
        persistenceStore: new DynamoDBPersistenceLayer({
          tableName: runtime.idempotencyTable,
          awsSdkV3Client: runtime.clients.dynamodb,
        }),
        config: new IdempotencyConfig({
          eventKeyJmesPath: 'id',
          expiresAfterSeconds: options.idempotencyWindowSeconds ?? 3600,
          throwOnNoIdempotencyKey: false,
        }),
      }),
    );
  }
  return chain as unknown as LambdaHandler<R>;
};

const reportRejection = async (
  event: unknown,
  error: { code: string; field?: string; message: string },
  facts: ReturnType<typeof eventBridgeFacts>,
): Promise<void> => {
  if (typeof event !== 'object' || event === null) return;
  const { source, id } = event as { source?: unknown; id?: unknown };
  const detailType = (event as Record<string, unknown>)['detail-type'];
  if (source !== WARMBOOT_SOURCE || detailType === 'Request Rejected') return;
  await facts.publish([
    {
      detailType: 'Request Rejected',
      detail: { requestId: typeof id === 'string' ? id : null, requestType: detailType ?? null, error },
    },
  ]);
};
