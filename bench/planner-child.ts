/**
 * One measurement of the `planner` scenario (bench/planner.ts), run in a child process of its own
 * so its peak memory is its own: builds a synthetic fleet (hosts spread over host groups, each
 * host's cache filled from a pool of distinct images), then times what one imageCache invocation
 * does for every group (the scheduled reconcile, and Plan Cache of every group), the pure
 * planner alone, and one placement advice per group. Prints one JSON line: seconds per stage and
 * the peak RSS.
 *
 * `tsx bench/planner-child.ts <hosts> <images> <groups> <seed>`
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { HostInfo } from '../functions/image-cache/adapters/ec2';
import { MemoryImageCacheStore } from '../functions/image-cache/adapters/memory-store';
import { ImageCacheService } from '../functions/image-cache/application/image-cache';
import { PLANNED_TOP_IMAGES } from '../functions/image-cache/application/plan';
import { type HostGroup, hostGroupSchema, type ImageSpec } from '../functions/image-cache/config';
import type { HostImageEntry, ImageScore } from '../functions/image-cache/domain/model';
import { planHostGroup } from '../functions/image-cache/domain/planner';
import { MemoryRecentAdviceStore } from '../functions/placement/adapters/recent-advice';
import { advise } from '../functions/placement/application/advise';
import { seededRandom } from '../local/ec2/ids';

const GB = 1_000_000_000;
const NOW = Date.parse('2026-06-01T12:00:00Z');
const HOUR = 3_600_000;
/** Per-host cache budget; images of 1–4 GB fill it with about 25 entries. */
const CACHE_BYTES = 64 * GB;
const AZS = ['us-east-1a', 'us-east-1b', 'us-east-1c'];
const REGISTRY = 'registry.example.com';

interface PlannerSize {
  readonly hosts: number;
  readonly images: number;
  readonly groups: number;
  readonly seed: number;
}

export interface PlannerMeasurement {
  /** Distinct images held somewhere in the fleet (at most `images`). */
  readonly heldImages: number;
  readonly entries: number;
  /** Hosts of the largest group. */
  readonly largestGroup: number;
  /** ImageCacheService.reconcileAll (the 5-minute schedule): every group reconciled and planned. */
  readonly reconcileAllS: number;
  /** ImageCacheService.planCache({}) (Plan Cache of every group). */
  readonly planAllS: number;
  /** planHostGroup alone, every group, on the inputs plan() builds. */
  readonly plannerS: number;
  /** placement's advise, one request (20 instances of a popular image) per group. */
  readonly adviseS: number;
  readonly peakRssMb: number;
  /** RSS once the fleet is built, before the first measured stage. */
  readonly setupRssMb: number;
}

const imageId = (index: number) => `team/app-${String(index).padStart(5, '0')}`;

/**
 * Group g draws from the images whose index is g modulo the group count plus the first 50 (base
 * images every group launches), most popular first (Zipf-like: weight 1 / (rank + 1)).
 */
const groupUniverse = (size: PlannerSize, group: number): number[] => {
  const shared = Array.from({ length: Math.min(50, size.images) }, (_, index) => index);
  const own: number[] = [];
  for (let index = 50 + group; index < size.images; index += size.groups) own.push(index);
  const universe: number[] = [];
  for (let rank = 0; rank < Math.max(shared.length, own.length); rank += 1) {
    const base = shared[rank];
    const mine = own[rank];
    if (mine !== undefined) universe.push(mine);
    if (base !== undefined) universe.push(base);
  }
  return universe;
};

const zipfPick = (universe: readonly number[], random: () => number): number => {
  // Inverse of the harmonic CDF, approximately: rank ~ n^u - 1.
  const rank = Math.min(universe.length - 1, Math.floor((universe.length + 1) ** random() - 1));
  return universe[rank] ?? 0;
};

const silentLogger = () => new Logger({ serviceName: 'bench', logLevel: 'SILENT' });

export const measurePlanner = async (size: PlannerSize): Promise<PlannerMeasurement> => {
  const random = seededRandom(size.seed);
  const sizes = Array.from({ length: size.images }, () => Math.round((1 + 3 * random()) * GB));
  const store = new MemoryImageCacheStore();
  const groups: HostGroup[] = Array.from({ length: size.groups }, (_, g) =>
    hostGroupSchema.parse({
      name: `group-${String(g).padStart(3, '0')}`,
      cacheBytes: CACHE_BYTES,
      cacheDirectory: '/var/cache/warmboot',
      allowedRegistries: [REGISTRY],
    }),
  );
  const images: ImageSpec[] = sizes.map((sizeBytes, index) => ({
    id: imageId(index),
    kind: 'container',
    source: `${REGISTRY}/${imageId(index)}`,
    digest: `sha256:${'a'.repeat(64)}`,
    sizeBytes,
  }));
  for (const image of images) await store.putImage(image, { at: NOW, via: 'bench' }, 'absent');

  const hostsOf = new Map<string, HostInfo[]>();
  const scoresOf = new Map<string, ImageScore[]>();
  const held = new Set<number>();
  let entries = 0;
  for (const [g, group] of groups.entries()) {
    const universe = groupUniverse(size, g);
    scoresOf.set(
      group.name,
      universe.slice(0, PLANNED_TOP_IMAGES).map((index, rank) => ({
        imageId: imageId(index),
        score: 1000 / (rank + 1),
      })),
    );
    hostsOf.set(group.name, []);
  }
  for (let h = 0; h < size.hosts; h += 1) {
    const g = h % size.groups;
    const group = groups[g] as HostGroup;
    const instanceId = `i-${h.toString(16).padStart(17, '0')}`;
    const availabilityZone = AZS[h % AZS.length] as string;
    hostsOf.get(group.name)?.push({
      instanceId,
      hostGroup: group.name,
      availabilityZone,
      state: 'running',
      devices: ['/dev/xvda'],
      managed: true,
    });
    await store.putHost(
      group.name,
      { instanceId, availabilityZone, status: 'running', joinedAt: NOW - 24 * HOUR, inventoriedAt: NOW },
      'absent',
    );
    const universe = groupUniverse(size, g);
    const mine = new Set<number>();
    let bytes = 0;
    for (let attempt = 0; attempt < 200 && mine.size < universe.length; attempt += 1) {
      const index = zipfPick(universe, random);
      const imageBytes = sizes[index] ?? GB;
      if (mine.has(index) || bytes + imageBytes > CACHE_BYTES) continue;
      mine.add(index);
      bytes += imageBytes;
      const draw = random();
      const entry: HostImageEntry =
        draw < 0.01
          ? {
              imageId: imageId(index),
              state: 'fetching',
              bytes: imageBytes,
              since: NOW - 60_000,
              attempts: 0,
            }
          : draw < 0.02
            ? {
                imageId: imageId(index),
                state: 'failed',
                bytes: imageBytes,
                since: NOW - 60_000,
                attempts: 1,
                retryAt: NOW + 60_000,
              }
            : {
                imageId: imageId(index),
                state: 'cached',
                bytes: imageBytes,
                since: NOW - 2 * HOUR,
                attempts: 0,
              };
      await store.writeEntry(group.name, instanceId, entry.imageId, entry, 'absent');
      held.add(index);
      entries += 1;
    }
  }

  let commandSeq = 0;
  const service = new ImageCacheService({
    groups,
    region: 'us-east-1',
    account: '123456789012',
    store,
    hosts: {
      groupHosts: async (group) => hostsOf.get(group ?? '') ?? [],
      host: async () => undefined,
      tagHost: async () => undefined,
    },
    commands: {
      send: async () => `cmd-${++commandSeq}`,
      invocation: async () => ({ status: 'InProgress' }),
      invocations: async () => [],
      agentsOnline: async (instanceIds) => new Set(instanceIds),
    },
    volumes: {
      cacheVolumes: async () => [],
      createFromSnapshot: async () => {
        throw new Error('not used');
      },
      snapshot: async () => undefined,
      state: async () => undefined,
      attach: async () => undefined,
      detach: async () => undefined,
      delete: async () => undefined,
    },
    popularity: { topImages: async (group, k) => (scoresOf.get(group) ?? []).slice(0, k) },
    facts: { publish: async () => undefined },
    clock: { now: () => NOW, sleep: async () => undefined },
    random: seededRandom(size.seed + 1),
    logger: silentLogger(),
    metrics: new Metrics({ namespace: 'Bench', serviceName: 'imageCache' }),
  });
  const setupRssMb = process.memoryUsage().rss / 2 ** 20;

  const timed = async (work: () => Promise<unknown>): Promise<number> => {
    const start = performance.now();
    await work();
    return (performance.now() - start) / 1000;
  };
  // The pure planner on what plan() gives it (before any plan changes the store).
  const plannerInputs = await Promise.all(
    groups.map(async (group) => {
      const state = await store.loadGroup(group.name);
      const byHost = new Map<string, HostImageEntry[]>();
      for (const entry of state.entries)
        byHost.set(entry.instanceId, [...(byHost.get(entry.instanceId) ?? []), entry]);
      return {
        group,
        hosts: state.hosts.map((host) => ({
          instanceId: host.instanceId,
          availabilityZone: host.availabilityZone,
          entries: byHost.get(host.instanceId) ?? [],
        })),
        pins: state.pins,
        scores: scoresOf.get(group.name) ?? [],
        imageSizes: Object.fromEntries(images.map((image) => [image.id, image.sizeBytes])),
        source: state.source,
        now: NOW,
      };
    }),
  );
  const plannerRandom = seededRandom(size.seed + 2);
  const plannerS = await timed(async () => {
    for (const input of plannerInputs) planHostGroup({ ...input, random: plannerRandom });
  });
  plannerInputs.length = 0;
  const placement = {
    groups,
    store,
    recentAdvice: new MemoryRecentAdviceStore(),
    facts: { publish: async () => undefined },
    clock: { now: () => NOW, sleep: async () => undefined },
  };
  const adviseS = await timed(async () => {
    for (const group of groups) {
      const top = scoresOf.get(group.name)?.[0];
      if (top) await advise(placement, { hostGroup: group.name, imageId: top.imageId, count: 20 });
    }
  });
  const reconcileAllS = await timed(() => service.reconcileAll());
  const planAllS = await timed(() => service.planCache({}));
  return {
    heldImages: held.size,
    entries,
    largestGroup: Math.max(...[...hostsOf.values()].map((hosts) => hosts.length)),
    reconcileAllS,
    planAllS,
    plannerS,
    adviseS,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    setupRssMb,
  };
};

const main = async (argv: readonly string[]) => {
  // The plans' EMF metrics would fill stdout; the result is the last line.
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  const [hosts, images, groups, seed] = argv.map(Number);
  const size = { hosts: hosts ?? 0, images: images ?? 0, groups: groups ?? 1, seed: seed ?? 1 };
  process.stdout.write(`${JSON.stringify(await measurePlanner(size))}\n`);
};

if (process.argv[1]?.endsWith('planner-child.ts')) await main(process.argv.slice(2));
