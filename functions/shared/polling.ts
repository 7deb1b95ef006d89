import { boundedWait, type Deadline, NO_DEADLINE } from './deadline';
import { WarmbootError } from './errors';
import { type PollOptions, pollUntil } from './retry';

/** A wait reached its own limit: what it waited for did not happen in time. */
class WaitTimedOutError extends WarmbootError {
  constructor(what: string, timeoutMs: number) {
    super('Timeout', `timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    this.name = 'WaitTimedOutError';
  }
}

/**
 * The invocation ran out of time before a wait was over (not the wait's own limit): the caller
 * gives the work up to the next invocation, which continues from what was recorded.
 */
export class OutOfTimeError extends Error {
  constructor(what: string) {
    super(`the invocation ran out of time waiting for ${what}`);
    this.name = 'OutOfTimeError';
  }
}

/** `timeoutMs` is the wait's own limit: past it, WaitTimedOutError. */
export interface WaitOptions extends PollOptions {
  /** The invocation's time left: the wait ends `reserveMs` before it, with OutOfTimeError. */
  readonly deadline?: Deadline;
  readonly reserveMs?: number;
}

/**
 * Polls until `poll` answers a value (undefined: not yet) and returns it, for what has no event
 * to wait for (an instance reaching `running`, a command's end, a volume attached).
 */
export const waitFor = async <T>(
  what: string,
  poll: () => Promise<T | undefined>,
  options: WaitOptions,
): Promise<T> => {
  const allowedMs = boundedWait(options.deadline ?? NO_DEADLINE, options.timeoutMs, options.reserveMs);
  const value = await pollUntil(poll, { ...options, timeoutMs: allowedMs });
  if (value !== undefined) return value;
  if (allowedMs < options.timeoutMs) throw new OutOfTimeError(what);
  throw new WaitTimedOutError(what, options.timeoutMs);
};
