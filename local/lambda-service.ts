import type { Context, SQSEvent } from 'aws-lambda';
import { FUNCTIONS, type FunctionId, RULE_DELIVERY_ALIAS } from '../functions/catalog';
import { errorMessage } from '../functions/shared/errors';
import type { EventEnvelope } from './bus';
import type { VirtualClock } from './clock';
import type { IdGenerator } from './ec2/ids';
import { invocationScope } from './faults';
import { lambdaContext } from './lambda-context';

/**
 * A deployed function as Lambda invokes it: an EventBridge event (a rule's asynchronous
 * invocation) or an SQS batch (the event source mapping of its event queue, local/sqs-mapping.ts).
 */
export type FunctionTarget = (event: EventEnvelope | SQSEvent, context: Context) => Promise<unknown>;

/**
 * Creates one execution environment of a function: its own module state (SDK clients, caches,
 * coalescing), as Lambda gives every concurrent invocation its own environment and reuses an idle
 * one for the next invocation (Lambda developer guide, lambda-runtime-environment).
 */
export type EnvironmentFactory = () => FunctionTarget;

export interface FunctionStats {
  /** Every attempt, first attempts and retries alike; one per batch for the event queue. */
  invocations: number;
  /** Attempts that ran past the function's timeout (counted in `errors` too). */
  timeouts: number;
  /** Deliveries (or batches) that waited for a free environment because reserved concurrency was in use. */
  throttled: number;
  /** Events discarded to the dead-letter queue because they aged past the maximum event age. */
  expired: number;
  /** The most invocations that ran at once. */
  peakConcurrency: number;
  /** Execution environments created (cold starts). */
  environments: number;
  succeeded: number;
  /** Attempts that threw (or, for a batch, whose answer Lambda reads as a complete failure). */
  errors: number;
  /** Attempts whose handler was killed by fault injection (counted in `errors` too). */
  crashes: number;
  retries: number;
  deadLettered: number;
}

export const emptyStats = (): FunctionStats => ({
  invocations: 0,
  timeouts: 0,
  throttled: 0,
  expired: 0,
  peakConcurrency: 0,
  environments: 0,
  succeeded: 0,
  errors: 0,
  crashes: 0,
  retries: 0,
  deadLettered: 0,
});

export interface Environment {
  readonly target: FunctionTarget;
  busy: boolean;
}

/**
 * Called, first come first served, when an environment is free: it takes one with `acquire`, or,
 * no longer needing it (an expired delivery), leaves it to the next waiter.
 */
export type EnvironmentWaiter = () => void;

/** How one attempt ended. */
export interface Attempt {
  readonly invocationId: string;
  readonly outcome: 'succeeded' | 'failed' | 'crashed';
  readonly result?: unknown;
  readonly error?: string;
  readonly timedOut: boolean;
}

export interface LambdaFunctionOptions {
  readonly functionId: FunctionId;
  readonly newEnvironment: EnvironmentFactory;
  readonly clock: VirtualClock;
  readonly region: string;
  readonly accountId: string;
  readonly ids: IdGenerator;
  /** Reserved concurrency (`reservedConcurrency`): at most this many invocations at once; unset: unbounded. */
  readonly reservedConcurrency: number | undefined;
  readonly stats: FunctionStats;
}

/**
 * One deployed function's execution environments, shared by every way Lambda invokes it (the
 * async queue of its rules, the event source mapping of its event queue): reserved concurrency
 * bounds them all together (Lambda developer guide, configuration-concurrency: reserved
 * concurrency "sets both the maximum and minimum number of concurrent instances"), and each
 * attempt is timed out on the virtual clock at the catalog's `timeoutSeconds`.
 */
export class LambdaFunction {
  readonly functionId: FunctionId;
  readonly #options: LambdaFunctionOptions;
  readonly #environments: Environment[] = [];
  readonly #waiters: EnvironmentWaiter[] = [];

  constructor(options: LambdaFunctionOptions) {
    this.functionId = options.functionId;
    this.#options = options;
  }

  /** Whether `acquire` would find an environment now. */
  hasRoom(): boolean {
    const limit = this.#options.reservedConcurrency;
    return (
      this.#environments.some((environment) => !environment.busy) ||
      limit === undefined ||
      this.#environments.length < limit
    );
  }

  /** An idle environment, or a new one while reserved concurrency allows; none: throttled. */
  acquire(): Environment | undefined {
    let environment = this.#environments.find((candidate) => !candidate.busy);
    const limit = this.#options.reservedConcurrency;
    if (!environment && (limit === undefined || this.#environments.length < limit)) {
      environment = { target: this.#options.newEnvironment(), busy: false };
      this.#environments.push(environment);
      this.#options.stats.environments += 1;
    }
    if (!environment) return undefined;
    environment.busy = true;
    const running = this.#environments.filter((candidate) => candidate.busy).length;
    this.#options.stats.peakConcurrency = Math.max(this.#options.stats.peakConcurrency, running);
    return environment;
  }

  /** Waits, first come first served, for an environment to free up. Returns a cancel. */
  wait(waiter: EnvironmentWaiter): () => void {
    this.#waiters.push(waiter);
    return () => {
      const index = this.#waiters.indexOf(waiter);
      if (index >= 0) this.#waiters.splice(index, 1);
    };
  }

  /**
   * Runs one attempt in `environment` (from `acquire`) through the rule alias, as every rule and
   * the event source mapping invoke it (infra/function.ts), with the function's timeout: an
   * attempt still running then fails as `Task timed out` and its environment is discarded.
   */
  async run(environment: Environment, event: unknown): Promise<Attempt> {
    const { functionId, clock, stats } = this.#options;
    stats.invocations += 1;
    const invocationId = this.#options.ids.uuid();
    const scope = { functionId, invocationId, awsCalls: 0, killed: false };
    const timeoutSeconds = FUNCTIONS[functionId].timeoutSeconds;
    // getRemainingTimeInMillis counts down from the same timeout enforced below.
    const context = lambdaContext({
      functionId,
      requestId: invocationId,
      clock,
      region: this.#options.region,
      accountId: this.#options.accountId,
      timeoutMs: timeoutSeconds * 1000,
      qualifier: RULE_DELIVERY_ALIAS,
    });
    let timedOut = false;
    let cancelTimeout = (): void => undefined;
    const timeout = new Promise<never>((_, reject) => {
      cancelTimeout = clock.at(clock.now() + timeoutSeconds * 1000, () => {
        timedOut = true;
        // The environment is stopped and discarded: nothing the handler still had in flight
        // reaches AWS (the same fence fault injection uses for a killed process).
        scope.killed = true;
        reject(new Error(`Task timed out after ${timeoutSeconds.toFixed(2)} seconds`));
      });
    });
    timeout.catch(() => undefined);
    const target = environment.target as (event: unknown, context: Context) => Promise<unknown>;
    let attempt: Attempt;
    try {
      const result = await Promise.race([invocationScope.run(scope, () => target(event, context)), timeout]);
      // A handler that swallowed its own death still died: Lambda would have seen the crash.
      attempt = scope.killed
        ? { invocationId, outcome: 'crashed', error: 'handler killed', timedOut }
        : { invocationId, outcome: 'succeeded', result, timedOut };
    } catch (error) {
      attempt = {
        invocationId,
        outcome: scope.killed && !timedOut ? 'crashed' : 'failed',
        error: errorMessage(error),
        timedOut,
      };
    }
    cancelTimeout();
    if (timedOut) {
      stats.timeouts += 1;
      this.#environments.splice(this.#environments.indexOf(environment), 1);
    } else {
      environment.busy = false;
    }
    this.#offer();
    return attempt;
  }

  /** Gives the waiters their turn in order while there is room. */
  #offer(): void {
    while (this.#waiters.length > 0 && this.hasRoom()) this.#waiters.shift()?.();
  }
}
