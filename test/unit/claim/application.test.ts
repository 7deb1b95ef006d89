import { describe, expect, it } from 'vitest';
import { claimServer, resumeClaim } from '../../../functions/claim/application/requests';
import type { ServerRequest } from '../../../functions/claim/schemas';
import { CLAIM_LEASE_MS, type ClaimRecord } from '../../../functions/pools/domain/claims';
import type { PoolMember } from '../../../functions/pools/domain/lifecycle';
import { ThrottledError } from '../../../functions/shared/errors';
import { harness } from '../pools/fakes';
import { member, NOW, spec } from '../pools/fixtures';

const POOL_TAGS = {
  'warmboot:pools': 'true',
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
  await h.store.putPool(
    // Requests may resize a member to m7i.xlarge: the pool lists that type (H4).
    { spec: spec({ minSize: 0, instanceTypes: ['m7i.xlarge'] }), source: 'operator', status: 'active' },
    NOW,
  );
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

/** A claim recorded as requested whose run died before its next step (lease still on). */
const requestedClaim = (requestId: string): ClaimRecord => ({
  requestId,
  step: 'requested',
  pool: 'linux-web',
  request,
  requestedAt: NOW,
  updatedAt: NOW,
  leaseUntil: NOW + CLAIM_LEASE_MS,
  version: 0,
});

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

  it('finishes a claim interrupted after the start when the same request is retried', async () => {
    const { h, members } = await setUp([{}, {}]);
    const tag = h.ec2.tag.bind(h.ec2);
    h.ec2.tag = async () => {
      throw new ThrottledError('CreateTags failed: RequestLimitExceeded');
    };

    await expect(claimServer(h.claims, 'r1', request)).rejects.toBeInstanceOf(ThrottledError);
    // Personalized while still pool-tagged; the owner tags are what failed.
    expect(await h.store.getClaim('r1')).toMatchObject({ step: 'personalized' });
    expect((await h.store.getClaim('r1'))?.leaseUntil).toBeUndefined();
    h.ec2.tag = tag;
    const retried = await claimServer(h.claims, 'r1', request);

    const startedFirst = members.find((m) => h.ec2.calls.includes(`start ${m.instanceId}`));
    expect(retried).toMatchObject({ status: 'ready', instanceId: startedFirst?.instanceId, path: 'warm' });
    expect(h.ec2.calls.filter((call) => call.startsWith('start'))).toHaveLength(1);
    expect(h.ec2.instances.get(startedFirst?.instanceId ?? '')?.tags).toEqual({ owner: 'team-a' });
    expect(h.facts.filter((fact) => fact.detailType === 'Server Ready')).toHaveLength(1);
    expect((await h.store.listMembers('linux-web')).map((m) => m.state)).toEqual(['ready']);
    // The retry continued after personalization: it was sent once.
    expect(h.ssm.sent).toHaveLength(1);
  });

  it('personalizes the member while it still carries the pool tags IAM conditions SendCommand on', async () => {
    const { h } = await setUp([{}]);
    const tagsAtSend: Record<string, string>[] = [];
    const send = h.ssm.send.bind(h.ssm);
    h.ssm.send = async (instanceId, document, parameters) => {
      tagsAtSend.push({ ...h.ec2.instances.get(instanceId)?.tags });
      return send(instanceId, document, parameters);
    };

    const outcome = await claimServer(h.claims, 'r1', request);

    expect(outcome).toMatchObject({ status: 'ready' });
    expect(tagsAtSend).toEqual([
      expect.objectContaining({ 'warmboot:pools': 'true', 'warmboot:pool': 'linux-web' }),
    ]);
    expect(tagsAtSend[0]).not.toHaveProperty('owner');
  });

  it('never hands a member whose personalization failed to the requester', async () => {
    const { h, members } = await setUp([{}]);
    const [only] = members;
    h.ssm.results.set('command-1', 'failed');

    const outcome = await claimServer(h.claims, 'r1', request);

    expect(outcome).toMatchObject({ status: 'failed', error: { code: 'PersonalizationFailed' } });
    expect(h.ec2.instances.get(only?.instanceId ?? '')?.tags).toMatchObject(POOL_TAGS);
    expect(h.ec2.instances.get(only?.instanceId ?? '')?.tags).not.toHaveProperty('owner');
    // Still claimed: the reconcile retires it after the claim, it never goes back to the pool.
    expect(await h.store.findMember(only?.instanceId ?? '')).toMatchObject({
      state: 'claimed',
      claimId: 'r1',
    });
  });

  it('continues with the member an interrupted run claimed before it could record the step', async () => {
    const { h, members } = await setUp([{}, {}]);
    const [taken] = members;
    await h.store.createClaim(requestedClaim('r1'));
    if (taken) await h.store.updateMember(taken, { ...taken, state: 'claimed', claimId: 'r1', version: 4 });

    expect(await resumeClaim(h.claims, 'r1')).toMatchObject({ status: 'in-progress', step: 'requested' });
    await h.clock.sleep(CLAIM_LEASE_MS + 1);
    const resumed = await resumeClaim(h.claims, 'r1');

    expect(resumed).toMatchObject({ status: 'ready', instanceId: taken?.instanceId });
    expect((await h.store.listMembers('linux-web')).map((m) => [m.instanceId, m.state])).toEqual([
      [members[1]?.instanceId, 'ready'],
    ]);
  });

  it('waits for the cold launch an interrupted run made before it could record the step, instead of failing it', async () => {
    const { h } = await setUp([]);
    await h.store.createClaim(requestedClaim('r1'));
    // The run launched and recorded the member, then died before `cold-launching` was written.
    const launched = member({
      instanceId: 'i-0c01d1a0000000001',
      origin: 'claim',
      state: 'launching',
      claimId: 'r1',
    });
    h.ec2.add({
      instanceId: launched.instanceId,
      state: 'pending',
      availabilityZone: launched.availabilityZone,
      instanceType: launched.instanceType,
      tags: { ...POOL_TAGS, 'warmboot:member-state': 'launching', 'warmboot:claim': 'r1' },
    });
    await h.store.createMember(launched);
    await h.clock.sleep(CLAIM_LEASE_MS + 1);

    const resumed = await resumeClaim(h.claims, 'r1');

    expect(resumed).toMatchObject({ status: 'launching', instanceId: launched.instanceId, path: 'cold' });
    expect(await h.store.getClaim('r1')).toMatchObject({
      step: 'cold-launching',
      instanceId: launched.instanceId,
    });
    expect(h.facts.filter((fact) => fact.detailType === 'Server Request Failed')).toEqual([]);
  });

  it('answers a request for a draining pool with a failure fact an asynchronous requester sees', async () => {
    const { h } = await setUp([{}]);
    await h.store.setStatus('linux-web', 'draining', NOW);

    const outcome = await claimServer(h.claims, 'r1', request);

    expect(outcome).toMatchObject({ status: 'failed', error: { code: 'NotFound' } });
    expect(h.facts).toEqual([
      {
        detailType: 'Server Request Failed',
        detail: {
          requestId: 'r1',
          pool: 'linux-web',
          error: { code: 'NotFound', message: expect.stringContaining('draining') },
        },
      },
    ]);
  });

  it('publishes the outcome of a finished claim again when the request is seen again', async () => {
    const { h } = await setUp([{}]);
    const first = await claimServer(h.claims, 'r1', request);
    h.ec2.noCapacity.add('us-east-1a');
    h.ec2.noCapacity.add('us-east-1b');
    await claimServer(h.claims, 'r2', request);

    await claimServer(h.claims, 'r1', request);
    await claimServer(h.claims, 'r2', request);

    const ready = h.facts.filter((fact) => fact.detailType === 'Server Ready');
    expect(ready.map((fact) => fact.detail)).toEqual([
      expect.objectContaining({
        requestId: 'r1',
        instanceId: first.status === 'ready' ? first.instanceId : '',
      }),
      expect.objectContaining({
        requestId: 'r1',
        instanceId: first.status === 'ready' ? first.instanceId : '',
      }),
    ]);
    const failed = h.facts.filter((fact) => fact.detailType === 'Server Request Failed');
    expect(failed.map((fact) => fact.detail)).toEqual([
      expect.objectContaining({
        requestId: 'r2',
        error: expect.objectContaining({ code: 'InsufficientCapacity' }),
      }),
      expect.objectContaining({
        requestId: 'r2',
        error: expect.objectContaining({ code: 'InsufficientCapacity' }),
      }),
    ]);
  });

  it('gives each cold launch of a request with a 64-character id its own ClientToken of at most 64 characters', async () => {
    const { h } = await setUp([]);
    h.ec2.noCapacity.add('us-east-1a');
    const longId = 'r'.repeat(64);

    const cold = await claimServer(h.claims, longId, request);

    expect(cold).toMatchObject({ status: 'launching', path: 'cold' });
    expect(h.ec2.clientTokens).toHaveLength(2);
    expect(new Set(h.ec2.clientTokens).size).toBe(2);
    for (const token of h.ec2.clientTokens) expect(token.length).toBeLessThanOrEqual(64);
  });

  it('fails a cold claim whose server was retired before it could be handed over', async () => {
    const { h } = await setUp([]);
    const cold = await claimServer(h.claims, 'r1', request);
    const instanceId = cold.status === 'launching' ? cold.instanceId : '';
    const launched = await h.store.findMember(instanceId);
    if (launched)
      await h.store.updateMember(launched, {
        ...launched,
        state: 'retiring',
        reason: 'init-failed',
        version: launched.version + 1,
      });
    await h.clock.sleep(CLAIM_LEASE_MS + 1);

    const outcome = await resumeClaim(h.claims, 'r1');

    expect(outcome).toMatchObject({ status: 'failed', error: { code: 'ColdLaunchFailed' } });
    expect(h.facts.at(-1)).toMatchObject({
      detailType: 'Server Request Failed',
      detail: { requestId: 'r1', instanceId },
    });
  });
});
