import { describe, expect, it } from 'vitest';
import { handOverPoolMember } from '../../../functions/shelving/application/pool-members';
import { type ShelvingSettings, shelvingSettingsSchema } from '../../../functions/shelving/config';
import {
  choosePoolMember,
  memberUnfit,
  poolClaimId,
  poolMemberLost,
  poolMemberTaken,
  poolServeSkipReason,
} from '../../../functions/shelving/domain/pool-members';
import { nextStep } from '../../../functions/shelving/domain/saga';
import { poolHandOver } from '../../../functions/shelving/domain/saga/replacement';
import type { ObservedInstance, ShelfRecord } from '../../../functions/shelving/domain/types';
import { member } from '../pools/fixtures';
import { countingEc2, instance, NOW, RECORD_ID, REPLACEMENT_TAGS, record, shelvingWith } from './fakes';

/**
 * Pools serve unshelve (issue 19, build item 3): which records may take a running pool member,
 * which members fit, and that nothing of the record's goes on a member still carrying pool tags.
 */

const POOL = 'web-hot';
const MEMBER = 'i-0aaaaaaaaaaaaaaa1';
const settings: ShelvingSettings = shelvingSettingsSchema.parse({
  keepPrivateIp: false,
  unshelveFromPools: [POOL],
});
const POOL_TAGS = { 'warmboot:pools': 'true', 'warmboot:pool': POOL, 'warmboot:member-state': 'ready' };

const launching = (overrides: Partial<ShelfRecord> = {}): ShelfRecord =>
  record({
    step: 'unshelve.launch',
    unshelve: { requestId: 'r', requestedAt: NOW - 5_000, attempt: 1, path: 'fast' },
    ...overrides,
  });
/** A ready, running member of the record's configuration (record() and instance() defaults). */
const readyMember = (overrides: Parameters<typeof member>[0] = {}) =>
  member({
    pool: POOL,
    instanceId: MEMBER,
    state: 'ready',
    running: true,
    imageId: 'ami-0123456789abcdef0',
    instanceType: 'm7i.large',
    availabilityZone: 'us-east-1a',
    subnetId: 'subnet-0123456789abcdef0',
    ...overrides,
  });
const memberInstance = (overrides: Partial<ObservedInstance> = {}): ObservedInstance =>
  instance({
    instanceId: MEMBER,
    tags: POOL_TAGS,
    blockDevices: [{ deviceName: '/dev/xvda', volumeId: 'vol-0aaaaaaaaaaaaaaa1', deleteOnTermination: true }],
    ...overrides,
  });

describe('which unshelves may take a pool member', () => {
  it('refuses the setting without keepPrivateIp off, naming the field', () => {
    const parsed = shelvingSettingsSchema.safeParse({ unshelveFromPools: [POOL] });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]).toMatchObject({
      path: ['unshelveFromPools'],
      message: expect.stringContaining('keepPrivateIp'),
    });
  });

  it('takes one for a plain in-place unshelve', () => {
    expect(poolServeSkipReason(launching(), settings)).toBeUndefined();
  });

  it.each([
    ['no pool is named', {}, { unshelveFromPools: [] }, /unshelveFromPools/],
    ['it has user data', { config: { ...record().config, userData: 'IyEvYmluL3NoCg==' } }, {}, /user data/],
    [
      'it is on a Dedicated Host',
      { config: { ...record().config, tenancy: 'host' as const, hostId: 'h-0123456789abcdef0' } },
      {},
      /tenancy is host/,
    ],
    [
      'it belongs in a placement group',
      { config: { ...record().config, placementGroup: { groupName: 'web' } } },
      {},
      /placement group web/,
    ],
    [
      'it took a member already',
      {
        unshelve: {
          requestId: 'r',
          requestedAt: NOW,
          attempt: 1,
          poolMember: { pool: POOL, instanceId: MEMBER, claimId: 'x' },
        },
      },
      {},
      /took a pool member already/,
    ],
  ])('launches as usual when %s', (_case, overrides, more, why) => {
    expect(poolServeSkipReason(launching(overrides), { ...settings, ...more })).toMatch(why);
  });
});

describe('which members fit', () => {
  it('fits a running member of the same AMI, type, subnet, groups and profile with only a root', () => {
    expect(memberUnfit(launching(), POOL, readyMember(), memberInstance())).toBeUndefined();
  });

  it.each([
    [
      'its pool is starting or stopping',
      readyMember({ running: false }),
      memberInstance({ state: 'pending' }),
    ],
    ['stopped where its record says running', readyMember(), memberInstance({ state: 'stopped' })],
    ['claimed by someone', readyMember({ state: 'claimed', claimId: 'req-1' }), memberInstance()],
    ["a claim's own launch", readyMember({ origin: 'claim' }), memberInstance()],
    ['of another AMI', readyMember({ imageId: 'ami-0fffffffffffffff0' }), memberInstance()],
    ['without the pool tags', readyMember(), memberInstance({ tags: { 'warmboot:shelving': 'true' } })],
    [
      'in other security groups',
      readyMember(),
      memberInstance({ securityGroupIds: ['sg-0fffffffffffffff0'] }),
    ],
    [
      'with another instance profile',
      readyMember(),
      memberInstance({ iamInstanceProfileArn: 'arn:aws:iam::123456789012:instance-profile/other' }),
    ],
    ['with a data volume', readyMember(), instance({ instanceId: MEMBER, tags: POOL_TAGS })],
  ])('does not take one %s', (_case, candidate, seen) => {
    expect(memberUnfit(launching(), POOL, candidate, seen)).toBeDefined();
    expect(
      choosePoolMember(launching(), [{ pool: POOL, member: candidate, instance: seen }]),
    ).toBeUndefined();
  });

  it('fits a stopped member of the warm tier too', () => {
    expect(
      memberUnfit(launching(), POOL, readyMember({ running: false }), memberInstance({ state: 'stopped' })),
    ).toBeUndefined();
  });

  it('takes a running member before an older stopped one, which would need a start', () => {
    const stopped = readyMember({
      instanceId: 'i-0aaaaaaaaaaaaaaa2',
      running: false,
      launchedAt: NOW - 60_000,
    });
    const running = readyMember({ launchedAt: NOW - 1_000 });
    const chosen = choosePoolMember(launching(), [
      {
        pool: POOL,
        member: stopped,
        instance: memberInstance({ instanceId: stopped.instanceId, state: 'stopped' }),
      },
      { pool: POOL, member: running, instance: memberInstance() },
    ]);
    expect(chosen?.member.instanceId).toBe(MEMBER);
  });

  it('takes the oldest of several that fit', () => {
    const older = readyMember({ instanceId: 'i-0aaaaaaaaaaaaaaa2', launchedAt: NOW - 60_000 });
    const newer = readyMember({ launchedAt: NOW - 1_000 });
    const chosen = choosePoolMember(launching(), [
      { pool: POOL, member: newer, instance: memberInstance() },
      { pool: POOL, member: older, instance: memberInstance({ instanceId: older.instanceId }) },
    ]);
    expect(chosen?.member.instanceId).toBe(older.instanceId);
  });
});

describe('a taken member', () => {
  const taken = (): ShelfRecord => {
    const launch = launching();
    const decision = poolMemberTaken(launch, POOL, MEMBER, NOW);
    return { ...launch, step: decision.to ?? launch.step, unshelve: decision.set?.unshelve };
  };

  it('is the record’s replacement, swapped in place, under a claim id a crashed take finds again', () => {
    expect(taken()).toMatchObject({
      step: 'unshelve.replace-root',
      unshelve: {
        path: 'in-place',
        replacementInstanceId: MEMBER,
        poolMember: { pool: POOL, instanceId: MEMBER, claimId: `unshelve:${RECORD_ID}:1` },
      },
    });
    expect(poolClaimId(launching())).toBe(`unshelve:${RECORD_ID}:1`);
  });

  it('is handed over by its pool before anything of the record’s goes on it', () => {
    const observation = {
      replacement: memberInstance(),
      volumes: new Map(),
      snapshots: [],
    };

    const decision = nextStep(taken(), observation, NOW, settings);

    expect(decision.actions).toEqual([
      {
        kind: 'hand-over-pool-member',
        recordId: RECORD_ID,
        pool: POOL,
        instanceId: MEMBER,
        claimId: `unshelve:${RECORD_ID}:1`,
      },
    ]);
  });

  it('once handed over, is tagged as the record’s replacement and gets the data volumes', () => {
    const observation = {
      replacement: memberInstance({ tags: { 'warmboot:shelving': 'true' } }),
      volumes: new Map(),
      snapshots: [],
    };

    const decision = nextStep(taken(), observation, NOW, settings);

    expect(decision.actions.map((action) => action.kind)).toContain('tag');
    expect(decision.actions).toContainEqual(
      expect.objectContaining({ kind: 'tag', tags: expect.objectContaining(REPLACEMENT_TAGS) }),
    );
  });

  it('taken stopped, is handed over first, then tagged and started before its root is replaced', () => {
    const stoppedMember = memberInstance({ state: 'stopped' });
    const volumes = new Map();

    const first = nextStep(taken(), { replacement: stoppedMember, volumes, snapshots: [] }, NOW, settings);
    const handedOver = { ...stoppedMember, tags: { 'warmboot:shelving': 'true' } };
    const second = nextStep(taken(), { replacement: handedOver, volumes, snapshots: [] }, NOW, settings);

    expect(first.actions.map((action) => action.kind)).toEqual(['hand-over-pool-member']);
    expect(second.to).toBeUndefined();
    expect(second.actions).toContainEqual(
      expect.objectContaining({ kind: 'tag', tags: expect.objectContaining(REPLACEMENT_TAGS) }),
    );
    expect(second.actions).toContainEqual({ kind: 'start', instanceId: MEMBER });
    expect(second.reason).toMatch(/starting pool member/);
  });

  it('stopped after its task began, takes the stopped swap as any replacement does', () => {
    const handedOver = memberInstance({ state: 'stopped', tags: { 'warmboot:shelving': 'true' } });
    const observation = {
      replacement: handedOver,
      volumes: new Map(),
      snapshots: [],
      rootReplacement: {
        taskId: 'replacevol-0123456789abcdef0',
        instanceId: MEMBER,
        state: 'failed-detached' as const,
      },
    };

    const decision = nextStep(taken(), observation, NOW, settings);

    expect(decision.to).toBe('unshelve.stop-replacement');
    expect(decision.actions).toEqual([]);
  });

  it('is given up, untouched, when the deployment stopped letting pools serve unshelve before the hand-over', async () => {
    // The shelving function then has no pools table, and IAM no longer lets it untag the member.
    const ec2 = countingEc2();
    const { deps, store } = shelvingWith(ec2);
    const held = taken();
    await store.create(held);
    const handOver = poolHandOver(held, memberInstance(), NOW)?.actions[0];
    if (handOver?.kind !== 'hand-over-pool-member') throw new Error('no hand-over');

    await handOverPoolMember(deps, held, handOver);

    const after = await store.get(RECORD_ID);
    expect(after).toMatchObject({ step: 'unshelve.launch', unshelve: { path: 'fast' } });
    expect(after?.unshelve?.replacementInstanceId).toBeUndefined();
    expect(after?.unshelve?.reason).toMatch(/unshelveFromPools is empty/);
    expect(ec2.calls).toEqual([]);
  });

  it('taken back by its pool first, is given up and the record launches as usual', () => {
    const decision = poolMemberLost(taken(), 'released', NOW);

    expect(decision.to).toBe('unshelve.launch');
    expect(decision.set?.unshelve).toMatchObject({ path: 'fast', poolMember: { instanceId: MEMBER } });
    expect(decision.set?.unshelve?.replacementInstanceId).toBeUndefined();
    expect(poolServeSkipReason({ ...taken(), unshelve: decision.set?.unshelve }, settings)).toMatch(
      /already/,
    );
  });
});
