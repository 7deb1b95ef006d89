import { CLAIM_LEASE_MS, type ClaimRecord, type ClaimStep, isTerminal } from '../../pools/domain/claims';
import { ConflictError } from '../../shared/errors';
import { OutOfTimeError, type WaitOptions } from '../../shared/polling';
import type { ClaimDependencies } from '../dependencies';
import { canonicalJson, sha256Hex } from '../domain/request-digest';
import { type ServerRequest, serverRequestSchema } from '../schemas';
import { type ClaimOutcome, inProgress } from './outcomes';

/** Another driver took the saga over (its lease had lapsed): it carries the claim on. */
export class ClaimTakenOverError extends ConflictError {
  constructor(requestId: string) {
    super(`claim ${requestId} is driven by another invocation`);
    this.name = 'ClaimTakenOverError';
  }
}

/** Steps after which the saga never sends the personalization again. */
const PERSONALIZATION_SPENT: readonly ClaimStep[] = ['personalized', 'transferred', 'ready', 'failed'];

/**
 * The claim without its personalization values (SSH key, host name, document parameters), only
 * their digest: the record outlives the hand-over by days and is backed up (security review M6).
 */
const forgetPersonalization = (claim: ClaimRecord): ClaimRecord => {
  const { personalization, ...request } = claim.request;
  if (personalization === undefined) return claim;
  return { ...claim, request, personalizationSha256: sha256Hex(canonicalJson(personalization)) };
};

/**
 * The saga as one driver holds it: every step is a conditional write on the claim's version that
 * also extends the driver's lease, so a second driver (a Lambda retry, a client retry, a resume
 * from the pools reconcile) takes over only a saga nobody drives, and a driver that was taken
 * over learns it at its next write.
 */
export class Saga {
  #record: ClaimRecord;
  constructor(
    private readonly deps: Pick<ClaimDependencies, 'store' | 'clock'>,
    record: ClaimRecord,
  ) {
    this.#record = record;
  }

  get record(): ClaimRecord {
    return this.#record;
  }

  get requestId(): string {
    return this.#record.requestId;
  }

  /** The request as the schema accepted it, parsed again from the stored record. */
  get request(): ServerRequest {
    return serverRequestSchema.parse(this.#record.request);
  }

  /**
   * Records a step (or just renews the lease); a finished saga needs no lease. Once the
   * personalization was sent (or the saga failed) its values are replaced by their digest.
   */
  async step(changes: Partial<Omit<ClaimRecord, 'version' | 'leaseUntil' | 'updatedAt'>> = {}) {
    const now = this.deps.clock.now();
    const { leaseUntil: _held, ...current } = this.#record;
    const step = changes.step ?? current.step;
    const merged: ClaimRecord = {
      ...current,
      ...changes,
      version: this.#record.version + 1,
      updatedAt: now,
      ...(isTerminal(step) ? {} : { leaseUntil: now + CLAIM_LEASE_MS }),
    };
    const next = PERSONALIZATION_SPENT.includes(step) ? forgetPersonalization(merged) : merged;
    if (!(await this.deps.store.updateClaim(this.#record, next)))
      throw new ClaimTakenOverError(this.requestId);
    this.#record = next;
  }

  /** While waiting on EC2 or SSM: keep the saga ours once half the lease has passed. */
  async keep(): Promise<void> {
    const left = (this.#record.leaseUntil ?? 0) - this.deps.clock.now();
    if (left < CLAIM_LEASE_MS / 2) await this.step();
  }

  /** After a failed invocation: let the next driver (Lambda's retry) take over at once. */
  async letGo(): Promise<void> {
    if (isTerminal(this.#record.step)) return;
    const { leaseUntil: _held, ...released } = this.#record;
    await this.deps.store
      .updateClaim(this.#record, { ...released, version: this.#record.version + 1 })
      .catch(() => undefined); // best effort: the lease lapses by itself
  }
}

/**
 * Runs the saga; a failed invocation gives its lease up so Lambda's retry continues at once. One
 * that ran out of time gives it up too and answers `in-progress`: not an error for Lambda, and
 * the next driver continues from the recorded step — a retried request, or the pools reconcile's
 * resume once the lease period has passed (`healClaims`).
 */
export const drive = async (saga: Saga, run: () => Promise<ClaimOutcome>): Promise<ClaimOutcome> => {
  try {
    return await run();
  } catch (error) {
    if (error instanceof ClaimTakenOverError) return inProgress(saga.record);
    await saga.letGo();
    if (error instanceof OutOfTimeError) return inProgress(saga.record);
    throw error;
  }
};

/**
 * Kept back from the invocation after a wait: the hand-over's tag and record writes and the
 * Server Ready fact take seconds.
 */
const STEP_RESERVE_MS = 15_000;

/** How a saga waits on EC2 or SSM: within the invocation, keeping time for the step after it. */
export const sagaWait = (
  deps: Pick<ClaimDependencies, 'clock' | 'deadline'>,
  timeoutMs: number,
): WaitOptions => ({
  clock: deps.clock,
  timeoutMs,
  // Fine-grained at first: the hot path is ~2 s and every poll step adds to time-to-ready.
  intervalMs: (attempt) => Math.min(2_000, 500 * 2 ** attempt),
  ...(deps.deadline ? { deadline: deps.deadline } : {}),
  reserveMs: STEP_RESERVE_MS,
});
