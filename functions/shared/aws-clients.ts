import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SSMClient } from '@aws-sdk/client-ssm';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { AwsCredentialIdentity, RetryStrategyV2 } from '@smithy/types';
import { productionRetryStrategy } from './retry';

export interface AwsClients {
  readonly ec2: EC2Client;
  readonly ssm: SSMClient;
  readonly dynamodb: DynamoDBClient;
  readonly documents: DynamoDBDocumentClient;
  readonly events: EventBridgeClient;
}

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
}

/**
 * Creates every SDK client once. Called only from a composition root (the Lambda entry's
 * `productionRuntime()` or the local cloud), then passed into adapters.
 */
export const createAwsClients = (options: AwsClientOptions): AwsClients => {
  const common = {
    region: options.region,
    retryStrategy: options.retryStrategy ?? productionRetryStrategy(),
    ...(options.credentials ? { credentials: options.credentials } : {}),
  };
  const dynamodb = new DynamoDBClient({
    ...common,
    ...(options.endpoints?.dynamodb ? { endpoint: options.endpoints.dynamodb } : {}),
    ...(options.dynamodbRequestHandler ? { requestHandler: options.dynamodbRequestHandler } : {}),
  });
  return {
    ec2: new EC2Client({ ...common, ...(options.endpoints?.ec2 ? { endpoint: options.endpoints.ec2 } : {}) }),
    ssm: new SSMClient({ ...common, ...(options.endpoints?.ssm ? { endpoint: options.endpoints.ssm } : {}) }),
    events: new EventBridgeClient({
      ...common,
      ...(options.endpoints?.events ? { endpoint: options.endpoints.events } : {}),
    }),
    dynamodb,
    documents: DynamoDBDocumentClient.from(dynamodb, {
      marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
    }),
  };
};
