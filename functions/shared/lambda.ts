import {
  IdempotencyAlreadyInProgressError,
  IdempotencyConfig,
  makeIdempotent,
} from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import type { BaseClients } from './aws-clients';
import { invocationOf } from './envelope';
import type { EventRegistry } from './event-registry';
import { type ChainOptions, createHandlerChain, type LambdaHandler } from './lambda-chain';
import type { Runtime } from './runtime';

export interface LambdaOptions extends Omit<ChainOptions, 'perEvent'> {
  /** Deduplicate on the EventBridge event id (default true). */
  readonly idempotent?: boolean;
  /** How long a completed event id is remembered, seconds (default 1 hour). */
  readonly idempotencyWindowSeconds?: number;
}

/**
 * The shared chain (functions/shared/lambda-chain.ts) with Powertools idempotency on the event
 * id: an event EventBridge (or the event queue) delivers twice is handled once per function. It
 * wraps each event, not the invocation, so every message of a queue batch is its own record.
 */
export const createLambdaHandler = <R>(
  registry: EventRegistry<R>,
  runtime: Runtime<BaseClients>,
  options: LambdaOptions = {},
): LambdaHandler<R> =>
  createHandlerChain(registry, runtime, {
    ...(options.deadline ? { deadline: options.deadline } : {}),
    ...(options.idempotent !== false && runtime.idempotencyTable
      ? {
          perEvent: idempotentOnEventId(runtime, runtime.idempotencyTable, options),
        }
      : {}),
  });

const idempotentOnEventId = (
  runtime: Runtime<BaseClients>,
  tableName: string,
  options: LambdaOptions,
): NonNullable<ChainOptions['perEvent']> => {
  const persistenceStore = new DynamoDBPersistenceLayer({
    tableName,
    awsSdkV3Client: runtime.clients.dynamodb,
  });
  const config = new IdempotencyConfig({
    eventKeyJmesPath: 'id',
    expiresAfterSeconds: options.idempotencyWindowSeconds ?? 3600,
    throwOnNoIdempotencyKey: false,
  });
  // Several functions receive the same EventBridge event (one rule each); the prefix keeps one
  // function's record of an event id from answering for another's. Given the Lambda context as
  // its second argument, the wrapper tracks the invocation's remaining time as the middleware did.
  return (handle) => {
    const idempotent = makeIdempotent(handle, { persistenceStore, config, keyPrefix: runtime.functionName });
    return async (event, context) => {
      try {
        return await idempotent(event, context);
      } catch (error) {
        // A rule delivery is retried by Lambda, later: let it fail. A caller waiting for the answer
        // (a direct invoke, a function URL request) re-sending an event whose earlier attempt is
        // still running, or died before it recorded its answer, gets told so, not a crash.
        if (!(error instanceof IdempotencyAlreadyInProgressError)) throw error;
        if (invocationOf(context?.invokedFunctionArn)?.ruleDelivery !== false) throw error;
        return {
          status: 'rejected',
          error: {
            code: 'RequestInProgress',
            message:
              'an earlier attempt of this request (the same event id) is still running or was interrupted before it ' +
              `answered; send it again once ${runtime.functionName}'s timeout has passed`,
          },
        };
      }
    };
  };
};
