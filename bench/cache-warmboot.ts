import { groupPopularity } from '../functions/image-cache/adapters/popularity';
import type { GroupState } from '../functions/image-cache/adapters/store';
import { PLANNED_TOP_IMAGES } from '../functions/image-cache/application/plan';
import { type HostGroup, hostGroupSchema, type ImageSpec } from '../functions/image-cache/config';
import type { HostImageEntry, PlannerHost, SourceHealth } from '../functions/image-cache/domain/model';
import { HEALTHY_SOURCE } from '../functions/image-cache/domain/model';
import { type CachePlan, type PlanInput, planHostGroup } from '../functions/image-cache/domain/planner';
import {
  evictionEnded,
  evictionStarted,
  fetchFailed,
  fetchStarted,
  fetchSucceeded,
  nextSourceHealth,
} from '../functions/image-cache/domain/transitions';
import { MemoryRecentAdviceStore } from '../functions/placement/adapters/recent-advice';
import type { PlacementDependencies } from '../functions/placement/dependencies';
import type { PlacementAdvice } from '../functions/placement/domain/advise';
import { type AdvisedWeight, adviceErasAt } from '../functions/placement/domain/recent-advice';
import { createPlacementRegistry } from '../functions/placement/handler';
import type { AdvisePlacementDetail } from '../functions/placement/schemas';
import {
  MemoryChangeMarkers,
  MemoryPopularityStore,
} from '../functions/popularity/adapters/memory-popularity-store';
import { RANKING_MAX_AGE_MS, RecentRanking } from '../functions/popularity/adapters/recent-ranking';
import { recordLaunch } from '../functions/popularity/application/record-launch';
import { popularitySettingsSchema } from '../functions/popularity/config';
import { decayParameters } from '../functions/popularity/domain/decay';
import type { Fact } from '../functions/shared/adapters/facts';
import { seededRandom } from '../local/ec2/ids';
import { type CachePolicy, type Fleet, type Launch, type SimHost, spreadPick } from './cache-sim';

/**
 * The `warmboot` policy of the cache scenario, made of warmboot's own pure code:
 * - popularity: `recordLaunch` (the popularity function's logic) on the in-memory store, with
 *   the default settings (forward decay, 24 h half-life, top K, `Popularity Changed` nudges);
 * - the image-cache planner `planHostGroup` every reconcile period (the imageCache schedule) and
 *   on every `Popularity Changed` nudge, its commands applied to the simulated hosts and their
 *   outcomes fed back through the image-cache transitions (fetchStarted/Succeeded/Failed,
 *   eviction, source health);
 * - placement: every launch is an `Advise Placement` request (image, count 1, host group, the
 *   free slots a scheduler knows) dispatched to the placement function's own registry, which
 *   reads the control-plane records through its store interface and its own advice memory
 *   (`MemoryRecentAdviceStore`, the in-memory twin of its DynamoDB items): no input the deployed
 *   function lacks. When it publishes `Plan Cache` for the chosen cold host, that request is
 *   planned with `requested`, and the fetch the plan orders there is the launch's own download
 *   (same load penalty as any cold launch).
 * The frame only executes: bandwidth, budget, slots and the outage are the same as for every
 * other policy.
 */

/** The host-group settings a sweep of the planner's defaults varies (`npm run bench -- cache` flags). */
export type PlannerSettings = Pick<HostGroup, 'keepMargin' | 'replicaExponent' | 'minScore'>;

export interface WarmbootPolicyOptions {
  readonly cacheBytes: number;
  /** Epoch seconds of trace time 0: warmboot's code works in epoch milliseconds. */
  readonly originS: number;
  /** Every image's size: what an operator registers (the planner cannot plan an image without one). */
  readonly imageSizes: Readonly<Record<string, number>>;
  /** The imageCache reconcile period, seconds. */
  readonly reconcileS: number;
  readonly seed: number;
  /** Planner settings of the host group (absent: the product's defaults). */
  readonly planner?: Partial<PlannerSettings>;
  /**
   * Every plan made, with its inputs and the random draws it consumed (one per host, the
   * tie-break lots), so a test can replay the same decision through the Lambda path.
   */
  readonly onPlan?: (input: Omit<PlanInput, 'random'>, draws: readonly number[], plan: CachePlan) => void;
  /**
   * Every placement request the bench sent, with the group state and the advice memory the
   * function read and the advice it answered, so a test can replay it through a real store.
   */
  readonly onAdvice?: (call: AdviceCall) => void;
}

export interface AdviceCall {
  /** The `Advise Placement` event, as the function receives it. */
  readonly event: { readonly time: string; readonly detail: AdvisePlacementDetail } & Record<string, unknown>;
  readonly state: GroupState;
  readonly recentAdvice: readonly AdvisedWeight[];
  readonly advice: PlacementAdvice;
}

export const BENCH_HOST_GROUP = 'bench';

export interface WarmbootPolicy extends CachePolicy {
  /** Plans made so far (scheduled and nudged), for the report. */
  readonly stats: {
    plans: number;
    nudges: number;
    fetchCommands: number;
    evictCommands: number;
    /** (host, image) downloads the planner ordered ahead of demand, and their bytes. */
    prefetches: number;
    prefetchBytes: number;
    /** Images evicted from a host (successful evictions). */
    evictions: number;
    /** Placement advice per launch: on a warm host, on a cold host with room (warmed), or unplaced. */
    advisedWarm: number;
    advisedCold: number;
    unplaced: number;
  };
}

export const warmbootPolicy = (options: WarmbootPolicyOptions): WarmbootPolicy => {
  const random = seededRandom(options.seed);
  const settings = popularitySettingsSchema.parse({});
  const group: HostGroup = hostGroupSchema.parse({
    name: BENCH_HOST_GROUP,
    cacheBytes: options.cacheBytes,
    cacheDirectory: '/var/cache/warmboot',
    ...options.planner,
  });
  const store = new MemoryPopularityStore({
    decay: decayParameters(settings.halfLifeHours),
    shards: settings.shards,
  });
  const markers = new MemoryChangeMarkers();
  const localGate = new Map<string, number>();
  const scores = groupPopularity(store, decayParameters(settings.halfLifeHours));
  let nudged = false;
  let launchFetchOrdered = false;
  const facts = {
    publish: async (published: readonly Fact[]) => {
      if (published.some((fact) => fact.detailType === 'Popularity Changed')) nudged = true;
    },
  };
  const popularity = {
    store,
    ranking: new RecentRanking(store, decayParameters(settings.halfLifeHours), RANKING_MAX_AGE_MS),
    markers,
    facts,
    logger: { warn: () => undefined },
    topK: settings.topK,
    scoreThreshold: settings.scoreThreshold,
    changedMinIntervalMs: settings.changedMinIntervalSeconds * 1000,
    localGate,
  };

  /** The control plane's records (what the imageCache table would hold), per host id. */
  const records = new Map<string, Map<string, HostImageEntry>>();
  let source: SourceHealth = HEALTHY_SOURCE;
  let commandSeq = 0;
  const stats = {
    plans: 0,
    nudges: 0,
    fetchCommands: 0,
    evictCommands: 0,
    prefetches: 0,
    prefetchBytes: 0,
    evictions: 0,
    advisedWarm: 0,
    advisedCold: 0,
    unplaced: 0,
  };
  const ms = (timeS: number) => Math.round((options.originS + timeS) * 1000);
  const recordsOf = (host: SimHost) => {
    let map = records.get(host.id);
    if (!map) {
      map = new Map();
      records.set(host.id, map);
    }
    return map;
  };

  /** SSM status events: fetches whose transfer has finished by `nowS` become cached. */
  const syncCompletions = (fleet: Fleet, nowS: number) => {
    for (const host of fleet.hosts) {
      const map = recordsOf(host);
      for (const entry of map.values()) {
        if (entry.state !== 'fetching') continue;
        const physical = host.entries.get(entry.imageId);
        if (!physical) {
          map.delete(entry.imageId);
        } else if (physical.readyAtS <= nowS) {
          map.set(entry.imageId, fetchSucceeded(entry, { bytes: physical.sizeBytes }, ms(physical.readyAtS)));
          source = nextSourceHealth(source, 'ok', group, ms(physical.readyAtS), random);
        }
      }
    }
  };

  const plannerHosts = (fleet: Fleet): PlannerHost[] =>
    fleet.hosts.map((host) => ({
      instanceId: host.id,
      availabilityZone: host.az,
      entries: [...recordsOf(host).values()],
    }));

  /**
   * Applies the plan's commands to the simulated hosts. `launchFetch` is the (host, image) whose
   * download the launching instance does itself: recorded as started, not transferred twice.
   */
  const apply = (
    plan: CachePlan,
    fleet: Fleet,
    nowS: number,
    launchFetch?: { host: SimHost; imageId: string },
  ) => {
    const hostById = new Map(fleet.hosts.map((host) => [host.id, host]));
    for (const command of plan.commands) {
      const commandId = `cmd-${++commandSeq}`;
      if (command.action === 'fetch') stats.fetchCommands++;
      else stats.evictCommands++;
      for (const instanceId of command.instanceIds) {
        const host = hostById.get(instanceId);
        if (!host) continue;
        const map = recordsOf(host);
        const previous = map.get(command.imageId);
        if (command.action === 'evict') {
          if (!previous) continue;
          const ok = fleet.evict(host, command.imageId, nowS);
          if (ok) stats.evictions++;
          const ended = evictionEnded(evictionStarted(previous, commandId, ms(nowS)), ok, ms(nowS));
          if (ended) map.set(command.imageId, ended);
          else map.delete(command.imageId);
          continue;
        }
        const bytes = options.imageSizes[command.imageId] ?? previous?.bytes ?? 0;
        const started = fetchStarted(
          previous,
          { imageId: command.imageId, bytes, commandId, via: 'download' },
          ms(nowS),
        );
        if (launchFetch?.host === host && launchFetch.imageId === command.imageId) {
          map.set(command.imageId, started);
          launchFetchOrdered = true;
          continue;
        }
        const result = fleet.prefetch(host, command.imageId, bytes, nowS);
        if (result.ok) {
          stats.prefetches++;
          stats.prefetchBytes += bytes;
          map.set(command.imageId, started);
          continue;
        }
        const failure = result.reason === 'source-unreachable' ? 'source-unreachable' : 'disk-full';
        const failed = fetchFailed(started, failure, group, ms(nowS), random);
        if (failed) map.set(command.imageId, failed);
        else map.delete(command.imageId);
        if (failure === 'source-unreachable') {
          source = nextSourceHealth(source, 'source-unreachable', group, ms(nowS), random);
        }
      }
    }
  };

  /** What ImageCacheService.plan does, minus the tables: top images of the group, plan, apply. */
  const plan = async (fleet: Fleet, nowS: number, launchFetch?: { host: SimHost; imageId: string }) => {
    syncCompletions(fleet, nowS);
    const draws: number[] = [];
    const input = {
      group,
      hosts: plannerHosts(fleet),
      pins: [],
      ...(launchFetch
        ? { requested: [{ instanceId: launchFetch.host.id, imageId: launchFetch.imageId }] }
        : {}),
      scores: await scores.topImages(BENCH_HOST_GROUP, PLANNED_TOP_IMAGES, ms(nowS), {
        recent: launchFetch !== undefined,
      }),
      imageSizes: options.imageSizes,
      source,
      now: ms(nowS),
    };
    const result = planHostGroup({
      ...input,
      random: () => {
        const draw = random();
        draws.push(draw);
        return draw;
      },
    });
    options.onPlan?.(input, draws, result);
    stats.plans++;
    apply(result, fleet, nowS, launchFetch);
  };

  /**
   * The placement function itself: its registry (the `Advise Placement` schema, the application,
   * the pure decision) with the bench's control-plane records as its store and its own advice
   * memory in memory. The request carries what a caller knows (image, count, group, free slots).
   */
  const recentAdvice = new MemoryRecentAdviceStore();
  let advising: { fleet: Fleet; nowS: number } | undefined;
  let planCache: string[] = [];
  /** What the function's store read returned (for `onAdvice`). */
  let stateRead: GroupState | undefined;
  const placementDeps: PlacementDependencies = {
    groups: [group],
    store: {
      loadGroup: async () => {
        if (!advising) throw new Error('placement store read outside an advice');
        syncCompletions(advising.fleet, advising.nowS);
        stateRead = groupState(advising.fleet);
        return stateRead;
      },
      getImages: async (imageIds) =>
        new Map(
          imageIds.flatMap((id) => (options.imageSizes[id] === undefined ? [] : [[id, imageSpec(id)]])),
        ),
    },
    recentAdvice,
    facts: {
      publish: async (published) => {
        for (const fact of published)
          if (fact.detailType === 'Plan Cache')
            planCache = (fact.detail.warm as { instanceIds: string[] }[]).flatMap((warm) => warm.instanceIds);
      },
    },
    clock: { now: () => ms(advising?.nowS ?? 0), sleep: async () => undefined },
  };
  const placement = createPlacementRegistry(placementDeps);
  const imageSpec = (id: string): ImageSpec => ({
    id,
    kind: 'container',
    source: `registry.example.com/bench/${id.toLowerCase()}`,
    digest: `sha256:${'0'.repeat(64)}`,
    sizeBytes: options.imageSizes[id] ?? 0,
  });
  const groupState = (fleet: Fleet): GroupState => ({
    pins: [],
    hosts: fleet.hosts.map((host) => ({
      instanceId: host.id,
      availabilityZone: host.az,
      status: 'running',
      joinedAt: 0,
      inventoriedAt: 0,
      version: 1,
    })),
    entries: fleet.hosts.flatMap((host) =>
      [...recordsOf(host).values()].map((entry) => ({ ...entry, instanceId: host.id, version: 1 })),
    ),
    source: { ...source, version: source.consecutiveFailures > 0 ? 1 : 0 },
  });

  /** Set by `place` for the frame's `admit`: the advised cold host is to be warmed (a managed fetch). */
  let warmChosenHost: SimHost | undefined;

  return {
    name: 'warmboot',
    stats,
    tickIntervalS: options.reconcileS,
    tick: plan,
    place: async (launch: Launch, candidates: readonly SimHost[], fleet: Fleet, nowS: number) => {
      warmChosenHost = undefined;
      planCache = [];
      stateRead = undefined;
      advising = { fleet, nowS };
      const detail: AdvisePlacementDetail = {
        imageId: launch.image,
        count: 1,
        hostGroup: BENCH_HOST_GROUP,
        freeSlots: Object.fromEntries(
          fleet.hosts.map((host) => [host.id, Math.max(0, fleet.config.slots - host.active(nowS))]),
        ),
      };
      const event = {
        version: '0',
        id: `launch-${launch.index}`,
        source: 'warmboot',
        'detail-type': 'Advise Placement',
        account: '123456789012',
        time: new Date(ms(nowS)).toISOString(),
        region: 'us-east-1',
        resources: [],
        detail,
      };
      const before = options.onAdvice
        ? await recentAdvice.weights(BENCH_HOST_GROUP, adviceErasAt(ms(nowS)))
        : [];
      const answer = await placement.dispatch(event);
      advising = undefined;
      if (answer.status !== 'handled')
        throw new Error(`placement refused the bench's request: ${JSON.stringify(answer)}`);
      const advice = answer.result;
      if (stateRead) options.onAdvice?.({ event, state: stateRead, recentAdvice: before, advice });
      const chosen = fleet.hosts.find((host) => host.id === advice.placements[0]?.instanceId);
      if (!chosen || !candidates.includes(chosen)) {
        // No warm host and no cold host with room: EC2 still launches it; spread, image not kept.
        stats.unplaced++;
        return spreadPick(candidates, nowS);
      }
      if (advice.placements[0]?.warm) stats.advisedWarm++;
      else stats.advisedCold++;
      // The `Plan Cache` request placement published: the imageCache function plans it as demand.
      if (planCache.includes(chosen.id)) warmChosenHost = chosen;
      return chosen;
    },
    admit: async (launch, host, fleet, nowS) => {
      if (host !== warmChosenHost) return false;
      // The placement function's `Plan Cache` request: warm this image on this host.
      launchFetchOrdered = false;
      await plan(fleet, nowS, { host, imageId: launch.image });
      return launchFetchOrdered && fleet.freeBytes(host) >= launch.sizeBytes;
    },
    observe: async (launch, host, _warm, fleet, nowS) => {
      nudged = false;
      await recordLaunch(
        popularity,
        {
          eventId: `launch-${launch.index}`,
          at: ms(nowS),
          images: [{ image: launch.image, count: 1 }],
          availabilityZone: host.az,
          hostGroup: BENCH_HOST_GROUP,
        },
        ms(nowS),
      );
      // imageCache subscribes to `Popularity Changed`: a nudge plans the group right away.
      if (nudged) {
        stats.nudges++;
        await plan(fleet, nowS);
      }
    },
  };
};
