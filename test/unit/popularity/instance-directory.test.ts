import { describe, expect, it } from 'vitest';
import {
  CachedInstanceDirectory,
  ec2InstanceDirectory,
  type InstanceDirectory,
  type InstanceFacts,
} from '../../../functions/popularity/adapters/instance-directory';
import { createCloud, launch } from '../local/ec2-harness';

/** An in-memory DescribeInstances: knows some instances, records every call's ids. */
const fakeDirectory = (known: readonly string[]) => {
  const calls: string[][] = [];
  let failure: Error | undefined;
  const directory: InstanceDirectory = {
    async describe(instanceIds) {
      calls.push([...instanceIds]);
      if (failure) throw failure;
      return new Map(
        instanceIds
          .filter((id) => known.includes(id))
          .map((id): [string, InstanceFacts] => [id, { instanceId: id, imageId: `ami-for-${id}` }]),
      );
    },
  };
  return {
    directory,
    calls,
    failNext: (error: Error) => {
      failure = error;
    },
    heal: () => {
      failure = undefined;
    },
  };
};

/** A gather step the test releases by hand, so "arrived together" is explicit. */
const manualGather = () => {
  const waiting: (() => void)[] = [];
  return {
    gather: () => new Promise<void>((resolve) => waiting.push(resolve)),
    release: async () => {
      for (const resolve of waiting.splice(0)) resolve();
      // Let the flush run its describe and resolve the waiters.
      await new Promise((resolve) => setTimeout(resolve, 0));
    },
  };
};

describe('CachedInstanceDirectory', () => {
  it('coalesces lookups that arrive together into one DescribeInstances, duplicates included', async () => {
    const fake = fakeDirectory(['i-1', 'i-2']);
    const step = manualGather();
    const cache = new CachedInstanceDirectory(fake.directory, 10, step.gather);
    const lookups = Promise.all([cache.lookup('i-1'), cache.lookup('i-2'), cache.lookup('i-1')]);
    await step.release();
    expect((await lookups).map((facts) => facts?.imageId)).toEqual([
      'ami-for-i-1',
      'ami-for-i-2',
      'ami-for-i-1',
    ]);
    expect(fake.calls).toEqual([['i-1', 'i-2']]);
  });

  it('answers a known instance from the cache and asks again for an unknown one', async () => {
    const fake = fakeDirectory(['i-1']);
    const cache = new CachedInstanceDirectory(fake.directory, 10, () => Promise.resolve());
    expect(await cache.lookup('i-1')).toMatchObject({ imageId: 'ami-for-i-1' });
    expect(await cache.lookup('i-1')).toMatchObject({ imageId: 'ami-for-i-1' });
    // EC2 is eventually consistent: an instance it does not know yet may appear shortly.
    expect(await cache.lookup('i-new')).toBeUndefined();
    expect(await cache.lookup('i-new')).toBeUndefined();
    expect(fake.calls).toEqual([['i-1'], ['i-new'], ['i-new']]);
  });

  it('keeps at most `capacity` instances, evicting the least recently used', async () => {
    const fake = fakeDirectory(['i-1', 'i-2', 'i-3']);
    const cache = new CachedInstanceDirectory(fake.directory, 2, () => Promise.resolve());
    await cache.lookup('i-1');
    await cache.lookup('i-2');
    await cache.lookup('i-1'); // i-1 is now the most recently used
    await cache.lookup('i-3'); // evicts i-2
    fake.calls.length = 0;
    await cache.lookup('i-1');
    await cache.lookup('i-3');
    await cache.lookup('i-2');
    expect(fake.calls).toEqual([['i-2']]);
  });

  it('prefetches a queue batch in one DescribeInstances of the uncached ids, and its lookups then cost none', async () => {
    const fake = fakeDirectory(['i-1', 'i-2', 'i-3']);
    const cache = new CachedInstanceDirectory(fake.directory, 10, () => Promise.resolve());
    await cache.lookup('i-1');
    await cache.prefetch(['i-1', 'i-2', 'i-3', 'i-2', 'i-unknown']);
    expect(await Promise.all(['i-1', 'i-2', 'i-3'].map((id) => cache.lookup(id)))).toMatchObject([
      { imageId: 'ami-for-i-1' },
      { imageId: 'ami-for-i-2' },
      { imageId: 'ami-for-i-3' },
    ]);
    expect(fake.calls).toEqual([['i-1'], ['i-2', 'i-3', 'i-unknown']]);
  });

  it('rejects every waiter of a failed call and recovers on the next lookup', async () => {
    const fake = fakeDirectory(['i-1']);
    const step = manualGather();
    const cache = new CachedInstanceDirectory(fake.directory, 10, step.gather);
    fake.failNext(new Error('RequestLimitExceeded'));
    const first = cache.lookup('i-1');
    const second = cache.lookup('i-1');
    const settled = Promise.allSettled([first, second]);
    await step.release();
    expect((await settled).map((result) => result.status)).toEqual(['rejected', 'rejected']);
    fake.heal();
    const again = cache.lookup('i-1');
    await step.release();
    expect(await again).toMatchObject({ imageId: 'ami-for-i-1' });
  });
});

describe('ec2InstanceDirectory against the EC2 simulator', () => {
  it('answers ids EC2 does not know, or that are malformed, as absent and still resolves the rest', async () => {
    const cloud = await createCloud();
    const known = await launch(cloud);
    const directory = ec2InstanceDirectory(cloud.ec2Client);

    // DescribeInstances refuses the whole call for one unknown (InvalidInstanceID.NotFound) or
    // malformed (InvalidInstanceID.Malformed) id; neither may fail the event that named it.
    const found = await cloud.run(() => directory.describe([known, 'i-0000000000000dead', 'i-zz']));

    expect([...found.keys()]).toEqual([known]);
    expect(found.get(known)?.imageId).toBe(cloud.imageId);
  });
});
