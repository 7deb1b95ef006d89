import { describe, expect, it } from 'vitest';
import { IncorrectStateError } from '../../../functions/shared/errors';
import type { ShelvingEc2 } from '../../../functions/shelving/adapters/ec2';
import { deleteShelvedRecord } from '../../../functions/shelving/application/deletion';
import { unshelveInstances } from '../../../functions/shelving/application/requests';
import { defaultShelvingSettings } from '../../../functions/shelving/config';
import type { ShelvingDependencies } from '../../../functions/shelving/dependencies';
import {
  CONFIRMATION_TOKEN_PATTERN,
  CONFIRMATION_TTL_MS,
  DELETION_TAKEOVER_MS,
} from '../../../functions/shelving/domain/requests';
import { SHELVED_TAG } from '../../../functions/shelving/domain/tags';
import type { ObservedVolume } from '../../../functions/shelving/domain/types';
import { countingEc2, NOW, RECORD_ONLY, record, shelvingOnClock, volume } from './fakes';

/**
 * A confirmed 'Delete Shelved Record' first moves the record to `deleting` with a conditional
 * write, so it never deletes volumes under an Unshelve that moved the record meanwhile
 * (docs/reliability.md, finding 7), and a deletion that dies half-way is finished by the reconcile.
 */

const RECORD = record();
const [ROOT, DATA] = RECORD.volumes.map((retained) => retained.volumeId) as [string, string];
/** The safety snapshots the record recorded (one per retained volume). */
const [ROOT_SNAPSHOT, DATA_SNAPSHOT] = RECORD.volumes.map((retained) => retained.snapshotId) as [
  string,
  string,
];
/** A snapshot tagged with the record that the record never recorded (someone else tagged it). */
const PLANTED = 'snap-0000000000000000f';

/**
 * An EC2 holding the record's two retained volumes (available, tagged), its two recorded safety
 * snapshots, and a snapshot of ROOT someone else tagged with the record.
 */
const ec2Holding = (options: { failDeleting?: string } = {}) => {
  const volumes = new Map<string, ObservedVolume>(
    [ROOT, DATA].map((volumeId) => [
      volumeId,
      volume(volumeId, { state: 'available', tags: { [SHELVED_TAG]: RECORD.recordId } }),
    ]),
  );
  const snapshots = new Set([ROOT_SNAPSHOT, DATA_SNAPSHOT, PLANTED]);
  const calls: string[] = [];
  const overrides: Partial<ShelvingEc2> = {
    describeVolumes: async (ids) =>
      ids.flatMap((id) => {
        const found = volumes.get(id);
        return found ? [found] : [];
      }),
    describeShelvedSnapshots: async () => {
      calls.push('describeShelvedSnapshots');
      const listed = [...snapshots].map((snapshotId) => ({
        snapshotId,
        volumeId: ROOT,
        state: 'completed' as const,
        startedAt: NOW,
      }));
      return new Map([[RECORD.recordId, listed]]);
    },
    deleteShelvedVolume: async (volumeId) => {
      if (volumeId === options.failDeleting) {
        throw new IncorrectStateError(`volume ${volumeId} is attached to i-0aaaaaaaaaaaaaaaa`);
      }
      volumes.delete(volumeId);
    },
    deleteShelvedSnapshot: async (snapshotId) => {
      snapshots.delete(snapshotId);
    },
  };
  // Every other call (the saga's describes) answers with nothing.
  const base = countingEc2();
  const ec2 = new Proxy(overrides as ShelvingEc2, {
    get: (target, property) =>
      property in target ? target[property as keyof ShelvingEc2] : Reflect.get(base, property),
  });
  return { ec2, volumes, snapshots, calls };
};

/** The deployment opted in to deleting shelved data (allowShelvedDataDeletion). */
const ALLOW_DELETION = { ...defaultShelvingSettings, allowDataDeletion: true };
const setUp = (
  ec2: Parameters<typeof shelvingOnClock>[0],
  killAfterStep?: Parameters<typeof shelvingOnClock>[1],
) => shelvingOnClock(ec2, killAfterStep, ALLOW_DELETION);

/** The unconfirmed request: its answer carries the plan and the token to confirm it with. */
const tokenFor = async (deps: ShelvingDependencies): Promise<string> => {
  const unconfirmed = await deleteShelvedRecord(deps, RECORD.recordId, undefined);
  if (!unconfirmed.confirm) throw new Error(`no confirmation issued: ${JSON.stringify(unconfirmed)}`);
  return unconfirmed.confirm;
};

describe('Delete Shelved Record confirmation (security review C3, M3)', () => {
  it('answers the exact plan and a fresh random token, and deletes nothing', async () => {
    const world = ec2Holding();
    const { deps, store } = setUp(world.ec2);
    await store.create(RECORD);

    const first = await deleteShelvedRecord(deps, RECORD.recordId, undefined);
    const second = await deleteShelvedRecord(deps, RECORD.recordId, undefined);

    expect(first).toMatchObject({
      ok: false,
      confirmationRequired: true,
      willDelete: { volumeIds: [ROOT, DATA], snapshotIds: [ROOT_SNAPSHOT, DATA_SNAPSHOT] },
      confirm: expect.stringMatching(CONFIRMATION_TOKEN_PATTERN),
      confirmBefore: new Date(NOW + CONFIRMATION_TTL_MS).toISOString(),
      error: { code: 'ConfirmationRequired' },
    });
    expect(second.confirm).not.toBe(first.confirm);
    // The record id is not a confirmation: a caller who knows it knows nothing more.
    expect(first.confirm).not.toContain(RECORD.recordId);
    expect(world.volumes.size).toBe(2);
    expect(world.snapshots.size).toBe(3);
    expect(store.records.get(RECORD.recordId)?.step).toBe(RECORD.step);
  });

  it('deletes exactly the planned volumes and recorded snapshots, never a snapshot found by tag (H6, L5)', async () => {
    const world = ec2Holding();
    const { deps, store } = setUp(world.ec2);
    await store.create(RECORD);
    const token = await tokenFor(deps);

    const result = await deleteShelvedRecord(deps, RECORD.recordId, token);

    expect(result.ok).toBe(true);
    expect(result.deleted).toEqual({
      volumes: [
        { id: ROOT, ok: true },
        { id: DATA, ok: true },
      ],
      snapshots: [
        { id: ROOT_SNAPSHOT, ok: true },
        { id: DATA_SNAPSHOT, ok: true },
      ],
    });
    expect([...world.snapshots]).toEqual([PLANTED]);
    expect(world.calls).not.toContain('describeShelvedSnapshots');
    expect(store.records.has(RECORD.recordId)).toBe(false);
  });

  it('refuses a token it did not issue, one for another record, and the record id, naming detail.confirm', async () => {
    const world = ec2Holding();
    const { deps, store } = setUp(world.ec2);
    const other = record({ recordId: 'sh-0fedcba9876543210-t8dsxz', instanceId: 'i-0fedcba9876543210' });
    await store.create(RECORD);
    await store.create(other);
    const othersToken = (await deleteShelvedRecord(deps, other.recordId, undefined)).confirm;
    await tokenFor(deps);

    for (const confirm of ['0123456789abcdef0123456789abcdef', othersToken, RECORD.recordId]) {
      const result = await deleteShelvedRecord(deps, RECORD.recordId, confirm);
      expect(result, String(confirm)).toMatchObject({ ok: false, error: { code: 'ConfirmationInvalid' } });
      expect(result.error?.message).toContain('detail.confirm');
    }
    expect(world.volumes.size).toBe(2);
    expect(world.snapshots.size).toBe(3);
    expect(store.records.get(RECORD.recordId)?.step).toBe(RECORD.step);
  });

  it('refuses a token once it expired (15 minutes on the injected clock)', async () => {
    const world = ec2Holding();
    const { deps, store, clock } = setUp(world.ec2);
    await store.create(RECORD);
    const token = await tokenFor(deps);

    clock.at += CONFIRMATION_TTL_MS;
    const result = await deleteShelvedRecord(deps, RECORD.recordId, token);

    expect(result).toMatchObject({ ok: false, error: { code: 'ConfirmationInvalid' } });
    expect(result.error?.message).toContain('expired');
    expect(world.volumes.size).toBe(2);
  });

  it('accepts a token until it expires', async () => {
    const world = ec2Holding();
    const { deps, store, clock } = setUp(world.ec2);
    await store.create(RECORD);
    const token = await tokenFor(deps);

    clock.at += CONFIRMATION_TTL_MS - 1;
    expect((await deleteShelvedRecord(deps, RECORD.recordId, token)).ok).toBe(true);
  });
});

describe('Delete Shelved Record in a deployment that keeps shelved data', () => {
  it('is refused before anything is described or deleted, naming the setting', async () => {
    const ec2 = countingEc2();
    const { deps, store } = shelvingOnClock(ec2);
    await store.create(RECORD);

    for (const confirm of [undefined, '0123456789abcdef0123456789abcdef']) {
      const result = await deleteShelvedRecord(deps, RECORD.recordId, confirm);

      expect(result).toMatchObject({ ok: false, error: { code: 'DeletionNotEnabled' } });
      expect(JSON.stringify(result)).toContain('allowShelvedDataDeletion');
    }
    expect(ec2.calls).toEqual([]);
    expect(await store.get(RECORD.recordId)).toMatchObject({ step: RECORD.step });
  });
});

describe('Delete Shelved Record against a concurrent Unshelve', () => {
  it('deletes nothing when an Unshelve moved the record after the plan was issued', async () => {
    const world = ec2Holding();
    const { deps, store } = setUp(world.ec2);
    await store.create(RECORD);
    const token = await tokenFor(deps);
    await unshelveInstances(
      deps,
      RECORD_ONLY,
      { recordIds: [RECORD.recordId] },
      { requestId: 'unshelve-event' },
    );

    const result = await deleteShelvedRecord(deps, RECORD.recordId, token);

    expect(result).toMatchObject({ ok: false, error: { code: 'ConfirmationInvalid' } });
    expect(result.error?.message).toContain('changed since the confirmation was issued');
    expect([...world.volumes.keys()]).toEqual([ROOT, DATA]);
    expect(world.snapshots.size).toBe(3);
    expect(store.records.get(RECORD.recordId)?.step).toBe('unshelve.choose');
  });

  it('refuses an Unshelve of a record being deleted', async () => {
    const world = ec2Holding();
    const { deps, store } = setUp(world.ec2, 'deleting');
    await store.create(RECORD);
    await expect(deleteShelvedRecord(deps, RECORD.recordId, await tokenFor(deps))).rejects.toThrow(/killed/);

    const answers = await unshelveInstances(
      deps,
      RECORD_ONLY,
      { recordIds: [RECORD.recordId] },
      { requestId: 'unshelve-event' },
    );

    expect(answers).toEqual([
      {
        id: RECORD.recordId,
        ok: false,
        error: { code: 'IncorrectState', message: expect.stringContaining('being deleted') },
      },
    ]);
    expect(store.records.get(RECORD.recordId)?.step).toBe('deleting');
  });
});

describe('a deletion that does not finish in its handling', () => {
  it('is finished by the reconcile once its handling is overdue', async () => {
    const world = ec2Holding();
    const { deps, rounds, store, clock } = setUp(world.ec2, 'deleting');
    await store.create(RECORD);
    await expect(deleteShelvedRecord(deps, RECORD.recordId, await tokenFor(deps))).rejects.toThrow(/killed/);

    await rounds.reconcile();
    expect(store.records.get(RECORD.recordId)?.step).toBe('deleting');

    clock.at += DELETION_TAKEOVER_MS;
    const round = await rounds.reconcile();

    expect(round.records).toContainEqual(
      expect.objectContaining({ recordId: RECORD.recordId, reason: 'deleted' }),
    );
    expect(store.records.has(RECORD.recordId)).toBe(false);
    expect(world.volumes.size).toBe(0);
    expect([...world.snapshots]).toEqual([PLANTED]);
  });

  it('is finished by a retry of the confirmed request, and by no other request', async () => {
    const world = ec2Holding();
    const { deps, store } = setUp(world.ec2, 'deleting');
    await store.create(RECORD);
    const token = await tokenFor(deps);
    await expect(deleteShelvedRecord(deps, RECORD.recordId, token)).rejects.toThrow(/killed/);

    expect(await deleteShelvedRecord(deps, RECORD.recordId, undefined)).toMatchObject({
      ok: false,
      willDelete: { volumeIds: [ROOT, DATA], snapshotIds: [ROOT_SNAPSHOT, DATA_SNAPSHOT] },
      error: { code: 'DeletionUnderWay' },
    });
    expect(world.volumes.size).toBe(2);
    const retried = await deleteShelvedRecord(deps, RECORD.recordId, token);

    expect(retried.ok).toBe(true);
    expect(store.records.has(RECORD.recordId)).toBe(false);
    expect(world.volumes.size).toBe(0);
    expect([...world.snapshots]).toEqual([PLANTED]);
  });

  it('answers an error naming what EC2 refused while it planned, instead of crashing, and deletes nothing', async () => {
    const world = ec2Holding();
    const refusing = new Proxy(world.ec2, {
      get: (target, property) =>
        property === 'describeVolumes'
          ? async () => {
              throw new IncorrectStateError('DescribeVolumes failed: IncorrectInstanceState');
            }
          : Reflect.get(target, property),
    });
    const { deps, store } = setUp(refusing);
    await store.create(RECORD);

    const answer = await deleteShelvedRecord(deps, RECORD.recordId, undefined);

    expect(answer).toMatchObject({
      recordId: RECORD.recordId,
      ok: false,
      error: { code: 'IncorrectState', message: expect.stringContaining('DescribeVolumes') },
    });
    expect(answer.confirm).toBeUndefined();
    expect(world.volumes.size).toBe(2);
    expect(store.records.get(RECORD.recordId)?.step).toBe(RECORD.step);
  });

  it('puts the record back to rest, naming the volume it could not delete', async () => {
    const world = ec2Holding({ failDeleting: DATA });
    const { deps, store } = setUp(world.ec2);
    await store.create({ ...RECORD, nextDueAt: null });

    const result = await deleteShelvedRecord(deps, RECORD.recordId, await tokenFor(deps));

    expect(result.ok).toBe(false);
    expect(result.deleted?.volumes).toEqual([
      { id: ROOT, ok: true },
      {
        id: DATA,
        ok: false,
        error: expect.objectContaining({ message: expect.stringContaining('attached') }),
      },
    ]);
    const kept = store.records.get(RECORD.recordId);
    expect(kept).toMatchObject({ step: 'offloaded', nextDueAt: null, error: { code: 'DeletionIncomplete' } });
    expect(kept?.error?.message).toContain(DATA);
    expect(kept?.deletion).toBeUndefined();
    expect([...world.volumes.keys()]).toEqual([DATA]);
  });

  it('keeps the safety snapshots while the record still holds a volume (finding 11)', async () => {
    const world = ec2Holding({ failDeleting: DATA });
    const { deps, store } = setUp(world.ec2);
    await store.create({ ...RECORD, nextDueAt: null });

    const result = await deleteShelvedRecord(deps, RECORD.recordId, await tokenFor(deps));

    expect(result.deleted?.snapshots).toEqual(
      [ROOT_SNAPSHOT, DATA_SNAPSHOT].map((id) => ({
        id,
        ok: false,
        error: { code: 'Kept', message: `kept: the record still holds ${DATA}` },
      })),
    );
    expect([...world.snapshots]).toEqual([ROOT_SNAPSHOT, DATA_SNAPSHOT, PLANTED]);
    expect(store.records.get(RECORD.recordId)?.error?.message).toContain('safety snapshots are kept');
  });
});
