import { describe, expect, it } from 'vitest';
import type { ServerRequest } from '../../../functions/claim/schemas';
import { claimServer, resumeClaim } from '../../../functions/claim/service';
import { MemoryPoolStore } from '../../../functions/pools/adapters/memory-store';
import { CLAIM_GIVE_UP_MS, CLAIM_LEASE_MS } from '../../../functions/pools/domain/claims';
import type { PoolMember } from '../../../functions/pools/domain/lifecycle';
import {
  definePool,
  onInitStatus,
  onInstanceState,
  reconcileAllPools,
  reconcileOne,
} from '../../../functions/pools/service';
import { ConflictError, ThrottledError } from '../../../functions/shared/errors';
import { harness } from './fakes';
import { member, NOW, spec } from './fixtures';

const POOL_TAGS = { 'warmboot:managed': 'true', 'warmboot:pool': 'linux-web' };

const readyMember = (h: ReturnType<typeof harness>, overrides: Partial<PoolMember> = {}) => {
  const m = member(overrides);
  h.ec2.add({
    instanceId: m.instanceId,
    state: 'stopped',
    tags: { ...POOL_TAGS, 'warmboot:member-state': 'ready' },
  });
  return m;
};

describe('MemoryPoolStore', () => {
  it('refuses a member update written against a stale version or state, like the DynamoDB condition', async () => {
    const store = new MemoryPoolStore();
    const m = member({ state: 'ready', version: 1 });
    await store.createMember(m);
    await store.updateMember(m, { ...m, state: 'claimed', version: 2 });

    await expect(store.updateMember(m, { ...m, state: 'retiring', version: 2 })).rejects.toBeInstanceOf(
      ConflictError,
    );
    await expect(store.createMember(m)).rejects.toBeInstanceOf(ConflictError);
    expect((await store.findMember(m.instanceId))?.state).toBe('claimed');
  });

  it('gives the reconcile lease to one owner until it lapses', async () => {
    const store = new MemoryPoolStore();
    await store.putPool({ spec: spec(), source: 'operator', status: 'active' }, NOW);

    expect(await store.acquireLease('linux-web', 'a', NOW, NOW + 1000)).toBe(true);
    expect(await store.acquireLease('linux-web', 'b', NOW + 500, NOW + 1500)).toBe(false);
    expect(await store.acquireLease('linux-web', 'b', NOW + 1001, NOW + 2000)).toBe(true);
    await store.releaseLease('linux-web', 'a');
    expect(await store.acquireLease('linux-web', 'c', NOW + 1002, NOW + 3000)).toBe(false);
  });
});

describe('pools service', () => {
  it('defines a pool and launches its minimum, tagging every launch as a managed pool member', async () => {
    const h = harness();

    const summary = await definePool(h.pools, spec({ minSize: 2 }), 'operator', NOW);

    expect(summary.results.map((result) => [result.action, result.ok])).toEqual([
      ['launch', true],
      ['launch', true],
    ]);
    const members = await h.store.listMembers('linux-web');
    expect(members.map((m) => m.state)).toEqual(['launching', 'launching']);
    for (const instance of h.ec2.instances.values()) {
      expect(instance.tags).toEqual({ ...POOL_TAGS, 'warmboot:member-state': 'launching' });
    }
  });

  it('never launches past maxSize when two reconciles of one pool run at the same time', async () => {
    const h = harness();
    await h.store.putPool(
      { spec: spec({ minSize: 4, maxSize: 4 }), source: 'operator', status: 'active' },
      NOW,
    );
    const existing = readyMember(h);
    await h.store.createMember(existing);

    const summaries = await Promise.all([
      reconcileOne(h.pools, 'linux-web', NOW),
      reconcileOne(h.pools, 'linux-web', NOW),
    ]);

    expect(h.ec2.calls.filter((call) => call.startsWith('launch'))).toHaveLength(3);
    expect(await h.store.listMembers('linux-web')).toHaveLength(4);
    expect(summaries.flatMap((summary) => summary.results).filter((result) => !result.ok)).toEqual([]);
  });

  it('waits for the SSM agent to register before sending the init command', async () => {
    const h = harness();
    await h.store.putPool({ spec: spec(), source: 'operator', status: 'active' }, NOW);
    const launching = member({ state: 'launching', running: true });
    h.ec2.add({ instanceId: launching.instanceId, state: 'running', tags: { ...POOL_TAGS } });
    await h.store.createMember(launching);
    h.ssm.offlineSends = 2;

    const result = await onInstanceState(h.pools, launching.instanceId, 'running', NOW);

    expect(result).toMatchObject({ results: [{ action: 'initialize', ok: true }] });
    expect(await h.store.findMember(launching.instanceId)).toMatchObject({
      state: 'initializing',
      initCommandId: 'command-1',
    });
    expect(h.ssm.sent[0]).toMatchObject({
      document: 'Warmboot-PoolInitialize',
      parameters: { platform: ['linux'] },
    });
  });

  it('stops a member whose init succeeded and retires one whose init failed', async () => {
    const h = harness();
    await h.store.putPool({ spec: spec(), source: 'operator', status: 'active' }, NOW);
    const good = member({ state: 'initializing', running: true, initCommandId: 'cmd-good' });
    const bad = member({ state: 'initializing', running: true, initCommandId: 'cmd-bad' });
    for (const m of [good, bad]) {
      h.ec2.add({ instanceId: m.instanceId, state: 'running', tags: { ...POOL_TAGS } });
      await h.store.createMember(m);
    }

    await onInitStatus(
      h.pools,
      { instanceId: good.instanceId, commandId: 'cmd-good', status: 'Success' },
      NOW,
    );
    await onInitStatus(h.pools, { instanceId: bad.instanceId, commandId: 'cmd-bad', status: 'Failed' }, NOW);
    const duplicate = await onInitStatus(
      h.pools,
      { instanceId: good.instanceId, commandId: 'cmd-good', status: 'Success' },
      NOW,
    );

    expect((await h.store.findMember(good.instanceId))?.state).toBe('stopping');
    expect(h.ec2.instances.get(good.instanceId)?.state).toBe('stopped');
    expect(await h.store.findMember(bad.instanceId)).toMatchObject({
      state: 'retiring',
      reason: 'init-failed',
    });
    expect(h.ec2.instances.get(bad.instanceId)?.state).toBe('terminated');
    expect(duplicate).toMatchObject({ ignored: expect.any(String) });
    expect(h.ec2.calls.filter((call) => call === `stop ${good.instanceId}`)).toHaveLength(1);
  });

  it('keeps the spec of a pool the operator defined when the same name comes from context', async () => {
    const h = harness();
    await h.store.putPool(
      { spec: spec({ minSize: 0, maxSize: 9 }), source: 'operator', status: 'active' },
      NOW,
    );

    await reconcileAllPools(
      h.pools,
      [spec({ minSize: 0, maxSize: 2 }), spec({ name: 'other', minSize: 0 })],
      NOW,
    );

    expect((await h.store.getPool('linux-web'))?.spec.maxSize).toBe(9);
    expect(await h.store.getPool('other')).toMatchObject({ source: 'context', status: 'active' });
  });

  it('forgets, and never terminates, a member whose instance no longer carries the pool tag', async () => {
    const h = harness();
    await h.store.putPool({ spec: spec({ minSize: 0 }), source: 'operator', status: 'draining' }, NOW);
    const foreign = member({ state: 'ready' });
    h.ec2.add({
      instanceId: foreign.instanceId,
      state: 'stopped',
      tags: { 'warmboot:managed': 'true', 'warmboot:pool': 'elsewhere' },
    });
    await h.store.createMember(foreign);

    const summary = await reconcileOne(h.pools, 'linux-web', NOW);

    expect(summary.results).toEqual([{ id: foreign.instanceId, ok: true, action: 'forget' }]);
    expect(h.ec2.instances.get(foreign.instanceId)?.state).toBe('stopped');
    expect(h.ec2.calls).toEqual([]);
  });

  it('heals a claim stuck mid-saga: resumed by the claim function, or given up, released and reported', async () => {
    const h = harness();
    await h.store.putPool({ spec: spec({ minSize: 0 }), source: 'operator', status: 'active' }, NOW);
    const first = readyMember(h);
    const second = readyMember(h);
    await h.store.createMember(first);
    await h.store.createMember(second);
    const request: ServerRequest = { pool: 'linux-web', ownerTags: { owner: 'team-a' } };
    const tag = h.ec2.tag.bind(h.ec2);
    h.ec2.tag = async () => {
      throw new ThrottledError('CreateTags failed: RequestLimitExceeded');
    };
    const failing = async (requestId: string) =>
      expect(claimServer(h.claims, requestId, request)).rejects.toBeInstanceOf(ThrottledError);
    await failing('stuck');
    await h.clock.sleep(CLAIM_GIVE_UP_MS / 2);
    await failing('abandoned');
    h.ec2.tag = tag;

    await h.clock.sleep(CLAIM_LEASE_MS + 1);
    const summary = await reconcileOne(h.pools, 'linux-web', h.clock.now());

    expect(summary.results).toEqual([
      { id: 'stuck', ok: true, action: 'resume-claim' },
      { id: 'abandoned', ok: true, action: 'resume-claim' },
    ]);
    expect(h.facts.filter((fact) => fact.detailType === 'Request Server').map((fact) => fact.detail)).toEqual(
      [
        { requestId: 'stuck', resume: true },
        { requestId: 'abandoned', resume: true },
      ],
    );
    expect(await resumeClaim(h.claims, 'stuck')).toMatchObject({ status: 'ready' });

    // The other one is never resumed (its resume event lost); once too old it is given up.
    await h.clock.sleep(CLAIM_GIVE_UP_MS);
    const later = await reconcileOne(h.pools, 'linux-web', h.clock.now());

    expect(later.results).toEqual(
      expect.arrayContaining([{ id: 'abandoned', ok: true, action: 'fail-claim' }]),
    );
    expect(await h.store.getClaim('abandoned')).toMatchObject({
      step: 'failed',
      error: { code: 'ClaimTimedOut' },
    });
    expect(h.facts.at(-1)).toMatchObject({
      detailType: 'Server Request Failed',
      detail: { requestId: 'abandoned', pool: 'linux-web', error: { code: 'ClaimTimedOut' } },
    });
    expect(await h.store.listOpenClaims('linux-web')).toEqual([]);
    // Its member, started for the requester but never handed over, leaves the pool.
    const abandoned = (await h.store.getClaim('abandoned'))?.instanceId ?? '';
    await reconcileOne(h.pools, 'linux-web', h.clock.now());
    expect(h.ec2.instances.get(abandoned)?.state).toBe('terminated');
  });
});
