import { describe, expect, it } from 'vitest';
import { claimServer, resumeClaim } from '../../../functions/claim/application/requests';
import type { ServerRequest } from '../../../functions/claim/schemas';
import { MemoryPoolStore } from '../../../functions/pools/adapters/memory-store';
import { ACTION_RESERVE_MS } from '../../../functions/pools/application/actions';
import { onInitStatus, onInstanceState } from '../../../functions/pools/application/member-events';
import {
  POOL_RESERVE_MS,
  reconcileAllPools,
  reconcileOne,
} from '../../../functions/pools/application/reconcile-round';
import { definePool } from '../../../functions/pools/application/requests';
import { CLAIM_GIVE_UP_MS, CLAIM_LEASE_MS } from '../../../functions/pools/domain/claims';
import type { PoolMember } from '../../../functions/pools/domain/lifecycle';
import { AGENT_REGISTRATION_DEADLINE_MS } from '../../../functions/pools/domain/reconcile';
import type { Deadline } from '../../../functions/shared/deadline';
import { ThrottledError } from '../../../functions/shared/errors';
import { harness } from './fakes';
import { member, NOW, spec } from './fixtures';

const POOL_TAGS = { 'warmboot:pools': 'true', 'warmboot:pool': 'linux-web' };

/** Stores an operator's pool of `poolSpec` (linux-web unless it names another), as DefinePool leaves it. */
const putOperatorPool = (
  store: Pick<MemoryPoolStore, 'putPool'>,
  poolSpec = spec(),
  status: 'active' | 'draining' = 'active',
) => store.putPool({ spec: poolSpec, source: 'operator', status }, NOW);

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

    expect(await store.updateMember(m, { ...m, state: 'retiring', version: 2 })).toBe(false);
    expect(await store.createMember(m)).toBe(false);
    expect((await store.findMember(m.instanceId))?.state).toBe('claimed');
  });

  it('gives the reconcile lease to one owner until it lapses', async () => {
    const store = new MemoryPoolStore();
    await putOperatorPool(store);

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
    await putOperatorPool(h.store, spec({ minSize: 4, maxSize: 4 }));
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
    await putOperatorPool(h.store);
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
    await putOperatorPool(h.store);
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

  it('reasserts a deploy-time pool over an operator record of the same name (C2: configuration wins)', async () => {
    const h = harness();
    await putOperatorPool(h.store, spec({ minSize: 0, maxSize: 9 }));

    await reconcileAllPools(
      h.pools,
      [spec({ minSize: 0, maxSize: 2 }), spec({ name: 'other', minSize: 0 })],
      NOW,
    );

    expect(await h.store.getPool('linux-web')).toMatchObject({ source: 'context', spec: { maxSize: 2 } });
    expect(await h.store.getPool('other')).toMatchObject({ source: 'context', status: 'active' });
  });

  it('forgets, and never terminates, a member whose instance no longer carries the pool tag', async () => {
    const h = harness();
    await putOperatorPool(h.store, spec({ minSize: 0 }), 'draining');
    const foreign = member({ state: 'ready' });
    h.ec2.add({
      instanceId: foreign.instanceId,
      state: 'stopped',
      tags: { 'warmboot:pools': 'true', 'warmboot:pool': 'elsewhere' },
    });
    await h.store.createMember(foreign);

    const summary = await reconcileOne(h.pools, 'linux-web', NOW);

    expect(summary.results).toEqual([{ id: foreign.instanceId, ok: true, action: 'forget' }]);
    expect(h.ec2.instances.get(foreign.instanceId)?.state).toBe('stopped');
    expect(h.ec2.calls).toEqual([]);
  });

  it('heals a claim stuck mid-saga: resumed by the claim function, or given up, released and reported', async () => {
    const h = harness();
    await putOperatorPool(h.store, spec({ minSize: 0 }));
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

/** An invocation's deadline on the harness clock: `ms` from now. */
const deadlineIn = (h: ReturnType<typeof harness>, ms: number): Deadline => {
  const endsAt = h.clock.now() + ms;
  return { remainingMs: () => endsAt - h.clock.now() };
};

/** A running member whose agent has not registered (SendCommand answers InvalidInstanceId). */
const unregistered = async (h: ReturnType<typeof harness>, overrides: Partial<PoolMember> = {}) => {
  const m = member({ state: 'launching', running: true, stateSince: h.clock.now(), ...overrides });
  h.ec2.add({ instanceId: m.instanceId, state: 'running', tags: { ...POOL_TAGS } });
  await h.store.createMember(m);
  h.ssm.offlineSends = Number.POSITIVE_INFINITY;
  return m;
};

describe('pools and a slow or absent SSM agent', () => {
  it('keeps a member joining while its agent has not registered, and a later reconcile sends the init', async () => {
    const h = harness();
    await putOperatorPool(h.store, spec({ minSize: 1, maxSize: 1 }));
    const m = await unregistered(h);

    const result = await onInstanceState(h.pools, m.instanceId, 'running', NOW);

    expect(result).toMatchObject({ results: [{ action: 'initialize', ok: true }] });
    expect(await h.store.findMember(m.instanceId)).toMatchObject({ state: 'joining', stateSince: NOW });
    expect(h.ec2.instances.get(m.instanceId)?.tags['warmboot:member-state']).toBe('joining');
    expect(h.ssm.sent).toEqual([]);

    h.ssm.offlineSends = 0;
    await reconcileOne(h.pools, 'linux-web', h.clock.now());

    expect(await h.store.findMember(m.instanceId)).toMatchObject({
      state: 'initializing',
      initCommandId: 'command-1',
    });
  });

  it('retires a member whose agent never registered once its platform deadline passed (agent-never-registered)', async () => {
    const h = harness();
    await putOperatorPool(h.store, spec({ minSize: 1, maxSize: 1 }));
    const m = await unregistered(h);
    await onInstanceState(h.pools, m.instanceId, 'running', NOW);

    await h.clock.sleep(AGENT_REGISTRATION_DEADLINE_MS.linux - (h.clock.now() - NOW));
    await reconcileOne(h.pools, 'linux-web', h.clock.now());
    expect((await h.store.findMember(m.instanceId))?.state).toBe('joining');
    await h.clock.sleep(1_000);
    const summary = await reconcileOne(h.pools, 'linux-web', h.clock.now());

    expect(summary.results).toContainEqual({ id: m.instanceId, ok: true, action: 'retire' });
    expect(await h.store.findMember(m.instanceId)).toMatchObject({
      state: 'retiring',
      reason: 'agent-never-registered',
    });
    expect(h.ec2.instances.get(m.instanceId)?.state).toBe('terminated');
  });

  it('gives a Windows member 30 minutes to register, not 10', async () => {
    const h = harness();
    const windows = spec({ minSize: 1, maxSize: 1, initialization: { platform: 'windows' } });
    await putOperatorPool(h.store, windows);
    const m = await unregistered(h, { state: 'joining', stateSince: NOW - 20 * 60_000 });

    await reconcileOne(h.pools, 'linux-web', NOW);
    expect((await h.store.findMember(m.instanceId))?.state).toBe('joining');
    await h.clock.sleep(AGENT_REGISTRATION_DEADLINE_MS.windows - 20 * 60_000 + 1_000);
    await reconcileOne(h.pools, 'linux-web', h.clock.now());

    expect(await h.store.findMember(m.instanceId)).toMatchObject({ reason: 'agent-never-registered' });
  });

  it('the running event waits for the agent no longer than the invocation has left (W7)', async () => {
    const h = harness();
    await putOperatorPool(h.store, spec({ minSize: 1, maxSize: 1 }));
    const m = await unregistered(h);

    await onInstanceState({ ...h.pools, deadline: deadlineIn(h, 40_000) }, m.instanceId, 'running', NOW);

    expect(h.clock.now() - NOW).toBeLessThanOrEqual(40_000 - ACTION_RESERVE_MS);
    expect((await h.store.findMember(m.instanceId))?.state).toBe('joining');
  });

  it('a reconcile waits for a held lease only as long as the invocation allows, then leaves the pool', async () => {
    const h = harness();
    await putOperatorPool(h.store);
    await h.store.acquireLease('linux-web', 'someone-else', NOW, NOW + 10 * 60_000);

    const summary = await reconcileOne({ ...h.pools, deadline: deadlineIn(h, 45_000) }, 'linux-web', NOW);

    expect(summary.skipped).toBe('lease held');
    expect(h.clock.now() - NOW).toBeLessThanOrEqual(45_000 - POOL_RESERVE_MS);
  });

  it('leaves actions it has no time to start to the next reconcile, and a pool it cannot start', async () => {
    const h = harness();
    await putOperatorPool(h.store, spec({ minSize: 3, maxSize: 4 }));
    const launched = () => h.ec2.calls.filter((call) => call.startsWith('launch')).length;
    const shrinking: Deadline = { remainingMs: () => (launched() === 0 ? 60_000 : ACTION_RESERVE_MS - 1) };

    const summary = await reconcileOne({ ...h.pools, deadline: shrinking }, 'linux-web', NOW);
    expect(summary.results.map((result) => result.action)).toEqual(['launch']);
    expect(summary.deferred).toBe(2);
    const none = await reconcileOne(
      { ...h.pools, deadline: deadlineIn(h, POOL_RESERVE_MS - 1) },
      'linux-web',
      NOW,
    );

    expect(none.skipped).toBe('out of time');
    expect(launched()).toBe(1);
    const next = await reconcileOne(h.pools, 'linux-web', h.clock.now());
    expect(next.results.filter((result) => result.action === 'launch')).toHaveLength(2);
  });

  it('a claim out of time waiting for personalization answers in-progress and lets the next driver take over', async () => {
    const h = harness();
    await putOperatorPool(h.store);
    await h.store.createMember(readyMember(h));
    h.ssm.results.set('command-1', 'pending');

    const outcome = await claimServer({ ...h.claims, deadline: deadlineIn(h, 60_000) }, 'slow-agent', {
      pool: 'linux-web',
      ownerTags: { owner: 'team-a' },
    });

    expect(outcome).toMatchObject({ status: 'in-progress', requestId: 'slow-agent' });
    expect(h.clock.now() - NOW).toBeLessThanOrEqual(60_000);
    const claim = await h.store.getClaim('slow-agent');
    expect(claim?.leaseUntil).toBeUndefined();
    expect(claim?.step).toBe('started');
    h.ssm.results.set('command-1', 'success');
    expect(await resumeClaim(h.claims, 'slow-agent')).toMatchObject({ status: 'ready' });
  });
});

describe('pool members by provenance, not tags (H1)', () => {
  it('records a launch intent under the ClientToken before RunInstances, and closes it with the member write', async () => {
    const h = harness();
    const launch = h.ec2.launch.bind(h.ec2);
    const intentsAtLaunch: number[] = [];
    h.ec2.launch = async (input) => {
      intentsAtLaunch.push((await h.store.launchIntents('linux-web', NOW)).length);
      return launch(input);
    };

    await definePool(h.pools, spec({ minSize: 1 }), 'operator', NOW);

    const [instance] = h.ec2.instances.values();
    expect(intentsAtLaunch).toEqual([1]);
    expect(await h.store.launchIntents('linux-web', NOW)).toEqual([
      {
        clientToken: instance?.clientToken,
        pool: 'linux-web',
        subnetId: instance?.subnetId,
        count: 1,
        origin: 'pool',
        nonce: expect.stringMatching(/^[0-9a-f]{32}$/),
        createdAt: NOW,
        instanceId: instance?.instanceId,
      },
    ]);
  });

  /** Defines a pool of one member with a first handling that dies in `target[method]`. */
  const defineOneDyingAt = async <T, K extends keyof T>(
    h: ReturnType<typeof harness>,
    target: T,
    method: K,
    message: string,
  ) => {
    const working = target[method];
    target[method] = (async () => {
      throw new Error(message);
    }) as T[K];
    await definePool(h.pools, spec({ minSize: 1, maxSize: 1 }), 'operator', NOW);
    target[method] = working;
  };

  it('converges after a crash between the intent and RunInstances: the next reconcile launches afresh', async () => {
    const h = harness();
    await defineOneDyingAt(h, h.ec2, 'launch', 'the function died before RunInstances');

    await reconcileOne(h.pools, 'linux-web', NOW + 60_000);

    expect(h.ec2.instances.size).toBe(1);
    expect((await h.store.listMembers('linux-web')).map((m) => m.state)).toEqual(['launching']);
  });

  it('converges after a crash between RunInstances and the member write: the next reconcile adopts the instance', async () => {
    const h = harness();
    await defineOneDyingAt(h, h.store, 'recordLaunch', 'the function died after RunInstances');
    const [orphan] = h.ec2.instances.values();

    const summary = await reconcileOne(h.pools, 'linux-web', NOW + 60_000);

    expect(summary.results).toEqual([{ id: orphan?.instanceId, ok: true, action: 'adopt' }]);
    expect(h.ec2.instances.size).toBe(1);
    expect(await h.store.listMembers('linux-web')).toMatchObject([
      { instanceId: orphan?.instanceId, state: 'launching', origin: 'pool', reason: 'adopted' },
    ]);
    expect((await h.store.launchIntents('linux-web', NOW))[0]?.instanceId).toBe(orphan?.instanceId);
  });

  it('never adopts, stops, hands out or terminates an instance someone else tagged as a ready member', async () => {
    const h = harness();
    await putOperatorPool(h.store, spec({ minSize: 1, maxSize: 2 }));
    const planted = h.ec2.add({
      instanceId: 'i-0bad0bad0bad0bad0',
      state: 'stopped',
      tags: { ...POOL_TAGS, 'warmboot:member-state': 'ready' },
      clientToken: 'linux-web-1767600000-0',
    });

    const summary = await reconcileOne(h.pools, 'linux-web', NOW);
    const outcome = await claimServer(h.claims, 'req-victim', {
      pool: 'linux-web',
      ownerTags: { owner: 'team-a' },
    });
    await h.store.setStatus('linux-web', 'draining', NOW);
    const drained = await reconcileOne(h.pools, 'linux-web', h.clock.now());

    expect(summary.foreignTagged).toEqual([planted.instanceId]);
    expect(drained.foreignTagged).toEqual([planted.instanceId]);
    expect(await h.store.findMember(planted.instanceId)).toBeUndefined();
    expect(outcome).not.toMatchObject({ instanceId: planted.instanceId });
    expect(h.ec2.calls.filter((call) => call.includes(planted.instanceId))).toEqual([]);
    expect(h.ec2.instances.get(planted.instanceId)?.state).toBe('stopped');
  });
});
