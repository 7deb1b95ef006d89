// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the strings are bash scripts; ${...} is shell expansion, not a template
import { VOLUME_ID_PATTERN } from '../shared/aws-ids';
import { IMAGE_ID_PATTERN } from '../shared/names';
import type { CommandDocument } from '../shared/ssm-document';
import type { CommandEffect } from './domain/inventory';
import { CACHE_DIRECTORY_PATTERN, DEVICE_PATTERN, DIGEST_PATTERN, IMAGE_SOURCE_PATTERN } from './patterns';

/**
 * The SSM Command documents of the image cache. Names start with `Warmboot-Image` so the
 * catalog's CommandStatus pattern routes their status events to the imageCache function.
 *
 * Every script prints one machine-readable line, `WARMBOOT_RESULT <json>`, which the function
 * reads through GetCommandInvocation. Parameters are substituted by SSM as text, so each is
 * assigned once inside single quotes; the allowedPatterns exclude quotes and every other shell
 * metacharacter, and the function validates the same patterns before SendCommand.
 */
export const DOCUMENT_NAMES = {
  fetch: 'Warmboot-ImageFetch',
  remove: 'Warmboot-ImageRemove',
  inventory: 'Warmboot-ImageInventory',
  mount: 'Warmboot-ImageMount',
  unmount: 'Warmboot-ImageUnmount',
} as const;
export type DocumentName = (typeof DOCUMENT_NAMES)[keyof typeof DOCUMENT_NAMES];

/** The document that runs one planned action on a host, by how the image is held there. */
export const documentFor = (action: 'fetch' | 'evict', via: 'download' | 'volume-link'): DocumentName => {
  if (action === 'fetch') return via === 'volume-link' ? DOCUMENT_NAMES.mount : DOCUMENT_NAMES.fetch;
  return via === 'volume-link' ? DOCUMENT_NAMES.unmount : DOCUMENT_NAMES.remove;
};

/** What a completed cache document did to the host's disk (the inventory document changes nothing). */
export const DOCUMENT_EFFECTS: Readonly<Record<string, CommandEffect>> = {
  [DOCUMENT_NAMES.fetch]: 'adds',
  [DOCUMENT_NAMES.mount]: 'adds',
  [DOCUMENT_NAMES.remove]: 'removes',
  [DOCUMENT_NAMES.unmount]: 'removes',
};

/** Prefix of the one output line the function parses. */
export const RESULT_MARKER = 'WARMBOOT_RESULT ';

/** Exit codes of the scripts (sysexits.h where one fits); the function sorts failures by them. */
export const EXIT_CODES = {
  diskFull: 28, // ENOSPC
  verificationFailed: 65, // EX_DATAERR
  deviceMissing: 66, // EX_NOINPUT
  noRuntime: 69, // EX_UNAVAILABLE
  sourceUnreachable: 75, // EX_TEMPFAIL: the registry or S3 did not answer; retry later
  insecureCacheDirectory: 77, // EX_NOPERM: the cache directory is not root's alone
} as const;

const FETCH_KIND_PATTERN = '^(?:container|s3)$';
const BYTES_PATTERN = '^[0-9]{1,15}$';

const parameter = (description: string, allowedPattern: string) =>
  ({ type: 'String', description, allowedPattern }) as const;

const common = {
  ImageId: parameter(
    'warmboot image id (recorded in the cache marker, never used as a path)',
    IMAGE_ID_PATTERN,
  ),
  CacheDirectory: parameter('absolute cache directory of the host group', CACHE_DIRECTORY_PATTERN),
};

const shell = (name: string, lines: readonly string[]) => ({
  action: 'aws:runShellScript',
  name,
  inputs: { timeoutSeconds: '3600', runCommand: ['#!/bin/bash', 'set -euo pipefail', ...lines] },
});

/**
 * Creates the cache directory root-owned and 0755 and refuses one that is anything else
 * (security review L8): the scripts run as root, and a directory another user can write would
 * let that user swap files under them through symlinks. `-O`: owned by the user running the
 * script, which is root under the SSM agent.
 */
const SECURE_CACHE_DIR = [
  '(umask 022 && mkdir -p "$CACHE_DIR")',
  'if [ -L "$CACHE_DIR" ] || [ ! -d "$CACHE_DIR" ] || [ ! -O "$CACHE_DIR" ] || [ "$(stat -c %a "$CACHE_DIR")" != 755 ]; then',
  `  echo "cache directory $CACHE_DIR must be a directory owned by root with mode 0755" >&2; exit ${EXIT_CODES.insecureCacheDirectory}`,
  'fi',
];

/** Detects the container runtime the host actually runs: docker if its daemon answers, else containerd. */
const DETECT_RUNTIME = [
  'detect_runtime() {',
  '  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then echo docker',
  '  elif command -v ctr >/dev/null 2>&1; then echo containerd',
  '  else echo none; fi',
  '}',
];

/** `ctr images ls` prints sizes like `27.1 MiB`; converts the SIZE column of the matching line to bytes. */
const CTR_BYTES = [
  'ctr_bytes() {',
  `  ctr -n k8s.io images ls "name==$1" | awk 'NR==2 { n=$4; u=$5; m=1;`,
  `    if (u=="KiB") m=1024; else if (u=="MiB") m=1048576; else if (u=="GiB") m=1073741824;`,
  `    printf "%d", n*m }'`,
  '}',
];

const fetchDocument: CommandDocument = {
  name: DOCUMENT_NAMES.fetch,
  description:
    'Fetches one image into the host cache: pulls a container image by digest (docker or containerd) or copies an S3 object and checks its sha256; reports the bytes held.',
  parameters: {
    ...common,
    Kind: parameter('container or s3', FETCH_KIND_PATTERN),
    Source: parameter('container reference without digest, or s3://bucket/key', IMAGE_SOURCE_PATTERN),
    Digest: parameter('sha256:<hex> the content must match', DIGEST_PATTERN),
    ExpectedBytes: parameter(
      'declared size: checked against free space before fetching; an S3 object larger than this is refused',
      BYTES_PATTERN,
    ),
  },
  mainSteps: [
    shell('fetchImage', [
      "IMAGE_ID='{{ ImageId }}'",
      "KIND='{{ Kind }}'",
      "SOURCE='{{ Source }}'",
      "DIGEST='{{ Digest }}'",
      "CACHE_DIR='{{ CacheDirectory }}'",
      "EXPECTED_BYTES='{{ ExpectedBytes }}'",
      'HEX="${DIGEST#sha256:}"',
      ...DETECT_RUNTIME,
      ...CTR_BYTES,
      ...SECURE_CACHE_DIR,
      `FREE=$(df -PB1 "$CACHE_DIR" | awk 'NR==2 { print $4 }')`,
      'if [ "$FREE" -lt "$EXPECTED_BYTES" ]; then',
      `  echo "disk full: $FREE bytes free, $EXPECTED_BYTES needed" >&2; exit ${EXIT_CODES.diskFull}`,
      'fi',
      'RUNTIME=none',
      'case "$KIND" in',
      '  container)',
      '    RUNTIME=$(detect_runtime)',
      '    case "$RUNTIME" in',
      '      docker)',
      '        # Pulling by digest makes the daemon verify every layer against it.',
      `        docker pull --quiet "$SOURCE@$DIGEST" >/dev/null || { echo "image source unreachable" >&2; exit ${EXIT_CODES.sourceUnreachable}; }`,
      `        BYTES=$(docker image inspect "$SOURCE@$DIGEST" | grep -m1 '"Size":' | tr -dc '0-9')`,
      '        ;;',
      '      containerd)',
      `        ctr -n k8s.io images pull "$SOURCE@$DIGEST" >/dev/null || { echo "image source unreachable" >&2; exit ${EXIT_CODES.sourceUnreachable}; }`,
      '        BYTES=$(ctr_bytes "$SOURCE@$DIGEST")',
      '        ;;',
      `      *) echo "no container runtime (docker or containerd) on this host" >&2; exit ${EXIT_CODES.noRuntime} ;;`,
      '    esac',
      '    ;;',
      '  s3)',
      // A fresh name only root can have created (mktemp: O_EXCL, mode 0600), removed on any exit.
      '    PARTIAL=$(mktemp "$CACHE_DIR/.partial-XXXXXXXXXX")',
      '    trap \'rm -f "$PARTIAL"\' EXIT',
      // Streamed through head: an object bigger than declared stops one byte past the declared
      // size instead of filling the disk (aws then fails on the closed pipe; the size says why).
      '    COPIED=0',
      '    aws s3 cp --only-show-errors "$SOURCE" - | head -c "$((EXPECTED_BYTES + 1))" > "$PARTIAL" || COPIED=$?',
      '    if [ "$(stat -c %s "$PARTIAL")" -gt "$EXPECTED_BYTES" ]; then',
      `      echo "$SOURCE is larger than its declared $EXPECTED_BYTES bytes" >&2; exit ${EXIT_CODES.verificationFailed}`,
      '    fi',
      `    if [ "$COPIED" -ne 0 ]; then echo "image source unreachable" >&2; exit ${EXIT_CODES.sourceUnreachable}; fi`,
      '    if ! echo "$HEX  $PARTIAL" | sha256sum --check --status; then',
      `      rm -f "$PARTIAL"; echo "checksum mismatch for $SOURCE" >&2; exit ${EXIT_CODES.verificationFailed}`,
      '    fi',
      // Readable as an `aws s3 cp` download was (mktemp creates it 0600).
      '    chmod 0644 "$PARTIAL"',
      '    mv "$PARTIAL" "$CACHE_DIR/$HEX.blob"',
      '    BYTES=$(stat -c %s "$CACHE_DIR/$HEX.blob")',
      '    ;;',
      'esac',
      'RESULT=$(printf \'{"imageId":"%s","kind":"%s","source":"%s","digest":"%s","bytes":%s,"runtime":"%s"}\' "$IMAGE_ID" "$KIND" "$SOURCE" "$DIGEST" "$BYTES" "$RUNTIME")',
      'echo "$RESULT" > "$CACHE_DIR/$HEX.json"',
      `echo "${RESULT_MARKER}$RESULT"`,
    ]),
  ],
};

const removeDocument: CommandDocument = {
  name: DOCUMENT_NAMES.remove,
  description:
    'Removes one downloaded image from the host cache (container image or S3 blob) and its marker.',
  parameters: {
    ...common,
    Kind: parameter('container or s3', FETCH_KIND_PATTERN),
    Source: parameter('container reference without digest, or s3://bucket/key', IMAGE_SOURCE_PATTERN),
    Digest: parameter('sha256:<hex> of the cached content', DIGEST_PATTERN),
  },
  mainSteps: [
    shell('removeImage', [
      "IMAGE_ID='{{ ImageId }}'",
      "KIND='{{ Kind }}'",
      "SOURCE='{{ Source }}'",
      "DIGEST='{{ Digest }}'",
      "CACHE_DIR='{{ CacheDirectory }}'",
      'HEX="${DIGEST#sha256:}"',
      ...DETECT_RUNTIME,
      'if [ "$KIND" = container ]; then',
      '  case "$(detect_runtime)" in',
      '    docker) docker image rm "$SOURCE@$DIGEST" >/dev/null 2>&1 || true ;;',
      '    containerd) ctr -n k8s.io images rm "$SOURCE@$DIGEST" >/dev/null 2>&1 || true ;;',
      '  esac',
      'else',
      '  rm -f "$CACHE_DIR/$HEX.blob"',
      'fi',
      'rm -f "$CACHE_DIR/$HEX.json"',
      `echo "${RESULT_MARKER}{\\"imageId\\":\\"$IMAGE_ID\\",\\"removed\\":true}"`,
    ]),
  ],
};

const inventoryDocument: CommandDocument = {
  name: DOCUMENT_NAMES.inventory,
  description:
    'Lists what the host really holds: every cache marker whose content is still present (markers of vanished content are deleted), the runtime and free bytes, as one JSON line.',
  parameters: { CacheDirectory: common.CacheDirectory },
  mainSteps: [
    shell('inventoryImages', [
      "CACHE_DIR='{{ CacheDirectory }}'",
      ...DETECT_RUNTIME,
      'RUNTIME=$(detect_runtime)',
      ...SECURE_CACHE_DIR,
      'present() {',
      `  local kind source digest volume`,
      `  kind=$(grep -o '"kind":"[a-z0-9]*"' "$1" | cut -d'"' -f4)`,
      `  source=$(grep -o '"source":"[^"]*"' "$1" | cut -d'"' -f4)`,
      `  digest=$(grep -o '"digest":"[^"]*"' "$1" | cut -d'"' -f4)`,
      `  volume=$(grep -o '"volumeId":"[^"]*"' "$1" | cut -d'"' -f4 || true)`,
      '  case "$kind" in',
      '    container)',
      '      if [ "$RUNTIME" = docker ]; then docker image inspect "$source@$digest" >/dev/null 2>&1',
      '      else ctr -n k8s.io images ls -q "name==$source@$digest" | grep -q .; fi ;;',
      '    s3) [ -f "$CACHE_DIR/${digest#sha256:}.blob" ] ;;',
      '    volume) mountpoint -q "$CACHE_DIR/volumes/$volume" ;;',
      '    *) return 1 ;;',
      '  esac',
      '}',
      'ITEMS=""',
      'for MARKER in "$CACHE_DIR"/*.json; do',
      '  [ -e "$MARKER" ] || continue',
      '  if present "$MARKER"; then ITEMS="${ITEMS:+$ITEMS,}$(cat "$MARKER")"; else rm -f "$MARKER"; fi',
      'done',
      `FREE=$(df -PB1 "$CACHE_DIR" | awk 'NR==2 { print $4 }')`,
      `echo "${RESULT_MARKER}{\\"runtime\\":\\"$RUNTIME\\",\\"freeBytes\\":$FREE,\\"images\\":[$ITEMS]}"`,
    ]),
  ],
};

const mountDocument: CommandDocument = {
  name: DOCUMENT_NAMES.mount,
  description:
    'Mounts an attached EBS volume holding an image read-only under the cache directory (zero copy) and records a cache marker.',
  parameters: {
    ...common,
    VolumeId: parameter('the attached EBS volume', VOLUME_ID_PATTERN),
    Device: parameter('device name used in AttachVolume', DEVICE_PATTERN),
  },
  mainSteps: [
    shell('mountImage', [
      "IMAGE_ID='{{ ImageId }}'",
      "CACHE_DIR='{{ CacheDirectory }}'",
      "VOLUME_ID='{{ VolumeId }}'",
      "DEVICE='{{ Device }}'",
      ...SECURE_CACHE_DIR,
      // Nitro instances expose EBS as NVMe; the serial is the volume id without its dash.
      // (`WARMBOOT_ROOT` is never set by the agent; tests point /dev into a scratch root with it.)
      'NVME="${WARMBOOT_ROOT:-}/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${VOLUME_ID/-/}"',
      'XEN="${WARMBOOT_ROOT:-}/dev/xvd${DEVICE: -1}"',
      'for _ in $(seq 1 60); do',
      '  for CANDIDATE in "$NVME" "${WARMBOOT_ROOT:-}$DEVICE" "$XEN"; do',
      '    if [ -b "$CANDIDATE" ]; then DEV="$CANDIDATE"; break 2; fi',
      '  done',
      '  sleep 1',
      'done',
      `if [ -z "\${DEV:-}" ]; then echo "volume $VOLUME_ID did not appear as a block device" >&2; exit ${EXIT_CODES.deviceMissing}; fi`,
      'MNT="$CACHE_DIR/volumes/$VOLUME_ID"',
      'mkdir -p "$MNT"',
      // A snapshot of a whole disk carries a partition table: its first partition holds the image.
      `PART=$(lsblk -nrpo NAME,TYPE "$DEV" 2>/dev/null | awk '$2 == "part" { print $1; exit }')`,
      'if [ -n "$PART" ]; then DEV="$PART"; fi',
      // A copy of the host's root filesystem (same UUID or label) is never mounted: with a
      // duplicate UUID or label the next boot may take it for the root (security review H2).
      'ROOT_UUID=$(findmnt -n -o UUID / 2>/dev/null || true)',
      'ROOT_LABEL=$(findmnt -n -o LABEL / 2>/dev/null || true)',
      'IMAGE_UUID=$(blkid -o value -s UUID "$DEV" 2>/dev/null || true)',
      'IMAGE_LABEL=$(blkid -o value -s LABEL "$DEV" 2>/dev/null || true)',
      'if { [ -n "$IMAGE_UUID" ] && [ "$IMAGE_UUID" = "$ROOT_UUID" ]; } || { [ -n "$IMAGE_LABEL" ] && [ "$IMAGE_LABEL" = "$ROOT_LABEL" ]; }; then',
      `  echo "volume $VOLUME_ID has the root filesystem's UUID or label; not mounted" >&2; exit ${EXIT_CODES.verificationFailed}`,
      'fi',
      // Read-only, nothing on it executable or a device, and no journal replay (a replay writes,
      // which a read-only mount refuses): XFS needs norecovery, ext3/ext4 noload (mount(8), xfs(5)).
      'OPTIONS="ro,nosuid,nodev,noexec"',
      'case "$(blkid -o value -s TYPE "$DEV" 2>/dev/null)" in',
      '  xfs) OPTIONS="$OPTIONS,norecovery" ;;',
      '  ext3 | ext4) OPTIONS="$OPTIONS,noload" ;;',
      'esac',
      'mountpoint -q "$MNT" || mount -o "$OPTIONS" "$DEV" "$MNT"',
      `BYTES=$(df -PB1 "$MNT" | awk 'NR==2 { print $3 }')`,
      'RESULT=$(printf \'{"imageId":"%s","kind":"volume","volumeId":"%s","bytes":0,"linkedBytes":%s}\' "$IMAGE_ID" "$VOLUME_ID" "$BYTES")',
      'echo "$RESULT" > "$CACHE_DIR/$VOLUME_ID.json"',
      `echo "${RESULT_MARKER}$RESULT"`,
    ]),
  ],
};

const unmountDocument: CommandDocument = {
  name: DOCUMENT_NAMES.unmount,
  description: 'Unmounts a linked image volume so it can be detached and deleted, and removes its marker.',
  parameters: { ...common, VolumeId: parameter('the linked EBS volume', VOLUME_ID_PATTERN) },
  mainSteps: [
    shell('unmountImage', [
      "IMAGE_ID='{{ ImageId }}'",
      "CACHE_DIR='{{ CacheDirectory }}'",
      "VOLUME_ID='{{ VolumeId }}'",
      'MNT="$CACHE_DIR/volumes/$VOLUME_ID"',
      'if mountpoint -q "$MNT"; then umount "$MNT"; fi',
      'rmdir "$MNT" 2>/dev/null || true',
      'rm -f "$CACHE_DIR/$VOLUME_ID.json"',
      `echo "${RESULT_MARKER}{\\"imageId\\":\\"$IMAGE_ID\\",\\"volumeId\\":\\"$VOLUME_ID\\",\\"removed\\":true}"`,
    ]),
  ],
};

export const DOCUMENTS: CommandDocument[] = [
  fetchDocument,
  removeDocument,
  inventoryDocument,
  mountDocument,
  unmountDocument,
];

export const documentNamed = (name: DocumentName): CommandDocument => {
  const found = DOCUMENTS.find((document) => document.name === name);
  if (!found) throw new Error(`no image-cache document named ${name}`);
  return found;
};
