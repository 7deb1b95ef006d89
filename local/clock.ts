import type { Clock } from '../functions/shared/clock';

interface Timer {
  readonly at: number;
  readonly seq: number;
  readonly fire: () => void;
}

/**
 * A virtual clock that drives a discrete-event simulation of async code.
 *
 * Time only moves when the process has nothing else to do: no real I/O in flight (DynamoDB
 * Local requests are counted through `trackIo`) and no pending microtasks or immediates. Then
 * the earliest timer fires and time jumps to it. Handlers therefore run unmodified: an
 * `await clock.sleep(4800)` inside an SDK call costs 4.8 virtual seconds and no real time.
 */
export class VirtualClock implements Clock {
  #now: number;
  #seq = 0;
  #inflight = 0;
  #progress = 0;
  #timers: Timer[] = [];
  #ioWaiters: (() => void)[] = [];

  constructor(startMs = Date.UTC(2026, 0, 5, 8, 0, 0)) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.at(this.#now + Math.max(0, ms), resolve));
  }

  /**
   * Run `fire` when virtual time reaches `at` (timers at the same instant fire in insertion order).
   * Returns a cancel function: a timer that is no longer needed must not hold time up or move it.
   */
  at(at: number, fire: () => void): () => void {
    this.#progress++;
    const timer = { at: Math.max(at, this.#now), seq: this.#seq++, fire };
    const timers = this.#timers;
    let low = 0;
    let high = timers.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const other = timers[mid] as Timer;
      if (other.at < timer.at || (other.at === timer.at && other.seq < timer.seq)) low = mid + 1;
      else high = mid;
    }
    timers.splice(low, 0, timer);
    return () => {
      const index = this.#timers.indexOf(timer);
      if (index >= 0) this.#timers.splice(index, 1);
    };
  }

  /** Count a real asynchronous operation, so time does not jump while it is in flight. */
  async trackIo<T>(operation: () => Promise<T>): Promise<T> {
    this.#inflight++;
    this.#progress++;
    try {
      return await operation();
    } finally {
      this.#inflight--;
      this.#progress++;
      if (this.#inflight === 0) for (const wake of this.#ioWaiters.splice(0)) wake();
    }
  }

  get pendingTimers(): number {
    return this.#timers.length;
  }

  /** Wait until nothing can make progress without time moving. */
  async settle(): Promise<void> {
    let stableRounds = 0;
    while (stableRounds < 3) {
      if (this.#inflight > 0) {
        await new Promise<void>((resolve) => this.#ioWaiters.push(resolve));
        stableRounds = 0;
        continue;
      }
      const before = this.#progress;
      await new Promise<void>((resolve) => setImmediate(resolve));
      stableRounds = this.#progress === before && this.#inflight === 0 ? stableRounds + 1 : 0;
    }
  }

  /** Fire the next timer, moving time forward to it. Returns false when no timer is left. */
  async step(): Promise<boolean> {
    await this.settle();
    const next = this.#timers.shift();
    if (!next) return false;
    this.#now = Math.max(this.#now, next.at);
    this.#progress++;
    next.fire();
    return true;
  }

  /** Run `task` to completion, advancing virtual time whenever it (and everything else) waits. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    let done = false;
    let value: T | undefined;
    let failure: { error: unknown } | undefined;
    task().then(
      (result) => {
        done = true;
        value = result;
      },
      (error: unknown) => {
        done = true;
        failure = { error };
      },
    );
    for (;;) {
      await this.settle();
      if (done) break;
      if (!(await this.step())) {
        await this.settle();
        if (done) break;
        throw new Error('virtual clock deadlock: the task waits but no timer is pending');
      }
    }
    if (failure) throw failure.error;
    return value as T;
  }

  /** Advance time to `until`, firing every timer due before it. */
  async advanceTo(until: number): Promise<void> {
    for (;;) {
      await this.settle();
      const next = this.#timers[0];
      if (!next || next.at > until) break;
      await this.step();
    }
    this.#now = Math.max(this.#now, until);
    await this.settle();
  }

  async advanceBy(ms: number): Promise<void> {
    await this.advanceTo(this.#now + ms);
  }

  /** Fire timers until none is left (or the limit is reached), e.g. to drain a simulation. */
  async drain(limitMs = Number.POSITIVE_INFINITY): Promise<void> {
    const until = this.#now + limitMs;
    for (;;) {
      await this.settle();
      const next = this.#timers[0];
      if (!next || next.at > until) break;
      await this.step();
    }
  }
}
