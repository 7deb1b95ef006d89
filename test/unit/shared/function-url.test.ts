import { describe, expect, it } from 'vitest';
import {
  identityOf,
  principalArnOf,
  type RequestCallers,
  urlCallerOf,
} from '../../../functions/shared/function-url';

/** Who a function URL caller is to warmboot, from the ARN Lambda reports (functions/shared/function-url.ts). */

const ACCOUNT = '123456789012';
const session = (role: string) => `arn:aws:sts::${ACCOUNT}:assumed-role/${role}/alice@example.com`;
/** What the function serves (here: shelving's requests). */
const served = new Set([
  'Shelve Instances',
  'Offload Instances',
  'Unshelve Instances',
  'Delete Shelved Record',
]);
const callers: RequestCallers = {
  operators: [
    {
      principal: `arn:aws:iam::${ACCOUNT}:role/teams/tenant-a-ops`,
      requests: ['Shelve Instances'],
      tenants: ['tenant-a'],
    },
    { principal: `arn:aws:iam::210987654321:root`, requests: ['Unshelve Instances'], tenants: '*' },
    {
      principal: `arn:aws:iam::${ACCOUNT}:role/break-glass`,
      requests: ['Shelve Instances'],
      tenants: ['tenant-b'],
    },
  ],
  admins: [`arn:aws:iam::${ACCOUNT}:role/break-glass`],
};

describe('function URL callers', () => {
  it('recognises a role session as its role, whatever path configuration names the role with', () => {
    expect(urlCallerOf(session('tenant-a-ops'), callers, served)).toEqual({
      caller: {
        via: 'function-url',
        principal: `arn:aws:iam::${ACCOUNT}:role/tenant-a-ops`,
        tenants: ['tenant-a'],
        admin: false,
      },
      requestTypes: new Set(['Shelve Instances']),
    });
  });

  it('gives an admin every tenant and every request the function serves, as a direct invoke has', () => {
    const who = urlCallerOf(session('break-glass'), callers, served);

    expect(who?.caller).toMatchObject({ tenants: '*', admin: true });
    expect(who?.requestTypes).toEqual(served);
  });

  it("takes a principal of an account configured by its root under the root's entry", () => {
    const who = urlCallerOf('arn:aws:sts::210987654321:assumed-role/ci/build-17', callers, served);

    expect(who?.caller).toMatchObject({ principal: 'arn:aws:iam::210987654321:role/ci', tenants: '*' });
    expect(who?.requestTypes).toEqual(new Set(['Unshelve Instances']));
  });

  it('knows nobody else: another role, a role of the same name in another account, a federated user', () => {
    expect(urlCallerOf(session('tenant-b-ops'), callers, served)).toBeUndefined();
    expect(
      urlCallerOf('arn:aws:sts::999999999999:assumed-role/tenant-a-ops/x', callers, served),
    ).toBeUndefined();
    expect(urlCallerOf(`arn:aws:sts::${ACCOUNT}:federated-user/bob`, callers, served)).toBeUndefined();
    expect(identityOf('not an arn')).toBeUndefined();
  });

  it('names users and roles by their path-less ARN', () => {
    const user = identityOf(`arn:aws:iam::${ACCOUNT}:user/ops/bob`);

    expect(user && principalArnOf(user)).toBe(`arn:aws:iam::${ACCOUNT}:user/bob`);
  });
});
