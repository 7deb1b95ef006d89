import { describe, expect, it } from 'vitest';
import { fastRestoreSettingsSchema } from '../../functions/fast-restore/config';
import { hostGroupSchema } from '../../functions/image-cache/config';
import { poolSpecSchema } from '../../functions/pools/config';
import {
  loadWarmbootContext,
  parseWarmbootSettings,
  WarmbootConfigError,
  warmbootSettingsSchema,
} from '../../infra/config';
import { createWarmbootApp } from '../../infra/stack';
import { cdkJsonContext, exampleSettings } from './synth';

const hostGroup = {
  name: 'build-linux',
  cacheBytes: 100_000_000_000,
  cacheDirectory: '/var/lib/warmboot/cache',
};

const messageOf = (action: () => unknown): string => {
  try {
    action();
  } catch (error) {
    if (error instanceof Error) return error.message;
  }
  throw new Error('expected an error');
};

describe('warmboot context', () => {
  it('fills every default from an empty context, the same defaults the functions use', () => {
    const settings = parseWarmbootSettings(undefined, 'warmboot');

    expect(settings.deletionProtection).toBe(true);
    expect(settings.hostGroups).toEqual([]);
    expect(settings.pools).toEqual([]);
    expect(settings.fastRestore).toEqual(fastRestoreSettingsSchema.parse({}));
    expect(settings.logRetentionDays).toBe(90);
    expect(settings.shareableTestEvents).toBe('ensure-registry');
    expect(settings.alarmEmail).toBeUndefined();
    // Nobody may send requests until the deployment names operators.
    expect(settings.operators).toEqual([]);
    expect(settings.requestBus).toEqual({ name: 'warmboot-requests', existing: false });
    expect(settings.factsBus).toEqual({ name: 'warmboot-facts' });
  });

  it('takes operators: a role, user or account-root principal with the requests it may send, or "*"', () => {
    const role = 'arn:aws:iam::123456789012:role/team/requester';
    const settings = loadWarmbootContext({
      operators: [
        { principal: role, requests: ['Request Server', 'Advise Placement'], tenants: ['*'] },
        { principal: 'arn:aws:iam::123456789012:user/alice', requests: ['*'], tenants: ['*'] },
        { principal: 'arn:aws:iam::210987654321:root', requests: ['Image Launched'], tenants: ['*'] },
      ],
    });

    expect(settings.operators.map((operator) => operator.principal)).toEqual([
      role,
      'arn:aws:iam::123456789012:user/alice',
      'arn:aws:iam::210987654321:root',
    ]);
  });

  it('refuses an operator it could not enforce, naming the field', () => {
    const principal = 'arn:aws:iam::123456789012:role/requester';
    // A session ARN never equals aws:PrincipalArn (the role's ARN).
    expect(
      messageOf(() =>
        loadWarmbootContext({
          operators: [
            {
              principal: 'arn:aws:sts::123456789012:assumed-role/requester/alice',
              requests: ['*'],
              tenants: ['*'],
            },
          ],
        }),
      ),
    ).toContain('warmboot.operators[0].principal: must be an IAM role or user ARN');
    expect(
      messageOf(() =>
        loadWarmbootContext({ operators: [{ principal, requests: ['Popularity Changed'], tenants: ['*'] }] }),
      ),
    ).toContain('warmboot.operators[0].requests[0]');
    expect(
      messageOf(() => loadWarmbootContext({ operators: [{ principal, requests: [], tenants: ['*'] }] })),
    ).toContain('warmboot.operators[0].requests');
    expect(
      messageOf(() =>
        loadWarmbootContext({
          operators: [{ principal, requests: ['*', 'Request Server'], tenants: ['*'] }],
        }),
      ),
    ).toContain('warmboot.operators[0].requests: "*" stands for every request');
    expect(
      messageOf(() =>
        loadWarmbootContext({
          operators: [
            { principal, requests: ['Request Server'], tenants: ['*'] },
            { principal, requests: ['Shelve Instances'], tenants: ['*'] },
          ],
        }),
      ),
    ).toContain('warmboot.operators[1].principal: duplicate principal');
  });

  it('takes the tenants each operator acts for, or "*" for every tenant, and refuses bad ones naming the field', () => {
    const principal = 'arn:aws:iam::123456789012:role/requester';
    const withTenants = (tenants: unknown) =>
      loadWarmbootContext({ operators: [{ principal, requests: ['Shelve Instances'], tenants }] });

    expect(withTenants(['team-a', 'team-b']).operators[0]?.tenants).toEqual(['team-a', 'team-b']);
    expect(withTenants(['*']).operators[0]?.tenants).toEqual(['*']);
    expect(
      messageOf(() => loadWarmbootContext({ operators: [{ principal, requests: ['Shelve Instances'] }] })),
    ).toContain('warmboot.operators[0].tenants: required');
    expect(messageOf(() => withTenants([]))).toContain(
      'warmboot.operators[0].tenants: must name at least one',
    );
    expect(messageOf(() => withTenants(['team a']))).toContain(
      'warmboot.operators[0].tenants[0]: must be a tenant name',
    );
    expect(messageOf(() => withTenants(['*', 'team-a']))).toContain(
      'warmboot.operators[0].tenants: "*" stands for every tenant',
    );
    expect(messageOf(() => withTenants(['team-a', 'team-a']))).toContain(
      'warmboot.operators[0].tenants: duplicate tenant',
    );
  });

  it('refuses more tenants than fit in an event bus policy (10 KB), naming operators', () => {
    const tenants = Array.from({ length: 100 }, (_, index) => `tenant-${index}-${'x'.repeat(100)}`);
    expect(
      messageOf(() =>
        loadWarmbootContext({
          operators: [
            {
              principal: 'arn:aws:iam::123456789012:role/requester',
              requests: ['Shelve Instances'],
              tenants,
            },
          ],
        }),
      ),
    ).toMatch(
      /warmboot\.operators: the request bus policy would be about \d+ bytes, over EventBridge's 10 KB limit/,
    );
  });

  it('refuses more operators than fit in an event bus policy (10 KB), naming operators', () => {
    const many = Array.from({ length: 20 }, (_, index) => ({
      principal: `arn:aws:iam::123456789012:role/operator-${index}`,
      requests: ['*'],
      tenants: ['*'],
    }));

    expect(messageOf(() => loadWarmbootContext({ operators: many }))).toMatch(
      /warmboot\.operators: the request bus policy would be about \d+ bytes, over EventBridge's 10 KB limit/,
    );
    expect(loadWarmbootContext({ operators: many.slice(0, 3) }).operators).toHaveLength(3);
  });

  it('refuses the default bus, a reserved name, or one bus for both requests and facts', () => {
    expect(messageOf(() => loadWarmbootContext({ requestBus: { name: 'default' } }))).toContain(
      'warmboot.requestBus.name: must not be the default bus',
    );
    expect(messageOf(() => loadWarmbootContext({ factsBus: { name: 'aws.facts' } }))).toContain(
      'warmboot.factsBus.name: must not start with "aws."',
    );
    expect(
      messageOf(() => loadWarmbootContext({ requestBus: { name: 'shared' }, factsBus: { name: 'shared' } })),
    ).toContain('warmboot.factsBus.name: must differ from requestBus.name');
    expect(loadWarmbootContext({ requestBus: { name: 'team-requests', existing: true } }).requestBus).toEqual(
      {
        name: 'team-requests',
        existing: true,
      },
    );
  });

  it('deploys nothing account-specific from cdk.json: no pool, host group or alarm address to replace', () => {
    // Deploying "as documented" must not launch example pools into subnets that do not exist.
    const settings = loadWarmbootContext(cdkJsonContext().warmboot);

    expect(settings.pools).toEqual([]);
    expect(settings.hostGroups).toEqual([]);
    expect(settings.alarmEmail).toBeUndefined();
  });

  it('accepts the example in examples/warmboot.json: one host group, a Linux and a Windows pool', () => {
    const settings = loadWarmbootContext(exampleSettings());

    expect(settings.hostGroups.map((group) => group.name)).toEqual(['build-linux']);
    expect(settings.pools.map((pool) => [pool.name, pool.initialization.platform])).toEqual([
      ['linux-builder', 'linux'],
      ['windows-desktop', 'windows'],
    ]);
  });

  it('takes EBS key ARNs (ebsKmsKeyArns, none by default) and refuses an alias, which IAM cannot authorize', () => {
    const key = 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';

    expect(parseWarmbootSettings(undefined, 'warmboot').ebsKmsKeyArns).toEqual([]);
    expect(loadWarmbootContext({ ebsKmsKeyArns: [key] }).ebsKmsKeyArns).toEqual([key]);
    expect(
      messageOf(() =>
        loadWarmbootContext({ ebsKmsKeyArns: ['arn:aws:kms:us-east-1:123456789012:alias/ebs'] }),
      ),
    ).toContain('warmboot.ebsKmsKeyArns[0]: must be a KMS key ARN');
    expect(messageOf(() => loadWarmbootContext({ ebsKmsKeyArns: [key, key] }))).toContain(
      'warmboot.ebsKmsKeyArns: duplicate key ARN',
    );
  });

  it('names the key path of a bad value', () => {
    const message = messageOf(() => loadWarmbootContext({ hostGroups: [{ ...hostGroup, cacheBytes: -5 }] }));

    expect(message).toMatch(/^ {2}warmboot\.hostGroups\[0\]\.cacheBytes: .*>0/m);
  });

  it('rejects unknown keys, so a typo cannot silently deploy the defaults', () => {
    const message = messageOf(() => loadWarmbootContext({ hostgroups: [hostGroup] }));

    expect(message).toContain('warmboot.hostgroups: unknown key');
  });

  it('reports every problem at once, each with its own path', () => {
    let caught: unknown;
    try {
      loadWarmbootContext({ deletionProtection: 'yes', shelving: { maxBatch: 0 }, alarmEmail: 'oncall' });
    } catch (error) {
      caught = error;
    }

    expect(caught).toBeInstanceOf(WarmbootConfigError);
    expect((caught as WarmbootConfigError).issues.map((issue) => issue.split(':')[0])).toEqual([
      'warmboot.deletionProtection',
      'warmboot.shelving.maxBatch',
      'warmboot.alarmEmail',
    ]);
  });

  it('rejects duplicate host group and pool names', () => {
    const pool = exampleSettings() as { pools: unknown[] };
    const message = messageOf(() =>
      loadWarmbootContext({ hostGroups: [hostGroup, hostGroup], pools: [pool.pools[0], pool.pools[0]] }),
    );

    expect(message).toContain('warmboot.hostGroups[1].name: duplicate name "build-linux"');
    expect(message).toContain('warmboot.pools[1].name: duplicate name "linux-builder"');
  });

  it('only lets pools run the pool documents warmboot deploys (IAM allows no other)', () => {
    const { pools } = exampleSettings() as { pools: Record<string, unknown>[] };
    const message = messageOf(() =>
      loadWarmbootContext({
        pools: [{ ...pools[0], initialization: { documentName: 'Warmboot-PoolSomethingElse' } }],
      }),
    );

    expect(message).toContain('warmboot.pools[0].initialization.documentName: must be one of');
  });

  it("refuses a pool without an instance profile unless DHMC is on: its members' SSM agents would never register (W6)", () => {
    const { pools } = exampleSettings() as { pools: Record<string, unknown>[] };
    const { instanceProfile: _profile, ...withoutProfile } = pools[0] ?? {};

    expect(messageOf(() => loadWarmbootContext({ pools: [withoutProfile] }))).toContain(
      'warmboot.pools[0].instanceProfile: required unless ssmDefaultHostManagement is true',
    );
    expect(
      loadWarmbootContext({ pools: [withoutProfile], ssmDefaultHostManagement: true }).pools,
    ).toHaveLength(1);
    expect(loadWarmbootContext({ pools: [pools[0]] }).pools).toHaveLength(1);
  });

  it('passes ssmDefaultHostManagement from the context to the construct, so such a pool builds a stack', () => {
    const { pools } = exampleSettings() as { pools: Record<string, unknown>[] };
    const { instanceProfile: _profile, ...withoutProfile } = pools[0] ?? {};

    const { stack } = createWarmbootApp({
      context: { warmboot: { pools: [withoutProfile], ssmDefaultHostManagement: true } },
    });

    expect(stack.warmboot.functions.length).toBeGreaterThan(0);
  });

  it('accepts the context as a JSON string (cdk synth -c warmboot=...) and rejects broken JSON', () => {
    expect(loadWarmbootContext(JSON.stringify({ hostGroups: [hostGroup] })).hostGroups).toHaveLength(1);
    expect(messageOf(() => loadWarmbootContext('{"hostGroups": ['))).toContain(
      'warmboot: context is not valid JSON',
    );
  });

  it('accepts only retention periods CloudWatch Logs supports', () => {
    expect(messageOf(() => loadWarmbootContext({ logRetentionDays: 42 }))).toContain(
      'warmboot.logRetentionDays: must be one of',
    );
  });

  it('composes the capability schemas rather than copying them', () => {
    const shape = warmbootSettingsSchema.shape;

    expect(shape.hostGroups.unwrap().element).toBe(hostGroupSchema);
    expect(shape.pools.unwrap().element).toBe(poolSpecSchema);
  });

  it('fails the app before any resource exists when the context is bad', () => {
    const message = messageOf(() =>
      createWarmbootApp({ context: { warmboot: { hostGroups: [{ ...hostGroup, cacheBytes: 1.5 }] } } }),
    );

    expect(message).toContain('warmboot.hostGroups[0].cacheBytes');
  });
});
