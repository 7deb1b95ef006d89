import { randomBytes } from 'node:crypto';
import { WarmbootError } from '../../shared/errors';
import { failedItem, type ItemError, type ItemResult, itemErrorOf } from '../../shared/results';
import type { ShelvingDependencies } from '../dependencies';
import {
  CONFIRMATION_TTL_MS,
  confirmedPlan,
  type DeletionPlan,
  deletionUnderWay,
  issueConfirmation,
  planDeletion,
  startDeletion,
  undoDeletion,
} from '../domain/requests';
import type { ShelfRecord } from '../domain/types';

/** The answer of 'Delete Shelved Record', per volume and snapshot once it acted. */
export interface DeletionResult {
  readonly recordId: string;
  readonly ok: boolean;
  readonly confirmationRequired?: true;
  readonly willDelete?: { readonly volumeIds: readonly string[]; readonly snapshotIds: readonly string[] };
  /** The token a confirmed request sends as `confirm`, and until when (ISO 8601) it is good. */
  readonly confirm?: string;
  readonly confirmBefore?: string;
  readonly deleted?: { readonly volumes: readonly ItemResult[]; readonly snapshots: readonly ItemResult[] };
  readonly error?: ItemError;
}

const willDelete = (plan: DeletionPlan) => ({ volumeIds: plan.volumeIds, snapshotIds: plan.snapshotIds });
const planText = (plan: DeletionPlan): string =>
  `volumes [${plan.volumeIds.join(', ')}] and snapshots [${plan.snapshotIds.join(', ')}]`;

/** A new confirmation token: 128 random bits (domain CONFIRMATION_TOKEN_PATTERN). */
const newConfirmationToken = (): string => randomBytes(16).toString('hex');

/**
 * 'Delete Shelved Record' (an administrative request), in two steps (security review C3, M3).
 * Without `confirm`: works out the plan (the record's retained volumes still tagged with it and
 * available, and the safety snapshots it recorded), stores it under a new random token that
 * expires after CONFIRMATION_TTL_MS, and answers both; nothing is deleted. With `confirm`: the
 * stored plan of that token and record, unexpired and made when the record was as it is now,
 * or nothing (`ConfirmationInvalid`). The record then moves to `deleting` (a conditional write:
 * an Unshelve or Offload that moved it meanwhile wins, and nothing is deleted), exactly the
 * stored volumes and snapshots are deleted (each re-described and checked against the record
 * right before), then the record. A retry with the token of a deletion under way finishes it.
 */
export const deleteShelvedRecord = async (
  deps: ShelvingDependencies,
  recordId: string,
  confirm: string | undefined,
): Promise<DeletionResult> => {
  try {
    return await planOrDelete(deps, recordId, confirm);
  } catch (error) {
    // AWS refused a read or write on the way (fault seed 20261206: DescribeVolumes refused while
    // the plan was made). The operator gets that error, naming it, rather than an invocation that
    // crashes and is retried into silence. Nothing is deleted before the record is `deleting`, and
    // a deletion under way is finished by the reconcile. Anything else is a defect: it crashes.
    if (!(error instanceof WarmbootError)) throw error;
    return { recordId, ok: false, error: itemErrorOf(error) };
  }
};

const planOrDelete = async (
  deps: ShelvingDependencies,
  recordId: string,
  confirm: string | undefined,
): Promise<DeletionResult> => {
  const { store, ec2, clock, settings } = deps;
  if (!settings.allowDataDeletion) {
    return {
      recordId,
      ok: false,
      error: {
        code: 'DeletionNotEnabled',
        message:
          'this deployment keeps shelved data: deploying with allowShelvedDataDeletion lets a confirmed Delete Shelved Record delete it',
      },
    };
  }
  const record = await store.get(recordId);
  if (!record)
    return { recordId, ok: false, error: { code: 'NotFound', message: `no shelve record ${recordId}` } };
  const underWay = deletionUnderWay(record);
  if (underWay) {
    if (confirm !== undefined && confirm === record.deletion?.confirmation)
      return finishDeletion(deps, record);
    return {
      recordId,
      ok: false,
      willDelete: willDelete(underWay),
      error: {
        code: 'DeletionUnderWay',
        message: `record ${recordId} is being deleted (${planText(underWay)}); the reconcile finishes it, or send the confirm token that started it again`,
      },
    };
  }
  if (confirm === undefined) {
    const volumes = new Map(
      (await ec2.describeVolumes(record.volumes.map((volume) => volume.volumeId))).map((volume) => [
        volume.volumeId,
        volume,
      ]),
    );
    const plan = planDeletion(record, volumes);
    if (!plan.ok) return { recordId, ok: false, error: plan.error };
    const confirmation = issueConfirmation(record, plan.plan, newConfirmationToken(), clock.now());
    await store.rememberConfirmation(confirmation);
    return {
      recordId,
      ok: false,
      confirmationRequired: true,
      willDelete: willDelete(plan.plan),
      confirm: confirmation.token,
      confirmBefore: new Date(confirmation.expiresAt).toISOString(),
      error: {
        code: 'ConfirmationRequired',
        message: `deleting record ${recordId} deletes ${planText(plan.plan)}; send confirm: "${confirmation.token}" within ${CONFIRMATION_TTL_MS / 60_000} minutes to delete exactly these`,
      },
    };
  }
  const confirmed = confirmedPlan(record, await store.confirmation(recordId, confirm), clock.now());
  if (!confirmed.ok) return { recordId, ok: false, error: confirmed.error };
  const deleting = startDeletion(record, confirmed.plan, confirm, clock.now());
  if (!(await store.update(record, deleting))) {
    const now = await store.get(recordId);
    return {
      recordId,
      ok: false,
      error: {
        code: 'Conflict',
        message: `record ${recordId} changed while the delete was checked (now ${now?.step ?? 'gone'}); nothing was deleted`,
      },
    };
  }
  return finishDeletion(deps, deleting);
};

/**
 * Deletes what a `deleting` record lists, then the record; if a volume cannot be deleted the
 * record goes back to rest, saying which. Safe to run twice at once (the request and the
 * reconcile): deletes of what is gone are no-ops and only one record write wins.
 */
export const finishDeletion = async (
  deps: ShelvingDependencies,
  record: ShelfRecord,
): Promise<DeletionResult> => {
  const { store, ec2, clock } = deps;
  const deletion = record.deletion;
  if (!deletion) throw new Error(`record ${record.recordId} is ${record.step}, not deleting`);
  const volumeResults: ItemResult[] = [];
  for (const volumeId of deletion.volumeIds) {
    try {
      await ec2.deleteShelvedVolume(volumeId, record.recordId);
      volumeResults.push({ id: volumeId, ok: true });
    } catch (error) {
      volumeResults.push(failedItem(volumeId, itemErrorOf(error)));
    }
  }
  const failures = volumeResults.flatMap((result) => (result.ok ? [] : [result]));
  const retained = new Set(record.volumes.map((volume) => volume.volumeId));
  // The safety snapshots go only once every volume is gone: a record that keeps a volume keeps
  // its slow path too (an Unshelve into another AZ, or after that volume is lost, needs them).
  const snapshotResults: ItemResult[] = [];
  for (const snapshotId of deletion.snapshotIds) {
    if (failures.length > 0) {
      snapshotResults.push(
        failedItem(snapshotId, {
          code: 'Kept',
          message: `kept: the record still holds ${failures.map((failure) => failure.id).join(', ')}`,
        }),
      );
      continue;
    }
    try {
      await ec2.deleteShelvedSnapshot(snapshotId, record.recordId, retained);
      snapshotResults.push({ id: snapshotId, ok: true });
    } catch (error) {
      snapshotResults.push(failedItem(snapshotId, itemErrorOf(error)));
    }
  }
  const deleted = { volumes: volumeResults, snapshots: snapshotResults };
  // The record goes only when every volume it owned is gone, so no volume is ever orphaned. A
  // snapshot that failed to delete is reported per item; it keeps its shelved tag.
  if (failures.length === 0) {
    const removed = (await store.remove(record)) || (await store.get(record.recordId)) === undefined;
    return { recordId: record.recordId, ok: removed, deleted };
  }
  const undone = undoDeletion(record, failures, clock.now());
  await store.update(record, undone);
  return {
    recordId: record.recordId,
    ok: false,
    deleted,
    ...(undone.error ? { error: undone.error } : {}),
  };
};
