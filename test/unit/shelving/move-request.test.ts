import { describe, expect, it } from 'vitest';
import { memoryShelfStore } from '../../../functions/shelving/adapters/memory-store';
import { offloadInstances, unshelveInstances } from '../../../functions/shelving/application/requests';
import { defaultShelvingSettings } from '../../../functions/shelving/config';
import type { ShelfRecord } from '../../../functions/shelving/domain/types';
import { countingEc2, NOW, record, retained, shelvingOnClock } from './fakes';

/**
 * Offload and Unshelve requests are recognized by their event id, like Shelve: a retry of a killed
 * handling acts on what the first handling resolved the instance ids (or the tenant) to, never on
 * a record of an instance shelved again in between.
 */

const INSTANCE_A = 'i-0123456789abcdef0';
const INSTANCE_B = 'i-0fedcba9876543210';
const FIRST_A = 'sh-0123456789abcdef0-aaaaaa';
const SECOND_A = 'sh-0123456789abcdef0-bbbbbb';
const FIRST_B = 'sh-0fedcba9876543210-aaaaaa';

const shelvedRecord = (recordId: string, instanceId: string, shelvedAt: number): ShelfRecord =>
  record({
    recordId,
    instanceId,
    shelvedAt,
    step: 'shelved',
    version: 1,
    volumes: [
      retained(`vol-${recordId.slice(-6)}${instanceId.slice(-11)}`, '/dev/xvda', true),
      retained(
        `vol-${recordId.slice(-6)}${instanceId.slice(-11)}`.replace('vol-', 'vol-d'),
        '/dev/sdf',
        false,
      ),
    ],
  });

/** With `killedStep`, the first handling dies right after it writes that step. */
const setUp = (killedStep?: ShelfRecord['step']) => shelvingOnClock(countingEc2(), killedStep);

/** What the saga leaves behind once the record came back: unshelved, instance link released. */
const finishUnshelve = async (store: ReturnType<typeof memoryShelfStore>, recordId: string) => {
  const [stored] = await store.getMany([recordId]);
  if (!stored) throw new Error(`no record ${recordId}`);
  const done: ShelfRecord = { ...stored, step: 'unshelved', version: stored.version + 1, nextDueAt: null };
  expect(await store.update(stored, done, { unlinkInstanceId: stored.instanceId })).toBe(true);
};

/**
 * A `move` (Unshelve or Offload) whose first handling died right after writing `killedStep`,
 * retried once the instance was shelved again (a new Shelve, a new event) before Lambda retried.
 */
const shelvedAgainBeforeTheRetry =
  (move: typeof unshelveInstances | typeof offloadInstances, killedStep: ShelfRecord['step']) => async () => {
    const { deps, rounds, store, clock } = setUp(killedStep);
    await store.create(shelvedRecord(FIRST_A, INSTANCE_A, NOW));
    await expect(move(deps, rounds, { instanceIds: [INSTANCE_A] }, { requestId: 'event-1' })).rejects.toThrow(
      /killed/,
    );
    clock.at += 60_000;
    await finishUnshelve(store, FIRST_A);
    await store.create(shelvedRecord(SECOND_A, INSTANCE_A, clock.at));
    clock.at += 5 * 60_000;

    const retried = await move(deps, rounds, { instanceIds: [INSTANCE_A] }, { requestId: 'event-1' });

    expect(retried).toEqual([{ id: FIRST_A, ok: true, step: killedStep }]);
    expect(store.records.get(SECOND_A)?.step).toBe('shelved');
    expect(store.records.get(FIRST_A)?.step).toBe('unshelved');
  };

describe('a retried Unshelve request', () => {
  /** The Unshelve request 'event-1' of instance A, its event sent at `sentAt`. */
  const unshelveASentAt = ({ deps, rounds }: ReturnType<typeof setUp>, sentAt: number) =>
    unshelveInstances(deps, rounds, { instanceIds: [INSTANCE_A] }, { requestId: 'event-1', sentAt });

  it(
    'does not unshelve the record of an instance shelved again after the killed first handling',
    shelvedAgainBeforeTheRetry(unshelveInstances, 'unshelve.start'),
  );

  it.each([
    [
      'the record of a Shelve sent in a later second',
      (at: number): ShelfRecord => ({
        ...shelvedRecord(SECOND_A, INSTANCE_A, at),
        shelvedBy: { requestId: 'event-shelve', sentAt: at },
      }),
    ],
    [
      'a record made a second later that names no Shelve (stored before `shelvedBy`)',
      (at: number): ShelfRecord => shelvedRecord(SECOND_A, INSTANCE_A, at),
    ],
  ])('does not act on %s, when the first handling died before resolving', async (_, shelvedLater) => {
    const setup = setUp('unshelve.start');
    const { store, clock } = setup;
    const sentAt = clock.at;
    // The first handling died before any call; then the instance was shelved (a new event).
    clock.at += 1_000;
    await store.create(shelvedLater(clock.at));
    clock.at += 60_000;

    const retried = await unshelveASentAt(setup, sentAt);

    expect(retried).toEqual([
      {
        id: INSTANCE_A,
        ok: false,
        error: { code: 'NotFound', message: expect.stringContaining('shelved again') },
      },
    ]);
    expect(store.records.get(SECOND_A)?.step).toBe('shelved');
  });

  it('acts on the record of a Shelve sent before it, though EventBridge delivered that Shelve after it (finding 10)', async () => {
    const setup = setUp();
    const { store, clock } = setup;
    const shelveSentAt = clock.at;
    const unshelveSentAt = clock.at + 60_000;
    // The Shelve's delivery was held back: its record is made 30 s after the Unshelve was sent.
    clock.at = unshelveSentAt + 30_000;
    await store.create({
      ...shelvedRecord(FIRST_A, INSTANCE_A, clock.at),
      shelvedBy: { requestId: 'event-shelve', sentAt: shelveSentAt },
    });
    clock.at += 5_000;

    const answer = await unshelveASentAt(setup, unshelveSentAt);

    expect(answer).toEqual([expect.objectContaining({ id: FIRST_A, ok: true })]);
    expect(store.records.get(FIRST_A)?.unshelve?.requestId).toBe('event-1');
  });

  it('treats a request whose time is older than any retry (a console test event) as sent now', async () => {
    const setup = setUp('unshelve.start');
    const { store, clock } = setup;
    const staleSampleTime = clock.at - 30 * 24 * 3_600_000;
    await store.create(shelvedRecord(FIRST_A, INSTANCE_A, clock.at));
    clock.at += 60_000;

    await expect(unshelveASentAt(setup, staleSampleTime)).rejects.toThrow(/killed/);

    expect(store.records.get(FIRST_A)?.step).toBe('unshelve.start');
  });

  it('acts on the tenant as first resolved, not on records shelved since', async () => {
    const { deps, rounds, store, clock } = setUp('unshelve.start');
    await store.create(shelvedRecord(FIRST_A, INSTANCE_A, NOW));
    await expect(
      unshelveInstances(deps, rounds, { tenant: 'tenant-a' }, { requestId: 'event-1' }),
    ).rejects.toThrow(/killed/);
    clock.at += 60_000;
    await store.create(shelvedRecord(FIRST_B, INSTANCE_B, clock.at));
    clock.at += 5 * 60_000;

    const retried = await unshelveInstances(deps, rounds, { tenant: 'tenant-a' }, { requestId: 'event-1' });

    expect(retried).toEqual([{ id: FIRST_A, ok: true, step: 'unshelve.start' }]);
    expect(store.records.get(FIRST_B)?.step).toBe('shelved');
  });

  it('resumes the record its killed first handling moved but never advanced', async () => {
    const { deps, rounds, store } = setUp('unshelve.start');
    await store.create(shelvedRecord(FIRST_A, INSTANCE_A, NOW));
    await expect(
      unshelveInstances(deps, rounds, { instanceIds: [INSTANCE_A] }, { requestId: 'event-1' }),
    ).rejects.toThrow(/killed/);
    expect(store.records.get(FIRST_A)?.version).toBe(2);

    await unshelveInstances(deps, rounds, { instanceIds: [INSTANCE_A] }, { requestId: 'event-1' });

    // Its first round ran: the record was observed and written again.
    expect(store.records.get(FIRST_A)?.version).toBeGreaterThan(2);
    expect(store.records.get(FIRST_A)?.unshelve?.requestId).toBe('event-1');
  });

  it('answers an instance that named no record NotFound again, even once it is shelved', async () => {
    const { deps, rounds, store, clock } = setUp('unshelve.start');
    await store.create(shelvedRecord(FIRST_A, INSTANCE_A, NOW));
    const first = await unshelveInstances(
      deps,
      rounds,
      { instanceIds: [INSTANCE_B] },
      { requestId: 'event-1' },
    );
    expect(first).toEqual([
      expect.objectContaining({
        id: INSTANCE_B,
        ok: false,
        error: expect.objectContaining({ code: 'NotFound' }),
      }),
    ]);
    clock.at += 60_000;
    await store.create(shelvedRecord(FIRST_B, INSTANCE_B, clock.at));

    expect(
      await unshelveInstances(deps, rounds, { instanceIds: [INSTANCE_B] }, { requestId: 'event-1' }),
    ).toEqual(first);
    expect(store.records.get(FIRST_B)?.step).toBe('shelved');
  });

  it('is new again once the request memory expired', async () => {
    const { deps, rounds, store, clock } = setUp();
    await store.create(shelvedRecord(FIRST_A, INSTANCE_A, NOW));
    await unshelveInstances(deps, rounds, { instanceIds: [INSTANCE_A] }, { requestId: 'event-1' });
    await finishUnshelve(store, FIRST_A);
    clock.at += (defaultShelvingSettings.requestMemorySeconds + 1) * 1000;
    await store.create(shelvedRecord(SECOND_A, INSTANCE_A, clock.at));

    const late = await unshelveInstances(
      deps,
      rounds,
      { instanceIds: [INSTANCE_A] },
      { requestId: 'event-1' },
    );

    expect(late).toEqual([expect.objectContaining({ id: SECOND_A, ok: true })]);
  });
});

describe('a retried Offload request', () => {
  it(
    'does not offload the record of an instance shelved again after the killed first handling',
    shelvedAgainBeforeTheRetry(offloadInstances, 'offload.terminate'),
  );
});
