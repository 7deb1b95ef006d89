import { itemErrorOf } from '../../shared/results';
import type { ShelvingDependencies } from '../dependencies';
import { ATTACH_STEPS, byAttachPriority } from '../domain/bulk';
import { nextStep } from '../domain/saga';
import type { Observation, ShelfRecord } from '../domain/types';
import { changesRecord, writeDecision } from './decisions';
import { type DeletionResult, finishDeletion } from './deletion';
import { execute } from './execute';
import { observe } from './observe';
import type { RecordProgress, RoundSummary, Work } from './progress';

/** Rounds one invocation runs back to back while its records keep getting actions. */
const MAX_ROUNDS_PER_INVOCATION = 12;
/** A record due again within this long is waited for inside the invocation. */
const SHORT_WAIT_MS = 10_000;
/** A round hands out the AttachVolume calls the pacer admits within this long; the rest wait a round. */
const ATTACH_HORIZON_MS = 3_000;
/**
 * Pure transitions a record chains within one round (e.g. stopped → snapshot → shelved) before
 * it must wait for a round of its own; the longest chain the saga has is shorter.
 */
const MAX_TRANSITIONS_PER_ROUND = 6;

const NOTHING_DONE: RoundSummary = { records: [], throttled: 0, acted: 0 };

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
    const summary = await this.advance(due.filter((record) => record.step !== 'deleting'));
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
   * invocation; a record that waits for an EC2 transition resumes on its state-change event.
   */
  async advance(records: readonly ShelfRecord[]): Promise<RoundSummary> {
    const { clock, store } = this.#deps;
    let summary = await this.#round(records);
    const progress = new Map(summary.records.map((entry) => [entry.recordId, entry]));
    let throttled = summary.throttled;
    for (let pass = 1; pass < MAX_ROUNDS_PER_INVOCATION; pass++) {
      if (summary.acted === 0) {
        // Volume attach and detach finish in seconds and send no event: wait for them here.
        const now = clock.now();
        const soonest = Math.min(
          ...summary.records.map((entry) => entry.recheckAt ?? Number.POSITIVE_INFINITY),
        );
        if (!(soonest <= now + SHORT_WAIT_MS)) break;
        await clock.sleep(Math.max(0, soonest - now));
      }
      const fresh = await store.getMany(records.map((record) => record.recordId));
      summary = await this.#round(fresh);
      throttled += summary.throttled;
      for (const entry of summary.records) progress.set(entry.recordId, entry);
    }
    return { records: [...progress.values()], throttled, acted: summary.acted };
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
    // AttachVolume is the bucket a bulk unshelve waits on: hand out what it admits soon to the
    // records closest to running (the root swap, then the earliest launched), instead of
    // queueing every attach far ahead and making every instance wait for the whole drain.
    const swapping = active.some((record) => ATTACH_STEPS.has(record.step));
    let attachSlots = swapping ? this.#deps.ec2.attachSlots?.(ATTACH_HORIZON_MS) : undefined;
    const ordered = attachSlots === undefined ? active : [...active].sort(byAttachPriority);

    for (const initial of ordered) {
      let record = initial;
      const observed = observations.get(record.recordId) ?? { volumes: new Map(), snapshots: [] };
      const observation: Observation =
        attachSlots === undefined ? observed : { ...observed, attachSlots: Math.max(0, attachSlots) };
      // Pure transitions chain within one round (e.g. stopped → snapshot → shelved); actions end it.
      for (let hop = 0; hop < MAX_TRANSITIONS_PER_ROUND; hop++) {
        const decision = nextStep(record, observation, now, settings);
        if (attachSlots !== undefined) {
          attachSlots -= decision.actions.filter((action) => action.kind === 'attach').length;
        }
        if (changesRecord(record, decision)) {
          const written = await writeDecision(this.#deps, record, decision, now);
          if (!written) {
            progress.set(record.recordId, {
              recordId: record.recordId,
              step: record.step,
              reason: 'changed concurrently',
            });
            break;
          }
          record = written;
        }
        progress.set(record.recordId, {
          recordId: record.recordId,
          step: record.step,
          reason: decision.reason,
          recheckAt: decision.recheckAt,
          ...(record.error ? { error: record.error } : {}),
        });
        if (decision.actions.length > 0) {
          work.push({ record, actions: decision.actions });
          break;
        }
        if (decision.to === undefined) break;
      }
    }
    return { work, progress };
  }
}
