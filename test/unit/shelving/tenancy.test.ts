import { describe, expect, it } from 'vitest';
import type { Caller } from '../../../functions/shared/caller';
import type { ShelvingEc2 } from '../../../functions/shelving/adapters/ec2';
import {
  offloadInstances,
  shelveInstances,
  unshelveInstances,
} from '../../../functions/shelving/application/requests';
import type { ObservedInstance, ShelfRecord } from '../../../functions/shelving/domain/types';
import { instance, NOW, record, retained, shelvingOnClock, volume } from './fakes';

/**
 * Every shelving request acts for the tenants the caller is bound to (security review C3), item by
 * item: an instance or record of another tenant gets `NotAuthorizedForTenant` and is left as it
 * was, the caller's own items proceed.
 */

const MINE = 'i-0123456789abcdef0';
const THEIRS = 'i-0fedcba9876543210';
const operatorOfA: Caller = { via: 'request-bus', tenants: ['tenant-a'], admin: false };

const instances = new Map<string, ObservedInstance>([
  [MINE, instance({ instanceId: MINE })],
  [
    THEIRS,
    instance({
      instanceId: THEIRS,
      blockDevices: [
        { deviceName: '/dev/xvda', volumeId: 'vol-0000000000000000c', deleteOnTermination: true },
      ],
      tags: { 'warmboot:shelving': 'true', 'warmboot:tenant': 'tenant-b' },
    }),
  ],
]);

/** An EC2 with one instance of tenant-a and one of tenant-b, logging every call with its arguments. */
const twoTenantsEc2 = (described: ReadonlyMap<string, ObservedInstance> = instances) => {
  const calls: { operation: string; args: unknown[] }[] = [];
  const ec2 = new Proxy({} as ShelvingEc2, {
    get(_target, property) {
      return async (...args: unknown[]) => {
        calls.push({ operation: String(property), args });
        switch (property) {
          case 'describeInstances':
            return (args[0] as string[]).flatMap((id) => described.get(id) ?? []);
          case 'describeVolumes':
            return ['vol-0000000000000000a', 'vol-0000000000000000b', 'vol-0000000000000000c'].map((id) =>
              volume(id),
            );
          case 'describeShelvedSnapshots':
          case 'describeHostRoom':
            return new Map();
          case 'describeInstanceAttributes':
            return { disableApiTermination: false };
          default:
            return [];
        }
      };
    },
  });
  return { ec2, calls };
};

const shelvedOf = (recordId: string, instanceId: string, tenant: string): ShelfRecord =>
  record({
    recordId,
    instanceId,
    tenant,
    step: 'shelved',
    version: 1,
    volumes: [retained(`vol-${instanceId.slice(2, 19)}`, '/dev/xvda', true)],
  });
const MY_RECORD = shelvedOf('sh-0123456789abcdef0-aaaaaa', MINE, 'tenant-a');
const THEIR_RECORD = shelvedOf('sh-0fedcba9876543210-aaaaaa', THEIRS, 'tenant-b');

/** Both tenants' instances, as `described` says, over a store holding `records`. */
const setUp = async (records: readonly ShelfRecord[] = [], described = instances) => {
  const { ec2, calls } = twoTenantsEc2(described);
  const shelving = shelvingOnClock(ec2);
  for (const shelved of records) await shelving.store.create(shelved);
  return { ...shelving, calls };
};

const BY_OPERATOR_OF_A = { requestId: 'event-1', sentAt: NOW, caller: operatorOfA };

const touched = (calls: { operation: string; args: unknown[] }[], instanceId: string) =>
  calls.filter((call) => JSON.stringify(call.args).includes(instanceId));

describe('Shelve by an operator bound to a tenant', () => {
  it('shelves its own tenant’s instance and refuses the other tenant’s, item by item', async () => {
    const { deps, rounds, store, calls } = await setUp();

    const results = await shelveInstances(deps, rounds, { instanceIds: [MINE, THEIRS] }, BY_OPERATOR_OF_A);

    expect(results[0]).toMatchObject({ id: MINE, ok: true, created: true });
    expect(results[1]).toEqual({
      id: THEIRS,
      ok: false,
      error: { code: 'NotAuthorizedForTenant', message: expect.stringContaining('tenant-b') },
    });
    expect([...store.records.values()].map((shelved) => shelved.instanceId)).toEqual([MINE]);
    // Nothing but the describe that read its tenant tag touched the other tenant's instance.
    expect(
      touched(calls, THEIRS).every((call) =>
        ['describeInstances', 'describeShelveDetails'].includes(call.operation),
      ),
    ).toBe(true);
  });

  it('does not tell another tenant’s caller the record of an instance already offloaded', async () => {
    // Terminated by the offload: EC2 no longer describes it, so its record's tenant decides.
    const { deps, rounds } = await setUp(
      [THEIR_RECORD],
      new Map([[MINE, instances.get(MINE) as ObservedInstance]]),
    );

    const [answer] = await shelveInstances(deps, rounds, { instanceIds: [THEIRS] }, BY_OPERATOR_OF_A);

    expect(answer).toMatchObject({ id: THEIRS, ok: false, error: { code: 'NotAuthorizedForTenant' } });
    expect(JSON.stringify(answer)).not.toContain(THEIR_RECORD.recordId);
  });
});

describe('Offload and Unshelve by an operator bound to a tenant', () => {
  it('offloads its own record and refuses the other tenant’s', async () => {
    const { deps, rounds, store, calls } = await setUp([MY_RECORD, THEIR_RECORD]);

    const results = await offloadInstances(
      deps,
      rounds,
      { recordIds: [MY_RECORD.recordId, THEIR_RECORD.recordId] },
      BY_OPERATOR_OF_A,
    );

    expect(results).toContainEqual(expect.objectContaining({ id: MY_RECORD.recordId, ok: true }));
    expect(results).toContainEqual({
      id: THEIR_RECORD.recordId,
      ok: false,
      error: { code: 'NotAuthorizedForTenant', message: expect.stringContaining('tenant-b') },
    });
    expect(store.records.get(THEIR_RECORD.recordId)).toMatchObject({ step: 'shelved', version: 1 });
    expect(touched(calls, THEIRS)).toEqual([]);
  });

  it('unshelves its own record by instance id and refuses the other tenant’s', async () => {
    const { deps, rounds, store } = await setUp([MY_RECORD, THEIR_RECORD]);

    const results = await unshelveInstances(deps, rounds, { instanceIds: [MINE, THEIRS] }, BY_OPERATOR_OF_A);

    expect(results).toContainEqual(expect.objectContaining({ id: MY_RECORD.recordId, ok: true }));
    expect(results).toContainEqual(
      expect.objectContaining({
        id: THEIR_RECORD.recordId,
        ok: false,
        error: expect.objectContaining({ code: 'NotAuthorizedForTenant' }),
      }),
    );
    expect(store.records.get(THEIR_RECORD.recordId)).toMatchObject({ step: 'shelved', version: 1 });
  });

  it('unshelves its own tenant by name', async () => {
    const { deps, rounds, store } = await setUp([MY_RECORD, THEIR_RECORD]);

    const results = await unshelveInstances(deps, rounds, { tenant: 'tenant-a' }, BY_OPERATOR_OF_A);

    expect(results.map((result) => result.id)).toEqual([MY_RECORD.recordId]);
    expect(store.records.get(THEIR_RECORD.recordId)).toMatchObject({ step: 'shelved', version: 1 });
  });

  it('lets an operator of every tenant act on both', async () => {
    const { deps, rounds } = await setUp([MY_RECORD, THEIR_RECORD]);
    const everyTenant: Caller = { via: 'request-bus', tenants: '*', admin: false };

    const results = await offloadInstances(
      deps,
      rounds,
      { recordIds: [MY_RECORD.recordId, THEIR_RECORD.recordId] },
      { requestId: 'event-1', sentAt: NOW, caller: everyTenant },
    );

    expect(results.every((result) => result.ok)).toBe(true);
  });
});
