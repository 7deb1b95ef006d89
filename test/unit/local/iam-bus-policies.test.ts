import { describe, expect, it } from 'vitest';
import { factsBusPolicy, requestBusPolicy } from '../../../infra/bus-policies';
import type { Operator } from '../../../infra/config';
import { LocalIam, type OutsideCaller } from '../../../local/iam/evaluator';
import { iamDeployment, noFunctionRoles } from './iam-harness';

/**
 * The bus policies infra/bus-policies.ts builds, evaluated as AWS evaluates a PutEvents: the
 * caller's own IAM policies and the bus's resource policy, where an explicit Deny wins and, in
 * the same account, either policy's Allow suffices (IAM User Guide, "Policy evaluation logic").
 * The stack attaches exactly these documents (test/infra/stack.test.ts).
 */

const ACCOUNT = '123456789012';
const OTHER_ACCOUNT = '210987654321';
const REQUESTS = 'warmboot-requests';
const FACTS = 'warmboot-facts';
const busArn = (name: string) => `arn:aws:events:us-east-1:${ACCOUNT}:event-bus/${name}`;

const requester = `arn:aws:iam::${ACCOUNT}:role/team/requester`;
const admin = `arn:aws:iam::${ACCOUNT}:user/admin`;
const tenantOperator = `arn:aws:iam::${ACCOUNT}:role/team-a-operator`;
const operators: Operator[] = [
  { principal: requester, requests: ['Request Server', 'Advise Placement'], tenants: ['*'] },
  { principal: admin, requests: ['*'], tenants: ['*'] },
  { principal: `arn:aws:iam::${OTHER_ACCOUNT}:root`, requests: ['Image Launched'], tenants: ['*'] },
  { principal: tenantOperator, requests: ['Shelve Instances', 'Unshelve Instances'], tenants: ['team-a'] },
];

/** Allows PutEvents on everything: what many application, CI and power-user roles hold. */
const putEventsAnywhere = [
  {
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow' as const, Action: 'events:PutEvents', Resource: '*' }],
  },
];

const iamWith = (requestOperators: readonly Operator[], shared = false) =>
  new LocalIam({
    // Only outside callers are evaluated here: no function role is needed.
    synthesized: noFunctionRoles('bus-policies'),
    deployment: iamDeployment(),
    ec2: {} as never,
    busPolicies: new Map<string, Readonly<Record<string, unknown>>>([
      [REQUESTS, requestBusPolicy({ busArn: busArn(REQUESTS), operators: requestOperators, shared })],
      [
        FACTS,
        factsBusPolicy({
          busArn: busArn(FACTS),
          writerRoleArns: [`arn:aws:iam::${ACCOUNT}:role/warmboot-claim-role`],
        }),
      ],
    ]),
  });

const put = async (
  iam: LocalIam,
  caller: OutsideCaller,
  entry: { bus: string; source: string; detailType: string },
): Promise<'allowed' | 'denied'> => {
  try {
    await iam.authorizeCaller(caller, 'PutEvents', {
      Entries: [
        { EventBusName: entry.bus, Source: entry.source, DetailType: entry.detailType, Detail: '{}' },
      ],
    });
    return 'allowed';
  } catch (error) {
    expect((error as Error).name).toBe('AccessDeniedException');
    return 'denied';
  }
};
const request = (detailType: string) => ({ bus: REQUESTS, source: 'warmboot', detailType });

describe('the request bus policy', () => {
  const iam = iamWith(operators);

  it('lets an operator send exactly its requests, with no IAM policy of its own', async () => {
    const caller = { principalArn: requester };

    expect(await put(iam, caller, request('Request Server'))).toBe('allowed');
    expect(await put(iam, caller, request('Advise Placement'))).toBe('allowed');
    expect(await put(iam, caller, request('Delete Shelved Record'))).toBe('denied');
    expect(
      await put(iam, caller, { bus: REQUESTS, source: 'warmboot.fact', detailType: 'Request Server' }),
    ).toBe('denied');
  });

  it('keeps an operator to its requests even when its own IAM policy allows PutEvents everywhere', async () => {
    const caller = { principalArn: requester, identityPolicies: putEventsAnywhere };

    expect(await put(iam, caller, request('Request Server'))).toBe('allowed');
    expect(await put(iam, caller, request('Shelve Instances'))).toBe('denied');
    expect(await put(iam, caller, request('Delete Shelved Record'))).toBe('denied');
  });

  it('lets a "*" operator send every request warmboot serves over the bus, and nothing else', async () => {
    const caller = { principalArn: admin };

    for (const detailType of ['Shelve Instances', 'Unshelve Instances', 'Request Server']) {
      expect(await put(iam, caller, request(detailType)), detailType).toBe('allowed');
    }
    expect(await put(iam, caller, request('Popularity Changed'))).toBe('denied');
    // Administrative requests are direct invokes only: no operator can put them on the bus.
    for (const detailType of ['Delete Shelved Record', 'Define Pool']) {
      expect(await put(iam, caller, request(detailType)), detailType).toBe('denied');
    }
  });

  describe('binds each operator to its tenants by the source it may put (security review C3)', () => {
    const forTenant = (tenant: string, detailType = 'Shelve Instances') => ({
      bus: REQUESTS,
      source: `warmboot.tenant.${tenant}`,
      detailType,
    });

    it('lets an operator bound to a tenant put that tenant’s source only', async () => {
      const caller = { principalArn: tenantOperator };

      expect(await put(iam, caller, forTenant('team-a'))).toBe('allowed');
      expect(await put(iam, caller, forTenant('team-b'))).toBe('denied');
      // The unbound source acts for every tenant: not for an operator bound to one.
      expect(await put(iam, caller, request('Shelve Instances'))).toBe('denied');
    });

    it('keeps it to its tenant even when its own IAM policy allows PutEvents everywhere', async () => {
      const caller = { principalArn: tenantOperator, identityPolicies: putEventsAnywhere };

      expect(await put(iam, caller, forTenant('team-a'))).toBe('allowed');
      expect(await put(iam, caller, forTenant('team-b'))).toBe('denied');
      expect(await put(iam, caller, forTenant('team-a.x'))).toBe('denied');
      expect(await put(iam, caller, request('Shelve Instances'))).toBe('denied');
      expect(await put(iam, caller, forTenant('team-a', 'Request Server'))).toBe('denied');
    });

    it('lets an operator of every tenant put source warmboot, and allows it no tenant’s source', async () => {
      const caller = { principalArn: admin };

      expect(await put(iam, caller, request('Shelve Instances'))).toBe('allowed');
      expect(await put(iam, caller, forTenant('team-a'))).toBe('denied');
    });

    it('lets no one but operators put a tenant’s source, whatever their own IAM policy allows', async () => {
      for (const principalArn of [
        `arn:aws:iam::${ACCOUNT}:role/ci-deployer`,
        `arn:aws:iam::${ACCOUNT}:root`,
      ]) {
        const caller = { principalArn, identityPolicies: putEventsAnywhere };
        expect(await put(iam, caller, forTenant('team-a')), principalArn).toBe('denied');
        expect(await put(iam, caller, forTenant('team-a', 'Request Server')), principalArn).toBe('denied');
      }
    });

    it('binds a tenant operator on a shared bus too, and keeps other publishers off tenant sources', async () => {
      const shared = iamWith(operators, true);
      const app = {
        principalArn: `arn:aws:iam::${ACCOUNT}:role/orders`,
        identityPolicies: putEventsAnywhere,
      };
      const bound = { principalArn: tenantOperator, identityPolicies: putEventsAnywhere };

      expect(await put(shared, bound, forTenant('team-a'))).toBe('allowed');
      expect(await put(shared, bound, forTenant('team-b'))).toBe('denied');
      expect(await put(shared, bound, request('Shelve Instances'))).toBe('denied');
      expect(await put(shared, app, forTenant('team-a'))).toBe('denied');
    });
  });

  it('denies anyone else, whatever their own IAM policy allows (security review C1)', async () => {
    const ci = {
      principalArn: `arn:aws:iam::${ACCOUNT}:role/ci-deployer`,
      identityPolicies: putEventsAnywhere,
    };
    const root = { principalArn: `arn:aws:iam::${ACCOUNT}:root`, identityPolicies: putEventsAnywhere };

    for (const caller of [ci, root]) {
      expect(await put(iam, caller, request('Request Server')), caller.principalArn).toBe('denied');
      expect(await put(iam, caller, request('Delete Shelved Record')), caller.principalArn).toBe('denied');
    }
  });

  it('delegates to another account named by its root, for its requests only', async () => {
    const forwarder = {
      principalArn: `arn:aws:iam::${OTHER_ACCOUNT}:role/forwarder`,
      identityPolicies: putEventsAnywhere,
    };

    expect(await put(iam, forwarder, request('Image Launched'))).toBe('allowed');
    expect(await put(iam, forwarder, request('Request Server'))).toBe('denied');
    // Its own IAM policy must allow it too: the bus policy alone does not reach into another account.
    expect(await put(iam, { principalArn: forwarder.principalArn }, request('Image Launched'))).toBe(
      'denied',
    );
  });

  it('denies every request when no operator is configured (the default)', async () => {
    const nobody = iamWith([]);

    expect(await put(nobody, { principalArn: requester }, request('Request Server'))).toBe('denied');
    expect(
      await put(
        nobody,
        { principalArn: admin, identityPolicies: putEventsAnywhere },
        request('Request Server'),
      ),
    ).toBe('denied');
  });

  it('on a shared bus, leaves other sources to their own publishers but keeps warmboot requests to operators', async () => {
    const shared = iamWith(operators, true);
    const app = { principalArn: `arn:aws:iam::${ACCOUNT}:role/orders`, identityPolicies: putEventsAnywhere };

    expect(
      await put(shared, app, { bus: REQUESTS, source: 'com.example.orders', detailType: 'Order Placed' }),
    ).toBe('allowed');
    expect(await put(shared, app, request('Request Server'))).toBe('denied');
    expect(await put(shared, { principalArn: requester }, request('Request Server'))).toBe('allowed');
  });
});

describe('the facts bus policy', () => {
  const iam = iamWith(operators);

  it('denies everyone but warmboot’s roles, and anything but source warmboot.fact', async () => {
    const fact = { bus: FACTS, source: 'warmboot.fact', detailType: 'Server Ready' };
    const claimRole = {
      principalArn: `arn:aws:iam::${ACCOUNT}:role/warmboot-claim-role`,
      identityPolicies: putEventsAnywhere,
    };

    expect(await put(iam, claimRole, fact)).toBe('allowed');
    expect(await put(iam, claimRole, { ...fact, source: 'warmboot' })).toBe('denied');
    for (const principalArn of [requester, admin, `arn:aws:iam::${ACCOUNT}:root`]) {
      expect(await put(iam, { principalArn, identityPolicies: putEventsAnywhere }, fact), principalArn).toBe(
        'denied',
      );
    }
  });
});
