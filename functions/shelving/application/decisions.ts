import type { Fact } from '../../shared/adapters/facts';
import type { ShelvingDependencies } from '../dependencies';
import type { Decision, ShelvingFact } from '../domain/actions';
import { ownedVolumeIds } from '../domain/saga';
import type { ActionClaim, ShelfRecord } from '../domain/types';

/** Deep-ish equality for the few fields a decision sets (avoids writes that change nothing). */
const sameJson = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** Whether writing `decision` would change `record` (a step, or a field set to something new). */
export const changesRecord = (record: ShelfRecord, decision: Decision): boolean => {
  if (decision.to === undefined && decision.set === undefined) return false;
  if (decision.to !== undefined && decision.to !== record.step) return true;
  const set = decision.set ?? {};
  return !Object.entries(set).every(([key, value]) => sameJson(record[key as keyof ShelfRecord], value));
};

const publish = async (deps: ShelvingDependencies, facts: readonly ShelvingFact[]): Promise<void> => {
  const published: Fact[] = facts.map((fact) => ({
    detailType: fact.detailType,
    detail: fact.detail as unknown as Record<string, unknown>,
  }));
  await deps.facts.publish(published);
  for (const fact of facts) deps.onFact?.(fact);
};

/**
 * How soon a record whose facts may not have gone out comes due: the next scheduled round (the
 * schedule runs every minute) publishes them if the writer died before it could.
 */
export const FACTS_RETRY_MS = 60_000;

/** `record` without its outbox (the key left out, not set to undefined: the store writes items whole). */
const withoutOutbox = ({ outbox: _, ...record }: ShelfRecord): ShelfRecord => record;

/** `record` without its call claim: a new decision replaces it (application/action-claims.ts). */
const withoutClaim = ({ acting: _, ...record }: ShelfRecord): ShelfRecord => record;

/** The TTL option a record's write carries: a finished record expires. */
const expiryOf = (deps: ShelvingDependencies, record: ShelfRecord, now: number) =>
  record.step === 'unshelved' && ownedVolumeIds(record).length === 0
    ? { expiresAt: Math.floor(now / 1000) + deps.settings.finishedRecordTtlSeconds }
    : {};

/**
 * Publishes the facts in `record`'s outbox and clears it (conditional on the version read). The
 * cleared record, or undefined when another writer changed the record first: that writer carried
 * the outbox on and publishes it, so a fact may go out twice but is never lost.
 */
export const deliverFacts = async (
  deps: ShelvingDependencies,
  record: ShelfRecord,
  now: number,
): Promise<ShelfRecord | undefined> => {
  if (!record.outbox) return record;
  await publish(deps, record.outbox.facts);
  const cleared: ShelfRecord = {
    ...withoutOutbox(record),
    version: record.version + 1,
    nextDueAt: record.outbox.nextDueAt,
  };
  return (await deps.store.update(record, cleared, expiryOf(deps, cleared, now))) ? cleared : undefined;
};

/**
 * Writes what `decision` makes of `record` (conditional on the version read) and then publishes
 * its facts; the written record, or undefined when another writer changed the record first.
 * The facts are written with the decision (`outbox`) and cleared once published, so a writer
 * that dies between the two leaves them for the record's next round. `claim` goes with a decision
 * that makes EC2 calls; any other write drops the record's previous claim.
 */
export const writeDecision = async (
  deps: ShelvingDependencies,
  record: ShelfRecord,
  decision: Decision,
  now: number,
  claim?: ActionClaim,
): Promise<ShelfRecord | undefined> => {
  const step = decision.to ?? record.step;
  const facts = [...(record.outbox?.facts ?? []), ...(decision.facts ?? [])];
  const decided: ShelfRecord = {
    ...withoutOutbox(withoutClaim(record)),
    ...decision.set,
    ...(claim ? { acting: claim } : {}),
    step,
    version: record.version + 1,
    stepSince: step === record.step ? record.stepSince : now,
    nextDueAt: decision.recheckAt,
  };
  const next: ShelfRecord =
    facts.length === 0
      ? decided
      : {
          ...decided,
          outbox: { facts, nextDueAt: decided.nextDueAt },
          nextDueAt: Math.min(decided.nextDueAt ?? Number.POSITIVE_INFINITY, now + FACTS_RETRY_MS),
        };
  const replacement = next.unshelve?.replacementInstanceId;
  const ok = await deps.store.update(record, next, {
    ...(replacement && replacement !== record.unshelve?.replacementInstanceId
      ? { linkInstanceId: replacement }
      : {}),
    // An unshelved record no longer holds its original instance: it may be shelved again.
    ...(step === 'unshelved' ? { unlinkInstanceId: record.instanceId } : {}),
    ...expiryOf(deps, next, now),
  });
  if (!ok) return undefined;
  if (facts.length === 0) return next;
  // Should the clear lose to another writer, the decision still stands: that writer has the
  // outbox and publishes it again.
  return (await deliverFacts(deps, next, now)) ?? next;
};
