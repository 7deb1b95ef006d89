import { createHash } from 'node:crypto';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import * as z from 'zod';
import { WARMBOOT } from '../catalog';
import type { BaseClients } from './aws-clients';
import type { Caller } from './caller';
import { checkEnvelope, invocationOf } from './envelope';
import { ValidationError } from './errors';
import { type DispatchResult, parseOrThrow } from './event-registry';
import type { Runtime } from './runtime';

/**
 * The IAM-authenticated entry point (security review, "Target design" 2 and 5): every function
 * that serves operator or administrative requests has a Lambda function URL with auth type
 * `AWS_IAM` on its `requests` alias (infra/function.ts). Lambda authenticates the SigV4 signature
 * and authorizes the caller with its identity policy and the function's resource policy (Lambda
 * developer guide, "Control access to Lambda function URLs"), then hands the function a payload
 * format 2.0 event whose `requestContext.authorizer.iam.userArn` is the caller's ARN (Lambda
 * developer guide, "Invoking Lambda function URLs", request payload). Unlike an EventBridge event,
 * it says who called, so the handler decides here what the caller may do:
 *
 * - The resource policy admits the configured operators and admins, but within one account a
 *   principal whose own IAM policy allows `lambda:InvokeFunctionUrl` (and `lambda:InvokeFunction`)
 *   needs no resource policy at all ("Control access…": same account, identity OR resource policy),
 *   and a Lambda resource policy holds no Deny. So a principal that is neither an operator nor an
 *   admin in REQUEST_CALLERS is refused here (`NotAnOperator`), whatever IAM let through.
 * - An operator may send its configured request types, for its tenants; an admin also every
 *   administrative request the function serves, for every tenant.
 */

/** The alias the function URL belongs to; an invocation through it is a function URL request. */
export const FUNCTION_URL_ALIAS = 'requests';
/** The environment variable holding the function's REQUEST_CALLERS (JSON), written by infra. */
export const REQUEST_CALLERS_ENV = 'REQUEST_CALLERS';
/**
 * A client's idempotency key: a request re-sent with the same key (a retry after a timeout) is
 * answered from the first one's record instead of running again (functions/shared/lambda.ts).
 */
export const REQUEST_ID_HEADER = 'x-warmboot-request-id';
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
/** The response header carrying the id of the event the request became (for logs and support). */
const EVENT_ID_HEADER = 'x-warmboot-event-id';

/** Who may call one function's URL and with what: infra/request-urls.ts writes it per function. */
export const requestCallersSchema = z
  .object({
    operators: z.array(
      z
        .object({
          /** A role or user ARN, or an account root (every principal of that account not named on its own). */
          principal: z.string(),
          /** The request types of this function it may send. */
          requests: z.array(z.string()),
          tenants: z.union([z.literal('*'), z.array(z.string())]),
        })
        .strict(),
    ),
    /** Role or user ARNs: every administrative request of this function, every tenant. */
    admins: z.array(z.string()),
  })
  .strict();
export type RequestCallers = z.output<typeof requestCallersSchema>;

/** An IAM identity as the function compares it: partition, account, kind, name (no path). */
interface Identity {
  readonly partition: string;
  readonly account: string;
  readonly kind: 'role' | 'user' | 'root';
  readonly name: string;
}

const ASSUMED_ROLE = /^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role\/([\w+=,.@-]{1,64})\/[\w+=,.@-]{2,64}$/;
const IAM_IDENTITY =
  /^arn:(aws[a-z-]*):iam::(\d{12}):(?:(root)|(role|user)\/(?:[\w+=,.@/-]*\/)?([\w+=,.@-]{1,64}))$/;

/**
 * The identity behind an ARN. A role session (`arn:aws:sts::<account>:assumed-role/<role>/<session>`,
 * what a caller acting through a role signs as) stands for its role. A session ARN carries the
 * role's name but not its path (IAM User Guide, "IAM identifiers", assumed-role ARNs), so roles are
 * compared by account and name, which is sound because a role's name is unique in its account
 * whatever its path ("IAM identifiers": friendly names are unique within the account). Names are
 * compared as written: a configuration spelling a role's name in another case does not match, and
 * the caller is refused. Anything else (a federated user, another service) has no identity here.
 */
export const identityOf = (arn: string): Identity | undefined => {
  const session = ASSUMED_ROLE.exec(arn);
  if (session) {
    const [, partition, account, name] = session as unknown as [string, string, string, string];
    return { partition, account, kind: 'role', name };
  }
  const iam = IAM_IDENTITY.exec(arn);
  if (!iam) return undefined;
  const [, partition, account, root, kind, name] = iam;
  if (root) return { partition: partition as string, account: account as string, kind: 'root', name: '' };
  return {
    partition: partition as string,
    account: account as string,
    kind: kind as 'role' | 'user',
    name: name as string,
  };
};

/** The path-less IAM ARN of an identity: what `Caller.principal` records. */
export const principalArnOf = (identity: Identity): string =>
  identity.kind === 'root'
    ? `arn:${identity.partition}:iam::${identity.account}:root`
    : `arn:${identity.partition}:iam::${identity.account}:${identity.kind}/${identity.name}`;

const sameIdentity = (a: Identity | undefined, b: Identity): boolean =>
  a !== undefined &&
  a.partition === b.partition &&
  a.account === b.account &&
  a.kind === b.kind &&
  a.name === b.name;

interface UrlCaller {
  readonly caller: Caller;
  /** The request types it may send this function. */
  readonly requestTypes: ReadonlySet<string>;
}

/**
 * Who a function URL caller is to warmboot, or undefined when it is neither an operator nor an
 * admin. An operator named on its own follows its own entry; otherwise the entry of its account's
 * root, if one is configured (as on the request bus, infra/bus-policies.ts). `served`: every request
 * this function serves, which an administrator may all send (it holds the same authority as a
 * direct invoke of the function).
 */
export const urlCallerOf = (
  userArn: string,
  callers: RequestCallers,
  served: ReadonlySet<string>,
): UrlCaller | undefined => {
  const identity = identityOf(userArn);
  if (!identity) return undefined;
  const operator =
    callers.operators.find((entry) => sameIdentity(identityOf(entry.principal), identity)) ??
    callers.operators.find((entry) => {
      const root = identityOf(entry.principal);
      return (
        root?.kind === 'root' && root.partition === identity.partition && root.account === identity.account
      );
    });
  const admin = callers.admins.some((arn) => sameIdentity(identityOf(arn), identity));
  if (!operator && !admin) return undefined;
  return {
    caller: {
      via: 'function-url',
      principal: principalArnOf(identity),
      tenants: admin ? '*' : (operator?.tenants ?? []),
      admin,
    },
    requestTypes: admin ? new Set(served) : new Set(operator?.requests ?? []),
  };
};

/** The parts of a payload format 2.0 event the entry point reads. */
export interface FunctionUrlEvent {
  readonly version: '2.0';
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  readonly isBase64Encoded?: boolean;
  readonly requestContext: {
    readonly http: { readonly method: string };
    readonly authorizer?: { readonly iam?: { readonly userArn?: string } };
  };
}

/** Whether the event has the shape Lambda gives a function URL request (payload format 2.0). */
export const isFunctionUrlEvent = (event: unknown): event is FunctionUrlEvent => {
  if (typeof event !== 'object' || event === null) return false;
  const { version, requestContext } = event as { version?: unknown; requestContext?: unknown };
  return (
    version === '2.0' &&
    typeof requestContext === 'object' &&
    requestContext !== null &&
    typeof (requestContext as { http?: unknown }).http === 'object'
  );
};

/** The qualifier of the ARN a function was invoked by (`…:function:<name>:<qualifier>`), if any. */
export const qualifierOf = (invokedFunctionArn: unknown): string | undefined =>
  typeof invokedFunctionArn === 'string' ? invokedFunctionArn.split(':')[7] : undefined;

/** What a caller POSTs: the request as the detail-type and detail of an EventBridge event. */
const requestBodySchema = z
  .object({
    'detail-type': z.string().min(1).max(128),
    detail: z.record(z.string(), z.unknown()),
  })
  .strict();

/** The request body, parsed; a ValidationError names the field (`body.detail-type`). */
const requestBodyOf = (event: FunctionUrlEvent): z.output<typeof requestBodySchema> => {
  const text =
    event.body === undefined
      ? ''
      : event.isBase64Encoded
        ? Buffer.from(event.body, 'base64').toString('utf8')
        : event.body;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return parseOrThrow(requestBodySchema, undefined, 'body');
  }
  return parseOrThrow(requestBodySchema, json, 'body');
};

/** A header's value; function URL events carry header names in lower case. */
const headerOf = (event: FunctionUrlEvent, name: string): string | undefined => event.headers?.[name];

/**
 * The id of the event a request becomes. With the client's idempotency key, a hash of the caller
 * and the key, so one caller's key can never answer for another's request; without one, Lambda's
 * request id (every invocation is new). UUID-shaped, like an EventBridge event id.
 */
const eventIdOf = (principal: string, clientKey: string | undefined, lambdaRequestId: string): string => {
  if (clientKey === undefined) return lambdaRequestId;
  const hex = createHash('sha256').update(`${principal}\u0000${clientKey}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
};

/** The EventBridge envelope a function URL request is handled as (source `warmboot`). */
const envelopeOfUrlRequest = (request: {
  readonly id: string;
  readonly detailType: string;
  readonly detail: Record<string, unknown>;
  readonly account: string;
  readonly region: string;
  readonly time: string;
}): Record<string, unknown> => ({
  version: '0',
  id: request.id,
  'detail-type': request.detailType,
  source: WARMBOOT,
  account: request.account,
  time: request.time,
  region: request.region,
  resources: [],
  detail: request.detail,
});

/** The HTTP answer a function URL gives the caller (Lambda passes it through as is). */
export interface FunctionUrlResponse {
  readonly statusCode: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

const httpAnswer = (
  statusCode: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): FunctionUrlResponse => ({
  statusCode,
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});

/** Codes that mean "not this caller": 403; any other rejection is the request's fault: 400. */
const FORBIDDEN_CODES = new Set(['NotAnOperator', 'RequestNotAllowed', 'AdminRequestOnly']);

const statusOfRejection = (code: string): number => (FORBIDDEN_CODES.has(code) ? 403 : 400);

/** What a function URL request needs of the handler chain (functions/shared/lambda.ts). */
export interface UrlRequestChain<R> {
  readonly runtime: Runtime<BaseClients>;
  readonly callers: RequestCallers;
  /** The request types the function serves. */
  readonly requestTypes: ReadonlySet<string>;
  /** Runs the envelope the request became through the chain, as `caller`. */
  readonly run: (envelope: Record<string, unknown>, caller: Caller) => Promise<DispatchResult<R>>;
}

/**
 * A function URL request: only through the URL's alias, and only from a configured operator or
 * admin, only with its request types. It becomes the EventBridge envelope a console test event
 * would be and runs through the same chain with its `Caller`; the answer is HTTP.
 */
export const answerUrlRequest = async <R>(
  event: unknown,
  context: Context,
  chain: UrlRequestChain<R>,
): Promise<FunctionUrlResponse> => {
  const { runtime, callers, requestTypes } = chain;
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
    return refuse(400, 'ValidationError', `headers.${REQUEST_ID_HEADER}`, `must match ${REQUEST_ID_PATTERN}`);
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
  const refusal = checkEnvelope(envelope, context.invokedFunctionArn, requestTypes);
  const outcome = refusal ?? (await chain.run(envelope, who.caller));
  const headers = { [EVENT_ID_HEADER]: String(envelope.id) };
  return httpAnswer(
    outcome.status === 'rejected' ? statusOfRejection(outcome.error.code) : 200,
    outcome,
    headers,
  );
};
