import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DOCUMENT_NAMES,
  EXIT_CODES,
  DOCUMENTS as IMAGE_DOCUMENTS,
} from '../../../functions/image-cache/documents';
import {
  INITIALIZE_DOCUMENT,
  PERSONALIZE_DOCUMENT,
  DOCUMENTS as POOL_DOCUMENTS,
  SECRETS_DOCUMENT,
} from '../../../functions/pools/documents';
import { initParameters } from '../../../functions/pools/schemas';
import type { CommandDocument } from '../../../functions/shared/ssm-document';
import {
  amazonLinuxTools,
  commandLine,
  debianTools,
  type ScratchHost,
  type Shell,
  type ShellRun,
  type StubTool,
  withScratchHost,
} from '../../../local/ssm/shell';
import { linuxSteps, renderedSteps, runLinuxStep, SHELLS } from '../../support/ssm-documents';
import { spec } from '../pools/fixtures';

/**
 * Every SSM document warmboot deploys (infra deploys `documentContent` of these same DOCUMENTS),
 * rendered the way the agent renders it and run the way aws:runShellScript runs it (`sh -c`),
 * with `sh` being dash (Debian/Ubuntu) and bash (Amazon Linux). The host's tools are stubs that
 * record their argv, so the assertions are on what the document really asked the host to do.
 */

const DEPLOYED: readonly CommandDocument[] = [...POOL_DOCUMENTS, ...IMAGE_DOCUMENTS];

const named = (name: string): CommandDocument => {
  const found = DEPLOYED.find((document) => document.name === name);
  if (!found) throw new Error(`no deployed document ${name}`);
  return found;
};

const runDocument = (
  host: ScratchHost,
  name: string,
  parameters: Record<string, string[]>,
  shell: Shell,
): ShellRun => runLinuxStep(host, named(name), parameters, shell);

const lines = (run: ShellRun): string[] => run.calls.map(commandLine);

const succeeded = (run: ShellRun): void => {
  expect(run.stderr, `${run.shell} stderr`).toBe('');
  expect(run.exitCode, `${run.shell}: ${run.stderr}`).toBe(0);
  expect(run.status).toBe('Success');
};

const toolsFor = (shell: Shell, overrides: Record<string, StubTool> = {}) =>
  shell === 'bash' ? amazonLinuxTools(overrides) : debianTools(overrides);

describe('the executor runs a script as sh -c <_script.sh> does', () => {
  // Review finding R3: the pool scripts once began with `set -euo pipefail` and no #! line.
  it('without a #! line, `sh` itself runs the script: dash rejects pipefail, bash accepts it', () => {
    withScratchHost({}, (host) => {
      expect(host.run('set -euo pipefail\n', 'dash').exitCode).toBe(2);
      expect(host.run('set -euo pipefail\n', 'bash').exitCode).toBe(0);
    });
  });

  it('with #!/bin/bash, dash hands the script to bash', () => {
    withScratchHost({}, (host) => {
      expect(host.run('#!/bin/bash\nset -euo pipefail\n', 'dash').status).toBe('Success');
    });
  });

  it('a tool that is neither stubbed nor allowlisted is not found, so a script cannot reach the real host', () => {
    withScratchHost({}, (host) => {
      const run = host.run('apt-get install -y git\n', 'bash');

      expect(run.exitCode).toBe(127);
      expect(run.calls).toEqual([]);
    });
  });
});

describe.each(SHELLS)('pool documents run where sh is %s', (shell) => {
  const amazon = shell === 'bash';

  it('Initialize installs exactly the pool packages and pulls exactly its images, then leaves the marker', () => {
    const pool = spec({
      initialization: {
        platform: 'linux',
        packages: ['git', 'docker', 'python3.11'],
        containerImages: ['public.ecr.aws/docker/library/nginx:1.27', 'ghcr.io/org/app:1.2.3'],
        generalize: 'true',
      },
    });

    withScratchHost(toolsFor(shell), (host) => {
      const run = runDocument(host, INITIALIZE_DOCUMENT, initParameters(pool), shell);

      succeeded(run);
      const pull = amazon ? 'docker pull' : 'ctr image pull';
      expect(lines(run)).toEqual([
        ...(amazon
          ? ['dnf install -y git docker python3.11']
          : ['apt-get update', 'apt-get install -y git docker python3.11']),
        `${pull} public.ecr.aws/docker/library/nginx:1.27`,
        `${pull} ghcr.io/org/app:1.2.3`,
        'cloud-init clean --logs --machine-id',
      ]);
      expect(readFileSync(join(host.root, 'var/lib/warmboot/initialized'), 'utf8')).toMatch(
        /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n$/,
      );
    });
  });

  it('Initialize with no packages and no images calls no package manager and no runtime', () => {
    const pool = spec({ initialization: { platform: 'linux', packages: [], containerImages: [] } });

    withScratchHost(toolsFor(shell), (host) => {
      const run = runDocument(host, INITIALIZE_DOCUMENT, initParameters(pool), shell);

      succeeded(run);
      expect(lines(run)).toEqual([]);
      expect(existsSync(join(host.root, 'var/lib/warmboot/initialized'))).toBe(true);
    });
  });

  it('Initialize with one package installs that one package', () => {
    const pool = spec({ initialization: { platform: 'linux', packages: ['nvidia-container-toolkit'] } });

    withScratchHost(toolsFor(shell), (host) => {
      const run = runDocument(host, INITIALIZE_DOCUMENT, initParameters(pool), shell);

      succeeded(run);
      expect(lines(run).at(-1)).toBe(
        amazon ? 'dnf install -y nvidia-container-toolkit' : 'apt-get install -y nvidia-container-toolkit',
      );
    });
  });

  it('Initialize fails, leaving no marker, when the package manager fails', () => {
    const pool = spec({ initialization: { platform: 'linux', packages: ['git'] } });
    const failing: Record<string, StubTool> = amazon
      ? { dnf: { exitCode: 1 } }
      : { 'apt-get': { exitCode: 100 } };

    withScratchHost(toolsFor(shell, failing), (host) => {
      const run = runDocument(host, INITIALIZE_DOCUMENT, initParameters(pool), shell);

      expect(run.status).toBe('Failed');
      expect(run.exitCode).toBe(amazon ? 1 : 100);
      expect(existsSync(join(host.root, 'var/lib/warmboot/initialized'))).toBe(false);
    });
  });

  it('Initialize fails with EX_UNAVAILABLE on a host without any package manager', () => {
    const pool = spec({ initialization: { platform: 'linux', packages: ['git'] } });
    const tools = toolsFor(shell);
    delete tools.dnf;
    delete tools['apt-get'];

    withScratchHost(tools, (host) => {
      const run = runDocument(host, INITIALIZE_DOCUMENT, initParameters(pool), shell);

      expect(run.exitCode).toBe(69);
      expect(run.stderr).toContain('no package manager');
    });
  });

  it('Personalize sets the host name and appends the key to the right user', () => {
    const key =
      'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFq1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d alice@laptop';
    const user = amazon ? 'ec2-user' : 'ubuntu';

    withScratchHost(toolsFor(shell), (host) => {
      const run = runDocument(
        host,
        PERSONALIZE_DOCUMENT,
        { platform: ['linux'], hostname: ['build-0001'], sshPublicKey: [key], sshUser: [user] },
        shell,
      );

      succeeded(run);
      const home = join(host.root, 'home', user);
      expect(lines(run)).toEqual([
        'hostnamectl set-hostname build-0001',
        `getent passwd ${user}`,
        `install -d -m 700 -o ${user} ${home}/.ssh`,
        `chown ${user} ${home}/.ssh/authorized_keys`,
      ]);
      expect(readFileSync(join(home, '.ssh/authorized_keys'), 'utf8')).toBe(`${key}\n`);
    });
  });

  it('Personalize with neither host name nor key, defaults filled in, touches nothing', () => {
    withScratchHost(toolsFor(shell), (host) => {
      const run = runDocument(host, PERSONALIZE_DOCUMENT, { platform: ['linux'] }, shell);

      succeeded(run);
      expect(lines(run)).toEqual([]);
    });
  });
});

const DIGEST_OF_HELLO = `sha256:${createHash('sha256').update('hello').digest('hex')}`;
const CONTAINER_DIGEST = `sha256:${'4f'.repeat(32)}`;
const SOURCE = '123456789012.dkr.ecr.us-east-1.amazonaws.com/inference/sdxl-base:1.0';

const cacheDirectory = (host: ScratchHost): string => join(host.root, 'var/lib/warmboot/cache');

/** `WARMBOOT_RESULT <json>`: the line the image-cache function parses. */
const result = (run: ShellRun): Record<string, unknown> => {
  const line = run.stdout.split('\n').find((candidate) => candidate.startsWith('WARMBOOT_RESULT '));
  expect(line, run.stdout).toBeDefined();
  return JSON.parse((line ?? '').slice('WARMBOOT_RESULT '.length)) as Record<string, unknown>;
};

/** docker that answers `info` and prints `image inspect` as docker does: indented JSON, one key a line. */
const DOCKER: StubTool = {
  script: `case "$1 $2" in "image inspect") printf '[\\n    {\\n        "Id": "sha256:${'ab'.repeat(32)}",\\n        "Size": 6442450944,\\n        "Os": "linux"\\n    }\\n]\\n' ;; esac`,
};
/** ctr whose `images ls` prints its table (REF TYPE DIGEST SIZE PLATFORMS LABELS) with a MiB size. */
const CTR: StubTool = {
  script: `case "$3 $4" in "images ls") printf 'REF TYPE DIGEST SIZE PLATFORMS LABELS\\n%s application/vnd.oci.image.index.v1+json ${CONTAINER_DIGEST} 27.1 MiB linux/amd64 -\\n' "\${5#name==}" ;; esac`,
};
/** aws s3 cp --only-show-errors <source> -: streams "hello" to stdout. */
const AWS_S3: StubTool = { script: 'printf hello' };
const S3_OBJECT = 's3://warmboot-images/models/sdxl-base-1.0.tar';

describe.each(SHELLS)('image-cache documents run where sh is %s', (shell) => {
  const fetchParameters = (host: ScratchHost, overrides: Record<string, string[]> = {}) => ({
    ImageId: ['sdxl-base-1.0'],
    Kind: ['container'],
    Source: [SOURCE],
    Digest: [CONTAINER_DIGEST],
    CacheDirectory: [cacheDirectory(host)],
    ExpectedBytes: ['1024'],
    ...overrides,
  });
  /** Fetch of S3_OBJECT, expected to have the sha256 `digest`. */
  const fetchFromS3 = (host: ScratchHost, digest: string) =>
    runDocument(
      host,
      DOCUMENT_NAMES.fetch,
      fetchParameters(host, { Kind: ['s3'], Source: [S3_OBJECT], Digest: [digest] }),
      shell,
    );

  it('Fetch pulls a container image by digest with docker and reports its size', () => {
    withScratchHost(amazonLinuxTools({ docker: DOCKER }), (host) => {
      const run = runDocument(host, DOCUMENT_NAMES.fetch, fetchParameters(host), shell);

      succeeded(run);
      expect(lines(run)).toEqual([
        'docker info',
        `docker pull --quiet ${SOURCE}@${CONTAINER_DIGEST}`,
        `docker image inspect ${SOURCE}@${CONTAINER_DIGEST}`,
      ]);
      expect(result(run)).toEqual({
        imageId: 'sdxl-base-1.0',
        kind: 'container',
        source: SOURCE,
        digest: CONTAINER_DIGEST,
        bytes: 6442450944,
        runtime: 'docker',
      });
    });
  });

  it('Fetch pulls with containerd when docker is absent and converts the MiB size', () => {
    withScratchHost(debianTools({ ctr: CTR }), (host) => {
      const run = runDocument(host, DOCUMENT_NAMES.fetch, fetchParameters(host), shell);

      succeeded(run);
      expect(lines(run)).toEqual([
        `ctr -n k8s.io images pull ${SOURCE}@${CONTAINER_DIGEST}`,
        `ctr -n k8s.io images ls name==${SOURCE}@${CONTAINER_DIGEST}`,
      ]);
      expect(result(run)).toMatchObject({ runtime: 'containerd', bytes: Math.floor(27.1 * 1048576) });
    });
  });

  it('Fetch copies an S3 object, checks its sha256 and keeps it as a blob with a marker', () => {
    withScratchHost(amazonLinuxTools({ aws: AWS_S3 }), (host) => {
      const run = fetchFromS3(host, DIGEST_OF_HELLO);

      succeeded(run);
      const hex = DIGEST_OF_HELLO.slice('sha256:'.length);
      expect(lines(run)).toEqual([`aws s3 cp --only-show-errors ${S3_OBJECT} -`]);
      expect(readFileSync(join(cacheDirectory(host), `${hex}.blob`), 'utf8')).toBe('hello');
      expect(result(run)).toMatchObject({ kind: 's3', bytes: 5, runtime: 'none' });
    });
  });

  it('Fetch refuses an S3 object whose sha256 does not match (EX_DATAERR) and keeps nothing', () => {
    withScratchHost(amazonLinuxTools({ aws: AWS_S3 }), (host) => {
      const run = fetchFromS3(host, CONTAINER_DIGEST);

      expect(run.exitCode).toBe(EXIT_CODES.verificationFailed);
      expect(readdirSync(cacheDirectory(host))).toEqual([]);
    });
  });

  it('Fetch reports a full disk before downloading anything', () => {
    withScratchHost(amazonLinuxTools({ docker: DOCKER }), (host) => {
      const parameters = fetchParameters(host, { ExpectedBytes: ['999999999999999'] });
      const run = runDocument(host, DOCUMENT_NAMES.fetch, parameters, shell);

      expect(run.exitCode).toBe(EXIT_CODES.diskFull);
      expect(lines(run)).toEqual([]);
    });
  });

  it('Fetch of a container image fails with EX_UNAVAILABLE on a host without a runtime', () => {
    const tools = debianTools();
    delete tools.ctr;

    withScratchHost(tools, (host) => {
      const run = runDocument(host, DOCUMENT_NAMES.fetch, fetchParameters(host), shell);

      expect(run.exitCode).toBe(EXIT_CODES.noRuntime);
    });
  });

  it('Remove deletes the container image with the runtime, and an S3 blob from disk, with their markers', () => {
    withScratchHost(amazonLinuxTools({ docker: DOCKER }), (host) => {
      const hex = DIGEST_OF_HELLO.slice('sha256:'.length);
      mkdirSync(cacheDirectory(host), { recursive: true });
      writeFileSync(join(cacheDirectory(host), `${hex}.blob`), 'hello');
      writeFileSync(join(cacheDirectory(host), `${hex}.json`), '{}');
      const common = { ImageId: ['sdxl-base-1.0'], CacheDirectory: [cacheDirectory(host)] };

      const container = runDocument(
        host,
        DOCUMENT_NAMES.remove,
        { ...common, Kind: ['container'], Source: [SOURCE], Digest: [CONTAINER_DIGEST] },
        shell,
      );
      succeeded(container);
      expect(lines(container)).toEqual(['docker info', `docker image rm ${SOURCE}@${CONTAINER_DIGEST}`]);

      const s3 = runDocument(
        host,
        DOCUMENT_NAMES.remove,
        { ...common, Kind: ['s3'], Source: ['s3://warmboot-images/a.tar'], Digest: [DIGEST_OF_HELLO] },
        shell,
      );
      succeeded(s3);
      expect(readdirSync(cacheDirectory(host))).toEqual([]);
      expect(result(s3)).toEqual({ imageId: 'sdxl-base-1.0', removed: true });
    });
  });

  it('Inventory lists the markers whose content is present and deletes the others', () => {
    withScratchHost(amazonLinuxTools({ docker: DOCKER }), (host) => {
      const directory = cacheDirectory(host);
      const present = createHash('sha256').update('present').digest('hex');
      const gone = createHash('sha256').update('gone').digest('hex');
      const marker = (hex: string) =>
        `{"imageId":"img-${hex.slice(0, 4)}","kind":"s3","source":"s3://b/k","digest":"sha256:${hex}","bytes":5,"runtime":"none"}`;
      mkdirSync(directory, { recursive: true });
      writeFileSync(join(directory, `${present}.blob`), 'x');
      writeFileSync(join(directory, `${present}.json`), marker(present));
      writeFileSync(join(directory, `${gone}.json`), marker(gone));

      const run = runDocument(host, DOCUMENT_NAMES.inventory, { CacheDirectory: [directory] }, shell);

      succeeded(run);
      const inventory = result(run) as { runtime: string; freeBytes: number; images: { imageId: string }[] };
      expect(inventory.runtime).toBe('docker');
      expect(inventory.freeBytes).toBeGreaterThan(0);
      expect(inventory.images.map((image) => image.imageId)).toEqual([`img-${present.slice(0, 4)}`]);
      expect(existsSync(join(directory, `${gone}.json`))).toBe(false);
    });
  });

  it('Mount gives up with EX_NOINPUT when the volume never appears as a block device', () => {
    withScratchHost(amazonLinuxTools(), (host) => {
      const run = runDocument(
        host,
        DOCUMENT_NAMES.mount,
        {
          ImageId: ['sdxl-base-1.0'],
          CacheDirectory: [cacheDirectory(host)],
          VolumeId: ['vol-0123456789abcdef0'],
          Device: ['/dev/sdf'],
        },
        shell,
      );

      expect(run.exitCode).toBe(EXIT_CODES.deviceMissing);
      expect(run.stderr).toContain('vol-0123456789abcdef0 did not appear');
      expect(lines(run)).toEqual(Array.from({ length: 60 }, () => 'sleep 1'));
    });
  });

  it('Unmount unmounts a mounted volume and removes its marker', () => {
    withScratchHost(amazonLinuxTools({ mountpoint: { exitCode: 0 } }), (host) => {
      const directory = cacheDirectory(host);
      const mountPoint = join(directory, 'volumes/vol-0123456789abcdef0');
      mkdirSync(mountPoint, { recursive: true });
      writeFileSync(join(directory, 'vol-0123456789abcdef0.json'), '{}');

      const run = runDocument(
        host,
        DOCUMENT_NAMES.unmount,
        { ImageId: ['sdxl-base-1.0'], CacheDirectory: [directory], VolumeId: ['vol-0123456789abcdef0'] },
        shell,
      );

      succeeded(run);
      expect(lines(run)).toEqual([`mountpoint -q ${mountPoint}`, `umount ${mountPoint}`]);
      expect(readdirSync(directory)).toEqual(['volumes']);
      expect(readdirSync(join(directory, 'volumes'))).toEqual([]);
    });
  });
});

describe('every Linux step warmboot deploys', () => {
  const scripts = DEPLOYED.flatMap((document) =>
    document.mainSteps
      .filter((step) => step.action === 'aws:runShellScript')
      .map((step) => ({
        label: `${document.name}/${String(step.name)}`,
        runCommand: (step.inputs as { runCommand: string[] }).runCommand,
      })),
  );

  it('is covered by a run above or in ssm-secrets.test.ts (pools and image cache, one step each)', () => {
    expect(scripts.map((script) => script.label).sort()).toEqual(
      [
        `${INITIALIZE_DOCUMENT}/initializeLinux`,
        `${PERSONALIZE_DOCUMENT}/personalizeLinux`,
        `${SECRETS_DOCUMENT}/installSecretsLinux`,
        `${DOCUMENT_NAMES.fetch}/fetchImage`,
        `${DOCUMENT_NAMES.remove}/removeImage`,
        `${DOCUMENT_NAMES.inventory}/inventoryImages`,
        `${DOCUMENT_NAMES.mount}/mountImage`,
        `${DOCUMENT_NAMES.unmount}/unmountImage`,
      ].sort(),
    );
  });

  /** What SendCommand carries in production, per document: the scripts shellcheck sees are these, rendered. */
  const CACHE = ['/var/lib/warmboot/cache'];
  const IMAGE = { ImageId: ['sdxl-base-1.0'], CacheDirectory: CACHE };
  const REALISTIC: Record<string, Record<string, string[]>> = {
    [INITIALIZE_DOCUMENT]: initParameters(
      spec({
        initialization: { platform: 'linux', packages: ['git', 'docker'], containerImages: ['nginx'] },
      }),
    ),
    [PERSONALIZE_DOCUMENT]: { platform: ['linux'], hostname: ['build-0001'], sshUser: ['ec2-user'] },
    [SECRETS_DOCUMENT]: {
      secrets: [
        '{{ssm-secure:/warmboot/tenants/team-a/db-password}},{{ssm-secure:/warmboot/tenants/team-a/ci/token}}',
      ],
      owner: ['ec2-user'],
    },
    [DOCUMENT_NAMES.fetch]: {
      ...IMAGE,
      Kind: ['container'],
      Source: [SOURCE],
      Digest: [CONTAINER_DIGEST],
      ExpectedBytes: ['1024'],
    },
    [DOCUMENT_NAMES.remove]: {
      ...IMAGE,
      Kind: ['s3'],
      Source: ['s3://warmboot-images/a.tar'],
      Digest: [CONTAINER_DIGEST],
    },
    [DOCUMENT_NAMES.inventory]: { CacheDirectory: CACHE },
    [DOCUMENT_NAMES.mount]: { ...IMAGE, VolumeId: ['vol-0123456789abcdef0'], Device: ['/dev/sdf'] },
    [DOCUMENT_NAMES.unmount]: { ...IMAGE, VolumeId: ['vol-0123456789abcdef0'] },
  };

  it.each(DEPLOYED.map((document) => ({ name: document.name, document })))(
    '$name, rendered, passes shellcheck for the shell it runs under',
    ({ name, document }) => {
      const parameters = REALISTIC[name];
      expect(parameters, `add realistic parameters for ${name}`).toBeDefined();
      for (const step of linuxSteps(document, parameters ?? {})) {
        // With a #! line the script runs under that interpreter (shellcheck reads the line);
        // without one it runs under whatever `sh` is, so it must be plain POSIX sh.
        const shebang = step.runCommand[0]?.startsWith('#!') ?? false;
        const check = spawnSync('shellcheck', [...(shebang ? [] : ['--shell=sh']), '-'], {
          input: step.script,
          encoding: 'utf8',
        });
        expect(check.error, 'shellcheck must be installed (apt-get install -y shellcheck)').toBeUndefined();
        expect(check.stdout, step.name).toBe('');
        expect(check.status).toBe(0);
      }
    },
  );
});

describe('Windows steps, rendered (PowerShell is not run here)', () => {
  // What cannot be checked without PowerShell: that the scripts parse, that choco, docker and
  // ec2launch accept these arguments, and the steps' exit codes. What is checked: every
  // reference is substituted, and a list arrives as text that `.Split(',')` turns into its items.
  const windowsSteps = (document: CommandDocument, parameters: Record<string, string[]>) =>
    renderedSteps(document, parameters, 'Windows');

  it.each([
    {
      packages: ['git', 'visualstudio2022buildtools'],
      containerImages: ['mcr.microsoft.com/windows/servercore:ltsc2022'],
    },
    { packages: [], containerImages: [] },
  ])('Initialize with packages $packages and images $containerImages', ({ packages, containerImages }) => {
    const pool = spec({ initialization: { platform: 'windows', packages, containerImages } });
    const [step] = windowsSteps(named(INITIALIZE_DOCUMENT), initParameters(pool));

    expect(step?.action).toBe('aws:runPowerShellScript');
    expect(step?.script).not.toContain('{{');
    expect(step?.runCommand).toContain(
      `foreach ($pkg in '${packages.join(',')}'.Split(',')) { if ($pkg) { choco install -y $pkg } }`,
    );
    expect(step?.runCommand).toContain(
      `foreach ($image in '${containerImages.join(',')}'.Split(',')) { if ($image) { docker pull $image } }`,
    );
  });

  it('Personalize substitutes the host name and key inside single quotes', () => {
    const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFq1b2c3 alice@laptop';
    const [step] = windowsSteps(named(PERSONALIZE_DOCUMENT), {
      platform: ['windows'],
      hostname: ['build-0001'],
      sshPublicKey: [key],
    });

    expect(step?.script).not.toContain('{{');
    expect(step?.script).toContain(`-Value '${key}'`);
    expect(step?.script).toContain("Rename-Computer -NewName 'build-0001'");
  });
});
