import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { describe, expect, it } from 'vitest';
import type { CacheVolume, HostInfo, VolumeLinks } from '../../../functions/image-cache/adapters/ec2';
import { MemoryImageCacheStore } from '../../../functions/image-cache/adapters/memory-store';
import type { CacheCommands } from '../../../functions/image-cache/adapters/ssm';
import { ImageCacheService } from '../../../functions/image-cache/application/image-cache';
import { type HostGroupInput, hostGroupSchema, type ImageSpec } from '../../../functions/image-cache/config';
import { DOCUMENT_NAMES } from '../../../functions/image-cache/documents';
import { STALE_CLAIM_MS } from '../../../functions/image-cache/domain/command-results';
import { HOST_AGENT_DEADLINE_MS } from '../../../functions/image-cache/domain/joining';
import { inventoryReportSchema, MAX_REPORTED_IMAGES } from '../../../functions/image-cache/schemas';
import type { Caller } from '../../../functions/shared/caller';
import { IncorrectStateError } from '../../../functions/shared/errors';

const START = Date.parse('2026-01-10T12:00:00Z');
const GB = 1_000_000_000;
const MINUTE = 60_000;
const DIGEST = `sha256:${'a'.repeat(64)}`;
const ACCOUNT = '123456789012';
const ADMIN: Caller = { via: 'direct-invoke', tenants: '*', admin: true };

const image = (id: string, sizeBytes = GB): ImageSpec => ({
  id,
  kind: 'container',
  source: `registry.example.com/team/${id}`,
  digest: DIGEST,
  sizeBytes,
});

/** The service over the in-memory store and scripted EC2/SSM fakes. */
const world = (groupInput: Partial<HostGroupInput> = {}) => {
  let now = START;
  /** Per popularity read: whether the plan let it be a ranking read within the last minute. */
  const popularityReads: boolean[] = [];
  const group = hostGroupSchema.parse({
    name: 'g',
    cacheBytes: 2 * GB,
    cacheDirectory: '/var/cache/warmboot',
    minResidencyMs: 0,
    allowedRegistries: ['registry.example.com'],
    ...groupInput,
  });
  const store = new MemoryImageCacheStore();
  const hosts = new Map<string, HostInfo>();
  const online = new Set<string>();
  const sent: { document: string; instanceIds: readonly string[]; parameters: Record<string, string> }[] = [];
  const volumes = new Map<string, CacheVolume & { managed: boolean }>();
  const deleted: string[] = [];
  /** What each host's disk really holds (image ids): fetch and remove commands change it at once. */
  const disk = new Map<string, Set<string>>();
  const diskOf = (instanceId: string): Set<string> => {
    const held = disk.get(instanceId) ?? new Set<string>();
    disk.set(instanceId, held);
    return held;
  };
  const commands: CacheCommands = {
    async send(document, instanceIds, parameters) {
      for (const instanceId of instanceIds)
        if (!online.has(instanceId)) throw new IncorrectStateError(`InvalidInstanceId: ${instanceId}`);
      sent.push({ document, instanceIds, parameters: { ...parameters } });
      for (const instanceId of instanceIds) {
        const imageId = parameters.ImageId ?? '';
        if (document === DOCUMENT_NAMES.fetch) diskOf(instanceId).add(imageId);
        if (document === DOCUMENT_NAMES.remove) diskOf(instanceId).delete(imageId);
      }
      return `cmd-${sent.length}`;
    },
    async invocation(commandId, instanceId) {
      const command = sent[Number(commandId.replace('cmd-', '')) - 1];
      if (command?.document !== DOCUMENT_NAMES.inventory)
        return { status: 'Success', result: { images: [] } };
      const images = [...diskOf(instanceId)].map((imageId) => ({ imageId, kind: 'container', bytes: GB }));
      return { status: 'Success', result: { images } };
    },
    invocations: async () => [],
    agentsOnline: async (instanceIds) => new Set(instanceIds.filter((id) => online.has(id))),
  };
  const links: VolumeLinks = {
    cacheVolumes: async () => [...volumes.values()].map(({ managed: _managed, ...volume }) => volume),
    createFromSnapshot: async () => {
      throw new Error('not used');
    },
    snapshot: async () => undefined,
    state: async (volumeId) => {
      const volume = volumes.get(volumeId);
      return (
        volume && {
          state: volume.state,
          managed: volume.managed,
          ...(volume.attachedTo ? { attachedTo: volume.attachedTo } : {}),
          // cacheVolumes lists only volumes with the group's cache tags: these are they.
          imageId: volume.imageId,
          hostGroup: group.name,
        }
      );
    },
    attach: async () => undefined,
    async detach(volumeId) {
      const volume = volumes.get(volumeId);
      if (volume) volumes.set(volumeId, { ...volume, state: 'available', attachedTo: undefined });
    },
    async delete(volumeId) {
      volumes.delete(volumeId);
      deleted.push(volumeId);
    },
  };
  const service = new ImageCacheService({
    groups: [group],
    region: 'us-east-1',
    account: ACCOUNT,
    store,
    hosts: {
      groupHosts: async () => [...hosts.values()],
      host: async (instanceId) => hosts.get(instanceId),
      tagHost: async () => undefined,
    },
    commands,
    volumes: links,
    popularity: {
      topImages: async (_group, _k, _now, options) => {
        popularityReads.push(options?.recent ?? false);
        return [];
      },
    },
    facts: { publish: async () => undefined },
    clock: {
      now: () => now,
      sleep: async (ms) => {
        now += ms;
      },
    },
    random: () => 0.5,
    logger: new Logger({ serviceName: 'test', logLevel: 'SILENT' }),
    metrics: new Metrics({ namespace: 'Test', serviceName: 'imageCache' }),
  });
  const addHost = (instanceId: string, agentOnline: boolean) => {
    hosts.set(instanceId, {
      instanceId,
      hostGroup: 'g',
      availabilityZone: 'us-east-1a',
      state: 'running',
      devices: ['/dev/xvda'],
      managed: true,
    });
    if (agentOnline) online.add(instanceId);
  };
  return {
    service,
    store,
    sent,
    popularityReads,
    volumes,
    deleted,
    online,
    disk: diskOf,
    addHost,
    advance: (ms: number) => {
      now += ms;
    },
    now: () => now,
  };
};

describe('ImageCacheService', () => {
  it('records a host whose SSM agent is not online yet as joining, without throwing, and inits it once Online', async () => {
    const w = world();
    w.addHost('i-1', false);

    const first = await w.service.onHostState('i-1', 'running');

    expect(first.outcome).toMatch(/^joining g/);
    expect(w.sent).toEqual([]);
    const joining = (await w.store.loadGroup('g')).hosts[0];
    expect(joining).toMatchObject({ status: 'joining', initAttempts: 1 });
    expect(joining?.initDueAt).toBeGreaterThan(w.now());

    // Not due yet: a plan does not ask again.
    await w.service.plan('g');
    expect((await w.store.loadGroup('g')).hosts[0]?.initAttempts).toBe(1);

    w.online.add('i-1');
    w.advance(10 * MINUTE);
    await w.service.plan('g');

    expect(w.sent.map((command) => command.document)).toEqual([DOCUMENT_NAMES.inventory]);
    expect((await w.store.loadGroup('g')).hosts[0]?.status).toBe('running');
  });

  it('backs off the agent checks of a joining host exponentially, from the reconcile too', async () => {
    const w = world();
    w.addHost('i-1', false);
    await w.service.onHostState('i-1', 'running');
    const dueTimes: number[] = [];
    for (let check = 0; check < 4; check += 1) {
      const host = (await w.store.loadGroup('g')).hosts[0];
      dueTimes.push((host?.initDueAt ?? 0) - w.now());
      w.advance((host?.initDueAt ?? 0) - w.now());
      await w.service.reconcile('g');
    }

    expect((await w.store.loadGroup('g')).hosts[0]).toMatchObject({ status: 'joining', initAttempts: 5 });
    expect(dueTimes[3]).toBeGreaterThan(dueTimes[0] ?? 0);
    expect(w.sent).toEqual([]);
  });

  it('names a host whose agent never registered after 30 minutes and checks it at the agent retry pace', async () => {
    const w = world();
    w.addHost('i-1', false);
    await w.service.onHostState('i-1', 'running');
    const joinedAt = (await w.store.loadGroup('g')).hosts[0]?.joinedAt ?? START;
    while (w.now() - joinedAt <= HOST_AGENT_DEADLINE_MS) {
      const host = (await w.store.loadGroup('g')).hosts[0];
      expect(host?.joinProblem).toBeUndefined();
      w.advance(Math.max(0, (host?.initDueAt ?? 0) - w.now()));
      await w.service.reconcile('g');
    }

    const host = (await w.store.loadGroup('g')).hosts[0];
    expect(host).toMatchObject({ status: 'joining', joinProblem: 'agent-never-registered' });
    expect((host?.initDueAt ?? 0) - w.now()).toBe(30 * MINUTE);
    expect(w.sent).toEqual([]);
  });

  it('admits demand from placement on a full host: evicts its least popular image, then fetches', async () => {
    const w = world();
    for (const id of ['kept', 'rare', 'launched'])
      await w.service.registerImage(image(id), { caller: ADMIN });
    await knownHost(w, 'i-1');
    for (const id of ['kept', 'rare'])
      await w.store.writeEntry(
        'g',
        'i-1',
        id,
        { imageId: id, state: 'cached', bytes: GB, since: START, attempts: 0 },
        'absent',
      );
    await w.service.pin('g', 'kept');
    w.popularityReads.length = 0;

    const summary = await w.service.plan('g', [{ instanceId: 'i-1', imageId: 'launched' }]);

    expect(summary.commands.map((command) => [command.action, command.imageId])).toEqual([
      ['evict', 'rare'],
      ['fetch', 'launched'],
    ]);
    expect(w.sent.map((command) => command.document)).toEqual([DOCUMENT_NAMES.remove, DOCUMENT_NAMES.fetch]);
    const entries = (await w.store.loadGroup('g')).entries;
    expect(entries.find((entry) => entry.imageId === 'launched')?.state).toBe('fetching');
    expect(entries.find((entry) => entry.imageId === 'rare')?.state).toBe('evicting');
    // A plan a launch asked for may rank on a minute-old read; the schedule's plan reads afresh.
    await w.service.plan('g');
    expect(w.popularityReads).toEqual([true, false]);
  });

  it('releases orphaned linked volumes: deletes unattached ones, unmounts attached ones first, keeps needed and fresh ones', async () => {
    const w = world({ handler: 'volume-link' });
    await knownHost(w, 'i-1');
    await w.store.writeEntry(
      'g',
      'i-1',
      'linked',
      {
        imageId: 'linked',
        state: 'cached',
        bytes: GB,
        since: START,
        attempts: 0,
        via: 'volume-link',
        volumeId: 'vol-needed',
      },
      'absent',
    );
    const volume = (volumeId: string, extra: Partial<CacheVolume> = {}) =>
      w.volumes.set(volumeId, {
        volumeId,
        imageId: 'linked',
        state: 'available',
        createdAt: START - 60 * MINUTE,
        managed: true,
        ...extra,
      });
    volume('vol-needed', { state: 'in-use', attachedTo: 'i-1' });
    volume('vol-loose');
    volume('vol-mounted', { state: 'in-use', attachedTo: 'i-1' });
    volume('vol-creating', { createdAt: START - MINUTE });

    await w.service.reconcile('g');

    expect(w.deleted).toEqual(['vol-loose']);
    const unmount = w.sent.find((command) => command.document === DOCUMENT_NAMES.unmount);
    expect(unmount?.parameters.VolumeId).toBe('vol-mounted');
    expect(w.volumes.has('vol-mounted')).toBe(true);

    const commandId = `cmd-${w.sent.indexOf(unmount as (typeof w.sent)[number]) + 1}`;
    const settled = await w.service.onCommandStatus({ commandId, instanceId: 'i-1', status: 'Success' });

    expect(settled.outcome).toBe('released orphan volume vol-mounted');
    expect(w.deleted).toEqual(['vol-loose', 'vol-mounted']);
    expect([...w.volumes.keys()].sort()).toEqual(['vol-creating', 'vol-needed']);
  });
});

/** A running host of group `g` whose inventory arrived at `inventoriedAt`. */
const knownHost = async (w: ReturnType<typeof world>, instanceId: string, inventoriedAt = START) => {
  w.addHost(instanceId, true);
  await w.store.putHost(
    'g',
    { instanceId, availabilityZone: 'us-east-1a', status: 'running', joinedAt: START, inventoriedAt },
    'absent',
  );
};

/** A fetch of `imageId` on `instanceId` claimed now, whose command id was never recorded. */
const claimed = (w: ReturnType<typeof world>, instanceId: string, imageId: string) =>
  w.store.writeEntry(
    'g',
    instanceId,
    imageId,
    { imageId, state: 'fetching', bytes: GB, since: w.now(), attempts: 0, via: 'download' },
    'absent',
  );

/** Delivers the status event of the last command sent to `document` on `instanceId`. */
const deliverLast = async (w: ReturnType<typeof world>, document: string, instanceId: string) => {
  const index = w.sent.findLastIndex(
    (command) => command.document === document && command.instanceIds.includes(instanceId),
  );
  expect(index).toBeGreaterThanOrEqual(0);
  return w.service.onCommandStatus({
    commandId: `cmd-${index + 1}`,
    instanceId,
    status: 'Success',
    document,
  });
};

describe('ImageCacheService re-inventories hosts whose record may have drifted from their disk', () => {
  it('evicts an image whose fetch landed after the sender died, once the unknown command reports', async () => {
    // The red fault-suite story (seed 641335468): Pin claimed the entry and sent the fetch, then
    // died before recording the command; Unpin came; the fetch landed on the host anyway.
    const w = world();
    await knownHost(w, 'i-1');
    await w.service.registerImage(image('model-0'), { caller: ADMIN });
    await w.store.writeEntry(
      'g',
      'i-1',
      'model-0',
      { imageId: 'model-0', state: 'fetching', bytes: GB, since: START, attempts: 0, via: 'download' },
      'absent',
    );
    w.disk('i-1').add('model-0');

    const unknown = await w.service.onCommandStatus({
      commandId: 'cmd-never-recorded',
      instanceId: 'i-1',
      status: 'Success',
      document: DOCUMENT_NAMES.fetch,
    });
    expect(unknown.outcome).toMatch(/re-inventoried/);
    expect((await w.store.loadGroup('g')).hosts[0]?.inventoryDueAt).toBe(START);

    w.advance(5 * MINUTE);
    await w.service.reconcile('g');
    expect(w.sent.map((command) => command.document)).toEqual([DOCUMENT_NAMES.inventory]);

    const report = await deliverLast(w, DOCUMENT_NAMES.inventory, 'i-1');
    expect(report.outcome).toBe('inventory: 1 added, 0 vanished');
    let state = await w.store.loadGroup('g');
    expect(state.entries).toMatchObject([{ instanceId: 'i-1', imageId: 'model-0', state: 'cached' }]);
    expect(state.hosts[0]).toMatchObject({ inventoriedAt: w.now() });
    expect(state.hosts[0]?.inventoryDueAt).toBeUndefined();
    expect(state.hosts[0]?.inventoryCommandId).toBeUndefined();

    // Known again, the orphan is managed like any cached image: it goes when the space is wanted.
    const pinned = await w.service.pin('g', 'big', image('big', 2 * GB), ADMIN);
    expect(pinned.commands.map((command) => [command.action, command.imageId])).toEqual([
      ['evict', 'model-0'],
    ]);
    await deliverLast(w, DOCUMENT_NAMES.remove, 'i-1');
    await deliverLast(w, DOCUMENT_NAMES.fetch, 'i-1');
    expect([...w.disk('i-1')]).toEqual(['big']);
    state = await w.store.loadGroup('g');
    expect(state.entries).toMatchObject([{ imageId: 'big', state: 'cached' }]);
  });

  it('asks the host when a fetch result finds its entry gone, and when a stale claim is dropped', async () => {
    const w = world();
    await knownHost(w, 'i-1');
    await knownHost(w, 'i-2');
    for (const id of ['a', 'b']) await w.service.registerImage(image(id), { caller: ADMIN });
    await w.service.pin('g', 'a');
    const fetch = w.sent.findIndex((command) => command.document === DOCUMENT_NAMES.fetch);
    // The Unpin's plan cannot recall the fetch; the entry vanishes behind its back (a dropped
    // claim, an operator), and the result arrives to no entry.
    await w.service.unpin('g', 'a');
    const stale = (await w.store.loadGroup('g')).entries.find((entry) => entry.instanceId === 'i-1');
    await w.store.writeEntry('g', 'i-1', 'a', undefined, stale?.version ?? 0);
    const late = await w.service.onCommandStatus({
      commandId: `cmd-${fetch + 1}`,
      instanceId: 'i-1',
      status: 'Success',
      document: DOCUMENT_NAMES.fetch,
    });
    expect(late.outcome).toBe('result contradicts the record: host re-inventoried');

    // i-2: a claim whose SendCommand may or may not have run, dropped after 15 minutes.
    await claimed(w, 'i-2', 'b');
    w.disk('i-2').add('b');
    w.advance(16 * MINUTE);
    const sentBefore = w.sent.length;
    await w.service.reconcile('g');

    const inventories = w.sent
      .slice(sentBefore)
      .filter((command) => command.document === DOCUMENT_NAMES.inventory);
    expect(inventories.flatMap((command) => command.instanceIds).sort()).toEqual(['i-1', 'i-2']);
    await deliverLast(w, DOCUMENT_NAMES.inventory, 'i-1');
    await deliverLast(w, DOCUMENT_NAMES.inventory, 'i-2');
    // The record matches the disks again, so the plan's decisions act on what is really there.
    const entries = (await w.store.loadGroup('g')).entries;
    expect(entries.map((entry) => [entry.instanceId, entry.imageId, entry.state]).sort()).toEqual([
      ['i-1', 'a', 'cached'],
      ['i-2', 'a', 'cached'],
      ['i-2', 'b', 'cached'],
    ]);
    expect([...w.disk('i-1')]).toEqual(['a']);
    expect([...w.disk('i-2')].sort()).toEqual(['a', 'b']);
  });

  it('holds a pinned pair whose plan died between claim and SendCommand until the claim is stale, then fetches it in that reconcile', async () => {
    // Fault-suite finding 8 (seed 399009523): the reconcile claimed the pinned fetch and died
    // before SendCommand. The pair waits for the stale-claim drop, the slowest way back from a
    // crash (at most STALE_CLAIM_MS and one schedule period), which the fault suite settles past.
    const w = world();
    await knownHost(w, 'i-1');
    await w.service.registerImage(image('p'), { caller: ADMIN });
    await w.store.putPin('g', 'p');
    await claimed(w, 'i-1', 'p');

    w.advance(STALE_CLAIM_MS - 300);
    const early = await w.service.reconcile('g');
    expect(w.sent).toEqual([]);
    expect(early.pendingActions).toBe(1);

    w.advance(5 * MINUTE);
    const dropped = await w.service.reconcile('g');
    expect(w.sent.map((command) => [command.document, command.instanceIds])).toEqual([
      [DOCUMENT_NAMES.inventory, ['i-1']],
      [DOCUMENT_NAMES.fetch, ['i-1']],
    ]);
    expect(dropped.commands).toMatchObject([{ action: 'fetch', imageId: 'p', results: [{ ok: true }] }]);
    await deliverLast(w, DOCUMENT_NAMES.inventory, 'i-1');
    await deliverLast(w, DOCUMENT_NAMES.fetch, 'i-1');
    expect([...w.disk('i-1')]).toEqual(['p']);
    expect((await w.store.loadGroup('g')).entries).toMatchObject([{ imageId: 'p', state: 'cached' }]);
  });

  it('re-inventories each host once per interval share, not every reconcile; an unchanged report plans nothing', async () => {
    const w = world({ inventoryIntervalMs: 60 * MINUTE });
    for (const id of ['i-1', 'i-2', 'i-3']) await knownHost(w, id);
    await w.service.registerImage(image('p'), { caller: ADMIN });
    // i-1's record says `p` is cached, but someone cleaned the disk.
    await w.store.writeEntry(
      'g',
      'i-1',
      'p',
      { imageId: 'p', state: 'cached', bytes: GB, since: START, attempts: 0 },
      'absent',
    );
    for (let tick = 1; tick <= 5; tick += 1) {
      w.advance(5 * MINUTE);
      await w.service.reconcile('g');
    }
    expect(w.sent).toEqual([]);

    w.advance(35 * MINUTE);
    await w.service.reconcile('g');
    const sweep = w.sent.filter((command) => command.document === DOCUMENT_NAMES.inventory);
    expect(sweep).toHaveLength(1);
    expect([...(sweep[0]?.instanceIds ?? [])].sort()).toEqual(['i-1', 'i-2', 'i-3']);

    const unchanged = await deliverLast(w, DOCUMENT_NAMES.inventory, 'i-2');
    expect(unchanged).toEqual({ outcome: 'inventory: 0 added, 0 vanished' });
    const drifted = await deliverLast(w, DOCUMENT_NAMES.inventory, 'i-1');
    expect(drifted.outcome).toBe('inventory: 0 added, 1 vanished');
    // i-3's event is lost: the next reconcile looks the invocation up instead of sending again.
    w.advance(5 * MINUTE);
    const sentBefore = w.sent.length;
    await w.service.reconcile('g');
    expect(
      w.sent.slice(sentBefore).filter((command) => command.document === DOCUMENT_NAMES.inventory),
    ).toEqual([]);
    const hosts = (await w.store.loadGroup('g')).hosts;
    expect(hosts.every((host) => host.inventoriedAt !== undefined && host.inventoriedAt > START)).toBe(true);
    expect(hosts.every((host) => host.inventoryCommandId === undefined)).toBe(true);
  });
});

describe('MemoryImageCacheStore', () => {
  it('makes every versioned write conditional, like the DynamoDB store', async () => {
    const store = new MemoryImageCacheStore();
    const entry = { imageId: 'a', state: 'cached' as const, bytes: 1, since: 0, attempts: 0 };
    await store.writeEntry('g', 'i-1', 'a', entry, 'absent');

    expect(await store.writeEntry('g', 'i-1', 'a', entry, 'absent')).toBe(false);
    expect(await store.writeEntry('g', 'i-1', 'a', { ...entry, state: 'evicting' }, 1)).toBe(true);
    expect(await store.writeEntry('g', 'i-1', 'a', undefined, 1)).toBe(false);
    expect(await store.writeEntry('g', 'i-1', 'a', undefined, 2)).toBe(true);
    expect((await store.loadGroup('g')).entries).toEqual([]);
  });
});

describe('the image registry (security review H2)', () => {
  const BUS_CALLER: Caller = { via: 'request-bus', tenants: '*', admin: false };

  it('registers a new id once; a change needs the stored version, which it bumps', async () => {
    const w = world();
    const first = await w.service.registerImage(image('m'), { caller: ADMIN });
    const again = await w.service.registerImage(image('m'), { caller: ADMIN });
    const unversioned = w.service.registerImage(image('m', 2 * GB), { caller: ADMIN });
    const stale = w.service.registerImage(image('m', 2 * GB), { caller: ADMIN, expectedVersion: 7 });

    expect(first).toEqual({ imageId: 'm', version: 1, changed: true });
    expect(again).toEqual({ imageId: 'm', version: 1, changed: false });
    await expect(unversioned).rejects.toMatchObject({
      code: 'RegistryVersionConflict',
      field: 'detail.expectedVersion',
    });
    await expect(stale).rejects.toMatchObject({ code: 'RegistryVersionConflict' });
    expect((await w.store.getImages(['m'])).get('m')?.sizeBytes).toBe(GB);

    const changed = await w.service.registerImage(image('m', 2 * GB), { caller: ADMIN, expectedVersion: 1 });

    expect(changed).toEqual({ imageId: 'm', version: 2, changed: true });
    expect((await w.store.getImages(['m'])).get('m')?.sizeBytes).toBe(2 * GB);
  });

  it.each([
    ['a registry no group allows', { ...image('x'), source: 'ghcr.io/someone/x' }],
    ['loopback', { ...image('x'), source: '127.0.0.1:5000/x' }],
    ['link-local (instance metadata)', { ...image('x'), source: '169.254.169.254:80/x' }],
    ['localhost', { ...image('x'), source: 'localhost:2375/x' }],
    ['Docker Hub, not listed', { ...image('x'), source: 'nginx' }],
    [
      'a bucket no group allows',
      { ...image('x'), kind: 's3', source: 's3://someone-else/x.bin' } as ImageSpec,
    ],
  ])('refuses to register a source from %s, naming the field', async (_what, spec) => {
    const w = world();

    await expect(w.service.registerImage(spec, { caller: ADMIN })).rejects.toMatchObject({
      code: 'SourceNotAllowed',
      field: 'detail.image.source',
    });
    expect((await w.store.getImages(['x'])).size).toBe(0);
  });

  it("accepts this account's own ECR by default (allowedRegistries: self)", async () => {
    const w = world({ allowedRegistries: undefined });
    const own = { ...image('own'), source: `${ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/team/own:1` };
    const foreign = { ...image('foreign'), source: '999999999999.dkr.ecr.eu-west-1.amazonaws.com/team/x:1' };

    expect(await w.service.registerImage(own, { caller: ADMIN })).toMatchObject({ version: 1 });
    await expect(w.service.registerImage(foreign, { caller: ADMIN })).rejects.toMatchObject({
      code: 'SourceNotAllowed',
    });
  });

  it('lets only an administrator register through Pin Image; anyone may pin a registered image', async () => {
    const w = world();

    await expect(w.service.pin('g', 'p', image('p'), BUS_CALLER)).rejects.toMatchObject({
      code: 'AdminRequestOnly',
      field: 'detail.image',
    });
    expect((await w.store.getImages(['p'])).size).toBe(0);
    await w.service.registerImage(image('p'), { caller: ADMIN });
    await expect(w.service.pin('g', 'p', undefined, BUS_CALLER)).resolves.toMatchObject({ hostGroup: 'g' });
  });
});

describe('host reports (security review M4)', () => {
  it('keeps only report items with valid ids, kinds and byte counts, each image once', () => {
    const valid = { imageId: 'model-a', kind: 'container', bytes: 10 };
    const reported = inventoryReportSchema.parse({
      images: [
        valid,
        { ...valid },
        { imageId: 'x;reboot', kind: 'container', bytes: 1 },
        { imageId: 'b', kind: 'container', bytes: -1 },
        { imageId: 'c', kind: 'container', bytes: 2 ** 60 },
        { imageId: 'd', kind: 'elsewhere', bytes: 1 },
        { imageId: 'e', kind: 'volume', volumeId: 'vol-../../x', bytes: 0 },
        { imageId: 'f', kind: 'volume', volumeId: 'vol-0123456789abcdef0', bytes: 0 },
      ],
    });

    expect(reported).toEqual([
      { imageId: 'model-a', bytes: 10, via: 'download' },
      { imageId: 'f', bytes: 0, via: 'volume-link', volumeId: 'vol-0123456789abcdef0' },
    ]);
  });

  it(`caps a report at ${MAX_REPORTED_IMAGES} images`, () => {
    const images = Array.from({ length: MAX_REPORTED_IMAGES + 5 }, (_, index) => ({
      imageId: `img-${index}`,
      kind: 's3',
      bytes: 1,
    }));

    expect(inventoryReportSchema.parse({ images })).toHaveLength(MAX_REPORTED_IMAGES);
  });
});
