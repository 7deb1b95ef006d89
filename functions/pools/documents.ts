import type { CommandDocument } from '../shared/ssm-document';
import {
  BOOLEAN_PATTERN,
  CONTAINER_IMAGE_PATTERN,
  HOSTNAME_PATTERN,
  LINUX_USER_PATTERN,
  PACKAGE_NAME_PATTERN,
  PLATFORM_PATTERN,
  SSH_PUBLIC_KEY_PATTERN,
} from './patterns';

/** An optional String parameter: empty, or the whole value matches `pattern` (still anchored). */
export const optionalPattern = (pattern: string): string => `^$|${pattern}`;

export const INITIALIZE_DOCUMENT = 'Warmboot-PoolInitialize';
export const PERSONALIZE_DOCUMENT = 'Warmboot-PoolPersonalize';

const linux = { precondition: { StringEquals: ['platformType', 'Linux'] } };
const windows = { precondition: { StringEquals: ['platformType', 'Windows'] } };

/**
 * Runs once after a member's first boot. Everything per-VM and slow goes here so a claim does
 * not pay for it: agent and package installs, container image pulls, and generalization (sysprep
 * on Windows, `cloud-init clean` on Linux) so the stopped member boots as a fresh machine.
 * One document serves both platforms: SSM skips the step whose precondition does not match.
 */
const initialize: CommandDocument = {
  name: INITIALIZE_DOCUMENT,
  description: 'warmboot pool: initialize a new member once (packages, image pulls, generalization)',
  parameters: {
    platform: { type: 'String', description: 'linux or windows', allowedPattern: PLATFORM_PATTERN },
    packages: {
      type: 'StringList',
      description: 'Packages to install (dnf/apt on Linux, choco on Windows)',
      allowedPattern: PACKAGE_NAME_PATTERN,
    },
    containerImages: {
      type: 'StringList',
      description: 'Container images to pull into the local image store',
      allowedPattern: CONTAINER_IMAGE_PATTERN,
    },
    generalize: {
      type: 'String',
      description: 'Generalize the machine after setup (sysprep / cloud-init clean)',
      allowedPattern: BOOLEAN_PATTERN,
      default: 'false',
    },
  },
  mainSteps: [
    {
      action: 'aws:runShellScript',
      name: 'initializeLinux',
      ...linux,
      inputs: {
        timeoutSeconds: '3600',
        runCommand: [
          'set -euo pipefail',
          'for pkg in $(echo "{{ packages }}" | tr , " "); do (command -v dnf >/dev/null && dnf install -y "$pkg") || apt-get install -y "$pkg"; done',
          'for image in $(echo "{{ containerImages }}" | tr , " "); do (command -v docker >/dev/null && docker pull "$image") || ctr image pull "$image"; done',
          'if [ "{{ generalize }}" = "true" ]; then cloud-init clean --logs --machine-id; fi',
          'mkdir -p /var/lib/warmboot && date -u +%FT%TZ > /var/lib/warmboot/initialized',
        ],
      },
    },
    {
      action: 'aws:runPowerShellScript',
      name: 'initializeWindows',
      ...windows,
      inputs: {
        timeoutSeconds: '7200',
        runCommand: [
          "$ErrorActionPreference = 'Stop'",
          "foreach ($pkg in '{{ packages }}'.Split(',')) { if ($pkg) { choco install -y $pkg } }",
          "foreach ($image in '{{ containerImages }}'.Split(',')) { if ($image) { docker pull $image } }",
          "if ('{{ generalize }}' -eq 'true') { & \"$env:ProgramFiles\\Amazon\\EC2Launch\\ec2launch.exe\" sysprep --shutdown=false }",
          'New-Item -Force -ItemType Directory C:\\ProgramData\\warmboot | Out-Null',
          'Get-Date -Format o | Set-Content C:\\ProgramData\\warmboot\\initialized',
        ],
      },
    },
  ],
};

/**
 * Runs at claim time on the member handed out: sets the host name and authorizes the
 * requester's SSH key. Both are optional (empty skips the step's effect) but, when given, must
 * match the same anchored patterns the claim function checks first.
 */
const personalize: CommandDocument = {
  name: PERSONALIZE_DOCUMENT,
  description: 'warmboot pool: personalize a claimed server (host name, SSH key)',
  parameters: {
    platform: { type: 'String', description: 'linux or windows', allowedPattern: PLATFORM_PATTERN },
    hostname: {
      type: 'String',
      description: 'RFC 1123 host name, or empty to keep the current one',
      allowedPattern: optionalPattern(HOSTNAME_PATTERN),
      default: '',
    },
    sshPublicKey: {
      type: 'String',
      description: 'OpenSSH public key to authorize, or empty',
      allowedPattern: optionalPattern(SSH_PUBLIC_KEY_PATTERN),
      default: '',
    },
    sshUser: {
      type: 'String',
      description: 'User whose authorized_keys receives the key',
      allowedPattern: LINUX_USER_PATTERN,
      default: 'ec2-user',
    },
  },
  mainSteps: [
    {
      action: 'aws:runShellScript',
      name: 'personalizeLinux',
      ...linux,
      inputs: {
        timeoutSeconds: '300',
        runCommand: [
          'set -euo pipefail',
          'if [ -n "{{ hostname }}" ]; then hostnamectl set-hostname "{{ hostname }}"; fi',
          'if [ -n "{{ sshPublicKey }}" ]; then',
          '  home=$(getent passwd "{{ sshUser }}" | cut -d: -f6)',
          '  install -d -m 700 -o "{{ sshUser }}" "$home/.ssh"',
          '  printf "%s\\n" "{{ sshPublicKey }}" >> "$home/.ssh/authorized_keys"',
          '  chown "{{ sshUser }}" "$home/.ssh/authorized_keys"; chmod 600 "$home/.ssh/authorized_keys"',
          'fi',
        ],
      },
    },
    {
      action: 'aws:runPowerShellScript',
      name: 'personalizeWindows',
      ...windows,
      inputs: {
        timeoutSeconds: '300',
        runCommand: [
          "$ErrorActionPreference = 'Stop'",
          "if ('{{ sshPublicKey }}') { Add-Content -Path C:\\ProgramData\\ssh\\administrators_authorized_keys -Value '{{ sshPublicKey }}' }",
          "if ('{{ hostname }}') { Rename-Computer -NewName '{{ hostname }}' -Force }",
        ],
      },
    },
  ],
};

/** The SSM documents the pools and claim functions run; infra deploys exactly these. */
export const DOCUMENTS: CommandDocument[] = [initialize, personalize];

export const documentNamed = (name: string): CommandDocument | undefined =>
  DOCUMENTS.find((document) => document.name === name);
