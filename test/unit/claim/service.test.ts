import { describe, expect, it } from 'vitest';
import type { ServerRequest } from '../../../functions/claim/schemas';
import { claimServer } from '../../../functions/claim/service';
import type { PoolMember } from '../../../functions/pools/domain/lifecycle';
import { harness } from '../pools/fakes';
import { member, NOW, spec } from '../pools/fixtures';

const POOL_TAGS = {
  'warmboot:managed': 'true',
  'warmboot:pool': 'linux-web',
  'warmboot:member-state': 'ready',
};
const request: ServerRequest = {
  pool: 'linux-web',
  instanceType: 'm7i.large',
  availabilityZone: 'us-east-1a',
  ownerTags: { owner: 'team-a' },
};

const setUp = async (members: Partial<PoolMember>[]) => {
  const h = harness();
  await h.store.putPool({ spec: spec({ minSize: 0 }), source: 'operator', status: 'active' }, NOW);
  const created: PoolMember[] = [];
  for (const overrides of members) {
    const m = member({ launchedAt: NOW - 1000 * (created.length + 1), ...overrides });
    h.ec2.add({
      instanceId: m.instanceId,
      state: m.running ? 'running' : 'stopped',
      availabilityZone: m.availabilityZone,
      instanceType: m.instanceType,
      tags: { ...POOL_TAGS },
    });
    await h.store.createMember(m);
    created.push(m);
  }
  return { h, members: created };
};

describe('claimServer', () => {
  it('gives each of two concurrent requesters a different member', async () => {
    const { h, members } = await setUp([{}, {}]);

    const outcomes = await Promise.all([
      claimServer(h.claims, 'r1', request),
      claimServer(h.claims, 'r2', request),
    ]);

    expect(outcomes.map((outcome) => outcome.status)).toEqual(['ready', 'ready']);
    const ids = outcomes.map((outcome) => (outcome.status === 'ready' ? outcome.instanceId : ''));
    expect(new Set(ids)).toEqual(new Set(members.map((m) => m.instanceId)));
    expect(h.facts.filter((fact) => fact.detailType === 'Server Ready')).toHaveLength(2);
  });

  it('gives a member whose start hit a capacity error back to the pool, resized back, and starts the next', async () => {
    const { h, members } = await setUp([
      { availabilityZone: 'us-east-1a', instanceType: 'm7i.large' },
      { availabilityZone: 'us-east-1b', instanceType: 'm7i.large' },
    ]);
    h.ec2.noCapacity.add('us-east-1a');
    const [inA, inB] = members;

    const outcome = await claimServer(h.claims, 'r1', { ...request, instanceType: 'm7i.xlarge' });

    expect(outcome).toMatchObject({ status: 'ready', instanceId: inB?.instanceId, path: 'warm' });
    expect(h.ec2.instances.get(inA?.instanceId ?? '')).toMatchObject({
      state: 'stopped',
      instanceType: 'm7i.large',
      tags: POOL_TAGS,
    });
    expect(await h.store.findMember(inA?.instanceId ?? '')).toMatchObject({
      state: 'ready',
      instanceType: 'm7i.large',
    });
    expect(h.ec2.instances.get(inB?.instanceId ?? '')).toMatchObject({
      state: 'running',
      instanceType: 'm7i.xlarge',
    });
  });

  it('re-owns the server: only the owner tags remain, pool tags removed', async () => {
    const { h, members } = await setUp([{}]);

    await claimServer(h.claims, 'r1', request);

    expect(h.ec2.instances.get(members[0]?.instanceId ?? '')?.tags).toEqual({ owner: 'team-a' });
    expect(await h.store.listMembers('linux-web')).toEqual([]);
  });

  it('removes the pool tags from the handed-over server’s volumes too', async () => {
    const { h, members } = await setUp([{}]);
    const instanceId = members[0]?.instanceId ?? '';
    const [volumeId] = h.ec2.instances.get(instanceId)?.volumeIds ?? [];

    await claimServer(h.claims, 'r1', request);

    expect(h.ec2.volumeTags.get(volumeId ?? '')).toEqual({});
    expect(h.ec2.calls).toContain(`untag-volumes ${instanceId}`);
  });

  it('launches cold in the next subnet when one AZ has no capacity, and fails clearly when none has', async () => {
    const { h } = await setUp([]);
    h.ec2.noCapacity.add('us-east-1a');

    const cold = await claimServer(h.claims, 'r1', request);

    expect(cold).toMatchObject({ status: 'launching', path: 'cold' });
    expect(h.ec2.calls.filter((call) => call.startsWith('launch'))).toEqual([
      'launch subnet-0aaaaaaaaaaaaaaa1',
      'launch subnet-0bbbbbbbbbbbbbbb2',
    ]);
    h.ec2.noCapacity.add('us-east-1b');
    const failed = await claimServer(h.claims, 'r2', request);
    expect(failed).toMatchObject({ status: 'failed', error: { code: 'InsufficientCapacity' } });
    expect(h.facts.map((fact) => fact.detailType)).toContain('Server Request Failed');
  });

  it('answers a repeated request id with the first outcome instead of claiming again', async () => {
    const { h } = await setUp([{}, {}]);

    const first = await claimServer(h.claims, 'r1', request);
    const again = await claimServer(h.claims, 'r1', request);

    expect(again).toMatchObject({
      status: 'ready',
      instanceId: first.status === 'ready' ? first.instanceId : '',
    });
    expect((await h.store.listMembers('linux-web')).map((m) => m.state)).toEqual(['ready']);
  });
});
