import { AsyncLocalStorage } from 'node:async_hooks';
import { SimulatedAwsError } from './sdk-bridge';

/** `dynamodb` only when the cloud was started with `faultsOnDynamodb` (DynamoDB Local is real, not simulated). */
export type SimulatedService = 'ec2' | 'ssm' | 'events' | 'dynamodb';

/** Which Lambda invocation is running, set by the local bus around every handler call. */
export interface InvocationScope {
  readonly functionId: string;
  readonly invocationId: string;
  awsCalls: number;
  /** Once killed, every further AWS call of this invocation fails: a dead process does nothing more. */
  killed: boolean;
}

/** Throws when the current invocation was killed; the DynamoDB transport calls this too. */
export const assertInvocationAlive = (): void => {
  const scope = invocationScope.getStore();
  if (scope?.killed) throw new HandlerKilledError(scope.functionId, scope.awsCalls);
};

export const invocationScope = new AsyncLocalStorage<InvocationScope>();

/** Thrown into a handler to model its process dying between two AWS calls. */
export class HandlerKilledError extends Error {
  constructor(functionId: string, afterCalls: number) {
    super(`handler ${functionId} killed after ${afterCalls} AWS calls`);
    this.name = 'HandlerKilledError';
  }
}

interface CallFault {
  readonly service?: SimulatedService;
  readonly operation?: string;
  readonly code: string;
  readonly message: string;
  readonly httpStatusCode: number;
  remaining: number;
}

interface KillFault {
  readonly functionId?: string;
  readonly afterCalls: number;
  remaining: number;
}

/**
 * Faults for the AWS-call side of the local cloud. The simulators call `beforeCall` first in
 * every operation; the local bus owns event faults (drop, duplicate, delay, reorder).
 */
export class FaultInjector {
  #callFaults: CallFault[] = [];
  #kills: KillFault[] = [];
  #injected = 0;

  /** The next `times` calls matching service/operation fail with the given AWS error code. */
  failNextCall(
    match: { service?: SimulatedService; operation?: string },
    error: { code: string; message?: string; httpStatusCode?: number },
    times = 1,
  ): void {
    this.#callFaults.push({
      ...match,
      code: error.code,
      message: error.message ?? `injected ${error.code}`,
      httpStatusCode: error.httpStatusCode ?? (error.code === 'RequestLimitExceeded' ? 503 : 400),
      remaining: times,
    });
  }

  /** The next invocation of `functionId` (any function when absent) dies after `afterCalls` AWS calls. */
  killInvocation(match: { functionId?: string; afterCalls: number }): void {
    this.#kills.push({ ...match, remaining: 1 });
  }

  /** How many faults have fired so far. */
  get injected(): number {
    return this.#injected;
  }

  reset(): void {
    this.#callFaults = [];
    this.#kills = [];
    this.#injected = 0;
  }

  beforeCall(service: SimulatedService, operation: string): void {
    assertInvocationAlive();
    const scope = invocationScope.getStore();
    if (scope) {
      const kill = this.#kills.find(
        (fault) =>
          fault.remaining > 0 &&
          (fault.functionId === undefined || fault.functionId === scope.functionId) &&
          scope.awsCalls >= fault.afterCalls,
      );
      if (kill) {
        kill.remaining -= 1;
        this.#kills = this.#kills.filter((fault) => fault.remaining > 0);
        this.#injected += 1;
        scope.killed = true;
        throw new HandlerKilledError(scope.functionId, scope.awsCalls);
      }
      scope.awsCalls += 1;
    }
    const fault = this.#callFaults.find(
      (candidate) =>
        candidate.remaining > 0 &&
        (candidate.service === undefined || candidate.service === service) &&
        (candidate.operation === undefined || candidate.operation === operation),
    );
    if (fault) {
      fault.remaining -= 1;
      this.#callFaults = this.#callFaults.filter((candidate) => candidate.remaining > 0);
      this.#injected += 1;
      throw new SimulatedAwsError(fault.code, fault.message, { httpStatusCode: fault.httpStatusCode });
    }
  }
}
