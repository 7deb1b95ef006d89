import { describe, expect, it } from 'vitest';
import type { ShelvingEc2 } from '../../../functions/shelving/adapters/ec2';
import { FOLLOW_MS, RoundRunner } from '../../../functions/shelving/application/rounds';
import {
  countingEc2,
  instance,
  NOW,
  REPLACEMENT,
  REPLACING_ROOT,
  record,
  replacementWithDataAttached,
  shelvingOnClock,
  volume,
} from './fakes';

/**
 * A request or the schedule follows its records while EC2 moves them (their state-change events
 * come through the batched queue, up to 20 s late); an event's own handling does not, and no
 * following outlives the invocation's deadline.
 */

/** An instance that stays `stopping` whatever the round does, its volumes attached to it. */
const stuckStopping = (): ShelvingEc2 & { calls: string[] } => {
  const counting = countingEc2();
  return new Proxy(counting, {
    get(target, property) {
      if (property === 'describeInstances') {
        return async () => {
          target.calls.push('describeInstances');
          return [instance({ state: 'stopping' })];
        };
      }
      if (property === 'describeVolumes') {
        return async () => [
          volume('vol-0000000000000000a', { tags: { 'warmboot:shelved': record().recordId } }),
          volume('vol-0000000000000000b', { tags: { 'warmboot:shelved': record().recordId } }),
        ];
      }
      return Reflect.get(target, property);
    },
  });
};

/**
 * A running replacement whose root EC2 is still replacing (the task sends no event and takes
 * about 20 s, longer behind the account's queue), its data volume already attached.
 */
const rootStillReplacing = () =>
  replacementWithDataAttached(() => [
    { taskId: 'replacevol-0123456789abcdef0', instanceId: REPLACEMENT, state: 'in-progress' },
  ]);

const stopping = record({ step: 'shelve.stop', nextDueAt: NOW });

const onClock = (endsInMs: number, ec2 = stuckStopping()) => {
  const { deps, store, clock } = shelvingOnClock(ec2);
  const deadline = { remainingMs: () => NOW + endsInMs - clock.at };
  return { ec2, store, clock, rounds: new RoundRunner({ ...deps, deadline }) };
};

describe('following records within an invocation', () => {
  it('looks again every few seconds while a record waits on EC2, until its follow time is up', async () => {
    const { ec2, store, clock, rounds } = onClock(170_000);
    await store.create(stopping);

    const summary = await rounds.advance([stopping], { followForMs: FOLLOW_MS.schedule });

    expect(summary.records[0]).toMatchObject({ step: 'shelve.stop', reason: 'instance is stopping' });
    const looks = ec2.calls.filter((call) => call === 'describeInstances').length;
    expect(looks).toBeGreaterThan(10);
    expect(clock.at - NOW).toBeLessThanOrEqual(FOLLOW_MS.schedule);
  });

  it('stops following while the invocation still has time for its last writes', async () => {
    const { store, clock, rounds } = onClock(25_000);
    await store.create(stopping);

    await rounds.advance([stopping], { followForMs: FOLLOW_MS.request });

    // 15 s are kept back from the deadline: at most 10 s of following.
    expect(clock.at - NOW).toBeLessThanOrEqual(10_000);
  });

  it('leaves a record waiting on EC2 to its state-change event when not following', async () => {
    const { ec2, store, clock, rounds } = onClock(170_000);
    await store.create(stopping);

    await rounds.advance([stopping]);

    expect(ec2.calls.filter((call) => call === 'describeInstances')).toHaveLength(1);
    expect(clock.at).toBe(NOW);
  });

  it("keeps looking at a root replacement from an event's invocation for longer than the task takes", async () => {
    // No event marks the task's end: an invocation that stops looking leaves the record to the
    // next 1-minute schedule. Twelve rounds (the old cap) looked for 22 s, about the task itself.
    const { ec2, store, clock, rounds } = onClock(170_000, rootStillReplacing());
    await store.create(REPLACING_ROOT);

    const summary = await rounds.advance([REPLACING_ROOT]);

    expect(summary.records[0]).toMatchObject({ step: 'unshelve.replace-root' });
    expect(clock.at - NOW).toBeGreaterThanOrEqual(40_000);
    expect(clock.at - NOW).toBeLessThanOrEqual(45_000);
    expect(ec2.calls.filter((call) => call === 'describeRootReplacements').length).toBeGreaterThan(20);
  });

  it("ends an event's looking while the invocation still has time for its last writes", async () => {
    const { store, clock, rounds } = onClock(30_000, rootStillReplacing());
    await store.create(REPLACING_ROOT);

    await rounds.advance([REPLACING_ROOT]);

    expect(clock.at - NOW).toBeLessThanOrEqual(15_000);
  });
});
