import { describe, expect, it } from 'vitest';
import type { VolumeLinks } from '../../../functions/image-cache/adapters/ec2';
import type { CacheCommands } from '../../../functions/image-cache/adapters/ssm';
import {
  autoStrategy,
  freeDevice,
  releaseVolume,
} from '../../../functions/image-cache/application/fetch-strategies';
import { type HostGroup, hostGroupSchema, type ImageSpec } from '../../../functions/image-cache/config';
import { cloneable } from '../../../functions/image-cache/domain/cloneable';
import { ConflictError } from '../../../functions/shared/errors';

const group = hostGroupSchema.parse({
  name: 'g',
  cacheBytes: 10,
  cacheDirectory: '/var/cache/wb',
  handler: 'auto',
  allowedBuckets: ['models'],
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
const ACCOUNT = '123456789012';

const fakes = (groupOverrides: Partial<HostGroup> = {}) => {
  const sent: { document: string; instanceIds: readonly string[]; parameters: Record<string, string> }[] = [];
  const volumes = new Map<string, { state: string; attachedTo?: string }>();
  const snapshots = new Map<string, { ownerId: string; imageTag?: string }>([
    [image.snapshot?.snapshotId ?? '', { ownerId: ACCOUNT, imageTag: image.id }],
  ]);
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
      return { volumeId: id };
    },
    state: async (id) => {
      const volume = volumes.get(id);
      return volume ? { ...volume, managed: true, imageId: image.id, hostGroup: group.name } : undefined;
    },
    snapshot: async (snapshotId) => snapshots.get(snapshotId),
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
    strategy: autoStrategy({
      group: { ...group, ...groupOverrides },
      region: 'us-east-1',
      account: ACCOUNT,
      commands,
      volumes: links,
      clock,
    }),
    snapshots,
  };
};

describe('auto fetch strategy', () => {
  it('links where the snapshot is usable and downloads elsewhere, recording why', async () => {
    const { sent, strategy } = fakes();
    const crowded = Array.from(
      { length: 27 },
      (_, index) => `/dev/xvd${String.fromCharCode(97 + (index % 26))}${index}`,
    );

    const results = await strategy.fetch(
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
    const { strategy } = fakes();
    const elsewhere = { ...image, snapshot: { ...image.snapshot, region: 'eu-west-1' } } as ImageSpec;

    const [result] = await strategy.fetch(
      [{ instanceId: 'i-1', availabilityZone: 'us-east-1a', devices: [] }],
      elsewhere,
      options,
    );

    expect(result).toEqual(
      expect.objectContaining({ via: 'download', note: expect.stringContaining('other-region') }),
    );
  });

  it('reports a per-host failure when SendCommand refuses, without throwing', async () => {
    const { strategy } = fakes();
    const { id: _id, snapshot: _snapshot, ...plain } = image;
    const refusing = autoStrategy({
      group,
      region: 'us-east-1',
      account: ACCOUNT,
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
    expect(strategy.kind).toBe('auto');

    const results = await refusing.fetch(
      [{ instanceId: 'i-1', availabilityZone: 'us-east-1a', devices: [] }],
      { ...plain, id: 'model-b' },
      options,
    );

    expect(results).toEqual([{ instanceId: 'i-1', ok: false, error: { code: 'Conflict', message: 'busy' } }]);
  });
});

describe('volume-link sources (security review H2)', () => {
  const linkable = { instanceId: 'i-1', availabilityZone: 'us-east-1a', devices: ['/dev/xvda'] };

  it.each([
    { what: "another account's snapshot", snapshot: { ownerId: '999999999999', imageTag: image.id } },
    { what: 'a snapshot without the warmboot:image tag', snapshot: { ownerId: ACCOUNT } },
    { what: "another image's snapshot", snapshot: { ownerId: ACCOUNT, imageTag: 'model-z' } },
  ])('never creates a volume from $what', async ({ snapshot }) => {
    const { sent, volumes, snapshots, strategy } = fakes();
    snapshots.set(image.snapshot?.snapshotId ?? '', snapshot);

    const [result] = await strategy.fetch([linkable], image, options);

    expect(result).toEqual(
      expect.objectContaining({ ok: false, error: expect.objectContaining({ code: 'SnapshotNotAllowed' }) }),
    );
    expect(volumes.size).toBe(0);
    expect(sent).toEqual([]);
  });

  it('links a snapshot of another owner the group allows', async () => {
    const { volumes, snapshots, strategy } = fakes({ allowedSnapshotOwners: ['self', '999999999999'] });
    snapshots.set(image.snapshot?.snapshotId ?? '', { ownerId: '999999999999', imageTag: image.id });

    const [result] = await strategy.fetch([linkable], image, options);

    expect(result).toEqual(expect.objectContaining({ ok: true, via: 'volume-link' }));
    expect(volumes.size).toBe(1);
  });
});

describe('releaseVolume (security review M4)', () => {
  const clock = { now: () => 0, sleep: async () => undefined };
  const links = (state: Awaited<ReturnType<VolumeLinks['state']>>) => {
    const calls: string[] = [];
    const volumes = {
      state: async () => state,
      detach: async (id: string) => {
        calls.push(`detach ${id}`);
      },
      delete: async (id: string) => {
        calls.push(`delete ${id}`);
      },
    } as unknown as VolumeLinks;
    return { calls, volumes };
  };

  it.each([
    {
      what: 'no warmboot:image tag',
      state: { state: 'in-use', attachedTo: 'i-1', managed: true, hostGroup: 'g' },
    },
    {
      what: "another group's host-group tag",
      state: { state: 'in-use', attachedTo: 'i-1', managed: true, hostGroup: 'other', imageId: 'model-a' },
    },
  ])('refuses a volume with $what, touching nothing', async ({ state }) => {
    const { calls, volumes } = links(state);

    await expect(releaseVolume(volumes, clock, 'vol-00000001', 'i-1', 'g')).rejects.toMatchObject({
      code: 'UnmanagedResource',
    });
    expect(calls).toEqual([]);
  });

  it("detaches and deletes one of the group's cache volumes", async () => {
    const { calls, volumes } = links({
      state: 'available',
      managed: true,
      hostGroup: 'g',
      imageId: 'model-a',
    });

    await releaseVolume(volumes, clock, 'vol-00000001', 'i-1', 'g');

    expect(calls).toEqual(['delete vol-00000001']);
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
