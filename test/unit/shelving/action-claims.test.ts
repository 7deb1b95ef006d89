import { describe, expect, it } from 'vitest';
import { ACTION_CLAIM_MS } from '../../../functions/shelving/application/action-claims';
import { RoundRunner } from '../../../functions/shelving/application/rounds';
import { NOW, REPLACEMENT, REPLACING_ROOT, replacementWithDataAttached, shelvingOnClock } from './fakes';

/**
 * Two execution environments of the shelving function (two RoundRunners, one store, one EC2)
 * advancing the same record: the request's follower and an EC2 event's invocation. Whichever
 * writes its decision first makes the call; the other does not repeat it while the call may still
 * be waiting for a token of the account's bucket, and takes it over if its owner died holding it.
 */

/**
 * A running replacement with its data volume attached and the retained root available, so the
 * in-place swap's next call is CreateReplaceRootVolumeTask. The first call waits until the test
 * lets it through (`release`), as a call queued in the account budget does, or forever when its
 * environment died; later calls go through. Once one is made, the task shows.
 */
const readyToReplace = (now: () => number) => {
  const replaced: string[] = [];
  const callTimes: number[] = [];
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const ec2 = replacementWithDataAttached(
    () =>
      replaced.length > 0
        ? [{ taskId: 'replacevol-0123456789abcdef0', instanceId: REPLACEMENT, state: 'in-progress' }]
        : [],
    {
      replaceRootVolume: async ({ clientToken }: { clientToken: string }) => {
        ec2.calls.push('replaceRootVolume');
        callTimes.push(now());
        if (callTimes.length === 1) await gate;
        replaced.push(clientToken);
      },
    },
  );
  return { ec2, callTimes, release: () => release() };
};

/** Two environments over one store and EC2, the record in the in-place swap stored and loaded. */
const twoEnvironments = async () => {
  const time = { now: () => NOW };
  const { ec2, callTimes, release } = readyToReplace(() => time.now());
  const { deps, store, clock } = shelvingOnClock(ec2);
  time.now = () => clock.at;
  await store.create(REPLACING_ROOT);
  const loaded = await store.get(REPLACING_ROOT.recordId);
  if (!loaded) throw new Error('record missing');
  const follower = new RoundRunner(deps);
  /** The follower decides, writes its claim and calls (the call then waits at the gate). */
  const followerClaims = async () => {
    const following = follower.advance([loaded]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const claimed = await store.get(REPLACING_ROOT.recordId);
    if (!claimed?.acting) throw new Error('no claim written');
    return { following, claimed };
  };
  return {
    ec2,
    callTimes,
    release,
    store,
    clock,
    loaded,
    follower,
    followerClaims,
    onEvent: new RoundRunner(deps),
  };
};

const replaceCalls = (ec2: { calls: string[] }) => ec2.calls.filter((call) => call === 'replaceRootVolume');

describe('claims on a record’s EC2 calls across execution environments', () => {
  it('makes the replace-root call once when two environments decide it from the same state', async () => {
    const { ec2, release, loaded, follower, onEvent } = await twoEnvironments();

    const rounds = Promise.all([follower.advance([loaded]), onEvent.advance([loaded])]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    release();
    const [first, second] = await rounds;

    expect(replaceCalls(ec2)).toEqual(['replaceRootVolume']);
    const reasons = [...first.records, ...second.records].map((entry) => entry.reason);
    expect(reasons).toContain('changed concurrently');
  });

  it('leaves the call to the environment whose claim is still waiting for a token', async () => {
    const { ec2, release, followerClaims, onEvent } = await twoEnvironments();

    const { following, claimed } = await followerClaims();
    expect(claimed.acting?.calls).toHaveLength(1);

    const eventRound = await onEvent.advance([claimed]);
    expect(eventRound.records[0]?.reason).toBe('its calls are claimed by another invocation');
    expect(replaceCalls(ec2)).toHaveLength(1);

    release();
    await following;
    expect(replaceCalls(ec2)).toHaveLength(1);
  });

  it('takes the call over once the claim of an environment that died has lapsed, not before', async () => {
    const { ec2, callTimes, store, clock, followerClaims, onEvent } = await twoEnvironments();

    // The follower claims, calls and never comes back (its call is never answered).
    const { claimed } = await followerClaims();
    const until = claimed.acting?.until ?? Number.NaN;
    expect(until).toBe(NOW + ACTION_CLAIM_MS);

    // An event's invocation 40 s later keeps looking at the record and calls once the claim lapses.
    clock.at = NOW + 40_000;
    await onEvent.advance([claimed]);

    expect(replaceCalls(ec2)).toHaveLength(2);
    expect(callTimes[1]).toBeGreaterThanOrEqual(until);
    const after = await store.get(REPLACING_ROOT.recordId);
    expect(after?.acting?.by).not.toBe(claimed.acting?.by);
  });

  it("looks again at a claimed record when the claim's owner will, not at every tick", async () => {
    const { ec2, store, followerClaims, onEvent } = await twoEnvironments();

    const { claimed } = await followerClaims();
    // The owner expects the effect later than the event's invocation would chain for (a start: 30 s).
    const later = { ...claimed, version: claimed.version + 1, nextDueAt: NOW + 30_000 };
    await store.update(claimed, later);
    const looksBefore = ec2.calls.filter((call) => call === 'describeRootReplacements').length;

    const eventRound = await onEvent.advance([later]);

    expect(eventRound.records[0]).toMatchObject({
      reason: 'its calls are claimed by another invocation',
      recheckAt: NOW + 30_000,
    });
    expect(ec2.calls.filter((call) => call === 'describeRootReplacements').length - looksBefore).toBe(1);
  });
});
