import type { Context } from 'aws-lambda';
import type { Clock } from '../functions/shared/clock';

export interface LambdaContextOptions {
  readonly functionId: string;
  readonly requestId: string;
  readonly clock: Clock;
  readonly region: string;
  readonly accountId: string;
  /** The function's timeout; `getRemainingTimeInMillis` counts down from it on `clock`. */
  readonly timeoutMs?: number;
  /**
   * The alias the function was invoked through: the bus invokes the rule alias, as every deployed
   * rule does; a direct invoke (the console, `aws lambda invoke`) names the unqualified function.
   */
  readonly qualifier?: string;
}

/** Lambda's default for functions deployed by the stack. */
const DEFAULT_TIMEOUT_MS = 60_000;

/**
 * The Lambda `context` a deployed warmboot function receives, for the local cloud. The remaining
 * time is measured on the virtual clock, so Powertools idempotency's in-progress expiry and any
 * deadline check behave as they would in Lambda.
 */
export const lambdaContext = (options: LambdaContextOptions): Context => {
  const functionName = `warmboot-${options.functionId}`;
  const deadline = options.clock.now() + (options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${options.region}:${options.accountId}:function:${functionName}${
      options.qualifier ? `:${options.qualifier}` : ''
    }`,
    memoryLimitInMB: '512',
    awsRequestId: options.requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `local/[$LATEST]${options.requestId.replaceAll('-', '')}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - options.clock.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
};
