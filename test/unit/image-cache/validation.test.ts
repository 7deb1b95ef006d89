import { describe, expect, it } from 'vitest';
import { hostGroupSchema, imageSpecSchema } from '../../../functions/image-cache/config';
import { DOCUMENT_NAMES, DOCUMENTS, documentNamed } from '../../../functions/image-cache/documents';
import {
  CACHE_DIRECTORY_PATTERN,
  CONTAINER_REF_PATTERN,
  IMAGE_SOURCE_PATTERN,
  S3_URI_PATTERN,
} from '../../../functions/image-cache/patterns';
import { IMAGE_ID_PATTERN } from '../../../functions/shared/names';
import { invalidDocumentParameter } from '../../../functions/shared/ssm-document';

const DIGEST = `sha256:${'a'.repeat(64)}`;
const HOSTILE = [
  'nginx;rm -rf /',
  'nginx$(reboot)',
  'nginx`id`',
  "nginx' || true",
  'nginx && curl evil',
  'nginx|sh',
  'nginx > /etc/passwd',
  'nginx\nreboot',
  'a b',
];

const fetchValues = (overrides: Record<string, string>) =>
  Object.fromEntries(
    Object.entries({
      ImageId: 'web-1',
      Kind: 'container',
      Source: 'registry.example.com/team/web:1.2',
      Digest: DIGEST,
      CacheDirectory: '/var/cache/warmboot',
      ExpectedBytes: '1000',
      ...overrides,
    }).map(([key, value]) => [key, [value]]),
  );

describe('shell-bound values are rejected by the function and by the document alike', () => {
  it.each(HOSTILE)('rejects image id %j in the zod schema and the fetch document', (id) => {
    expect(new RegExp(IMAGE_ID_PATTERN).test(id)).toBe(false);
    expect(
      imageSpecSchema.safeParse({
        id,
        kind: 'container',
        source: 'nginx',
        digest: DIGEST,
        sizeBytes: 1,
      }).success,
    ).toBe(false);
    expect(
      invalidDocumentParameter(documentNamed(DOCUMENT_NAMES.fetch), fetchValues({ ImageId: id })),
    ).toEqual(expect.objectContaining({ parameter: 'ImageId' }));
  });

  it.each(HOSTILE)('rejects source %j as container reference, S3 URI and document Source', (source) => {
    expect(new RegExp(CONTAINER_REF_PATTERN).test(source)).toBe(false);
    expect(new RegExp(S3_URI_PATTERN).test(`s3://bucket/${source}`)).toBe(false);
    expect(
      invalidDocumentParameter(documentNamed(DOCUMENT_NAMES.fetch), fetchValues({ Source: source })),
    ).toEqual(expect.objectContaining({ parameter: 'Source' }));
  });

  it.each([
    'relative/dir',
    '/var/cache/../../etc',
    '/var/./cache',
    '/var//cache',
    '/var/cache/',
    '/var/cache;reboot',
    '/var/ca che',
    '/var/$HOME',
    '/',
  ])('rejects cache directory %j in hostGroupSchema and in every document', (cacheDirectory) => {
    expect(new RegExp(CACHE_DIRECTORY_PATTERN).test(cacheDirectory)).toBe(false);
    const parsed = hostGroupSchema.safeParse({ name: 'g', cacheBytes: 1, cacheDirectory });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.path).toEqual(['cacheDirectory']);
    for (const document of DOCUMENTS)
      expect(document.parameters.CacheDirectory?.allowedPattern).toBe(CACHE_DIRECTORY_PATTERN);
  });

  it('rejects image ids that would traverse paths', () => {
    for (const id of ['../etc', 'a/../b', 'a//b', './a', 'a/'])
      expect(new RegExp(IMAGE_ID_PATTERN).test(id)).toBe(false);
  });

  it('accepts the references operators really use', () => {
    for (const ref of [
      'nginx',
      'docker.io/library/nginx:1.27',
      'localhost:5000/a/b_c:v1.0-rc1',
      'ghcr.io/org/app__x',
    ])
      expect(new RegExp(CONTAINER_REF_PATTERN).test(ref), ref).toBe(true);
    for (const id of ['M0002', 'ami-0abc', 'nginx:1.27', 'docker.io/library/nginx@sha256:abc'])
      expect(new RegExp(IMAGE_ID_PATTERN).test(id), id).toBe(true);
    expect(new RegExp(IMAGE_SOURCE_PATTERN).test('s3://models-bucket/base/M0002.safetensors')).toBe(true);
    expect(invalidDocumentParameter(documentNamed(DOCUMENT_NAMES.fetch), fetchValues({}))).toBeUndefined();
  });

  it('anchors every allowedPattern of every image-cache document', () => {
    for (const document of DOCUMENTS) {
      expect(document.name.startsWith('Warmboot-Image')).toBe(true);
      for (const [name, parameter] of Object.entries(document.parameters)) {
        expect(parameter.allowedPattern.startsWith('^'), `${document.name}.${name}`).toBe(true);
        expect(parameter.allowedPattern.endsWith('$'), `${document.name}.${name}`).toBe(true);
      }
    }
  });

  it('names the offending field of a host group', () => {
    const parsed = hostGroupSchema.safeParse({
      name: 'Bad_Name',
      cacheBytes: 1,
      cacheDirectory: '/c',
      warmConcurrency: 51,
    });
    expect(parsed.error?.issues.map((issue) => issue.path.join('.'))).toEqual(['name', 'warmConcurrency']);
  });
});

describe('host group allowlists (security review L4)', () => {
  const base = { name: 'g', cacheBytes: 1, cacheDirectory: '/var/cache/warmboot' };

  it.each([
    'localhost:2375',
    '127.0.0.1:5000',
    '169.254.169.254',
    '0x7f.1',
    '2130706433',
    'registry.localhost',
  ])('refuses %j as an allowed registry, naming the field', (registry) => {
    const parsed = hostGroupSchema.safeParse({ ...base, allowedRegistries: [registry] });
    expect(parsed.error?.issues[0]?.path).toEqual(['allowedRegistries', 0]);
  });

  it("defaults to this account's ECR, its own snapshots and no bucket", () => {
    expect(hostGroupSchema.parse(base)).toMatchObject({
      allowedRegistries: ['self'],
      allowedBuckets: [],
      allowedSnapshotOwners: ['self'],
    });
  });
});
