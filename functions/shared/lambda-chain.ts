import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy, { type MiddlewareObj } from '@middy/core';
import type { Context } from 'aws-lambda';
import * as z from 'zod';
import { REQUEST_REJECTED, WARMBOOT } from '../catalog';
import { type FactPublisher, factPublisher } from './adapters/facts';
import type { BaseClients } from './aws-clients';
import { type Caller, callerOfEnvelope, isRequestSource } from './caller';
import { envJson, loadConfig } from './config';
import type { InvocationDeadline } from './deadline';
import { checkEnvelope, type EnvelopeRefusal, invocationOf } from './envelope';
import type { DispatchResult, EventRegistry } from './event-registry';
import {
  answerUrlRequest,
  FUNCTION_URL_ALIAS,
  type FunctionUrlResponse,
  isFunctionUrlEvent,
  qualifierOf,
  REQUEST_CALLERS_ENV,
  requestCallersSchema,
} from './function-url';
import type { Runtime } from './runtime';

/**
 * An invocation's answer: the dispatch result, or for a function URL request (functions/shared/
 * function-url.ts) the HTTP response carrying it.
 */
export type LambdaHandler<R> = (
  event: unknown,
  context: Context,
) => Promise<DispatchResult<R> | FunctionUrlResponse>;

const requestCallersEnv = z.object({
  [REQUEST_CALLERS_ENV]: envJson(requestCallersSchema).default({ operators: [], admins: [] }),
});

export interface ChainOptions {
  /** Set from each invocation's context before the handler runs, so the handler's waits can end in time. */
  readonly deadline?: InvocationDeadline;
  /** Runs last before the registry (functions/shared/lambda.ts puts idempotency here). */
  readonly inner?: MiddlewareObj;
}

/**
 * The middy + Powertools chain every warmboot function shares: first the envelope check (an
 * event of another account or Region, or a direct invoke that is not an operator request this
 * function serves, is refused before anything else runs: functions/shared/envelope.ts), then
 * logger with the event id as correlation id, EMF metrics, tracing (where the runtime has a
 * tracer), `inner`, then the parser registry. Rejected input is logged, counted and, for
 * operator requests, reported back as a `Request Rejected` fact; it is never retried.
 * Idempotency on the event id (functions/shared/lambda.ts) comes in as `inner`, so a function
 * without it does not bundle it.
 */
export const createHandlerChain = <R>(
  registry: EventRegistry<R>,
  runtime: Runtime<BaseClients>,
  options: ChainOptions = {},
): LambdaHandler<R> => {
  const facts = factPublisher(runtime);
  const requestTypes = new Set(
    registry.accepted.filter(({ source }) => source === WARMBOOT).map(({ detailType }) => detailType),
  );
  const callers = loadConfig(requestCallersEnv, runtime.env)[REQUEST_CALLERS_ENV];
  // The caller of a function URL request, keyed by the envelope the request became: the chain
  // (logger, idempotency) passes that very object on to `dispatch`.
  const urlCallers = new WeakMap<object, Caller>();
  const dispatch = async (event: unknown, context?: Context): Promise<DispatchResult<R>> => {
    options.deadline?.begin(context);
    const invocation = invocationOf(context?.invokedFunctionArn);
    const source = (event as { source?: unknown } | null)?.source;
    const caller =
      urlCallers.get(event as object) ??
      (invocation && isRequestSource(source) ? callerOfEnvelope(source, invocation) : undefined);
    const outcome = await registry.dispatch(event, caller);
    if (outcome.status === 'ignored') {
      runtime.logger.info('event ignored', { reason: outcome.reason });
    } else if (outcome.status === 'rejected') {
      runtime.logger.error('event rejected', { error: outcome.error });
      runtime.metrics.addMetric('RejectedEvents', MetricUnit.Count, 1);
      await reportRejection(event, outcome.error, facts);
    }
    return outcome;
  };
  const chain = middy(dispatch, { timeoutEarlyInMillis: runtime.timeoutEarlyMs ?? 5 });
  if (runtime.tracer) chain.use(captureLambdaHandler(runtime.tracer));
  chain
    .use(injectLambdaContext(runtime.logger, { correlationIdPath: 'id' }))
    .use(logMetrics(runtime.metrics, { captureColdStartMetric: true }));
  if (options.inner) chain.use(options.inner);
  const handled = chain as unknown as (event: unknown, context: Context) => Promise<DispatchResult<R>>;

  return async (event, context) => {
    if (isFunctionUrlEvent(event) || qualifierOf(context?.invokedFunctionArn) === FUNCTION_URL_ALIAS) {
      return answerUrlRequest(event, context, {
        runtime,
        callers,
        requestTypes,
        run: (envelope, caller) => {
          urlCallers.set(envelope, caller);
          return handled(envelope, context);
        },
      });
    }
    const refusal = checkEnvelope(event, context?.invokedFunctionArn, requestTypes);
    if (!refusal) return handled(event, context);
    logRefusal(runtime, event, refusal);
    return refusal;
  };
};

/**
 * A refused envelope is logged and counted here, outside the chain: nothing of the chain ran for
 * it (no idempotency record, no trace segment), so the metric is flushed on its own.
 */
const logRefusal = (runtime: Runtime<BaseClients>, event: unknown, refusal: EnvelopeRefusal): void => {
  const envelope = (typeof event === 'object' && event !== null ? event : {}) as Record<string, unknown>;
  runtime.logger.warn('event refused', {
    error: refusal.error,
    eventId: envelope.id,
    source: envelope.source,
    detailType: envelope['detail-type'],
    account: envelope.account,
    region: envelope.region,
  });
  runtime.metrics.singleMetric().addMetric('RefusedEvents', MetricUnit.Count, 1);
};

/** Only an operator request is answered with a fact: facts between warmboot's functions are not. */
const reportRejection = async (
  event: unknown,
  error: { code: string; field?: string; message: string },
  facts: FactPublisher,
): Promise<void> => {
  if (typeof event !== 'object' || event === null) return;
  const { source, id } = event as { source?: unknown; id?: unknown };
  const detailType = (event as Record<string, unknown>)['detail-type'];
  if (!isRequestSource(source)) return;
  await facts.publish([
    {
      detailType: REQUEST_REJECTED,
      detail: { requestId: typeof id === 'string' ? id : null, requestType: detailType ?? null, error },
    },
  ]);
};
