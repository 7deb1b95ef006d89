import type { Fact } from '../../shared/adapters/facts';
import type { ShelvingDependencies } from '../dependencies';
import type { Decision, ShelvingFact } from '../domain/actions';
import { ownedVolumeIds } from '../domain/saga';
import type { ShelfRecord } from '../domain/types';

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
 * Writes what `decision` makes of `record` (conditional on the version read) and then publishes
 * its facts; the written record, or undefined when another writer changed the record first.
 */
export const writeDecision = async (
  deps: ShelvingDependencies,
  record: ShelfRecord,
  decision: Decision,
  now: number,
): Promise<ShelfRecord | undefined> => {
  const step = decision.to ?? record.step;
  const next: ShelfRecord = {
    ...record,
    ...decision.set,
    step,
    version: record.version + 1,
    stepSince: step === record.step ? record.stepSince : now,
    nextDueAt: decision.recheckAt,
  };
  const replacement = next.unshelve?.replacementInstanceId;
  const finished = step === 'unshelved' && ownedVolumeIds(next).length === 0;
  const ok = await deps.store.update(record, next, {
    ...(replacement && replacement !== record.unshelve?.replacementInstanceId
      ? { linkInstanceId: replacement }
      : {}),
    // An unshelved record no longer holds its original instance: it may be shelved again.
    ...(step === 'unshelved' ? { unlinkInstanceId: record.instanceId } : {}),
    ...(finished ? { expiresAt: Math.floor(now / 1000) + deps.settings.finishedRecordTtlSeconds } : {}),
  });
  if (!ok) return undefined;
  if (decision.facts?.length) await publish(deps, decision.facts);
  return next;
};
