import { describe, expect, it } from 'vitest';
import { tableEnvVar } from '../../../functions/shared/tables';
import {
  defaultShelvingSettings,
  loadShelvingConfig,
  SHELVES_TABLE_ENV,
} from '../../../functions/shelving/config';
import {
  CONFIRMATION_TTL_MS,
  confirmedPlan,
  issueConfirmation,
  planDeletion,
  planShelve,
  requestUnshelve,
  type ShelveRequestItem,
} from '../../../functions/shelving/domain/requests';
import type { ObservedInstance, ObservedVolume } from '../../../functions/shelving/domain/types';
import { instance, NOW, record, volume } from './fakes';

const volumes = new Map([
  ['vol-0000000000000000a', volume('vol-0000000000000000a')],
  ['vol-0000000000000000b', volume('vol-0000000000000000b', { sizeGiB: 20 })],
]);

/** planShelve of `observed` with the default settings at NOW. */
const shelvePlan = (request: ShelveRequestItem, observed: ObservedInstance, observedVolumes = volumes) =>
  planShelve(request, observed, observedVolumes, defaultShelvingSettings, NOW);

describe('planShelve', () => {
  it('records type, AZ, subnet, groups, tags, host and every volume with its device and flags', () => {
    const plan = shelvePlan(
      { instanceId: 'i-0123456789abcdef0' },
      instance({ tenancy: 'host', hostId: 'h-0123456789abcdef0', affinity: 'host', keyName: 'ops' }),
    );

    expect(plan.ok).toBe(true);
    if (!plan.ok) return;
    expect(plan.record).toMatchObject({
      tenant: 'tenant-a',
      step: 'shelve.prepare',
      config: {
        instanceType: 'm7i.large',
        availabilityZone: 'us-east-1a',
        hostId: 'h-0123456789abcdef0',
        affinity: 'host',
        keyName: 'ops',
      },
      tags: { Name: 'web-1' },
      volumes: [
        { volumeId: 'vol-0000000000000000a', deviceName: '/dev/xvda', root: true, deleteOnTermination: true },
        { volumeId: 'vol-0000000000000000b', deviceName: '/dev/sdf', root: false, sizeGiB: 20 },
      ],
    });
  });

  it.each([
    ['an unmanaged instance', instance({ tags: { 'warmboot:tenant': 'tenant-a' } }), 'UnmanagedResource'],
    [
      'an instance-store-backed instance',
      instance({ rootDeviceType: 'instance-store' }),
      'InstanceStoreBacked',
    ],
    ['a pending instance', instance({ state: 'pending' }), 'IncorrectState'],
    ['a stopping instance', instance({ state: 'stopping' }), 'IncorrectState'],
    ['a terminated instance', instance({ state: 'terminated' }), 'NotFound'],
    ['an instance without tenant tag', instance({ tags: { 'warmboot:shelving': 'true' } }), 'MissingTenant'],
  ])('refuses %s', (_, observed, code) => {
    const plan = shelvePlan({ instanceId: observed.instanceId }, observed);

    expect(plan).toMatchObject({ ok: false, error: { code } });
  });

  it('refuses an instance opted in only with the retired warmboot:managed, and says to re-tag it', () => {
    const legacy = instance({ tags: { 'warmboot:managed': 'true', 'warmboot:tenant': 'tenant-a' } });
    const plan = shelvePlan({ instanceId: legacy.instanceId }, legacy);

    expect(plan).toMatchObject({ ok: false, error: { code: 'UnmanagedResource' } });
    expect(plan.ok ? '' : plan.error.message).toContain(
      'warmboot:managed no longer opts in; tag it warmboot:shelving=true',
    );
  });

  it('refuses an instance opted in to another capability only', () => {
    const cacheHost = instance({
      tags: { 'warmboot:image-cache': 'true', 'warmboot:host-group': 'web', 'warmboot:tenant': 'tenant-a' },
    });

    expect(shelvePlan({ instanceId: cacheHost.instanceId }, cacheHost)).toMatchObject({
      ok: false,
      error: { code: 'UnmanagedResource' },
    });
  });

  it('refuses to move an instance to another tenant than its tag says', () => {
    const plan = shelvePlan({ instanceId: 'i-0123456789abcdef0', tenant: 'tenant-b' }, instance());

    expect(plan).toMatchObject({ ok: false, error: { code: 'TenantMismatch' } });
  });

  it('refuses a volume another shelve record owns', () => {
    const claimed = new Map(volumes);
    claimed.set(
      'vol-0000000000000000b',
      volume('vol-0000000000000000b', { tags: { 'warmboot:shelved': 'sh-0aaaaaaaaaaaaaaaa-1' } }),
    );

    const plan = shelvePlan({ instanceId: 'i-0123456789abcdef0' }, instance(), claimed);

    expect(plan).toMatchObject({ ok: false, error: { code: 'VolumeClaimed' } });
  });
});

describe('requestUnshelve', () => {
  it('starts a shelved instance, reattaches an offloaded one, and keeps the recorded tenant', () => {
    expect(requestUnshelve(record({ step: 'shelved' }), undefined)).toEqual({
      ok: true,
      to: 'unshelve.start',
      unchanged: false,
    });
    expect(requestUnshelve(record({ step: 'offloaded' }), 'tenant-a')).toEqual({
      ok: true,
      to: 'unshelve.choose',
      unchanged: false,
    });
    expect(requestUnshelve(record({ step: 'offloaded' }), 'tenant-b')).toMatchObject({
      ok: false,
      error: { code: 'TenantMismatch' },
    });
    expect(requestUnshelve(record({ step: 'unshelve.swap-root' }), undefined)).toMatchObject({
      ok: true,
      unchanged: true,
    });
    expect(requestUnshelve(record({ step: 'shelve.stop' }), undefined)).toMatchObject({
      ok: false,
      error: { code: 'IncorrectState' },
    });
  });
});

describe('planDeletion and its confirmation', () => {
  const shelvedVolume = (volumeId: string, state: ObservedVolume['state']) =>
    volume(volumeId, { state, tags: { 'warmboot:shelved': 'sh-0123456789abcdef0-t8dsxz' } });
  const detached = new Map(
    ['vol-0000000000000000a', 'vol-0000000000000000b'].map((id) => [id, shelvedVolume(id, 'available')]),
  );
  /** The two retained volumes, the root one in `state`. */
  const rootIn = (state: ObservedVolume['state']) =>
    new Map(detached).set('vol-0000000000000000a', shelvedVolume('vol-0000000000000000a', state));

  it('names every retained volume and exactly the safety snapshots the record recorded', () => {
    const plan = planDeletion(record(), detached);

    expect(plan).toEqual({
      ok: true,
      plan: {
        recordId: 'sh-0123456789abcdef0-t8dsxz',
        volumeIds: ['vol-0000000000000000a', 'vol-0000000000000000b'],
        snapshotIds: ['snap-0000000000000000a', 'snap-0000000000000000b'],
      },
    });
  });

  it('confirms a plan only with its own unexpired confirmation, issued for the record as it is now', () => {
    const shelved = record();
    const plan = planDeletion(shelved, detached);
    if (!plan.ok) throw new Error('no plan');
    const issued = issueConfirmation(shelved, plan.plan, '0123456789abcdef0123456789abcdef', NOW);

    expect(confirmedPlan(shelved, issued, NOW + CONFIRMATION_TTL_MS - 1)).toEqual({
      ok: true,
      plan: plan.plan,
    });
    for (const [why, against, confirmation, now] of [
      ['unknown token', shelved, undefined, NOW],
      ['expired', shelved, issued, NOW + CONFIRMATION_TTL_MS],
      ['record moved since', record({ version: shelved.version + 1 }), issued, NOW],
      ['another record', record({ recordId: 'sh-0fedcba9876543210-t8dsxz' }), issued, NOW],
    ] as const) {
      expect(confirmedPlan(against, confirmation, now), why).toMatchObject({
        ok: false,
        error: { code: 'ConfirmationInvalid', message: expect.stringContaining('detail.confirm') },
      });
    }
  });

  it('refuses while a retained volume is attached or the record is mid-saga', () => {
    const attached = rootIn('in-use');

    expect(planDeletion(record(), attached)).toMatchObject({ ok: false, error: { code: 'VolumeInUse' } });
    expect(planDeletion(record({ step: 'unshelve.swap-root' }), detached)).toMatchObject({
      ok: false,
      error: { code: 'IncorrectState' },
    });
  });

  it('leaves out a volume an earlier attempt already started deleting', () => {
    const deleting = rootIn('deleting');

    expect(planDeletion(record(), deleting)).toMatchObject({
      ok: true,
      plan: { volumeIds: ['vol-0000000000000000b'] },
    });
  });
});

describe('config', () => {
  it('reads SHELVING_SETTINGS with defaults and names a bad field', () => {
    expect(SHELVES_TABLE_ENV).toBe(tableEnvVar('shelves'));
    expect(loadShelvingConfig({ SHELVES_TABLE: 't' }).settings).toEqual(defaultShelvingSettings);
    expect(
      loadShelvingConfig({ SHELVES_TABLE: 't', SHELVING_SETTINGS: '{"offloadAfterSeconds":0}' }).settings
        .offloadAfterSeconds,
    ).toBe(0);
    expect(() =>
      loadShelvingConfig({ SHELVES_TABLE: 't', SHELVING_SETTINGS: '{"offloadAfterSeconds":-2}' }),
    ).toThrow(/SHELVING_SETTINGS/);
  });
});
