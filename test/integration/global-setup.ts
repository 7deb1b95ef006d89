import type { TestProject } from 'vitest/node';
import { startDynamoDbLocal } from '../../local/dynamodb-local';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Endpoint of the DynamoDB Local shared by every test file of the run (`inject('dynamodbEndpoint')`). */
    dynamodbEndpoint: string;
  }
}

/**
 * One DynamoDB Local per test run: a JVM takes seconds to start, tables take milliseconds, so
 * each LocalCloud creates its own uniquely prefixed tables on this shared instance instead.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dynamodb = await startDynamoDbLocal();
  project.provide('dynamodbEndpoint', dynamodb.endpoint);
  return () => dynamodb.stop();
}
