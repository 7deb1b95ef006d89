import type { HostGroup } from '../config';
import { heldBytes, type ImageScore, type PlannerHost, type SourceHealth } from './model';
import { type HostWork, placeReplicas, type ScoredImage } from './replicas';

/** SSM SendCommand accepts at most 50 instance ids per call (SSM API reference, SendCommand). */
export const MAX_INSTANCES_PER_COMMAND = 50;

export type PlannerGroup = Pick<
  HostGroup,
  | 'name'
  | 'cacheBytes'
  | 'warmConcurrency'
  | 'maxErrors'
  | 'maxFetchAttempts'
  | 'minResidencyMs'
  | 'minScore'
  | 'keepMargin'
  | 'replicaExponent'
>;

export interface PlanInput {
  readonly group: PlannerGroup;
  /** Running hosts of the group with their inventory (cached, in-flight, failed entries). */
  readonly hosts: readonly PlannerHost[];
  readonly pins: readonly string[];
  /**
   * Demand: placement sent a launch to a host without the image, so the image is arriving there
   * whatever the cache does. Admitted right after pins, evicting the host's lowest-value
   * unpinned images to make room.
   */
  readonly requested?: readonly { readonly instanceId: string; readonly imageId: string }[];
  /** Decayed popularity in the group's scope; images not listed score 0. */
  readonly scores: readonly ImageScore[];
  /** Size of every image warmboot knows how to fetch; an image without a size cannot be planned. */
  readonly imageSizes: Readonly<Record<string, number>>;
  /** Health of the image source, from recent fetch outcomes. */
  readonly source: SourceHealth;
  readonly now: number;
  /** Breaks ties between equally good hosts so repeated plans do not always load the same host. */
  readonly random: () => number;
  /**
   * Fetch invocations allowed in flight across the group (default one SendCommand's worth, 50);
   * with MaxConcurrency per command this is what keeps the image source from being flooded.
   */
  readonly maxInflightFetches?: number;
}

export interface CacheCommand {
  readonly action: 'fetch' | 'evict';
  readonly imageId: string;
  /** At most MAX_INSTANCES_PER_COMMAND. */
  readonly instanceIds: readonly string[];
  readonly maxConcurrency: string;
  readonly maxErrors: string;
}

export type DeferReason =
  | 'retry-backoff'
  | 'gave-up'
  | 'source-backoff'
  | 'awaiting-eviction'
  | 'over-budget'
  | 'fetch-window-full'
  | 'outage-keep';

export interface DeferredAction {
  readonly instanceId: string;
  readonly imageId: string;
  readonly action: 'fetch' | 'evict';
  readonly reason: DeferReason;
  /** When the reason lifts, if known. */
  readonly until?: number;
}

/** Records why the fetch of `imageId` on a host waits (and until when, if known). */
const fetchDeferral =
  (deferred: DeferredAction[], instanceId: string, imageId: string) =>
  (reason: DeferReason, until?: number) =>
    deferred.push({
      instanceId,
      imageId,
      action: 'fetch',
      reason,
      ...(until !== undefined ? { until } : {}),
    });

export interface CachePlan {
  readonly hostGroup: string;
  readonly commands: readonly CacheCommand[];
  /** What each host should hold (pins, then images by value density), image ids by priority. */
  readonly desired: Readonly<Record<string, readonly string[]>>;
  readonly deferred: readonly DeferredAction[];
  /** Hosts whose pins alone exceed the budget. */
  readonly overBudget: readonly { readonly instanceId: string; readonly pinnedBytes: number }[];
  /** Pinned or popular images without a known size/source (register them to warm them). */
  readonly unknownImages: readonly string[];
  /** Set while the image source is backing off: no fetch is sent before this time. */
  readonly sourceBackoffUntil?: number;
  /** Fetches and evictions still to happen: in flight, sent now, or deferred. */
  readonly pendingActions: number;
  /** Share of desired (host, image) pairs already cached. */
  readonly warmRatio: number;
}

const pairKey = (instanceId: string, imageId: string) => `${instanceId}\u0000${imageId}`;

const by =
  <T>(...keys: ((item: T) => number | string)[]) =>
  (a: T, b: T): number => {
    for (const key of keys) {
      const x = key(a);
      const y = key(b);
      if (x < y) return -1;
      if (x > y) return 1;
    }
    return 0;
  };

/**
 * Plans one host group: desired set per host, diffed against the inventory, as batched warm and
 * evict commands.
 *
 * Desired set. Pins go on every host. Then the planner fills each host's budget with
 * (image, replica) items in order of value density: the k-th replica of an image with score s
 * and size b is worth s / k (the k-th host holding an image absorbs a diminishing share of its
 * launches) and costs b bytes, so its density is s / (k · b). Greedy by density is the classic
 * fractional-knapsack heuristic: a 1 GB image must be twice as popular as a 500 MB one to earn
 * the same space, and popular images get more replicas (so placement can spread them) before
 * rare ones get any. An image a host already holds is preferred on that host (no fetch), and a
 * freshly cached image stays for `minResidencyMs` (hysteresis against popularity churn).
 *
 * Diff. Fetch what is desired and missing, evict what is cached and not desired; a fetch is only
 * sent when the host's held bytes (cached + fetching + evicting) plus the image fit the budget,
 * so the budget holds at every instant. A failed fetch waits for its `retryAt`; after
 * `maxFetchAttempts` the planner gives up on that pair. While the image source backs off, no
 * fetch and no eviction happen (what is cached is what launches can use during an outage); once
 * `retryAt` passes one fetch is sent as a probe.
 */
export const planHostGroup = (input: PlanInput): CachePlan => {
  const { group, now } = input;
  const pins = [...new Set(input.pins)].sort();
  const sizeOf = (imageId: string): number | undefined => input.imageSizes[imageId];
  const unknownImages = new Set<string>();

  const hosts: HostWork[] = [...input.hosts].sort(by((host) => host.instanceId)).map((host, order) => ({
    host,
    entries: new Map(host.entries.map((entry) => [entry.imageId, entry])),
    desired: [],
    desiredSet: new Set<string>(),
    reservedBytes: 0,
    lot: input.random(),
    order,
  }));
  const hostById = new Map<string, HostWork>();
  for (const work of hosts) if (!hostById.has(work.host.instanceId)) hostById.set(work.host.instanceId, work);

  const want = (work: HostWork, imageId: string, bytes: number): void => {
    work.desired.push(imageId);
    work.desiredSet.add(imageId);
    work.reservedBytes += bytes;
  };
  const replicas = new Map<string, number>();
  const countReplica = (imageId: string) => replicas.set(imageId, (replicas.get(imageId) ?? 0) + 1);

  // 1. Pins on every host, even beyond the budget (reported; their fetch then waits for room).
  const overBudget: { instanceId: string; pinnedBytes: number }[] = [];
  for (const work of hosts) {
    for (const pin of pins) {
      const bytes = sizeOf(pin) ?? work.entries.get(pin)?.bytes;
      if (bytes === undefined) {
        unknownImages.add(pin);
        continue;
      }
      want(work, pin, bytes);
      countReplica(pin);
    }
    if (work.reservedBytes > group.cacheBytes)
      overBudget.push({ instanceId: work.host.instanceId, pinnedBytes: work.reservedBytes });
  }

  // 1b. Demand (placement chose this host for a launch): admitted whenever the pins leave room;
  // what no longer fits on that host is evicted by the diff below, lowest value first.
  const demand = new Set<string>();
  for (const request of input.requested ?? []) {
    const work = hostById.get(request.instanceId);
    const bytes = sizeOf(request.imageId);
    if (!work || work.desiredSet.has(request.imageId)) continue;
    if (bytes === undefined) {
      unknownImages.add(request.imageId);
      continue;
    }
    if (work.reservedBytes + bytes > group.cacheBytes) continue;
    want(work, request.imageId, bytes);
    countReplica(request.imageId);
    demand.add(pairKey(work.host.instanceId, request.imageId));
  }

  // 2. Commitments: in-flight fetches cannot be recalled; fresh images stay for minResidencyMs
  // (against popularity churn; demand may still displace them, the least popular first).
  const scoreOf = new Map(input.scores.map((item) => [item.imageId, item.score]));
  for (const work of hosts) {
    const committed = [...work.entries.values()]
      .filter((entry) => !work.desiredSet.has(entry.imageId))
      .filter(
        (entry) =>
          entry.state === 'fetching' ||
          (entry.state === 'cached' && now - entry.since < group.minResidencyMs),
      )
      .sort(
        by(
          (entry) => (entry.state === 'fetching' ? 0 : 1),
          (entry) => -(scoreOf.get(entry.imageId) ?? 0),
          (entry) => entry.imageId,
        ),
      );
    for (const entry of committed) {
      if (entry.state === 'cached' && work.reservedBytes + entry.bytes > group.cacheBytes) continue;
      want(work, entry.imageId, entry.bytes);
      countReplica(entry.imageId);
    }
  }

  // 3. (image, replica) items by value density, with hysteresis: the first h replicas of an
  // image that h hosts hold are incumbents, worth (1 + keepMargin) times their density, and they
  // stay on a host that holds them (an incumbent is never moved to another host: a move costs a
  // fetch and an eviction for the same image).
  const pinned = new Set(pins);
  const scored: ScoredImage[] = [];
  for (const { imageId, score } of input.scores) {
    if (score <= group.minScore || pinned.has(imageId)) continue;
    const bytes = sizeOf(imageId);
    if (bytes === undefined) {
      unknownImages.add(imageId);
      continue;
    }
    scored.push({ imageId, score, bytes });
  }
  placeReplicas(hosts, scored, group, replicas, (work, imageId, bytes) => {
    want(work, imageId, bytes);
    countReplica(imageId);
  });

  // 4. Keep anything else already cached while it still fits: holding it costs nothing.
  for (const work of hosts) {
    const leftovers = [...work.entries.values()]
      .filter((entry) => entry.state === 'cached' && !work.desiredSet.has(entry.imageId))
      .sort(
        by(
          (entry) => -(scoreOf.get(entry.imageId) ?? 0),
          (entry) => entry.imageId,
        ),
      );
    for (const entry of leftovers)
      if (work.reservedBytes + entry.bytes <= group.cacheBytes) want(work, entry.imageId, entry.bytes);
  }

  // 5. Diff against the inventory.
  const sourceBackingOff = input.source.consecutiveFailures > 0;
  const probeDue = sourceBackingOff && (input.source.retryAt ?? 0) <= now;
  const inflightFetches = hosts.reduce(
    (sum, work) => sum + [...work.entries.values()].filter((entry) => entry.state === 'fetching').length,
    0,
  );
  let fetchAllowance = sourceBackingOff
    ? probeDue
      ? Math.max(0, 1 - inflightFetches)
      : 0
    : Math.max(0, (input.maxInflightFetches ?? MAX_INSTANCES_PER_COMMAND) - inflightFetches);

  const deferred: DeferredAction[] = [];
  const fetchCandidates: {
    work: HostWork;
    imageId: string;
    bytes: number;
    rank: number;
    demand: boolean;
  }[] = [];
  const evictions: { work: HostWork; imageId: string }[] = [];
  let inflight = 0;
  let warmPairs = 0;
  let desiredPairs = 0;

  for (const work of hosts) {
    work.desired.forEach((imageId, rank) => {
      desiredPairs += 1;
      const entry = work.entries.get(imageId);
      const bytes = sizeOf(imageId) ?? entry?.bytes ?? 0;
      const defer = fetchDeferral(deferred, work.host.instanceId, imageId);
      if (entry?.state === 'cached') {
        warmPairs += 1;
        return;
      }
      if (entry?.state === 'fetching' || entry?.state === 'evicting') {
        inflight += 1;
        return;
      }
      if (entry?.state === 'failed') {
        if (entry.attempts >= group.maxFetchAttempts) {
          defer('gave-up');
          return;
        }
        if (entry.retryAt !== undefined && entry.retryAt > now) {
          defer('retry-backoff', entry.retryAt);
          return;
        }
      }
      fetchCandidates.push({
        work,
        imageId,
        bytes,
        rank,
        demand: demand.has(pairKey(work.host.instanceId, imageId)),
      });
    });
    for (const entry of work.entries.values()) {
      if (entry.state !== 'cached' || work.desiredSet.has(entry.imageId)) continue;
      if (sourceBackingOff) {
        // During an outage an evicted image cannot come back: keep serving from cache.
        deferred.push({
          instanceId: work.host.instanceId,
          imageId: entry.imageId,
          action: 'evict',
          reason: 'outage-keep',
        });
        continue;
      }
      evictions.push({ work, imageId: entry.imageId });
    }
  }

  // Demand first (a launch is waiting for it), then pins (they lead every desired list), then by
  // each host's priority order.
  fetchCandidates.sort(
    by(
      (candidate) => (candidate.demand ? 0 : 1),
      (candidate) => candidate.rank,
      (candidate) => candidate.work.host.instanceId,
    ),
  );
  const usedBytes = new Map(hosts.map((work) => [work, heldBytes([...work.entries.values()])]));
  // A demand fetch may start together with the evictions that make its room: the launch placed
  // there pulls the image anyway, and the removals finish long before the download does.
  const evictedBytes = new Map<HostWork, number>();
  for (const { work, imageId } of evictions)
    evictedBytes.set(work, (evictedBytes.get(work) ?? 0) + (work.entries.get(imageId)?.bytes ?? 0));
  const fetches: { work: HostWork; imageId: string }[] = [];
  for (const candidate of fetchCandidates) {
    const { work, imageId, bytes } = candidate;
    const defer = fetchDeferral(deferred, work.host.instanceId, imageId);
    if (sourceBackingOff && !probeDue) {
      defer('source-backoff', input.source.retryAt);
      continue;
    }
    const used = usedBytes.get(work) ?? 0;
    const freeing = candidate.demand ? (evictedBytes.get(work) ?? 0) : 0;
    if (used - freeing + bytes > group.cacheBytes) {
      const evictionPending = [...work.entries.values()].some((entry) => entry.state === 'evicting');
      defer(evictionPending || evictedBytes.has(work) ? 'awaiting-eviction' : 'over-budget');
      continue;
    }
    if (fetchAllowance <= 0) {
      defer(sourceBackingOff ? 'source-backoff' : 'fetch-window-full', input.source.retryAt);
      continue;
    }
    fetchAllowance -= 1;
    usedBytes.set(work, used + bytes);
    fetches.push({ work, imageId });
  }

  // Evictions first: whoever applies the plan sends them before the fetches they make room for.
  const commands = [...batch('evict', evictions, group), ...batch('fetch', fetches, group)];
  const sent = fetches.length + evictions.length;
  return {
    hostGroup: group.name,
    commands,
    desired: Object.fromEntries(hosts.map((work) => [work.host.instanceId, work.desired])),
    deferred,
    overBudget,
    unknownImages: [...unknownImages].sort(),
    ...(sourceBackingOff && input.source.retryAt !== undefined
      ? { sourceBackoffUntil: input.source.retryAt }
      : {}),
    pendingActions:
      sent +
      inflight +
      deferred.filter((item) => item.reason !== 'gave-up' && item.reason !== 'outage-keep').length,
    warmRatio: desiredPairs === 0 ? 1 : warmPairs / desiredPairs,
  };
};

/** One SendCommand per image and chunk of at most 50 hosts; MaxConcurrency from the group. */
const batch = (
  action: 'fetch' | 'evict',
  pairs: readonly { work: HostWork; imageId: string }[],
  group: PlannerGroup,
): CacheCommand[] => {
  const byImage = new Map<string, string[]>();
  for (const { work, imageId } of pairs) {
    const list = byImage.get(imageId) ?? [];
    list.push(work.host.instanceId);
    byImage.set(imageId, list);
  }
  const commands: CacheCommand[] = [];
  for (const [imageId, instanceIds] of [...byImage.entries()].sort(by(([imageId]) => imageId))) {
    for (let start = 0; start < instanceIds.length; start += MAX_INSTANCES_PER_COMMAND) {
      commands.push({
        action,
        imageId,
        instanceIds: instanceIds.slice(start, start + MAX_INSTANCES_PER_COMMAND),
        maxConcurrency: String(group.warmConcurrency),
        maxErrors: group.maxErrors,
      });
    }
  }
  return commands;
};
