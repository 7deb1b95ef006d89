import type { TestProject } from 'vitest/node';
import { startDynamoDbLocal } from '../../local/dynamodb-local';
import { synthesizedRolePolicies } from '../../local/iam/policy-source';

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
  // Every LocalCloud evaluates IAM against the synthesized role policies: synthesize them (or
  // find them cached) once here, while the JVM starts, instead of in each test worker.
  const policies = synthesizedRolePolicies();
  const dynamodb = await startDynamoDbLocal();
  try {
    await policies;
  } catch (error) {
    await dynamodb.stop();
    throw error;
  }
  project.provide('dynamodbEndpoint', dynamodb.endpoint);
  return () => dynamodb.stop();
}
