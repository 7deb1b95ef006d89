// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the strings are shell scripts; ${...} is shell expansion, not a template
import type { CommandDocument, DocumentParameter } from '../shared/ssm-document';
import {
  BOOLEAN_PATTERN,
  CONTAINER_IMAGE_LIST_PATTERN,
  HOSTNAME_PATTERN,
  LINUX_USER_PATTERN,
  PACKAGE_LIST_PATTERN,
  PLATFORM_PATTERN,
  SECRET_REFERENCE_LIST_PATTERN,
  SSH_PUBLIC_KEY_PATTERN,
} from './patterns';

/** An optional String parameter: empty, or the whole value matches `pattern` (still anchored). */
export const optionalPattern = (pattern: string): string => `^$|${pattern}`;

export const INITIALIZE_DOCUMENT = 'Warmboot-PoolInitialize';
export const PERSONALIZE_DOCUMENT = 'Warmboot-PoolPersonalize';
export const SECRETS_DOCUMENT = 'Warmboot-PoolSecrets';
/** Where Warmboot-PoolSecrets puts each secret on a Linux host, as a file named after the parameter's last segment. */
export const LINUX_SECRET_DIRECTORY = '/var/lib/warmboot/secrets';

const linux = { precondition: { StringEquals: ['platformType', 'Linux'] } };
const windows = { precondition: { StringEquals: ['platformType', 'Windows'] } };

/** A String parameter whose whole value matches `allowedPattern`; one with a default may be left out. */
const stringParameter = (
  description: string,
  allowedPattern: string,
  defaultValue?: string,
): DocumentParameter => ({
  type: 'String',
  description,
  allowedPattern,
  ...(defaultValue === undefined ? {} : { default: defaultValue }),
});

/** Both documents take the platform (each step runs on its own platform only, by precondition). */
const platform = stringParameter('linux or windows', PLATFORM_PATTERN);

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
    platform,
    // Lists travel as comma-separated Strings, not StringLists: the agent writes a StringList
    // embedded in a script line as JSON (["git","docker"], or [] when empty), see patterns.ts.
    packages: stringParameter(
      'Comma-separated packages to install (dnf/yum/apt on Linux, choco on Windows), or empty',
      PACKAGE_LIST_PATTERN,
      '',
    ),
    containerImages: stringParameter(
      'Comma-separated container images to pull into the local image store, or empty',
      CONTAINER_IMAGE_LIST_PATTERN,
      '',
    ),
    generalize: stringParameter(
      'Generalize the machine after setup (sysprep / cloud-init clean)',
      BOOLEAN_PATTERN,
      'false',
    ),
  },
  mainSteps: [
    {
      action: 'aws:runShellScript',
      name: 'initializeLinux',
      ...linux,
      inputs: {
        timeoutSeconds: '3600',
        // `#!/bin/bash` first: aws:runShellScript runs the file with `sh -c`, and on Debian and
        // Ubuntu `sh` is dash, which rejects `set -o pipefail` (amazon-ssm-agent runshellscript.go).
        // The values arrive as plain text (String parameters) whose patterns admit no quote, space
        // or glob character, so single quotes hold them and splitting on commas yields the items.
        // `${WARMBOOT_ROOT:-}` is empty on a real host; the local executor points it at a scratch dir.
        runCommand: [
          '#!/bin/bash',
          'set -euo pipefail',
          'set -f',
          "PACKAGES='{{ packages }}'",
          "CONTAINER_IMAGES='{{ containerImages }}'",
          "GENERALIZE='{{ generalize }}'",
          'STATE_DIR="${WARMBOOT_ROOT:-}/var/lib/warmboot"',
          'IFS=,',
          'if [ -n "$PACKAGES" ]; then',
          '  # shellcheck disable=SC2086 # split on IFS=, on purpose: one argument per package',
          '  if command -v dnf >/dev/null 2>&1; then dnf install -y $PACKAGES',
          '  elif command -v yum >/dev/null 2>&1; then yum install -y $PACKAGES',
          // Two simple commands, not `update && install`: set -e ignores a failure on the left of &&.
          '  elif command -v apt-get >/dev/null 2>&1; then apt-get update; DEBIAN_FRONTEND=noninteractive apt-get install -y $PACKAGES',
          '  else echo "no package manager (dnf, yum or apt-get) on this host" >&2; exit 69; fi',
          'fi',
          'if [ -n "$CONTAINER_IMAGES" ]; then',
          '  for image in $CONTAINER_IMAGES; do',
          '    if command -v docker >/dev/null 2>&1; then docker pull "$image"',
          '    elif command -v ctr >/dev/null 2>&1; then ctr image pull "$image"',
          '    else echo "no container runtime (docker or containerd) on this host" >&2; exit 69; fi',
          '  done',
          'fi',
          'unset IFS',
          'if [ "$GENERALIZE" = "true" ]; then cloud-init clean --logs --machine-id; fi',
          'mkdir -p "$STATE_DIR"',
          'date -u +%FT%TZ > "$STATE_DIR/initialized"',
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
    platform,
    hostname: stringParameter(
      'RFC 1123 host name, or empty to keep the current one',
      optionalPattern(HOSTNAME_PATTERN),
      '',
    ),
    sshPublicKey: stringParameter(
      'OpenSSH public key to authorize, or empty',
      optionalPattern(SSH_PUBLIC_KEY_PATTERN),
      '',
    ),
    sshUser: stringParameter('User whose authorized_keys receives the key', LINUX_USER_PATTERN, 'ec2-user'),
  },
  mainSteps: [
    {
      action: 'aws:runShellScript',
      name: 'personalizeLinux',
      ...linux,
      inputs: {
        timeoutSeconds: '300',
        // `#!/bin/bash` first for the same reason as initializeLinux (dash has no pipefail).
        runCommand: [
          '#!/bin/bash',
          'set -euo pipefail',
          // Each value assigned once inside single quotes (the patterns exclude quotes), then used
          // as a variable: a test on the substituted literal would be constant to the shell.
          "WANTED_HOSTNAME='{{ hostname }}'",
          "SSH_PUBLIC_KEY='{{ sshPublicKey }}'",
          "SSH_USER='{{ sshUser }}'",
          'if [ -n "$WANTED_HOSTNAME" ]; then hostnamectl set-hostname "$WANTED_HOSTNAME"; fi',
          'if [ -n "$SSH_PUBLIC_KEY" ]; then',
          '  home=$(getent passwd "$SSH_USER" | cut -d: -f6)',
          '  install -d -m 700 -o "$SSH_USER" "$home/.ssh"',
          '  printf "%s\\n" "$SSH_PUBLIC_KEY" >> "$home/.ssh/authorized_keys"',
          '  chown "$SSH_USER" "$home/.ssh/authorized_keys"; chmod 600 "$home/.ssh/authorized_keys"',
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

/**
 * A named personalization document that installs the requester's secrets on a claimed server.
 * The command carries only references (`{{ssm-secure:/warmboot/tenants/<tenant>/…}}`), so
 * ListCommands, GetCommandInvocation, the claim record and the logs show names, never values:
 * the SSM agent substitutes the reference into the script as text (it resolves only `{{ssm:…}}`
 * itself, and refuses SecureString parameters there: amazon-ssm-agent
 * framework/docparser/parameterstore/parameterstore.go), and the script fetches each value on the
 * host with the instance profile's credentials, as the SSM User Guide advises for SecureString
 * parameters ("SSM documents currently don't support references to Secure String parameters",
 * sysman-paramstore-about; the example reads them in the script with `-WithDecryption`). The
 * member's role therefore needs `ssm:GetParameter` on the parameters and `kms:Decrypt` on a
 * customer managed key (docs/pools.md, "Secrets").
 */
const secrets: CommandDocument = {
  name: SECRETS_DOCUMENT,
  description: "warmboot pool: install the requester's secrets (SecureString references) on a claimed server",
  // No `platform`: the requester names this document, and each step's precondition picks the platform.
  parameters: {
    secrets: stringParameter(
      // No braces in the description: only values carry references.
      'Comma-separated ssm-secure references to SecureString parameters under /warmboot/tenants/<tenant>/, or empty',
      SECRET_REFERENCE_LIST_PATTERN,
      '',
    ),
    owner: stringParameter('User who may read the installed secrets', LINUX_USER_PATTERN, 'ec2-user'),
  },
  mainSteps: [
    {
      action: 'aws:runShellScript',
      name: 'installSecretsLinux',
      ...linux,
      inputs: {
        timeoutSeconds: '300',
        // The value only ever lives in a shell variable and the file: printf is a builtin, so it
        // is never in a process's argv; nothing echoes it. `aws` exits non-zero (254) on
        // ParameterNotFound or AccessDeniedException and `set -e` fails the step with its message.
        // AWS_SSM_REGION_NAME: the agent sets it for every script it runs (executers.go).
        runCommand: [
          '#!/bin/bash',
          'set -euo pipefail',
          'set -f',
          "SECRETS='{{ secrets }}'",
          "SECRET_OWNER='{{ owner }}'",
          `SECRET_DIR="\${WARMBOOT_ROOT:-}${LINUX_SECRET_DIRECTORY}"`,
          'if [ -z "$SECRETS" ]; then exit 0; fi',
          'umask 077',
          'mkdir -p "$SECRET_DIR"',
          'chmod 700 "$SECRET_DIR"',
          'chown "$SECRET_OWNER" "$SECRET_DIR"',
          'IFS=,',
          'for reference in $SECRETS; do',
          // `{{ssm-secure:<name>}}`: drop up to the colon and the two closing braces (no literal
          // braces here, so neither SSM nor the agent could read the script line as a reference).
          '  name=${reference#*:}',
          '  name=${name%??}',
          '  type=$(aws ssm get-parameter --region "$AWS_SSM_REGION_NAME" --name "$name" --query Parameter.Type --output text)',
          // The agent's own resolver refuses a non-secure type behind ssm-secure: (ssmparameterresolver).
          '  if [ "$type" != "SecureString" ]; then echo "$name is a $type parameter, not a SecureString" >&2; exit 65; fi',
          '  value=$(aws ssm get-parameter --region "$AWS_SSM_REGION_NAME" --name "$name" --with-decryption --query Parameter.Value --output text)',
          '  partial=$(mktemp "$SECRET_DIR/.partial-XXXXXX")',
          '  printf "%s" "$value" > "$partial"',
          '  chown "$SECRET_OWNER" "$partial"',
          '  chmod 400 "$partial"',
          '  mv -f "$partial" "$SECRET_DIR/${name##*/}"',
          '  echo "installed $name as $SECRET_DIR/${name##*/}"',
          'done',
        ],
      },
    },
    {
      action: 'aws:runPowerShellScript',
      name: 'installSecretsWindows',
      ...windows,
      inputs: {
        timeoutSeconds: '300',
        // AWS Tools for PowerShell (on AWS Windows AMIs) read the value with the instance's role.
        runCommand: [
          "$ErrorActionPreference = 'Stop'",
          "$dir = 'C:\\ProgramData\\warmboot\\secrets'",
          'New-Item -Force -ItemType Directory $dir | Out-Null',
          "foreach ($reference in '{{ secrets }}'.Split(',')) {",
          '  if (-not $reference) { continue }',
          "  $name = $reference.Split(':')[1].TrimEnd('}')",
          '  $parameter = Get-SSMParameter -Name $name -WithDecryption $true -Region $env:AWS_SSM_REGION_NAME',
          '  if ($parameter.Type -ne \'SecureString\') { throw "$name is a $($parameter.Type) parameter, not a SecureString" }',
          "  Set-Content -NoNewline -Path (Join-Path $dir $name.Split('/')[-1]) -Value $parameter.Value",
          '}',
        ],
      },
    },
  ],
};

/** The SSM documents the pools and claim functions run; infra deploys exactly these. */
export const DOCUMENTS: CommandDocument[] = [initialize, personalize, secrets];

export const documentNamed = (name: string): CommandDocument | undefined =>
  DOCUMENTS.find((document) => document.name === name);
