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
