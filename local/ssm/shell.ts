import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Runs a rendered `aws:runShellScript` step for real, on a scratch "host" inside a temp dir.
 *
 * What the agent does (amazon-ssm-agent `agent/plugins/runscript/runshellscript.go` and
 * `runscript.go` `runCommands`): it writes the lines to `_script.sh` with mode 0700
 * (`appconfig.ReadWriteExecuteAccess`) and runs `sh -c <path>`; the exit code decides the status
 * (`pluginutil.GetStatus`: 0 is Success, anything else Failed). `sh -c <path>` executes the file:
 * with a `#!` line the kernel hands it to that interpreter; without one, exec fails with ENOEXEC
 * and `sh` runs it itself. So the same script behaves differently where `sh` is dash
 * (Debian, Ubuntu) and where it is bash (Amazon Linux, RHEL): both are modelled here, with bash
 * started as `sh` (argv[0]) as on Amazon Linux, which puts it in POSIX mode.
 *
 * The host's own tools are stubs in the first directory of PATH: each appends its argv to a log
 * and exits with its configured code. The second and last directory holds links to an allowlist
 * of harmless real utilities (coreutils, grep, awk…). Anything else is "command not found", so a
 * script can never reach the real package manager, container runtime or mount of the machine
 * running the tests. `WARMBOOT_ROOT` names the scratch file-system root; the documents prefix
 * the absolute paths they write with `${WARMBOOT_ROOT:-}`, which the agent never sets.
 * spawnSync keeps runs deterministic and outside the virtual clock (local/clock.ts).
 */

export type Shell = 'dash' | 'bash';

/** Where `sh` points: dash on Debian/Ubuntu, bash on Amazon Linux/RHEL. */
export const SHELL_PATHS: Readonly<Record<Shell, string>> = {
  dash: '/usr/bin/dash',
  bash: '/usr/bin/bash',
};

export interface StubTool {
  /** Exit code after logging; 0 unless given. */
  readonly exitCode?: number;
  /** Printed on stdout. */
  readonly stdout?: string;
  /** POSIX sh run after logging and before exiting (`$@` is the argv), for tools with effects. */
  readonly script?: string;
}

/** Harmless real utilities the documents use; everything else must be a stub or is missing. */
const REAL_TOOLS = [
  'awk',
  'basename',
  'cat',
  'chmod',
  'cut',
  'date',
  'df',
  'dirname',
  'grep',
  'head',
  'ls',
  'mkdir',
  'mktemp',
  'mv',
  'rm',
  'rmdir',
  'sed',
  'seq',
  'sha256sum',
  'sort',
  'stat',
  'tail',
  'tee',
  'touch',
  'tr',
  'wc',
] as const;

const findReal = (tool: string): string => {
  for (const directory of ['/usr/bin', '/bin', '/usr/sbin', '/sbin']) {
    const candidate = join(directory, tool);
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`real tool ${tool} not found on this machine`);
};

/** One stub call: the tool's name, then its arguments. */
export type ToolCall = readonly string[];

export interface ShellRun {
  readonly shell: Shell;
  readonly exitCode: number;
  readonly status: 'Success' | 'Failed';
  readonly stdout: string;
  readonly stderr: string;
  /** Every stub call in order, e.g. `['dnf', 'install', '-y', 'git', 'docker']`. */
  readonly calls: readonly ToolCall[];
}

/** Argument separator in the call log (ASCII unit separator; no parameter pattern admits it). */
const SEPARATOR = '\u001f';

const stubSource = (name: string, stub: StubTool, log: string): string => {
  const quote = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;
  return [
    '#!/bin/sh',
    `{ printf '%s' ${quote(name)}; for arg in "$@"; do printf '\\037%s' "$arg"; done; printf '\\n'; } >> ${quote(log)}`,
    ...(stub.stdout !== undefined ? [`printf '%s' ${quote(stub.stdout)}`] : []),
    ...(stub.script !== undefined ? [stub.script] : []),
    `exit ${stub.exitCode ?? 0}`,
    '',
  ].join('\n');
};

export interface ScratchHost {
  /** The scratch file-system root (`WARMBOOT_ROOT`); put paths the script writes under it. */
  readonly root: string;
  /**
   * Runs `script` as the agent does with `sh` being `shell`; the call log starts empty.
   * `environment`: what the agent adds for every script it runs (amazon-ssm-agent
   * `agent/executers/executers.go`: AWS_SSM_INSTANCE_ID, AWS_SSM_REGION_NAME, …).
   */
  run(
    script: string,
    shell: Shell,
    options?: { timeoutMs?: number; environment?: Readonly<Record<string, string>> },
  ): ShellRun;
  /** The regular files directly in `directory` (an absolute host path) and their content. */
  filesIn(directory: string): Record<string, string>;
}

/**
 * Creates a scratch host with `tools` as its stubs, hands it to `body`, and removes the whole
 * temp dir afterwards, whatever `body` does.
 */
export const withScratchHost = <T>(
  tools: Readonly<Record<string, StubTool>>,
  body: (host: ScratchHost) => T,
): T => {
  const base = mkdtempSync(join(tmpdir(), 'warmboot-ssm-'));
  try {
    const stubs = join(base, 'stubs');
    const real = join(base, 'real');
    const root = join(base, 'root');
    const orchestration = join(base, 'orchestration');
    const log = join(base, 'calls.log');
    for (const directory of [stubs, real, root, orchestration]) mkdirSync(directory);
    for (const [name, stub] of Object.entries(tools)) {
      writeFileSync(join(stubs, name), stubSource(name, stub, log), { mode: 0o755 });
    }
    for (const tool of REAL_TOOLS) symlinkSync(findReal(tool), join(real, tool));

    const host: ScratchHost = {
      root,
      run(script, shell, options = {}) {
        writeFileSync(log, '');
        const scriptPath = join(orchestration, '_script.sh');
        writeFileSync(scriptPath, script, { mode: 0o700 });
        const result = spawnSync(SHELL_PATHS[shell], ['-c', scriptPath], {
          argv0: 'sh',
          cwd: root,
          env: {
            ...options.environment,
            PATH: `${stubs}:${real}`,
            HOME: root,
            LANG: 'C',
            WARMBOOT_ROOT: root,
          },
          encoding: 'utf8',
          timeout: options.timeoutMs ?? 20_000,
        });
        if (result.error) throw result.error;
        const exitCode = result.status ?? 128;
        const calls = readFileSync(log, 'utf8')
          .split('\n')
          .filter((line) => line !== '')
          .map((line) => line.split(SEPARATOR));
        return {
          shell,
          exitCode,
          status: exitCode === 0 ? 'Success' : 'Failed',
          stdout: result.stdout,
          stderr: result.stderr,
          calls,
        };
      },
      filesIn(directory) {
        const path = join(root, directory);
        if (!existsSync(path)) return {};
        return Object.fromEntries(
          readdirSync(path, { withFileTypes: true })
            .filter((entry) => entry.isFile())
            .map((entry) => [`${directory}/${entry.name}`, readFileSync(join(path, entry.name), 'utf8')]),
        );
      },
    };
    return body(host);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
};

/** A call as one command line, for readable assertions: `dnf install -y git docker`. */
export const commandLine = (call: ToolCall): string => call.join(' ');

/**
 * `getent passwd <user>` as on a host where `user` exists, with its home under the scratch root;
 * `install -d … <dir>` creates the directory (ownership is the stub's to log, not to apply).
 */
const ACCOUNT_TOOLS: Readonly<Record<string, StubTool>> = {
  getent: { script: 'printf "%s:x:1000:1000::%s/home/%s:/bin/bash\\n" "$2" "$WARMBOOT_ROOT" "$2"' },
  install: { script: 'for last in "$@"; do :; done; mkdir -p "$last"' },
  chown: {},
  hostnamectl: {},
  'cloud-init': {},
};

/** Host tools common to both families: AWS CLI, block devices, mounts, services, time. */
const COMMON_TOOLS: Readonly<Record<string, StubTool>> = {
  ...ACCOUNT_TOOLS,
  aws: {},
  curl: {},
  mount: {},
  umount: {},
  // Nothing is mounted on a scratch host until a test says so.
  mountpoint: { exitCode: 1 },
  nvme: {},
  lsblk: {},
  blkid: {},
  findmnt: {},
  systemctl: {},
  // A document that waits must not take real time here.
  sleep: {},
};

/** An Amazon Linux 2023-like host: dnf and docker; `sh` is bash. */
export const amazonLinuxTools = (
  overrides: Readonly<Record<string, StubTool>> = {},
): Record<string, StubTool> => ({
  ...COMMON_TOOLS,
  dnf: {},
  docker: {},
  ...overrides,
});

/** A Debian/Ubuntu-like host: apt-get and containerd's ctr; `sh` is dash. */
export const debianTools = (
  overrides: Readonly<Record<string, StubTool>> = {},
): Record<string, StubTool> => ({
  ...COMMON_TOOLS,
  'apt-get': {},
  ctr: {},
  ...overrides,
});
