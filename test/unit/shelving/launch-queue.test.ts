import { describe, expect, it } from 'vitest';
import type { ShelvingEc2 } from '../../../functions/shelving/adapters/ec2';
import type { LaunchRequest } from '../../../functions/shelving/domain/bulk';
import { LAUNCH_REISSUE_MS } from '../../../functions/shelving/domain/saga';
import { SHELVED_TAG } from '../../../functions/shelving/domain/tags';
import type { ShelfRecord } from '../../../functions/shelving/domain/types';
import { countingEc2, NOW, record, retained, shelvingOnClock, volume } from './fakes';

/**
 * A bulk unshelve claims a round's launches at once and the account budget lets the calls out at
 * RunInstances' 2 a second. A claim whose call is still waiting its turn must not look lost: the
 * grace period before the batch is re-issued starts once the round's calls may all have gone
 * out, or a round in another environment calls RunInstances a second time for it.
 */

/** Five offloaded records, each with its own private address (so one launch each), unshelving. */
const RECORDS: ShelfRecord[] = Array.from({ length: 5 }, (_, index) => {
  const n = index.toString(16);
  return record({
    recordId: `sh-0123456789abcdef${n}-t8dsxz`,
    instanceId: `i-0123456789abcdef${n}`,
    config: { ...record().config, privateIpAddress: `10.0.0.${10 + index}` },
    volumes: [
      retained(`vol-00000000000000${n}0a`, '/dev/xvda', true),
      retained(`vol-00000000000000${n}0b`, '/dev/sdf', false),
    ],
    step: 'unshelve.choose',
    offloadedAt: NOW - 3_600_000,
    nextDueAt: NOW,
    unshelve: { requestId: 'unshelve-event', requestedAt: NOW, attempt: 0 },
  });
});

/** 1.6 RunInstances a second: the shelving function's share of the bucket's 2. */
const MS_PER_LAUNCH = 625;

/**
 * EC2 with the retained volumes available, a budget that needs MS_PER_LAUNCH per queued
 * RunInstances, and launches whose answers are lost on the way back (a reset connection): the
 * records keep their claims, and no replacement is known until one is re-issued.
 */
const queueingEc2 = (clock: { at: number }) => {
  const launches: { at: number; request: LaunchRequest }[] = [];
  const asked: number[] = [];
  const base = countingEc2();
  const owner = new Map(RECORDS.flatMap((shelf) => shelf.volumes.map((v) => [v.volumeId, shelf.recordId])));
  const overrides: Partial<ShelvingEc2> = {
    describeVolumes: async (ids) =>
      ids.map((id) => volume(id, { state: 'available', tags: { [SHELVED_TAG]: owner.get(id) ?? '' } })),
    describeShelvedSnapshots: async () => new Map(),
    describeImageOwners: async (imageIds) => imageIds.map((imageId) => ({ imageId, allowedOwner: true })),
    callQueueMs: (action, calls) => {
      if (action === 'RunInstances') asked.push(calls);
      return action === 'RunInstances' ? calls * MS_PER_LAUNCH : 0;
    },
    runInstances: async (request) => {
      launches.push({ at: clock.at, request });
      throw new Error('read ECONNRESET');
    },
  };
  const ec2 = new Proxy(overrides as ShelvingEc2, {
    get: (target, property) =>
      property in target ? target[property as keyof ShelvingEc2] : Reflect.get(base, property),
  });
  return { ec2, launches, asked };
};

describe('a launch claimed behind others in the account budget', () => {
  it('gets the round’s queue added to its grace period, and is re-issued only after both', async () => {
    const clock = { at: NOW };
    const world = queueingEc2(clock);
    const setUp = shelvingOnClock(world.ec2);
    Object.defineProperty(clock, 'at', { get: () => setUp.clock.at });
    for (const shelf of RECORDS) await setUp.store.create(shelf);
    const current = () => RECORDS.map((shelf) => setUp.store.records.get(shelf.recordId) ?? shelf);
    const queuedMs = 5 * MS_PER_LAUNCH;
    const dueAt = NOW + queuedMs + LAUNCH_REISSUE_MS;

    // The round claims all five and calls; no answer comes back.
    await setUp.rounds.advance(RECORDS);
    expect(world.asked[0]).toBe(5);
    const first = world.launches.slice(0, 5);
    expect(first.map(({ at }) => at)).toEqual([NOW, NOW, NOW, NOW, NOW]);
    for (const claimed of current()) {
      expect(claimed.unshelve?.batch).toMatchObject({ issuedAt: NOW, queuedMs });
      expect(claimed.nextDueAt).toBe(dueAt);
    }

    // A round just after the plain grace period: the calls may still be queued, so no second call.
    setUp.clock.at = NOW + LAUNCH_REISSUE_MS + 1;
    await setUp.rounds.advance(current());
    expect(world.launches.filter(({ at }) => at < dueAt)).toHaveLength(5);

    // Once the queue and the grace have both passed, each batch goes again under its own token.
    setUp.clock.at = Math.max(setUp.clock.at, dueAt);
    await setUp.rounds.advance(current());
    const again = world.launches.slice(5, 10);
    expect(again.map(({ request }) => request.clientToken)).toEqual(
      first.map(({ request }) => request.clientToken),
    );
  });
});
