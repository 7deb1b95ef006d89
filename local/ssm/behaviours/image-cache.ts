import { DOCUMENT_NAMES, RESULT_MARKER } from '../../../functions/image-cache/documents';
import {
  type DocumentBehaviour,
  type DocumentBehaviourContext,
  type HostAgentState,
  pullImage,
} from '../agent';

/**
 * What the image-cache documents do on a simulated host, mirroring the shell in
 * functions/image-cache/documents.ts: the same checks in the same order, the same failure
 * messages (the function sorts failures by them), the same `WARMBOOT_RESULT` line.
 *
 * A cached image is a blob in the agent's disk cache under its source reference plus a marker
 * file `warmboot-image/<imageId>` (the script's `<digest>.json`), so inventory can tell which
 * warmboot image a blob belongs to and drop markers whose content vanished.
 */
const MARKER_PREFIX = 'warmboot-image/';

interface Marker {
  readonly imageId: string;
  readonly kind: 'container' | 's3' | 'volume';
  readonly source?: string;
  readonly digest?: string;
  readonly volumeId?: string;
  readonly bytes: number;
  readonly linkedBytes?: number;
  readonly runtime?: string;
}

const value = (ctx: DocumentBehaviourContext, name: string): string => ctx.parameters[name]?.[0] ?? '';
const result = (body: unknown) => `${RESULT_MARKER}${JSON.stringify(body)}`;
const failed = (output: string) => ({ status: 'Failed', output }) as const;

const markers = (host: HostAgentState): Marker[] =>
  [...host.files.entries()]
    .filter(([name]) => name.startsWith(MARKER_PREFIX))
    .map(([, content]) => JSON.parse(content) as Marker);

const present = (host: HostAgentState, marker: Marker): boolean =>
  marker.kind === 'volume'
    ? [...host.mounts.values()].includes(marker.volumeId ?? '')
    : marker.source !== undefined && host.cache.has(marker.source);

const fetchImage: DocumentBehaviour = async (ctx) => {
  const imageId = value(ctx, 'ImageId');
  const kind = value(ctx, 'Kind');
  const source = value(ctx, 'Source');
  const digest = value(ctx, 'Digest');
  const expected = Number(value(ctx, 'ExpectedBytes'));
  if (!ctx.host.cache.has(source) && ctx.host.cache.freeBytes < expected)
    return failed(`disk full: ${ctx.host.cache.freeBytes} bytes free, ${expected} needed`);
  const pulled = await pullImage(ctx, source);
  switch (pulled.outcome) {
    case 'unreachable':
    case 'not-found':
      return failed(`image source unreachable: ${source}`);
    case 'disk-full':
      return failed(`disk full: ${ctx.host.cache.freeBytes} bytes free, ${expected} needed`);
  }
  // The S3 download is streamed through a cap at the declared size (documents.ts).
  if (kind === 's3' && pulled.bytes > expected) {
    if (pulled.outcome === 'pulled') ctx.host.cache.delete(source);
    return failed(`${source} is larger than its declared ${expected} bytes`);
  }
  if (pulled.digest !== digest) {
    if (pulled.outcome === 'pulled') ctx.host.cache.delete(source);
    return failed(`checksum mismatch for ${source}: got ${pulled.digest}`);
  }
  const marker: Marker = {
    imageId,
    kind: kind === 's3' ? 's3' : 'container',
    source,
    digest,
    bytes: pulled.bytes,
    runtime: kind === 's3' ? 'none' : ctx.host.runtime,
  };
  ctx.host.files.set(`${MARKER_PREFIX}${imageId}`, JSON.stringify(marker));
  return { status: 'Success', output: result(marker) };
};

const removeImage: DocumentBehaviour = async (ctx) => {
  const imageId = value(ctx, 'ImageId');
  ctx.host.cache.delete(value(ctx, 'Source'));
  ctx.host.files.delete(`${MARKER_PREFIX}${imageId}`);
  return { status: 'Success', output: result({ imageId, removed: true }) };
};

const inventoryImages: DocumentBehaviour = async (ctx) => {
  const images: Marker[] = [];
  for (const marker of markers(ctx.host)) {
    if (present(ctx.host, marker)) images.push(marker);
    else ctx.host.files.delete(`${MARKER_PREFIX}${marker.imageId}`);
  }
  return {
    status: 'Success',
    output: result({ runtime: ctx.host.runtime, freeBytes: ctx.host.cache.freeBytes, images }),
  };
};

const mountImage: DocumentBehaviour = async (ctx) => {
  const imageId = value(ctx, 'ImageId');
  const volumeId = value(ctx, 'VolumeId');
  const volume = ctx.ec2.volumes().find((candidate) => candidate.volumeId === volumeId);
  if (volume?.attachment?.instanceId !== ctx.host.instanceId || volume.state !== 'in-use')
    return failed(`volume ${volumeId} did not appear as a block device`);
  const mountPath = `${value(ctx, 'CacheDirectory')}/volumes/${volumeId}`;
  ctx.host.mounts.set(mountPath, volumeId);
  const marker: Marker = {
    imageId,
    kind: 'volume',
    volumeId,
    bytes: 0,
    linkedBytes: volume.size * 1024 ** 3,
  };
  ctx.host.files.set(`${MARKER_PREFIX}${imageId}`, JSON.stringify(marker));
  return { status: 'Success', output: result(marker) };
};

const unmountImage: DocumentBehaviour = async (ctx) => {
  const imageId = value(ctx, 'ImageId');
  const volumeId = value(ctx, 'VolumeId');
  ctx.host.mounts.delete(`${value(ctx, 'CacheDirectory')}/volumes/${volumeId}`);
  ctx.host.files.delete(`${MARKER_PREFIX}${imageId}`);
  return { status: 'Success', output: result({ imageId, volumeId, removed: true }) };
};

export const BEHAVIOURS: Record<string, DocumentBehaviour> = {
  [DOCUMENT_NAMES.fetch]: fetchImage,
  [DOCUMENT_NAMES.remove]: removeImage,
  [DOCUMENT_NAMES.inventory]: inventoryImages,
  [DOCUMENT_NAMES.mount]: mountImage,
  [DOCUMENT_NAMES.unmount]: unmountImage,
};
