import { describe, expect, it } from 'vitest';
import type { Caller } from '../../../functions/shared/caller';
import { createShelvingRegistry } from '../../../functions/shelving/handler';
import { sampleEvent } from '../../support/events';
import { countingEc2, shelvingWith } from './fakes';

/** The console's test events are direct invokes: an administrator, acting for every tenant. */
const CONSOLE: Caller = { via: 'direct-invoke', tenants: '*', admin: true };

const sample = (name: string) => sampleEvent<Record<string, unknown>>(`shelving/${name}`);

const withDetail = (name: string, detail: unknown) => ({ ...sample(name), detail });

describe('shelving sample console events', () => {
  it.each([
    ['shelve.json', 'Shelve Instances'],
    ['offload.json', 'Offload Instances'],
    ['unshelve.json', 'Unshelve Instances'],
    ['unshelve-bulk.json', 'Unshelve Instances'],
    ['delete-shelved.json', 'Delete Shelved Record'],
  ])('%s is accepted by the handler schema and handled', async (name, detailType) => {
    const registry = createShelvingRegistry(shelvingWith(countingEc2()).deps);

    const outcome = await registry.dispatch(sample(name), CONSOLE);

    expect(outcome).toMatchObject({ status: 'handled', source: 'warmboot', detailType });
  });

  it('answers a shelve of unknown instances with a per-item error for each', async () => {
    const registry = createShelvingRegistry(shelvingWith(countingEc2()).deps);

    const outcome = await registry.dispatch(sample('shelve.json'), CONSOLE);

    expect(outcome).toMatchObject({
      status: 'handled',
      result: {
        kind: 'items',
        results: [
          { id: 'i-0123456789abcdef0', ok: false, error: { code: 'NotFound' } },
          { id: 'i-0fedcba9876543210', ok: false, error: { code: 'NotFound' } },
        ],
      },
    });
  });
});

describe('bad operator input is rejected naming the field, with no AWS call', () => {
  it.each([
    ['shelve.json', { instanceIds: ['i-123'] }, 'detail.instanceIds.0'],
    ['shelve.json', { instanceIds: [] }, 'detail.instanceIds'],
    [
      'shelve.json',
      { instanceIds: Array.from({ length: 1001 }, () => 'i-0123456789abcdef0') },
      'detail.instanceIds',
    ],
    ['shelve.json', {}, 'detail.instanceIds'],
    [
      'shelve.json',
      { instanceIds: ['i-0123456789abcdef0'], offloadAfterSeconds: -2 },
      'detail.offloadAfterSeconds',
    ],
    ['shelve.json', { instanceIds: ['i-0123456789abcdef0'], tenant: 'a b' }, 'detail.tenant'],
    ['unshelve.json', {}, 'detail.recordIds'],
    ['unshelve.json', { recordIds: ['shelf-1'] }, 'detail.recordIds.0'],
    ['offload.json', { instanceIds: ['vol-0123456789abcdef0'] }, 'detail.instanceIds.0'],
    ['delete-shelved.json', { confirm: 'sh-0123456789abcdef0-t8dsxz' }, 'detail.recordId'],
    // The record id is no confirmation: only the token the unconfirmed request answered is.
    [
      'delete-shelved.json',
      { recordId: 'sh-0123456789abcdef0-t8dsxz', confirm: 'sh-0123456789abcdef0-t8dsxz' },
      'detail.confirm',
    ],
  ])('%s with %j is rejected at %s', async (name, detail, field) => {
    const ec2 = countingEc2();
    const registry = createShelvingRegistry(shelvingWith(ec2).deps);

    const outcome = await registry.dispatch(withDetail(name, detail), CONSOLE);

    expect(outcome).toMatchObject({ status: 'rejected', error: { code: 'ValidationError', field } });
    expect(ec2.calls).toEqual([]);
  });

  it.each([
    ['shelve.json', { instanceIds: ['i-0123456789abcdef0'], tenant: 'tenant-a' }],
    ['unshelve.json', { tenant: 'tenant-a' }],
  ])(
    '%s naming a tenant the caller does not act for (%j) is refused at detail.tenant',
    async (name, detail) => {
      const ec2 = countingEc2();
      const registry = createShelvingRegistry(shelvingWith(ec2).deps);
      const operatorOfB: Caller = { via: 'request-bus', tenants: ['tenant-b'], admin: false };

      const outcome = await registry.dispatch(
        { ...withDetail(name, detail), source: 'warmboot.tenant.tenant-b' },
        operatorOfB,
      );

      expect(outcome).toMatchObject({
        status: 'rejected',
        error: { code: 'ValidationError', field: 'detail.tenant' },
      });
      expect(ec2.calls).toEqual([]);
    },
  );
});
