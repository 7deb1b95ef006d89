import { describe, expect, it } from 'vitest';
import { claimServer, IdempotentParameterMismatchError } from '../../../functions/claim/application/requests';
import type { ServerRequest } from '../../../functions/claim/schemas';
import type { PoolSpecInput } from '../../../functions/pools/config';
import type { PoolMember } from '../../../functions/pools/domain/lifecycle';
import type { Caller } from '../../../functions/shared/caller';
import { harness } from '../pools/fakes';
import { member, NOW, spec } from '../pools/fixtures';

/**
 * What a request may ask of a pool (security review H4, H5, M6): only the pool's instance types
 * and owner tag keys, no cold launch past `maxSize`, a bounded number of requests per caller and
 * hour, one payload per request id, and no personalization values kept after they were sent.
 */
const request: ServerRequest = {
  pool: 'linux-web',
  ownerTags: { owner: 'team-a' },
  personalization: { hostname: 'web-1', sshPublicKey: 'ssh-ed25519 AAAAC3Nza alice@laptop' },
};
const teamA: Caller = { via: 'request-bus', tenants: ['team-a'], admin: false };
const teamB: Caller = { via: 'request-bus', tenants: ['team-b'], admin: false };
const admin: Caller = { via: 'direct-invoke', tenants: '*', admin: true };

const setUp = async (pool: Partial<PoolSpecInput> = {}, members: Partial<PoolMember>[] = []) => {
  const h = harness();
  await h.store.putPool({ spec: spec({ minSize: 0, ...pool }), source: 'context', status: 'active' }, NOW);
  for (const [index, overrides] of members.entries()) {
    const m = member({ launchedAt: NOW - 1000 * (index + 1), ...overrides });
    h.ec2.add({
      instanceId: m.instanceId,
      state: m.running ? 'running' : 'stopped',
      availabilityZone: m.availabilityZone,
      instanceType: m.instanceType,
      tags: { 'warmboot:pools': 'true', 'warmboot:pool': 'linux-web', 'warmboot:member-state': 'ready' },
    });
    await h.store.createMember(m);
  }
  return h;
};

describe('a Request Server is refused', () => {
  it('for an instance type the pool does not list, naming detail.instanceType, before any resize or launch', async () => {
    const h = await setUp({ instanceTypes: ['m7i.xlarge'] }, [{}]);

    const outcome = await claimServer(h.claims, 'r1', { ...request, instanceType: 'm7i.24xlarge' });

    expect(outcome).toMatchObject({
      status: 'failed',
      error: { code: 'InstanceTypeNotAllowed', message: expect.stringMatching(/^detail\.instanceType: /) },
    });
    expect(h.ec2.calls).toEqual([]);
    expect(await h.store.getClaim('r1')).toBeUndefined();
  });

  it('but a listed type is served by resizing a stopped member', async () => {
    const h = await setUp({ instanceTypes: ['m7i.xlarge'] }, [{}]);

    const outcome = await claimServer(h.claims, 'r1', { ...request, instanceType: 'm7i.xlarge' });

    expect(outcome).toMatchObject({ status: 'ready' });
    expect(h.ec2.calls.some((call) => call.startsWith('resize') && call.endsWith('m7i.xlarge'))).toBe(true);
  });

  it('for an owner tag key outside the pool’s ownerTagKeys, naming the key', async () => {
    const h = await setUp({ ownerTagKeys: ['owner', 'cost-center'] }, [{}]);

    const outcome = await claimServer(h.claims, 'r1', {
      ...request,
      ownerTags: { owner: 'team-a', 'Patch Group': 'prod-dbs' },
    });

    expect(outcome).toMatchObject({
      status: 'failed',
      error: {
        code: 'OwnerTagNotAllowed',
        message: expect.stringMatching(/^detail\.ownerTags\.Patch Group: /),
      },
    });
    expect(h.ec2.calls).toEqual([]);
  });

  it('not when the pool is full of members on their way: the claim waits for one, launching nothing', async () => {
    const h = await setUp({ maxSize: 2 }, [{ state: 'initializing' }, { state: 'launching' }]);

    const outcome = await claimServer(h.claims, 'r1', request);

    expect(outcome).toMatchObject({ status: 'in-progress', step: 'requested' });
    expect(h.ec2.clientTokens).toEqual([]);
  });

  it('counting cold launches under way against maxSize too', async () => {
    const h = await setUp({ maxSize: 2 });

    const first = await claimServer(h.claims, 'r1', request);
    const second = await claimServer(h.claims, 'r2', request);
    const third = await claimServer(h.claims, 'r3', request);

    expect([first.status, second.status, third.status]).toEqual(['launching', 'launching', 'failed']);
    expect(third).toMatchObject({ error: { code: 'PoolAtCapacity' } });
    expect(h.ec2.clientTokens).toHaveLength(2);
  });

  it('past the caller’s hourly quota for the pool; other callers, retries and the next hour are not affected', async () => {
    const h = await setUp({ maxSize: 20 }, []);
    const deps = { ...h.claims, policy: { ...h.claims.policy, requestsPerCallerPerHour: 2 } };

    const served = [
      await claimServer(deps, 'a1', request, teamA),
      await claimServer(deps, 'a2', request, teamA),
      await claimServer(deps, 'a1', request, teamA), // the same request again: not a new one
    ];
    const refused = await claimServer(deps, 'a3', request, teamA);
    const otherTenant = await claimServer(deps, 'b1', request, teamB);
    const administrator = await claimServer(deps, 'x1', request, admin);
    await h.clock.sleep(3_600_000);
    const nextHour = await claimServer(deps, 'a4', request, teamA);

    expect(served.map((outcome) => outcome.status)).toEqual(['launching', 'launching', 'in-progress']);
    expect(refused).toMatchObject({ status: 'failed', error: { code: 'RequestQuotaExceeded' } });
    expect(await h.store.getClaim('a3')).toBeUndefined();
    expect([otherTenant.status, administrator.status, nextHour.status]).toEqual([
      'launching',
      'launching',
      'launching',
    ]);
  });
});

describe('a request id', () => {
  it('reused with another payload is refused with IdempotentParameterMismatch naming detail.requestId', async () => {
    const h = await setUp({}, [{}, {}]);
    const first = await claimServer(h.claims, 'req-0001', request);

    const squatted = claimServer(h.claims, 'req-0001', {
      ...request,
      personalization: { sshPublicKey: 'ssh-ed25519 AAAAC3Nzb mallory@elsewhere' },
    });

    await expect(squatted).rejects.toBeInstanceOf(IdempotentParameterMismatchError);
    await expect(squatted).rejects.toMatchObject({
      code: 'IdempotentParameterMismatch',
      field: 'detail.requestId',
    });
    expect(first).toMatchObject({ status: 'ready' });
    expect(h.facts.filter((fact) => fact.detailType === 'Server Ready')).toHaveLength(1);
  });

  it('reused with the same payload in another field order continues the same saga', async () => {
    const h = await setUp({}, [{}, {}]);
    const first = await claimServer(h.claims, 'req-0001', request);

    const again = await claimServer(h.claims, 'req-0001', {
      personalization: { sshPublicKey: 'ssh-ed25519 AAAAC3Nza alice@laptop', hostname: 'web-1' },
      ownerTags: { owner: 'team-a' },
      pool: 'linux-web',
    });

    expect(again).toMatchObject({
      status: 'ready',
      instanceId: first.status === 'ready' ? first.instanceId : 'none',
    });
  });
});

describe('the claim record', () => {
  it('keeps only a digest of the personalization once the server is personalized', async () => {
    const h = await setUp({}, [{}]);

    await claimServer(h.claims, 'r1', request);

    const stored = await h.store.getClaim('r1');
    expect(stored?.step).toBe('ready');
    expect(stored?.request).not.toHaveProperty('personalization');
    expect(JSON.stringify(stored)).not.toContain('AAAAC3Nza');
    expect(JSON.stringify(stored)).not.toContain('web-1');
    expect(stored?.personalizationSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(stored?.request).toMatchObject({ pool: 'linux-web', ownerTags: { owner: 'team-a' } });
  });

  it('keeps the personalization while a cold launch still has to be personalized', async () => {
    const h = await setUp();

    const outcome = await claimServer(h.claims, 'r1', request);

    expect(outcome).toMatchObject({ status: 'launching' });
    expect((await h.store.getClaim('r1'))?.request).toMatchObject({
      personalization: request.personalization,
    });
  });

  it('names each cold launch by a SHA-256 ClientToken of request id and subnet', async () => {
    const h = await setUp();
    h.ec2.noCapacity.add('us-east-1a');

    await claimServer(h.claims, 'r1', request);

    expect(h.ec2.clientTokens).toHaveLength(2);
    for (const token of h.ec2.clientTokens) expect(token).toMatch(/^[0-9a-f]{64}$/);
    expect(new Set(h.ec2.clientTokens).size).toBe(2);
  });
});
