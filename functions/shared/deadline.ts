import type { Clock } from './clock';

/**
 * How much longer the current invocation may keep working. Every wait in a handler (a lease, an
 * SSM agent that has not registered, an instance starting) is bounded by it, so an invocation
 * stops before Lambda's timeout kills it ("Task timed out" counts as an error, is retried and can
 * end in the dead-letter queue: Lambda DG, configuration-timeout and invocation-async-error-handling).
 * Work not finished is left, idempotently, to the next schedule or event.
 */
export interface Deadline {
  /** Milliseconds left before the work must stop (Infinity when nothing bounds it). */
  remainingMs(): number;
}

/** Outside Lambda (unit tests, scripts): nothing bounds the work but the callers' own limits. */
export const NO_DEADLINE: Deadline = { remainingMs: () => Number.POSITIVE_INFINITY };

/**
 * Kept back from Lambda's remaining time for what follows the last wait: the writes that record
 * the outcome, releasing a lease, and the Powertools idempotency record and metrics flush.
 */
const INVOCATION_SAFETY_MARGIN_MS = 10_000;

/**
 * The deadline of the invocation an execution environment is running (Lambda runs one at a time
 * per environment): `begin` is called with each invocation's context, before the handler.
 */
export class InvocationDeadline implements Deadline {
  readonly #clock: Clock;
  readonly #marginMs: number;
  #endsAt = Number.POSITIVE_INFINITY;

  constructor(clock: Clock, marginMs = INVOCATION_SAFETY_MARGIN_MS) {
    this.#clock = clock;
    this.#marginMs = marginMs;
  }

  begin(context: { getRemainingTimeInMillis(): number } | undefined): void {
    this.#endsAt =
      context === undefined
        ? Number.POSITIVE_INFINITY
        : this.#clock.now() + context.getRemainingTimeInMillis() - this.#marginMs;
  }

  remainingMs(): number {
    return this.#endsAt - this.#clock.now();
  }
}

/** As much of `wantedMs` as the deadline still allows, keeping `reserveMs` for what follows. */
export const boundedWait = (deadline: Deadline, wantedMs: number, reserveMs = 0): number =>
  Math.max(0, Math.min(wantedMs, deadline.remainingMs() - reserveMs));
