import { randomUUID } from 'node:crypto';
import { itemErrorOf } from '../../shared/results';
import type { ShelvingDependencies } from '../dependencies';
import type { Decision } from '../domain/actions';
import { ATTACH_STEPS, byAttachPriority } from '../domain/bulk';
import { nextStep } from '../domain/saga';
import { POLL_MS } from '../domain/saga/decisions';
import type { Observation, ShelfRecord } from '../domain/types';
import { claimedCalls, claimedElsewhere, claimFor } from './action-claims';
import { changesRecord, deliverFacts, writeDecision } from './decisions';
import { type DeletionResult, finishDeletion } from './deletion';
import { execute } from './execute';
import { observe } from './observe';
import type { RecordProgress, RoundSummary, Work } from './progress';

/**
 * How long an EC2-event invocation keeps running its record's rounds back to back while the next
 * look is due within SHORT_WAIT_MS. It must cover an in-place swap after the `running` event: the
 * data attach (seconds, no event), then a replace-root-volume task (about 20 s, no event, polled
 * every 2 s) and the budget's queue before it. A cap of 12 rounds stopped such an invocation
 * after nine polls, about 18 s, and left the record to the next 1-minute schedule: at N = 500
 * the last instances were ready ~58 s after their launch against a 46.6 s path.
 */
const EVENT_CHAIN_MS = 45_000;
/** A record due again within this long is waited for inside the invocation. */
const SHORT_WAIT_MS = 10_000;
/**
 * How long a request or schedule invocation keeps following the records it advanced. Their EC2
 * state-change events reach shelving through its batched event queue, and Lambda may wait up to
 * 20 s to invoke a queue with a batching window at low traffic (Lambda DG, "Using Lambda with
 * Amazon SQS"): waiting for them would add that to every launch, stop and start of an unshelve
 * (issue 19 measured 52.6 s → 71.0 s for one in place). Following, the invocation looks at its
 * moving records every FOLLOW_TICK_MS with one observation for all of them. The schedule's
 * follow ends before its next tick, so two reconciles do not follow the same records.
 */
export const FOLLOW_MS = { request: 120_000, schedule: 45_000 } as const;
/** How often a following invocation looks at records waiting on an EC2 transition. */
const FOLLOW_TICK_MS = 2_000;
/**
 * A record the saga wants to look at again within this long is moving (waiting on EC2: a launch,
 * a stop, a start); one due later waits on a timer (an offload, a full host) and is not followed.
 */
const MOVING_WITHIN_MS = POLL_MS;
/** Kept from the invocation's deadline for the last round's calls and writes. */
const FOLLOW_RESERVE_MS = 15_000;
/** However short the waits, an invocation stops after this many rounds. */
const MAX_ROUNDS = 200;
/** A following round that acted on nothing is not repeated sooner than this (no busy loop). */
const MIN_FOLLOW_PAUSE_MS = 500;
/** A round hands out the AttachVolume calls the pacer admits within this long; the rest wait a round. */
const ATTACH_HORIZON_MS = 3_000;
/**
 * Pure transitions a record chains within one round (e.g. stopped → snapshot → shelved) before
 * it must wait for a round of its own; the longest chain the saga has is shorter.
 */
const MAX_TRANSITIONS_PER_ROUND = 6;

const NOTHING_DONE: RoundSummary = { records: [], throttled: 0, acted: 0 };

/** A record another writer changed first: this round leaves it to that writer. */
const changedConcurrently = (record: ShelfRecord): RecordProgress => ({
  recordId: record.recordId,
  step: record.step,
  reason: 'changed concurrently',
});

/**
 * A record whose calls another execution environment claimed and may still be waiting to make
 * (application/action-claims.ts): looked at again when its owner will (the recheck it wrote with
 * the claim), and never sooner than a follower's tick, so this invocation goes on with the record
 * once the calls took effect, or takes them over when the claim lapses, without holding an event's
 * invocation on a call whose effect takes longer (a start, 30 s).
 */
const claimedByAnother = (record: ShelfRecord, now: number): RecordProgress => ({
  recordId: record.recordId,
  step: record.step,
  reason: 'its calls are claimed by another invocation',
  recheckAt: Math.max(record.nextDueAt ?? now + POLL_MS, now + FOLLOW_TICK_MS),
});

const progressOf = (record: ShelfRecord, decision: Decision): RecordProgress => ({
  recordId: record.recordId,
  step: record.step,
  reason: decision.reason,
  recheckAt: decision.recheckAt,
  ...(record.error ? { error: record.error } : {}),
});

/** A record still waiting on EC2 (see MOVING_WITHIN_MS), not finished or resting on a timer. */
const isMoving = (entry: RecordProgress, now: number): boolean =>
  entry.recheckAt !== undefined && entry.recheckAt !== null && entry.recheckAt <= now + MOVING_WITHIN_MS;

/**
 * The shelving round: loads records, observes EC2 once for all of them, asks the pure saga what
 * to do, writes each decision (conditionally) and then applies the actions, grouped into as few
 * EC2 calls as the API allows. One runner per process: it remembers which records have actions
 * still running here, so a concurrent round leaves them alone.
 */
export class RoundRunner {
  readonly #deps: ShelvingDependencies;
  /** Records with actions still running in this process; a concurrent round leaves them alone. */
  readonly #inFlight = new Map<string, symbol>();
  /** This process among the function's execution environments (the claims' owner). */
  readonly #environment = randomUUID();

  constructor(deps: ShelvingDependencies) {
    this.#deps = deps;
  }

  /** An EC2 state change: advance the record the instance belongs to, if any. */
  async onInstanceState(instanceId: string): Promise<RoundSummary> {
    const recordId = await this.#deps.store.recordIdForInstance(instanceId);
    if (!recordId) return NOTHING_DONE;
    const record = await this.#deps.store.get(recordId);
    if (!record) return NOTHING_DONE;
    return this.advance([record]);
  }

  /** The schedule: every record whose time has come (lost events, offload timers, retries). */
  async reconcile(): Promise<RoundSummary> {
    const due = await this.#deps.store.due(this.#deps.clock.now(), this.#deps.settings.reconcileBatch);
    const summary = await this.advance(
      due.filter((record) => record.step !== 'deleting'),
      { followForMs: FOLLOW_MS.schedule },
    );
    const deletions: RecordProgress[] = [];
    for (const record of due.filter((candidate) => candidate.step === 'deleting')) {
      // A deletion whose handling died: finish it, or put the record back to rest.
      const result = await finishDeletion(this.#deps, record).catch(
        (error: unknown): DeletionResult => ({
          recordId: record.recordId,
          ok: false,
          error: itemErrorOf(error),
        }),
      );
      deletions.push({
        recordId: record.recordId,
        step: 'deleting',
        reason: result.ok ? 'deleted' : 'deletion incomplete',
        ...(result.error ? { error: result.error } : {}),
      });
    }
    return { ...summary, records: [...summary.records, ...deletions] };
  }

  /**
   * Rounds back to back (each waiting for its actions) while the records keep getting actions:
   * calls whose effect is visible at once (tags, DeleteOnTermination, attach) chain within one
   * invocation (for up to EVENT_CHAIN_MS). Without `followForMs` a record that waits for an EC2
   * transition resumes on its state-change event; with it (a request, the schedule) the
   * invocation keeps looking at its moving records until they settle, the time is up or the
   * invocation's deadline nears.
   */
  async advance(
    records: readonly ShelfRecord[],
    options: { readonly followForMs?: number } = {},
  ): Promise<RoundSummary> {
    const { clock, store } = this.#deps;
    const following = (options.followForMs ?? 0) > 0;
    const until = clock.now() + (following ? (options.followForMs ?? 0) : EVENT_CHAIN_MS);
    let summary = await this.#round(records);
    const progress = new Map(summary.records.map((entry) => [entry.recordId, entry]));
    let throttled = summary.throttled;
    let next: readonly string[] = records.map((record) => record.recordId);
    for (let pass = 1; pass < MAX_ROUNDS; pass++) {
      const now = clock.now();
      if (following) {
        next = [...progress.values()].filter((entry) => isMoving(entry, now)).map((entry) => entry.recordId);
        if (next.length === 0) break;
      }
      const waitMs = summary.acted > 0 ? 0 : this.#pauseBefore(summary, now, following);
      if (waitMs === undefined) break;
      if (!this.#mayContinue(now + waitMs, until)) break;
      // Volume attach and detach finish in seconds and send no event: wait for them here.
      if (waitMs > 0) await clock.sleep(waitMs);
      const fresh = await store.getMany(next);
      summary = await this.#round(fresh);
      throttled += summary.throttled;
      for (const entry of summary.records) progress.set(entry.recordId, entry);
    }
    return { records: [...progress.values()], throttled, acted: summary.acted };
  }

  /** How long to wait before the next round, or undefined when no record is worth waiting for here. */
  #pauseBefore(summary: RoundSummary, now: number, following: boolean): number | undefined {
    const soonest = Math.min(...summary.records.map((entry) => entry.recheckAt ?? Number.POSITIVE_INFINITY));
    if (soonest <= now + SHORT_WAIT_MS) {
      return Math.max(following ? MIN_FOLLOW_PAUSE_MS : 0, soonest - now);
    }
    if (following && summary.records.some((entry) => isMoving(entry, now))) return FOLLOW_TICK_MS;
    return undefined;
  }

  /** Whether the invocation may start a round at `at`: within its time (follow or chain) and deadline. */
  #mayContinue(at: number, until: number): boolean {
    if (at > until) return false;
    const remaining = this.#deps.deadline?.remainingMs() ?? Number.POSITIVE_INFINITY;
    return remaining - (at - this.#deps.clock.now()) > FOLLOW_RESERVE_MS;
  }

  /**
   * One pass over `records`: observe, decide, write, act; returns once the actions are done. The
   * records stay in-flight until their own calls finish and a concurrent round skips them.
   */
  async #round(records: readonly ShelfRecord[]): Promise<RoundSummary> {
    const active = records.filter((record) => !this.#inFlight.has(record.recordId));
    if (active.length === 0) return NOTHING_DONE;
    // A record is in-flight from the moment a round picks it up: a round that starts while this
    // one still observes must not decide the same record from the same EC2 state and repeat
    // its calls (an attach repeated costs a token and answers VolumeInUse).
    const claim = Symbol('round');
    for (const record of active) this.#inFlight.set(record.recordId, claim);
    // Only this round's own claim is released: a record finished here may already belong to a later round.
    const release = (recordId: string) => {
      if (this.#inFlight.get(recordId) === claim) this.#inFlight.delete(recordId);
    };
    let work: Work[] = [];
    let throttled = 0;
    const onThrottled = () => {
      throttled += 1;
      this.#deps.onThrottle?.();
    };
    try {
      const decided = await this.#decide(active);
      work = decided.work;
      const acting = new Set(work.map((item) => item.record.recordId));
      for (const record of active) if (!acting.has(record.recordId)) release(record.recordId);
      if (work.length > 0) {
        // A record leaves in-flight as soon as its own calls are done, not when the whole round
        // is: one paced call (an attach waiting its turn) must not hold back the records it
        // shares a round with.
        const started = work;
        await execute(this.#deps, started, decided.progress, release, onThrottled).finally(() => {
          for (const item of started) release(item.record.recordId);
        });
      }
      return { records: [...decided.progress.values()], throttled, acted: work.length };
    } catch (error) {
      if (work.length === 0) for (const record of active) release(record.recordId);
      throw error;
    }
  }

  /** Observes `active`, asks the saga and writes each decision; returns the actions to take. */
  async #decide(
    active: readonly ShelfRecord[],
  ): Promise<{ work: Work[]; progress: Map<string, RecordProgress> }> {
    const { clock, settings } = this.#deps;
    const observations = await observe(this.#deps, active);
    const now = clock.now();
    const progress = new Map<string, RecordProgress>();
    const work: Work[] = [];
    const claimsOnly: { record: ShelfRecord; decision: Decision; calls: readonly string[] }[] = [];
    // AttachVolume is the bucket a bulk unshelve waits on: hand out what it admits soon to the
    // records closest to running (the root swap, then the earliest launched), instead of
    // queueing every attach far ahead and making every instance wait for the whole drain.
    const swapping = active.some((record) => ATTACH_STEPS.has(record.step));
    let attachSlots = swapping ? this.#deps.ec2.callSlots?.('AttachVolume', ATTACH_HORIZON_MS) : undefined;
    const ordered = attachSlots === undefined ? active : [...active].sort(byAttachPriority);

    for (const initial of ordered) {
      // Facts a writer wrote but may not have published (it died in between) go out first.
      const delivered = await deliverFacts(this.#deps, initial, now);
      if (!delivered) {
        progress.set(initial.recordId, changedConcurrently(initial));
        continue;
      }
      let record = delivered;
      const observed = observations.get(record.recordId) ?? { volumes: new Map(), snapshots: [] };
      const observation: Observation =
        attachSlots === undefined ? observed : { ...observed, attachSlots: Math.max(0, attachSlots) };
      // Pure transitions chain within one round (e.g. stopped → snapshot → shelved); actions end it.
      for (let hop = 0; hop < MAX_TRANSITIONS_PER_ROUND; hop++) {
        const decision = nextStep(record, observation, now, settings);
        const calls = claimedCalls(decision.actions);
        if (calls.length > 0 && claimedElsewhere(record, calls, this.#environment, now)) {
          progress.set(record.recordId, claimedByAnother(record, now));
          break;
        }
        if (attachSlots !== undefined) {
          attachSlots -= decision.actions.filter((action) => action.kind === 'attach').length;
        }
        const changes = changesRecord(record, decision);
        if (calls.length > 0 && !changes) {
          // Only the claim to write: written with the round's other claims, all at once.
          claimsOnly.push({ record, decision, calls });
          break;
        }
        if (changes) {
          const claim = calls.length > 0 ? claimFor(calls, this.#environment, now) : undefined;
          const written = await writeDecision(this.#deps, record, decision, now, claim);
          if (!written) {
            progress.set(record.recordId, changedConcurrently(record));
            break;
          }
          record = written;
        }
        progress.set(record.recordId, progressOf(record, decision));
        if (decision.actions.length > 0) {
          work.push({ record, actions: decision.actions });
          break;
        }
        if (decision.to === undefined) break;
      }
    }
    const claimed = await Promise.all(
      claimsOnly.map(({ record, decision, calls }) =>
        writeDecision(this.#deps, record, decision, now, claimFor(calls, this.#environment, now)),
      ),
    );
    // In the order decided, not the order DynamoDB answered, and the claimed records back among
    // the others: the calls batch and queue the same way every time.
    claimsOnly.forEach(({ record, decision }, index) => {
      const written = claimed[index];
      if (!written) {
        progress.set(record.recordId, changedConcurrently(record));
        return;
      }
      progress.set(written.recordId, progressOf(written, decision));
      work.push({ record: written, actions: decision.actions });
    });
    const position = new Map(ordered.map((record, index) => [record.recordId, index]));
    work.sort((a, b) => (position.get(a.record.recordId) ?? 0) - (position.get(b.record.recordId) ?? 0));
    return { work, progress };
  }
}
