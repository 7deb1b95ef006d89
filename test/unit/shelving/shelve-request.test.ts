import { describe, expect, it } from 'vitest';
import type { ShelvingEc2 } from '../../../functions/shelving/adapters/ec2';
import { memoryShelfStore } from '../../../functions/shelving/adapters/memory-store';
import { shelveInstances } from '../../../functions/shelving/application/requests';
import { defaultShelvingSettings } from '../../../functions/shelving/config';
import { planShelve } from '../../../functions/shelving/domain/requests';
import type { ObservedInstance, ShelfRecord } from '../../../functions/shelving/domain/types';
import { instance, NOW, shelvingOnClock, volume } from './fakes';

/**
 * A Shelve request is recognized by its event id: Lambda's and EventBridge's retries keep it, and
 * each retry must answer what the first handling answered, whatever happened in between.
 */

const INSTANCE_ID = 'i-0123456789abcdef0';
const VOLUMES = [volume('vol-0000000000000000a'), volume('vol-0000000000000000b')];

/** An EC2 with one instance (as `current` says), its volumes, and a log of every call. */
const oneInstanceEc2 = (current: { instance: ObservedInstance }) => {
  const calls: string[] = [];
  const ec2 = new Proxy({} as ShelvingEc2, {
    get(_target, property) {
      return async () => {
        calls.push(String(property));
        switch (property) {
          case 'describeInstances':
            return [current.instance];
          case 'describeVolumes':
            return VOLUMES;
          case 'describeShelvedSnapshots':
          case 'describeHostRoom':
            return new Map();
          default:
            return [];
        }
      };
    },
  });
  return { ec2, calls };
};

const setUp = (initial: ObservedInstance = instance()) => {
  const current = { instance: initial };
  const { ec2, calls } = oneInstanceEc2(current);
  const shelving = shelvingOnClock(ec2);
  /** The Shelve request of this one instance, as `request` (its event id, when sent) names it. */
  const shelve = (request: { requestId: string; sentAt?: number }) =>
    shelveInstances(shelving.deps, shelving.rounds, { instanceIds: [INSTANCE_ID] }, request);
  return { ...shelving, calls, current, shelve };
};

/** What the Unshelve saga leaves behind: the record unshelved and the instance link released. */
const unshelved = async (store: ReturnType<typeof memoryShelfStore>, recordId: string): Promise<void> => {
  const [stored] = await store.getMany([recordId]);
  if (!stored) throw new Error(`no record ${recordId}`);
  const done: ShelfRecord = { ...stored, step: 'unshelved', version: stored.version + 1, nextDueAt: null };
  expect(await store.update(stored, done, { unlinkInstanceId: INSTANCE_ID })).toBe(true);
};

describe('a retried Shelve request', () => {
  it('answers its first answer and shelves nothing again after the instance was unshelved', async () => {
    const { store, calls, clock, shelve } = setUp();
    const [first] = await shelve({ requestId: 'event-1' });
    expect(first).toMatchObject({ ok: true, created: true });
    const recordId = first?.ok ? first.recordId : '';
    clock.at += 60_000;
    await unshelved(store, recordId);
    calls.length = 0;
    clock.at += 120_000;

    const retried = await shelve({ requestId: 'event-1' });

    expect(retried).toEqual([first]);
    expect([...store.records.keys()]).toEqual([recordId]);
    expect(store.records.get(recordId)?.step).toBe('unshelved');
    expect(calls).toEqual([]);
  });

  it('answers its first answer after the record was deleted', async () => {
    const { store, clock, shelve } = setUp();
    const [first] = await shelve({ requestId: 'event-1' });
    const [stored] = await store.getMany([first?.ok ? first.recordId : '']);
    clock.at += 60_000;
    await unshelved(store, stored?.recordId ?? '');
    const [finished] = await store.getMany([stored?.recordId ?? '']);
    expect(finished && (await store.remove(finished))).toBe(true);
    clock.at += 60_000;

    expect(await shelve({ requestId: 'event-1' })).toEqual([first]);
    expect(store.records.size).toBe(0);
  });

  it('repeats a refusal even when the instance could be shelved by now', async () => {
    const { store, current, shelve } = setUp(instance({ state: 'stopping' }));
    const [refused] = await shelve({ requestId: 'event-1' });
    expect(refused).toMatchObject({ ok: false, error: { code: 'IncorrectState' } });
    current.instance = instance({ state: 'stopped' });

    expect(await shelve({ requestId: 'event-1' })).toEqual([refused]);
    expect(store.records.size).toBe(0);
  });

  it('finishes the shelve a killed first handling created but never started', async () => {
    const { store, calls, shelve } = setUp();
    const plan = planShelve(
      { instanceId: INSTANCE_ID },
      instance(),
      new Map(VOLUMES.map((v) => [v.volumeId, v])),
      defaultShelvingSettings,
      NOW,
    );
    if (!plan.ok) throw new Error(plan.error.message);
    // The first handling died right after the transaction that created the record and its answer.
    await store.create(plan.record, { requestId: 'event-1', expiresAt: NOW / 1000 + 3600 });

    const retried = await shelve({ requestId: 'event-1' });

    expect(retried).toEqual([{ id: INSTANCE_ID, ok: true, recordId: plan.record.recordId, created: true }]);
    // Its first round keeps the volumes, starting with the shelved tag (DeleteOnTermination follows).
    expect(calls).toEqual(expect.arrayContaining(['createTags']));
    expect(store.records.size).toBe(1);
  });
});

describe('a new Shelve request (a new event id)', () => {
  it('shelves the instance again once the earlier record was unshelved', async () => {
    const { store, clock, shelve } = setUp();
    const [first] = await shelve({ requestId: 'event-1' });
    const firstRecordId = first?.ok ? first.recordId : '';
    clock.at += 60_000;
    await unshelved(store, firstRecordId);
    clock.at += 60_000;

    const [again] = await shelve({ requestId: 'event-2' });

    expect(again).toMatchObject({ ok: true, created: true });
    expect(again?.ok && again.recordId).not.toBe(firstRecordId);
    expect(store.records.size).toBe(2);
  });

  it('finds the live record while the instance is still shelved, and keeps answering that', async () => {
    const { store, clock, shelve } = setUp();
    const [first] = await shelve({ requestId: 'event-1' });
    const recordId = first?.ok ? first.recordId : '';

    const [duplicate] = await shelve({ requestId: 'event-2' });
    expect(duplicate).toEqual({ id: INSTANCE_ID, ok: true, recordId, created: false });
    clock.at += 60_000;
    await unshelved(store, recordId);
    clock.at += 60_000;

    expect(await shelve({ requestId: 'event-2' })).toEqual([duplicate]);
    expect(store.records.size).toBe(1);
  });

  it('is new again once the answers of an old one expired', async () => {
    const { store, clock, shelve } = setUp();
    const [first] = await shelve({ requestId: 'event-1' });
    clock.at += 60_000;
    await unshelved(store, first?.ok ? first.recordId : '');
    clock.at += (defaultShelvingSettings.requestMemorySeconds + 1) * 1000;

    const [late] = await shelve({ requestId: 'event-1' });

    expect(late).toMatchObject({ ok: true, created: true });
    expect(store.records.size).toBe(2);
  });
});

describe('the record a Shelve request creates', () => {
  it('names the request and when it was sent, so later requests can tell whether they mean it', async () => {
    const { store, clock, shelve } = setUp();
    const sentAt = clock.at - 95_000;

    const [answer] = await shelve({ requestId: 'event-1', sentAt: sentAt });

    const recordId = answer?.ok ? answer.recordId : '';
    expect(store.records.get(recordId)?.shelvedBy).toEqual({ requestId: 'event-1', sentAt });
  });

  it.each([
    ['older than EventBridge retries (a console test event)', -30 * 24 * 3_600_000],
    ['in the future', 60_000],
  ])('counts a request stamped %s as sent when handled', async (_, offsetMs) => {
    const { store, clock, shelve } = setUp();

    const [answer] = await shelve({ requestId: 'event-1', sentAt: clock.at + offsetMs });

    const recordId = answer?.ok ? answer.recordId : '';
    expect(store.records.get(recordId)?.shelvedBy).toEqual({ requestId: 'event-1', sentAt: clock.at });
  });
});
