import { describe, expect, it } from 'vitest';
import { DOCUMENT_NAMES, DOCUMENTS } from '../../../functions/image-cache/documents';
import { renderDocument } from '../../../local/ssm/render';

/**
 * A linked image volume is another account's or another host's data: it is mounted read-only with
 * nothing on it executable or a device, and without replaying a journal (XFS `norecovery`,
 * ext3/4 `noload`), which a read-only mount would otherwise refuse; a whole-disk snapshot is mounted
 * from its first partition (finding W10). The success path needs a real block device, so the
 * script is checked as the agent renders it; shellcheck and the "device missing" run are in
 * test/unit/local/ssm-documents-run.test.ts.
 */
describe('the image mount document', () => {
  const mount = DOCUMENTS.find((document) => document.name === DOCUMENT_NAMES.mount);
  if (!mount) throw new Error(`no ${DOCUMENT_NAMES.mount} document`);
  const [step] = renderDocument(mount, {
    ImageId: ['model-a'],
    CacheDirectory: ['/var/lib/warmboot/cache'],
    VolumeId: ['vol-0123456789abcdef0'],
    Device: ['/dev/sdf'],
  });
  const script = step?.script ?? '';

  it('mounts read-only, nosuid, nodev and noexec, never plain ro', () => {
    expect(script).toContain('OPTIONS="ro,nosuid,nodev,noexec"');
    expect(script).toContain('mount -o "$OPTIONS" "$DEV" "$MNT"');
    expect(script).not.toMatch(/mount -o ro "/);
  });

  it('skips journal replay for XFS and ext3/ext4, and mounts the first partition of a partitioned disk', () => {
    expect(script).toContain('xfs) OPTIONS="$OPTIONS,norecovery"');
    expect(script).toContain('ext3 | ext4) OPTIONS="$OPTIONS,noload"');
    expect(script).toMatch(/lsblk -nrpo NAME,TYPE "\$DEV".*\$2 == "part"/);
  });
});
