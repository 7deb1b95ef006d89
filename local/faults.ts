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

/** A call that takes effect but whose answer the caller never sees (`loseNextResponse`). */
interface LostResponseFault {
  readonly operation?: string;
  readonly code: string;
  readonly message: string;
  readonly httpStatusCode: number;
  remaining: number;
}

interface KillFault {
  readonly functionId?: string;
  /** Only this invocation (its scope); absent: the next invocation of the function that gets there. */
  readonly invocationId?: string;
  readonly afterCalls: number;
  remaining: number;
}

/**
 * Faults for the AWS-call side of the local cloud. The simulators call `beforeCall` first in
 * every operation; the local bus owns event faults (drop, duplicate, delay, reorder).
 */
export class FaultInjector {
  #callFaults: CallFault[] = [];
  #lostResponses: LostResponseFault[] = [];
  #kills: KillFault[] = [];
  #partialLaunches = 0;
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

  /**
   * The next `times` EC2 calls matching `operation` take effect, then answer the given error
   * instead of their result: a server error or timeout after the work was done, the case EC2's
   * client tokens exist for (Run_Instance_Idempotency). Only the EC2 simulator consults this.
   */
  loseNextResponse(
    match: { service: 'ec2'; operation?: string },
    error: { code: string; message?: string; httpStatusCode?: number },
    times = 1,
  ): void {
    this.#lostResponses.push({
      ...(match.operation === undefined ? {} : { operation: match.operation }),
      code: error.code,
      message: error.message ?? `injected ${error.code} after the call took effect`,
      httpStatusCode: error.httpStatusCode ?? 500,
      remaining: times,
    });
  }

  /** The next invocation of `functionId` (any function when absent) dies after `afterCalls` AWS calls. */
  killInvocation(match: { functionId?: string; afterCalls: number }): void {
    this.#kills.push({ ...match, remaining: 1 });
  }

  /**
   * The next `times` RunInstances asking for more than one instance launch only one (capacity ran
   * short: API_RunInstances launches between MinCount and MaxCount), and the invocation that made
   * the call dies right after its next AWS call: it recorded what it got, but not the shortfall
   * (security review C4). A call made outside an invocation only launches short.
   */
  partialLaunchThenCrash(times = 1): void {
    this.#partialLaunches += times;
  }

  /** Called by the EC2 simulator for a RunInstances of more than one instance: launch short now? */
  takePartialLaunch(): boolean {
    if (this.#partialLaunches <= 0) return false;
    this.#partialLaunches -= 1;
    this.#injected += 1;
    const scope = invocationScope.getStore();
    if (scope) {
      // This call counts once beforeCall ran, so after one more call the invocation dies.
      this.#kills.push({
        functionId: scope.functionId,
        invocationId: scope.invocationId,
        afterCalls: scope.awsCalls + 1,
        remaining: 1,
      });
    }
    return true;
  }

  /** How many faults have fired so far. */
  get injected(): number {
    return this.#injected;
  }

  reset(): void {
    this.#callFaults = [];
    this.#lostResponses = [];
    this.#kills = [];
    this.#partialLaunches = 0;
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
          (fault.invocationId === undefined || fault.invocationId === scope.invocationId) &&
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

  /** Called by the EC2 simulator once an operation took effect; throws a lost response's error. */
  afterEc2Call(operation: string): void {
    const fault = this.#lostResponses.find(
      (candidate) =>
        candidate.remaining > 0 && (candidate.operation === undefined || candidate.operation === operation),
    );
    if (!fault) return;
    fault.remaining -= 1;
    this.#lostResponses = this.#lostResponses.filter((candidate) => candidate.remaining > 0);
    this.#injected += 1;
    throw new SimulatedAwsError(fault.code, fault.message, { httpStatusCode: fault.httpStatusCode });
  }
}
