import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import * as z from 'zod';
import { REQUEST_REJECTED, RULE_DELIVERY_ALIAS, WARMBOOT } from '../catalog';
import { type FactPublisher, factPublisher } from './adapters/facts';
import type { BaseClients } from './aws-clients';
import { type Caller, callerOfEnvelope, isRequestSource } from './caller';
import { envJson, loadConfig } from './config';
import type { InvocationDeadline } from './deadline';
import { checkEnvelope, type EnvelopeRefusal, invocationOf } from './envelope';
import { answerQueueBatch, type BatchItemFailures, isQueueBatch } from './event-batch';
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
 * An invocation's answer: the dispatch result; for a function URL request (functions/shared/
 * function-url.ts) the HTTP response carrying it; for a batch from the function's event queue
 * (functions/shared/event-batch.ts) the messages to deliver again.
 */
export type LambdaHandler<R> = (
  event: unknown,
  context: Context,
) => Promise<DispatchResult<R> | FunctionUrlResponse | BatchItemFailures>;

/** Handles one EventBridge event (an event a rule delivered, one message of a batch, a request). */
export type EventHandler<R> = (event: unknown, context: Context) => Promise<DispatchResult<R>>;

const requestCallersEnv = z.object({
  [REQUEST_CALLERS_ENV]: envJson(requestCallersSchema).default({ operators: [], admins: [] }),
});

export interface ChainOptions {
  /** Set from each invocation's context before the handler runs, so the handler's waits can end in time. */
  readonly deadline?: InvocationDeadline;
  /**
   * Wraps the handling of each event, whether it came alone or in a queue batch
   * (functions/shared/lambda.ts puts idempotency on the event id here).
   */
  readonly perEvent?: <R>(handle: EventHandler<R>) => EventHandler<R>;
}

/**
 * The middy + Powertools chain every warmboot function shares: first the envelope check (an
 * event of another account or Region, or a direct invoke that is not an operator request this
 * function serves, is refused before anything else runs: functions/shared/envelope.ts), then
 * logger with the event id as correlation id, EMF metrics, tracing (where the runtime has a
 * tracer), then each event through `perEvent` to the parser registry; a batch from the event
 * queue runs the chain once and each of its events on its own (functions/shared/event-batch.ts).
 * Rejected input is logged, counted and, for operator requests, reported back as a `Request
 * Rejected` fact; it is never retried. Idempotency on the event id (functions/shared/lambda.ts)
 * comes in as `perEvent`, so a function without it does not bundle it.
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
  const dispatch: EventHandler<R> = async (event, context) => {
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
  const handleEvent = options.perEvent ? options.perEvent(dispatch) : dispatch;
  const handleInvocation = async (
    event: unknown,
    context: Context,
  ): Promise<DispatchResult<R> | BatchItemFailures> => {
    options.deadline?.begin(context);
    if (!isQueueBatch(event)) return handleEvent(event, context);
    return answerQueueBatch(event, context, {
      // Each message is checked as a rule delivery of its own would be.
      refused: (envelope) => {
        const refusal = checkEnvelope(envelope, context.invokedFunctionArn, requestTypes);
        if (refusal) logRefusal(runtime, envelope, refusal);
        return refusal !== undefined;
      },
      handleOne: handleEvent,
      prepare: (envelopes) => registry.prepare(envelopes),
      log: (message, detail) => runtime.logger.warn(message, detail),
    });
  };
  const chain = middy(handleInvocation, { timeoutEarlyInMillis: runtime.timeoutEarlyMs ?? 5 });
  if (runtime.tracer) chain.use(captureLambdaHandler(runtime.tracer));
  chain
    .use(injectLambdaContext(runtime.logger, { correlationIdPath: 'id' }))
    .use(logMetrics(runtime.metrics, { captureColdStartMetric: true }));
  const handled = chain as unknown as typeof handleInvocation;

  return async (event, context) => {
    if (isFunctionUrlEvent(event) || qualifierOf(context?.invokedFunctionArn) === FUNCTION_URL_ALIAS) {
      return answerUrlRequest(event, context, {
        runtime,
        callers,
        requestTypes,
        run: (envelope, caller) => {
          urlCallers.set(envelope, caller);
          // The envelope the URL request became: one event, never a batch.
          return handled(envelope, context) as Promise<DispatchResult<R>>;
        },
      });
    }
    const refusal = isQueueBatch(event)
      ? checkQueueDelivery(context?.invokedFunctionArn)
      : checkEnvelope(event, context?.invokedFunctionArn, requestTypes);
    if (!refusal) return handled(event, context);
    logRefusal(runtime, event, refusal);
    return refusal;
  };
};

/**
 * A queue batch comes only from the event source mapping, which invokes the rule alias
 * (infra/function.ts): the same alias a rule delivers to. Passed any other way it is refused
 * whole; through the alias, each message is still checked on its own.
 */
const checkQueueDelivery = (invokedFunctionArn: unknown): EnvelopeRefusal | undefined =>
  invocationOf(invokedFunctionArn)?.ruleDelivery
    ? undefined
    : {
        status: 'rejected',
        error: {
          code: 'EnvelopeRefused',
          field: 'context.invokedFunctionArn',
          message: `a queue batch arrives only through the ${RULE_DELIVERY_ALIAS} alias's event source mapping`,
        },
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
