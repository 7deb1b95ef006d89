import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SSMClient } from '@aws-sdk/client-ssm';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { AwsCredentialIdentity, RetryStrategyV2 } from '@smithy/types';
import { type Ec2Budget, paceEc2Calls } from './ec2-budget';
import { productionRetryStrategy } from './retry';

export interface AwsClients {
  readonly ec2: EC2Client;
  readonly ssm: SSMClient;
  readonly dynamodb: DynamoDBClient;
  readonly documents: DynamoDBDocumentClient;
  readonly events: EventBridgeClient;
}

/** The clients every function holds: DynamoDB (its tables, idempotency records) and EventBridge (facts). */
export type BaseClients = Pick<AwsClients, 'dynamodb' | 'documents' | 'events'>;

/** A function's clients: the base ones and the named others it calls. */
export type ClientsWith<K extends Exclude<keyof AwsClients, keyof BaseClients>> = BaseClients &
  Pick<AwsClients, K>;

export interface AwsClientOptions {
  readonly region: string;
  /** Defaults to the adaptive retry strategy from retry.ts. */
  readonly retryStrategy?: RetryStrategyV2;
  /** Explicit credentials (the local cloud passes dummy ones); default: the Lambda role's. */
  readonly credentials?: AwsCredentialIdentity;
  /** Per-service endpoint overrides (the local cloud points DynamoDB at DynamoDB Local). */
  readonly endpoints?: Partial<Record<'ec2' | 'ssm' | 'dynamodb' | 'events', string>>;
  /** Replaces the HTTP handler of DynamoDB (the local cloud counts in-flight requests with it). */
  readonly dynamodbRequestHandler?: DynamoDBClient['config']['requestHandler'];
  /**
   * The account budget every call of the EC2 client takes its tokens from (ec2-budget.ts). Only a
   * client that never reaches EC2's shared buckets may go without one (a test's setup).
   */
  readonly ec2Budget?: Ec2Budget;
}

/**
 * The options every client of one runtime is created with: one retry strategy for all of them,
 * so the adaptive rate limiter sees every throttle the function gets.
 */
export type SharedClientOptions = AwsClientOptions & { readonly retryStrategy: RetryStrategyV2 };

export const sharedClientOptions = (options: AwsClientOptions): SharedClientOptions => ({
  ...options,
  retryStrategy: options.retryStrategy ?? productionRetryStrategy(),
});

const configOf = (
  options: SharedClientOptions,
  service: keyof NonNullable<AwsClientOptions['endpoints']>,
) => ({
  region: options.region,
  retryStrategy: options.retryStrategy,
  ...(options.credentials ? { credentials: options.credentials } : {}),
  ...(options.endpoints?.[service] ? { endpoint: options.endpoints[service] } : {}),
});

/*
 * One factory per client, so a Lambda bundle holds only the SDK clients its entry creates
 * (functions/<fn>/index.ts): an EC2 or SSM client costs hundreds of KB and tens of ms of cold start.
 */

export const createBaseClients = (options: SharedClientOptions): BaseClients => {
  const dynamodb = new DynamoDBClient({
    ...configOf(options, 'dynamodb'),
    ...(options.dynamodbRequestHandler ? { requestHandler: options.dynamodbRequestHandler } : {}),
  });
  return {
    dynamodb,
    documents: DynamoDBDocumentClient.from(dynamodb, {
      marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
    }),
    events: new EventBridgeClient(configOf(options, 'events')),
  };
};

export const createEc2Client = (options: SharedClientOptions): EC2Client => {
  const client = new EC2Client(configOf(options, 'ec2'));
  if (options.ec2Budget) paceEc2Calls(client, options.ec2Budget);
  return client;
};

export const createSsmClient = (options: SharedClientOptions): SSMClient =>
  new SSMClient(configOf(options, 'ssm'));

/**
 * Every SDK client, created once (the local cloud's composition root, whose runtime serves every
 * function), the EC2 client paced by the budget `ec2Budget` builds over the base clients. A Lambda
 * entry creates only its own through `productionRuntime()`.
 */
export const createAwsClients = (
  options: AwsClientOptions,
  ec2Budget?: (base: BaseClients) => Ec2Budget,
): AwsClients => {
  const shared = sharedClientOptions(options);
  const base = createBaseClients(shared);
  const ec2Options = ec2Budget ? { ...shared, ec2Budget: ec2Budget(base) } : shared;
  return { ...base, ec2: createEc2Client(ec2Options), ssm: createSsmClient(shared) };
};
