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
  // vitest's `test.env` reaches the test workers, not this process, whose readiness probe uses
  // an SDK client; the SDK would warn that Node 20 is past its support window.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const dynamodb = await startDynamoDbLocal();
  project.provide('dynamodbEndpoint', dynamodb.endpoint);
  return () => dynamodb.stop();
}
