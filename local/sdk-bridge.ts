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

/** An SDK v3 client, as the local cloud plugs middleware into it (the DocumentClient shares its stack). */
export interface SdkClient<Input extends object, Output extends object> {
  readonly middlewareStack: MiddlewareStack<Input, Output>;
}

/** The operation a middleware sees the client send: `RunInstancesCommand` → `RunInstances`. */
export const operationOf = (context: object): string =>
  String((context as { commandName?: unknown }).commandName ?? '').replace(/Command$/, '');

/** The command's input as a middleware sees it (the marshalled one for the DocumentClient). */
export const commandInput = (args: object): Record<string, unknown> =>
  (args as { input: Record<string, unknown> }).input;

let requestCounter = 0;

/**
 * Plugs a simulated service under a real SDK v3 client. The middleware sits at the start of the
 * deserialize step: the real command, serializer, retry strategy and signer run unchanged, and
 * only the HTTP exchange is replaced by a call into the simulator. Production adapters therefore
 * run against the local cloud exactly as they run against AWS.
 */
export const attachSimulator = <Input extends object, Output extends object>(
  client: SdkClient<Input, Output>,
  dispatch: OperationDispatch,
): void => {
  client.middlewareStack.add(
    (_next, context) => async (args) => {
      const output = await dispatch(operationOf(context), commandInput(args));
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
