import { IdempotencyConfig } from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import { makeHandlerIdempotent } from '@aws-lambda-powertools/idempotency/middleware';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { z } from 'zod';
import { REQUEST_REJECTED, WARMBOOT } from '../catalog';
import { type FactPublisher, factPublisher } from './adapters/facts';
import { type Caller, callerOfEnvelope, isRequestSource } from './caller';
import { envJson, loadConfig } from './config';
import type { InvocationDeadline } from './deadline';
import { checkEnvelope, type EnvelopeRefusal, invocationOf } from './envelope';
import { ValidationError } from './errors';
import type { DispatchResult, EventRegistry } from './event-registry';
import {
  EVENT_ID_HEADER,
  envelopeOfUrlRequest,
  eventIdOf,
  FUNCTION_URL_ALIAS,
  type FunctionUrlResponse,
  headerOf,
  httpAnswer,
  isFunctionUrlEvent,
  qualifierOf,
  REQUEST_CALLERS_ENV,
  REQUEST_ID_HEADER,
  REQUEST_ID_PATTERN,
  requestBodyOf,
  requestCallersSchema,
  statusOfRejection,
  urlCallerOf,
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

export interface LambdaOptions {
  /** Deduplicate on the EventBridge event id (default true). */
  readonly idempotent?: boolean;
  /** How long a completed event id is remembered, seconds (default 1 hour). */
  readonly idempotencyWindowSeconds?: number;
  /** Set from each invocation's context before the handler runs, so the handler's waits can end in time. */
  readonly deadline?: InvocationDeadline;
}

/**
 * The middy + Powertools chain every warmboot function shares: first the envelope check (an
 * event of another account or Region, or a direct invoke that is not an operator request this
 * function serves, is refused before anything else runs: functions/shared/envelope.ts), then
 * logger with the event id as correlation id, EMF metrics, tracing, idempotency on the event id,
 * then the parser registry. Rejected input is logged, counted and, for operator requests,
 * reported back as a `Request Rejected` fact; it is never retried.
 */
export const createLambdaHandler = <R>(
  registry: EventRegistry<R>,
  runtime: Runtime,
  options: LambdaOptions = {},
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
  const handled = chain as unknown as (event: unknown, context: Context) => Promise<DispatchResult<R>>;

  /**
   * A function URL request: only through the URL's alias, and only from a configured operator or
   * admin, only with its request types. It becomes the EventBridge envelope a console test event
   * would be and runs through the same chain with its `Caller`; the answer is HTTP.
   */
  const answerUrlRequest = async (event: unknown, context: Context): Promise<FunctionUrlResponse> => {
    const refuse = (status: number, code: string, field: string, message: string): FunctionUrlResponse => {
      // Nothing of the chain ran (no idempotency record, no fact): logged and counted here.
      const userArn = isFunctionUrlEvent(event) ? event.requestContext.authorizer?.iam?.userArn : undefined;
      runtime.logger.warn('request refused', {
        via: 'function-url',
        callerArn: userArn,
        code,
        field,
        message,
      });
      runtime.metrics.singleMetric().addMetric('RefusedEvents', MetricUnit.Count, 1);
      return httpAnswer(status, { status: 'rejected', error: { code, field, message } });
    };
    const invocation = invocationOf(context?.invokedFunctionArn);
    if (
      !isFunctionUrlEvent(event) ||
      !invocation ||
      qualifierOf(context.invokedFunctionArn) !== FUNCTION_URL_ALIAS
    ) {
      // A URL-shaped event invoked any other way, or anything else invoked through the URL's alias,
      // was passed by someone calling lambda:Invoke with a payload of their choosing.
      return refuse(
        400,
        'EnvelopeRefused',
        'requestContext',
        `function URL requests arrive only through the ${FUNCTION_URL_ALIAS} alias's function URL, and that alias serves nothing else`,
      );
    }
    if (event.requestContext.http.method !== 'POST') {
      return refuse(405, 'MethodNotAllowed', 'requestContext.http.method', 'send requests with POST');
    }
    const userArn = event.requestContext.authorizer?.iam?.userArn;
    const who = userArn === undefined ? undefined : urlCallerOf(userArn, callers, requestTypes);
    if (!who) {
      return refuse(
        403,
        'NotAnOperator',
        'requestContext.authorizer.iam.userArn',
        `${userArn ?? 'an unsigned caller'} is neither an operator nor an admin of warmboot (settings: operators, admins)`,
      );
    }
    let body: ReturnType<typeof requestBodyOf>;
    try {
      body = requestBodyOf(event);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      return refuse(400, error.code, error.field, error.message);
    }
    const detailType = body['detail-type'];
    if (!who.requestTypes.has(detailType)) {
      return refuse(
        403,
        'RequestNotAllowed',
        'body.detail-type',
        `${who.caller.principal} may not send ${detailType} to this function; it may send: ${[...who.requestTypes].sort().join(', ') || 'nothing'}`,
      );
    }
    const clientKey = headerOf(event, REQUEST_ID_HEADER);
    if (clientKey !== undefined && !REQUEST_ID_PATTERN.test(clientKey)) {
      return refuse(
        400,
        'ValidationError',
        `headers.${REQUEST_ID_HEADER}`,
        `must match ${REQUEST_ID_PATTERN}`,
      );
    }
    const envelope = envelopeOfUrlRequest({
      id: eventIdOf(who.caller.principal ?? '', clientKey, context.awsRequestId),
      detailType,
      detail: body.detail,
      account: invocation.account,
      region: invocation.region,
      time: new Date(runtime.clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    });
    // Audit (security review, "Target design" 5): EventBridge never says who put an event; a
    // function URL does, so every accepted request is logged with its caller.
    runtime.logger.info('request accepted', {
      via: 'function-url',
      principal: who.caller.principal,
      callerArn: userArn,
      admin: who.caller.admin,
      tenants: who.caller.tenants,
      detailType,
      eventId: envelope.id,
    });
    urlCallers.set(envelope, who.caller);
    const refusal = checkEnvelope(envelope, context.invokedFunctionArn, requestTypes);
    const outcome = refusal ?? (await handled(envelope, context));
    const headers = { [EVENT_ID_HEADER]: String(envelope.id) };
    return httpAnswer(
      outcome.status === 'rejected' ? statusOfRejection(outcome.error.code) : 200,
      outcome,
      headers,
    );
  };

  return async (event, context) => {
    if (isFunctionUrlEvent(event) || qualifierOf(context?.invokedFunctionArn) === FUNCTION_URL_ALIAS) {
      return answerUrlRequest(event, context);
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
const logRefusal = (runtime: Runtime, event: unknown, refusal: EnvelopeRefusal): void => {
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
