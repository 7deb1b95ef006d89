import { describe, expect, it } from 'vitest';
import { NotFoundError } from '../../../functions/shared/errors';
import type { ShelvingEc2 } from '../../../functions/shelving/adapters/ec2';
import { execute } from '../../../functions/shelving/application/execute';
import type { RecordProgress, Work } from '../../../functions/shelving/application/progress';
import { SHELVED_TAG } from '../../../functions/shelving/domain/tags';
import { countingEc2, record, shelvingWith } from './fakes';

/**
 * A bulk unshelve hands back every record's volumes in the same rounds: their `warmboot:shelved`
 * tags come off in one DeleteTags per hundred volumes, not one per record (a bucket of 100
 * refilled at 10 per second), and a volume EC2 refuses fails only its own record.
 */

const handBack = (recordId: string, volumeIds: readonly string[]): Work => ({
  record: record({ recordId, step: 'unshelve.finalize' }),
  actions: [{ kind: 'untag', resourceIds: volumeIds, keys: [SHELVED_TAG] }],
});

const untagging = (gone: ReadonlySet<string> = new Set()) => {
  const calls: string[][] = [];
  const base = countingEc2();
  const ec2 = new Proxy(base, {
    get(target, property, receiver) {
      if (property !== 'deleteTags') return Reflect.get(target, property, receiver);
      return async (resourceIds: readonly string[]) => {
        calls.push([...resourceIds]);
        const missing = resourceIds.find((id) => gone.has(id));
        // All or nothing, as EC2 answers: one unknown volume refuses the whole call.
        if (missing) throw new NotFoundError(`The volume '${missing}' does not exist.`);
      };
    },
  }) as ShelvingEc2;
  return { ec2, calls };
};

const run = async (ec2: ShelvingEc2, work: readonly Work[]) => {
  const { deps } = shelvingWith(ec2);
  const progress = new Map<string, RecordProgress>(
    work.map(({ record }) => [record.recordId, { recordId: record.recordId, step: record.step, reason: '' }]),
  );
  const released: string[] = [];
  await execute(
    deps,
    work,
    progress,
    (recordId) => released.push(recordId),
    () => {},
  );
  return { progress, released };
};

describe('handing back the volumes of many records', () => {
  it('takes their shelved tags off in one DeleteTags call', async () => {
    const { ec2, calls } = untagging();

    const { progress, released } = await run(ec2, [
      handBack('sh-a', ['vol-a1', 'vol-a2']),
      handBack('sh-b', ['vol-b1']),
      handBack('sh-c', ['vol-c1', 'vol-c2']),
    ]);

    expect(calls).toEqual([['vol-a1', 'vol-a2', 'vol-b1', 'vol-c1', 'vol-c2']]);
    expect(released.sort()).toEqual(['sh-a', 'sh-b', 'sh-c']);
    expect([...progress.values()].every((entry) => entry.error === undefined)).toBe(true);
  });

  it('names at most a hundred volumes a call and never splits a record', async () => {
    const { ec2, calls } = untagging();
    const work = Array.from({ length: 70 }, (_, index) =>
      handBack(`sh-${index}`, [`vol-${index}-root`, `vol-${index}-data`]),
    );

    await run(ec2, work);

    expect(calls.map((call) => call.length)).toEqual([100, 40]);
    expect(calls[0]?.at(-1)).toBe('vol-49-data');
  });

  it('answers a refused call one record at a time, so only the record whose volume is gone fails', async () => {
    const { ec2, calls } = untagging(new Set(['vol-b1']));

    const { progress } = await run(ec2, [handBack('sh-a', ['vol-a1']), handBack('sh-b', ['vol-b1'])]);

    expect(calls).toEqual([['vol-a1', 'vol-b1'], ['vol-a1'], ['vol-b1']]);
    expect(progress.get('sh-a')?.error).toBeUndefined();
    expect(progress.get('sh-b')?.error).toMatchObject({ code: 'NotFound' });
  });
});
