import { describe, expect, it } from 'vitest';
import type { VolumeLinks } from '../../../functions/image-cache/adapters/ec2';
import type { CacheCommands } from '../../../functions/image-cache/adapters/ssm';
import { hostGroupSchema, type ImageSpec } from '../../../functions/image-cache/config';
import { cloneable } from '../../../functions/image-cache/domain/cloneable';
import { autoHandler, freeDevice } from '../../../functions/image-cache/image-handlers';
import { ConflictError } from '../../../functions/shared/errors';

const group = hostGroupSchema.parse({
  name: 'g',
  cacheBytes: 10,
  cacheDirectory: '/var/cache/wb',
  handler: 'auto',
});
const image: ImageSpec = {
  id: 'model-a',
  kind: 's3',
  source: 's3://models/base/model-a.bin',
  digest: `sha256:${'b'.repeat(64)}`,
  sizeBytes: 5,
  snapshot: { snapshotId: 'snap-0123456789abcdef0', region: 'us-east-1', fastRestoreAzs: ['us-east-1a'] },
};
const options = { maxConcurrency: '2', maxErrors: '0', comment: 'test' };

const fakes = () => {
  const sent: { document: string; instanceIds: readonly string[]; parameters: Record<string, string> }[] = [];
  const volumes = new Map<string, { state: string; attachedTo?: string }>();
  const commands: CacheCommands = {
    async send(document, instanceIds, parameters) {
      sent.push({ document, instanceIds, parameters: { ...parameters } });
      return `cmd-${sent.length}`;
    },
    invocation: async () => ({ status: 'Success' }),
    invocations: async () => [],
    agentsOnline: async (instanceIds) => new Set(instanceIds),
  };
  const links: VolumeLinks = {
    cacheVolumes: async () => [],
    async createFromSnapshot() {
      const id = `vol-${String(volumes.size).padStart(8, '0')}`;
      volumes.set(id, { state: 'available' });
      return id;
    },
    state: async (id) => {
      const volume = volumes.get(id);
      return volume ? { ...volume, managed: true } : undefined;
    },
    async attach(id, instanceId) {
      volumes.set(id, { state: 'in-use', attachedTo: instanceId });
    },
    async detach(id) {
      volumes.set(id, { state: 'available' });
    },
    async delete(id) {
      volumes.delete(id);
    },
  };
  const clock = { now: () => 0, sleep: async () => undefined };
  return {
    sent,
    volumes,
    handler: autoHandler({ group, region: 'us-east-1', commands, volumes: links, clock }),
  };
};

describe('auto image handler', () => {
  it('links where the snapshot is usable and downloads elsewhere, recording why', async () => {
    const { sent, handler } = fakes();
    const crowded = Array.from(
      { length: 27 },
      (_, index) => `/dev/xvd${String.fromCharCode(97 + (index % 26))}${index}`,
    );

    const results = await handler.fetch(
      [
        { instanceId: 'i-linkable', availabilityZone: 'us-east-1a', devices: ['/dev/xvda'] },
        { instanceId: 'i-crowded', availabilityZone: 'us-east-1b', devices: crowded },
      ],
      image,
      options,
    );

    expect(results).toContainEqual(
      expect.objectContaining({
        instanceId: 'i-linkable',
        ok: true,
        via: 'volume-link',
        volumeId: 'vol-00000000',
      }),
    );
    expect(results).toContainEqual(
      expect.objectContaining({
        instanceId: 'i-crowded',
        ok: true,
        via: 'download',
        note: expect.stringMatching(/^download: attach-limit/),
      }),
    );
    expect(sent.map((command) => command.document).sort()).toEqual([
      'Warmboot-ImageFetch',
      'Warmboot-ImageMount',
    ]);
    expect(sent.find((command) => command.document === 'Warmboot-ImageMount')?.parameters.Device).toBe(
      '/dev/sdf',
    );
  });

  it('downloads an image whose snapshot lives in another region', async () => {
    const { handler } = fakes();
    const elsewhere = { ...image, snapshot: { ...image.snapshot, region: 'eu-west-1' } } as ImageSpec;

    const [result] = await handler.fetch(
      [{ instanceId: 'i-1', availabilityZone: 'us-east-1a', devices: [] }],
      elsewhere,
      options,
    );

    expect(result).toEqual(
      expect.objectContaining({ via: 'download', note: expect.stringContaining('other-region') }),
    );
  });

  it('reports a per-host failure when SendCommand refuses, without throwing', async () => {
    const { handler } = fakes();
    const { id: _id, snapshot: _snapshot, ...plain } = image;
    const refusing = autoHandler({
      group,
      region: 'us-east-1',
      commands: {
        send: async () => {
          throw new ConflictError('busy');
        },
        invocation: async () => ({ status: 'Success' }),
        invocations: async () => [],
        agentsOnline: async (instanceIds) => new Set(instanceIds),
      },
      volumes: {} as VolumeLinks,
      clock: { now: () => 0, sleep: async () => undefined },
    });
    expect(handler.kind).toBe('auto');

    const results = await refusing.fetch(
      [{ instanceId: 'i-1', availabilityZone: 'us-east-1a', devices: [] }],
      { ...plain, id: 'model-b' },
      options,
    );

    expect(results).toEqual([{ instanceId: 'i-1', ok: false, error: { code: 'Conflict', message: 'busy' } }]);
  });
});

describe('cloneable', () => {
  it('says why an image cannot be linked', () => {
    const host = { region: 'us-east-1', availabilityZone: 'us-east-1b', attachedVolumes: 1 };
    const { snapshot: _snapshot, ...noSnapshot } = image;
    expect(cloneable(noSnapshot, host)).toEqual(
      expect.objectContaining({ cloneable: false, reason: 'no-snapshot' }),
    );
    expect(cloneable(image, { ...host, attachedVolumes: 27 })).toEqual(
      expect.objectContaining({ cloneable: false, reason: 'attach-limit' }),
    );
    expect(cloneable(image, host)).toEqual({ cloneable: true, fastRestored: false });
    expect(cloneable(image, { ...host, availabilityZone: 'us-east-1a' })).toEqual({
      cloneable: true,
      fastRestored: true,
    });
  });

  it('hands out device names that are not in use', () => {
    expect(freeDevice(['/dev/xvda', '/dev/sdf', '/dev/xvdg'])).toBe('/dev/sdh');
  });
});
