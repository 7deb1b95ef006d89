import { describe, expect, it } from 'vitest';
import { planLaunchBatches } from '../../../functions/shelving/domain/bulk';
import { replacementRootDeletionRefusal } from '../../../functions/shelving/domain/safety';
import { record, volume } from './fakes';

const many = (count: number, overrides: Parameters<typeof record>[0] = {}) =>
  Array.from({ length: count }, (_, index) =>
    record({
      recordId: `sh-${String(index).padStart(17, '0')}-t8dsxz`,
      instanceId: `i-${String(index).padStart(17, '0')}`,
      ...overrides,
    }),
  );

describe('planLaunchBatches', () => {
  it('launches identical configurations together, in calls of at most maxBatch, with launch indexes in order', () => {
    const plan = planLaunchBatches(many(250), new Map(), 100);

    expect(plan.batches.map((batch) => batch.recordIds.length)).toEqual([100, 100, 50]);
    expect(plan.batches[0]?.request).toMatchObject({
      minCount: 1,
      maxCount: 100,
      clientToken: plan.batches[0]?.batchId,
    });
    expect(plan.batches[0]?.request.devices).toEqual([
      { deviceName: '/dev/xvda', noDevice: false, deleteOnTermination: true },
      { deviceName: '/dev/sdf', noDevice: true },
    ]);
    expect(plan.batches[0]?.request.volumeTags).toMatchObject({ 'warmboot:replacement-root': 'true' });
  });

  it('launches a batch of one with its recorded tags and record link on the instance and its fresh root, so no CreateTags follows', () => {
    const [only] = many(1, { tags: { Name: 'web-1', team: 'blue' } });
    const plan = planLaunchBatches(only ? [only] : [], new Map(), 100);
    const link = { Name: 'web-1', team: 'blue', 'warmboot:replacement-for': only?.recordId };

    expect(plan.batches[0]?.request.instanceTags).toMatchObject(link);
    expect(plan.batches[0]?.request.volumeTags).toMatchObject({
      ...link,
      'warmboot:replacement-root': 'true',
    });
    const shared = planLaunchBatches(many(2), new Map(), 100).batches[0]?.request;
    expect(shared?.instanceTags['warmboot:replacement-for']).toBeUndefined();
  });

  it('puts records on their Dedicated Host while it has room, then follows affinity', () => {
    const config = { ...record().config, tenancy: 'host' as const, hostId: 'h-0123456789abcdef0' };
    const hostBound = many(3, { config: { ...config, affinity: 'host' } });
    const flexible = many(6, { config: { ...config, affinity: 'default' } }).slice(3);

    const plan = planLaunchBatches([...hostBound, ...flexible], new Map([['h-0123456789abcdef0', 2]]), 100);

    expect(plan.waiting.map((w) => w.reason)).toEqual(['Dedicated Host h-0123456789abcdef0 is full']);
    const placements = plan.batches.map((batch) => [
      batch.recordIds.length,
      batch.request.placement.hostId ?? 'any host',
      batch.request.placement.affinity,
    ]);
    expect(placements).toEqual([
      [2, 'h-0123456789abcdef0', 'host'],
      [3, 'any host', 'default'],
    ]);
  });
});

describe('replacementRootDeletionRefusal', () => {
  const fresh = volume('vol-0ffffffffffffff01', {
    state: 'available',
    tags: { 'warmboot:replacement-root': 'true', 'warmboot:replacement-for': 'sh-0123456789abcdef0-t8dsxz' },
  });
  const retained = new Set(['vol-0000000000000000a']);

  it('allows only a detached fresh root of this record', () => {
    expect(replacementRootDeletionRefusal(fresh, 'sh-0123456789abcdef0-t8dsxz', retained)).toBeUndefined();
    expect(replacementRootDeletionRefusal(fresh, 'sh-0aaaaaaaaaaaaaaaa-1', retained)).toMatch(
      /replacement-for/,
    );
    expect(
      replacementRootDeletionRefusal(
        { ...fresh, tags: { ...fresh.tags, 'warmboot:shelved': 'x' } },
        'sh-0123456789abcdef0-t8dsxz',
        retained,
      ),
    ).toMatch(/shelved/);
    expect(
      replacementRootDeletionRefusal(
        { ...fresh, volumeId: 'vol-0000000000000000a' },
        'sh-0123456789abcdef0-t8dsxz',
        retained,
      ),
    ).toMatch(/retained/);
    expect(
      replacementRootDeletionRefusal({ ...fresh, state: 'in-use' }, 'sh-0123456789abcdef0-t8dsxz', retained),
    ).toMatch(/in-use/);
  });
});
