import { chmodSync, mkdirSync, readdirSync, statSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DOCUMENT_NAMES, documentNamed, EXIT_CODES } from '../../../functions/image-cache/documents';
import {
  amazonLinuxTools,
  commandLine,
  type ScratchHost,
  type ShellRun,
  type StubTool,
  withScratchHost,
} from '../../../local/ssm/shell';
import { runLinuxStep, SHELLS } from '../../support/ssm-documents';

/**
 * The image documents' defences (security review H2, L8), run for real: rendered as the agent
 * renders them and run by `sh -c` (dash and bash), with the host's tools as stubs that record
 * their argv. A linked volume is mounted read-only, nosuid, nodev and noexec, never when its
 * filesystem has the root filesystem's UUID or label; an S3 object bigger than declared is cut
 * off and refused; the cache directory must be root's alone.
 */

const VOLUME_ID = 'vol-0123456789abcdef0';
const ROOT_UUID = '6f1c2d3e-aaaa-4bbb-8ccc-0123456789ab';
const DIGEST_OF_HELLO = 'sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824';

/** Fetch parameters of a 5-byte S3 object holding `hello`, into `cacheDirectory`. */
const helloFetch = (cacheDirectory: string) => ({
  ImageId: 'sdxl-base-1.0',
  Kind: 's3',
  Source: 's3://warmboot-images/a.tar',
  Digest: DIGEST_OF_HELLO,
  CacheDirectory: cacheDirectory,
  ExpectedBytes: '5',
});

const cacheDirectory = (host: ScratchHost) => join(host.root, 'var/lib/warmboot/cache');

/** Any block device of the machine running the tests: the scratch host's /dev/sdf points at it. */
const someBlockDevice = (): string => {
  const found = readdirSync('/dev')
    .map((name) => join('/dev', name))
    .find((path) => {
      try {
        return statSync(path).isBlockDevice();
      } catch {
        return false;
      }
    });
  if (!found) throw new Error('these runs need a block device in /dev to stand for the attached volume');
  return found;
};

const attachVolume = (host: ScratchHost) => {
  const device = join(host.root, 'dev/sdf');
  mkdirSync(dirname(device), { recursive: true });
  symlinkSync(someBlockDevice(), device);
  return device;
};

/** findmnt reporting the root filesystem; blkid reporting the volume's UUID and label. */
const filesystems = (volume: { uuid: string; label: string }): Record<string, StubTool> => ({
  findmnt: { script: `case "$3" in UUID) echo ${ROOT_UUID} ;; LABEL) echo cloudimg-rootfs ;; esac` },
  blkid: {
    script: `case "$4" in UUID) echo ${volume.uuid} ;; LABEL) echo ${volume.label} ;; TYPE) echo ext4 ;; esac`,
  },
});

const mountParameters = (host: ScratchHost) => ({
  ImageId: 'sdxl-base-1.0',
  CacheDirectory: cacheDirectory(host),
  VolumeId: VOLUME_ID,
  Device: '/dev/sdf',
});

const mounts = (result: ShellRun) =>
  result.calls.map(commandLine).filter((line) => line.startsWith('mount '));

describe.each(SHELLS)('image documents run where sh is %s', (shell) => {
  /** Runs image document `name`, each parameter one value, where `sh` is this shell. */
  const run = (
    host: ScratchHost,
    name: (typeof DOCUMENT_NAMES)[keyof typeof DOCUMENT_NAMES],
    parameters: Record<string, string>,
  ): ShellRun => {
    const values = Object.fromEntries(Object.entries(parameters).map(([key, value]) => [key, [value]]));
    return runLinuxStep(host, documentNamed(name), values, shell);
  };

  it('Mount mounts the image volume ro,nosuid,nodev,noexec (ext4: no journal replay)', () => {
    withScratchHost(amazonLinuxTools(filesystems({ uuid: 'image-uuid', label: 'models' })), (host) => {
      const device = attachVolume(host);

      const result = run(host, DOCUMENT_NAMES.mount, mountParameters(host));

      expect(result.exitCode, result.stderr).toBe(0);
      expect(mounts(result)).toEqual([
        `mount -o ro,nosuid,nodev,noexec,noload ${device} ${cacheDirectory(host)}/volumes/${VOLUME_ID}`,
      ]);
    });
  });

  it.each([
    { what: 'UUID', volume: { uuid: ROOT_UUID, label: 'models' } },
    { what: 'label', volume: { uuid: 'image-uuid', label: 'cloudimg-rootfs' } },
  ])("Mount refuses a volume whose filesystem has the root filesystem's $what", ({ volume }) => {
    withScratchHost(amazonLinuxTools(filesystems(volume)), (host) => {
      attachVolume(host);

      const result = run(host, DOCUMENT_NAMES.mount, mountParameters(host));

      expect(result.exitCode).toBe(EXIT_CODES.verificationFailed);
      expect(result.stderr).toContain("root filesystem's UUID or label");
      expect(mounts(result)).toEqual([]);
    });
  });

  it('Fetch refuses an S3 object larger than declared and keeps nothing of it', () => {
    // "hello" is 5 bytes; the object streams a megabyte of it.
    const aws: StubTool = {
      script: 'i=0; while [ $i -lt 200000 ]; do printf hello || exit 1; i=$((i+1)); done',
    };
    withScratchHost(amazonLinuxTools({ aws }), (host) => {
      const result = run(host, DOCUMENT_NAMES.fetch, {
        ImageId: 'sdxl-base-1.0',
        Kind: 's3',
        Source: 's3://warmboot-images/models/sdxl-base-1.0.tar',
        Digest: DIGEST_OF_HELLO,
        CacheDirectory: cacheDirectory(host),
        ExpectedBytes: '5',
      });

      expect(result.exitCode).toBe(EXIT_CODES.verificationFailed);
      expect(result.stderr).toContain('larger than its declared 5 bytes');
      // Nothing kept, not even the partial file (mktemp's, removed on exit).
      expect(readdirSync(cacheDirectory(host))).toEqual([]);
    });
  });

  it('Fetch creates the cache directory root-only (0755) and keeps a verified S3 object readable', () => {
    withScratchHost(amazonLinuxTools({ aws: { script: 'printf hello' } }), (host) => {
      const result = run(host, DOCUMENT_NAMES.fetch, helloFetch(cacheDirectory(host)));

      expect(result.exitCode, result.stderr).toBe(0);
      expect(statSync(cacheDirectory(host)).mode & 0o7777).toBe(0o755);
      const blob = join(cacheDirectory(host), `${DIGEST_OF_HELLO.slice('sha256:'.length)}.blob`);
      expect(statSync(blob).mode & 0o777).toBe(0o644);
    });
  });

  it.each([
    {
      what: 'writable by others',
      create: (directory: string) => {
        mkdirSync(directory);
        chmodSync(directory, 0o777);
      },
    },
    {
      what: 'a symlink',
      create: (directory: string) => {
        mkdirSync(`${directory}-elsewhere`, { mode: 0o755 });
        symlinkSync(`${directory}-elsewhere`, directory);
      },
    },
  ])('Fetch and Inventory refuse a cache directory that is $what', ({ create }) => {
    withScratchHost(amazonLinuxTools({ aws: { script: 'printf hello' } }), (host) => {
      const directory = cacheDirectory(host);
      mkdirSync(dirname(directory), { recursive: true });
      create(directory);

      const fetch = run(host, DOCUMENT_NAMES.fetch, helloFetch(directory));
      const inventory = run(host, DOCUMENT_NAMES.inventory, { CacheDirectory: directory });

      for (const result of [fetch, inventory]) {
        expect(result.exitCode).toBe(EXIT_CODES.insecureCacheDirectory);
        expect(result.stderr).toContain('must be a directory owned by root with mode 0755');
      }
      expect(fetch.calls).toEqual([]);
    });
  });
});
