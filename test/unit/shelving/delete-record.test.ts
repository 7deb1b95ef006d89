import { describe, expect, it } from 'vitest';
import { IncorrectStateError } from '../../../functions/shared/errors';
import type { ShelvingEc2 } from '../../../functions/shelving/adapters/ec2';
import { defaultShelvingSettings } from '../../../functions/shelving/config';
import { DELETION_TAKEOVER_MS } from '../../../functions/shelving/domain/shelve';
import { SHELVED_TAG } from '../../../functions/shelving/domain/tags';
import type { ObservedVolume } from '../../../functions/shelving/domain/types';
import { countingEc2, engineOnClock, record, volume } from './fakes';

/**
 * A confirmed 'Delete Shelved Record' first moves the record to `deleting` with a conditional
 * write, so it never deletes volumes under an Unshelve that moved the record meanwhile
 * (docs/reliability.md, finding 7), and a deletion that dies half-way is finished by the reconcile.
 */

const RECORD = record();
const [ROOT, DATA] = RECORD.volumes.map((retained) => retained.volumeId) as [string, string];
const SNAPSHOT = 'snap-0000000000000000a';

/** An EC2 holding the record's two retained volumes (available, tagged) and its safety snapshot. */
const ec2Holding = (
  options: { failDeleting?: string; beforeSnapshotsDescribed?: () => Promise<void> } = {},
) => {
  const volumes = new Map<string, ObservedVolume>(
    [ROOT, DATA].map((volumeId) => [
      volumeId,
      volume(volumeId, { state: 'available', tags: { [SHELVED_TAG]: RECORD.recordId } }),
    ]),
  );
  const snapshots = new Set([SNAPSHOT]);
  const overrides: Partial<ShelvingEc2> = {
    describeVolumes: async (ids) =>
      ids.flatMap((id) => {
        const found = volumes.get(id);
        return found ? [found] : [];
      }),
    describeShelvedSnapshots: async () => {
      await options.beforeSnapshotsDescribed?.();
      const listed = [...snapshots].map((snapshotId) => ({
        snapshotId,
        volumeId: ROOT,
        state: 'completed' as const,
      }));
      return new Map([[RECORD.recordId, listed]]);
    },
    deleteShelvedVolume: async (volumeId) => {
      if (volumeId === options.failDeleting) {
        throw new IncorrectStateError(`volume ${volumeId} is attached to i-0aaaaaaaaaaaaaaaa`);
      }
      volumes.delete(volumeId);
    },
    deleteSnapshot: async (snapshotId) => {
      snapshots.delete(snapshotId);
    },
  };
  // Every other call (the saga's describes) answers with nothing.
  const base = countingEc2();
  const ec2 = new Proxy(overrides as ShelvingEc2, {
    get: (target, property) =>
      property in target ? target[property as keyof ShelvingEc2] : Reflect.get(base, property),
  });
  return { ec2, volumes, snapshots };
};

/** The deployment opted in to deleting shelved data (allowShelvedDataDeletion). */
const ALLOW_DELETION = { ...defaultShelvingSettings, allowDataDeletion: true };
const setUp = (
  ec2: Parameters<typeof engineOnClock>[0],
  killAfterStep?: Parameters<typeof engineOnClock>[1],
) => engineOnClock(ec2, killAfterStep, ALLOW_DELETION);

describe('Delete Shelved Record in a deployment that keeps shelved data', () => {
  it('is refused before anything is described or deleted, naming the setting', async () => {
    const ec2 = countingEc2();
    const { engine, store } = engineOnClock(ec2);
    await store.create(RECORD);

    const result = await engine.deleteRecord(RECORD.recordId, RECORD.recordId);

    expect(result).toMatchObject({ ok: false, error: { code: 'DeletionNotEnabled' } });
    expect(JSON.stringify(result)).toContain('allowShelvedDataDeletion');
    expect(ec2.calls).toEqual([]);
    expect(await store.get(RECORD.recordId)).toMatchObject({ step: RECORD.step });
  });
});

describe('Delete Shelved Record against a concurrent Unshelve', () => {
  it('deletes nothing when an Unshelve moved the record after the delete checked it', async () => {
    const holder: { move?: () => Promise<void> } = {};
    const world = ec2Holding({ beforeSnapshotsDescribed: () => holder.move?.() ?? Promise.resolve() });
    const { engine, store } = setUp(world.ec2);
    await store.create(RECORD);
    holder.move = async () => {
      holder.move = undefined;
      await engine.unshelve([RECORD.recordId], undefined, 'unshelve-event', { advance: false });
    };

    const result = await engine.deleteRecord(RECORD.recordId, RECORD.recordId);

    expect(result).toMatchObject({ ok: false, error: { code: 'Conflict' } });
    expect(result.error?.message).toContain('nothing was deleted');
    expect([...world.volumes.keys()]).toEqual([ROOT, DATA]);
    expect([...world.snapshots]).toEqual([SNAPSHOT]);
    expect(store.records.get(RECORD.recordId)?.step).toBe('unshelve.choose');
  });

  it('refuses an Unshelve of a record being deleted', async () => {
    const world = ec2Holding();
    const { engine, store } = setUp(world.ec2, 'deleting');
    await store.create(RECORD);
    await expect(engine.deleteRecord(RECORD.recordId, RECORD.recordId)).rejects.toThrow(/killed/);

    const answers = await engine.unshelve([RECORD.recordId], undefined, 'unshelve-event', { advance: false });

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
    const { engine, store, clock } = setUp(world.ec2, 'deleting');
    await store.create(RECORD);
    await expect(engine.deleteRecord(RECORD.recordId, RECORD.recordId)).rejects.toThrow(/killed/);

    await engine.reconcile();
    expect(store.records.get(RECORD.recordId)?.step).toBe('deleting');

    clock.at += DELETION_TAKEOVER_MS;
    const round = await engine.reconcile();

    expect(round.records).toContainEqual(
      expect.objectContaining({ recordId: RECORD.recordId, reason: 'deleted' }),
    );
    expect(store.records.has(RECORD.recordId)).toBe(false);
    expect(world.volumes.size).toBe(0);
    expect(world.snapshots.size).toBe(0);
  });

  it('is finished by a retry of the confirmed request', async () => {
    const world = ec2Holding();
    const { engine, store } = setUp(world.ec2, 'deleting');
    await store.create(RECORD);
    await expect(engine.deleteRecord(RECORD.recordId, RECORD.recordId)).rejects.toThrow(/killed/);

    expect(await engine.deleteRecord(RECORD.recordId, undefined)).toMatchObject({
      ok: false,
      confirmationRequired: true,
      willDelete: { volumeIds: [ROOT, DATA], snapshotIds: [SNAPSHOT] },
    });
    const retried = await engine.deleteRecord(RECORD.recordId, RECORD.recordId);

    expect(retried.ok).toBe(true);
    expect(store.records.has(RECORD.recordId)).toBe(false);
    expect(world.volumes.size).toBe(0);
  });

  it('puts the record back to rest, naming the volume it could not delete', async () => {
    const world = ec2Holding({ failDeleting: DATA });
    const { engine, store } = setUp(world.ec2);
    await store.create({ ...RECORD, nextDueAt: null });

    const result = await engine.deleteRecord(RECORD.recordId, RECORD.recordId);

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
    const { engine, store } = setUp(world.ec2);
    await store.create({ ...RECORD, nextDueAt: null });

    const result = await engine.deleteRecord(RECORD.recordId, RECORD.recordId);

    expect(result.deleted?.snapshots).toEqual([
      {
        id: SNAPSHOT,
        ok: false,
        error: { code: 'Kept', message: `kept: the record still holds ${DATA}` },
      },
    ]);
    expect([...world.snapshots]).toEqual([SNAPSHOT]);
    expect(store.records.get(RECORD.recordId)?.error?.message).toContain('safety snapshots are kept');
  });
});
