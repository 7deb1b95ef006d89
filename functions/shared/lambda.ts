import { IdempotencyConfig } from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import { makeHandlerIdempotent } from '@aws-lambda-powertools/idempotency/middleware';
import type { BaseClients } from './aws-clients';
import type { EventRegistry } from './event-registry';
import { type ChainOptions, createHandlerChain, type LambdaHandler } from './lambda-chain';
import type { Runtime } from './runtime';

export interface LambdaOptions extends Omit<ChainOptions, 'inner'> {
  /** Deduplicate on the EventBridge event id (default true). */
  readonly idempotent?: boolean;
  /** How long a completed event id is remembered, seconds (default 1 hour). */
  readonly idempotencyWindowSeconds?: number;
}

/**
 * The shared chain (functions/shared/lambda-chain.ts) with Powertools idempotency on the event
 * id: an event EventBridge delivers twice is handled once per function.
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
          inner: makeHandlerIdempotent({
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
        }
      : {}),
  });
