import type { MiddlewareStack } from '@smithy/types';

/** What a simulated service answers: the SDK output shape of the operation, without $metadata. */
export type OperationDispatch = (
  operation: string,
  input: Record<string, unknown>,
) => Promise<Record<string, unknown>>;

/**
 * An AWS service error as the SDK would deserialize it: `name` is the AWS error code, so the
 * SDK's own retry classification and warmboot's aws-errors module see exactly what real AWS
 * would return.
 */
export class SimulatedAwsError extends Error {
  readonly $fault: 'client' | 'server';
  readonly $metadata: { httpStatusCode: number; requestId: string };
  readonly Code: string;
  constructor(
    code: string,
    message: string,
    options: { httpStatusCode?: number; fault?: 'client' | 'server' } = {},
  ) {
    super(message);
    this.name = code;
    this.Code = code;
    this.$fault =
      options.fault ??
      (options.httpStatusCode !== undefined && options.httpStatusCode >= 500 ? 'server' : 'client');
    this.$metadata = { httpStatusCode: options.httpStatusCode ?? 400, requestId: 'local' };
  }
}

let requestCounter = 0;

/**
 * Plugs a simulated service under a real SDK v3 client. The middleware sits at the start of the
 * deserialize step: the real command, serializer, retry strategy and signer run unchanged, and
 * only the HTTP exchange is replaced by a call into the simulator. Production adapters therefore
 * run against the local cloud exactly as they run against AWS.
 */
export const attachSimulator = <Input extends object, Output extends object>(
  client: { middlewareStack: MiddlewareStack<Input, Output> },
  dispatch: OperationDispatch,
): void => {
  client.middlewareStack.add(
    (_next, context) => async (args) => {
      const commandName = String((context as { commandName?: unknown }).commandName ?? '');
      const operation = commandName.replace(/Command$/, '');
      const input = (args as { input: Record<string, unknown> }).input;
      const output = await dispatch(operation, input);
      requestCounter += 1;
      return {
        output: {
          ...output,
          $metadata: { httpStatusCode: 200, requestId: `local-${requestCounter}`, attempts: 1 },
        } as unknown as Output,
        response: { statusCode: 200, headers: {}, body: undefined },
      };
    },
    { step: 'deserialize', priority: 'high', name: 'warmbootLocalCloud', override: true },
  );
};
