import {
  type CacheEntry,
  type CachePolicy,
  type Fleet,
  type FleetConfig,
  type Launch,
  type SimHost,
  spreadPick,
} from './cache-sim';

/**
 * The baseline policies of the `cache` scenario and the clairvoyant oracle. Baselines place
 * image-agnostically (`spreadPick`, what a scheduler without image awareness does) except
 * `lru-affinity`, an ablation that adds "prefer a host holding the image" to LRU.
 */

const DAY_S = 86_400;

const lruOrder = (fleet: Fleet, host: SimHost, nowS: number): CacheEntry[] =>
  fleet.evictable(host, nowS).sort((a, b) => a.lastUsedS - b.lastUsedS);

/** Warm hosts (complete image, free slot) first, least busy among them; otherwise spread. */
const affinityPick = (launch: Launch, candidates: readonly SimHost[], nowS: number): SimHost => {
  const warm = candidates.filter((host) => host.holds(launch.image, nowS));
  return spreadPick(warm.length > 0 ? warm : candidates, nowS);
};

/** No cache: every launch fetches its image and nothing is kept. */
export const nonePolicy = (): CachePolicy => ({
  name: 'none',
  place: (_launch, candidates, _fleet, nowS) => spreadPick(candidates, nowS),
  admit: () => false,
});

/** Fetch on first use, keep it, evict the least recently used image when the budget is full. */
export const lruPolicy = (options: { readonly affinity?: boolean } = {}): CachePolicy => ({
  name: options.affinity ? 'lru-affinity' : 'lru',
  place: (launch, candidates, _fleet, nowS) =>
    options.affinity ? affinityPick(launch, candidates, nowS) : spreadPick(candidates, nowS),
  admit: (launch, host, fleet, nowS) =>
    fleet.makeRoom(host, launch.sizeBytes, nowS, lruOrder(fleet, host, nowS)),
});

/**
 * LFU with affinity: like `lru-affinity`, but at the budget it evicts the image used least often
 * on this host since it was admitted (ties: least recently used). Counts restart when an image
 * is admitted again, so an image that was popular long ago does not hold its place forever.
 */
export const lfuAffinityPolicy = (): CachePolicy => {
  const uses = new Map<string, number>();
  const key = (host: SimHost, image: string) => `${host.index}\u0000${image}`;
  const usesOf = (host: SimHost, entry: CacheEntry) => uses.get(key(host, entry.image)) ?? 0;
  return {
    name: 'lfu-affinity',
    place: (launch, candidates, _fleet, nowS) => affinityPick(launch, candidates, nowS),
    admit: (launch, host, fleet, nowS) => {
      const order = fleet
        .evictable(host, nowS)
        .sort((a, b) => usesOf(host, a) - usesOf(host, b) || a.lastUsedS - b.lastUsedS);
      if (!fleet.makeRoom(host, launch.sizeBytes, nowS, order)) return false;
      uses.set(key(host, launch.image), 0);
      return true;
    },
    observe: (launch, host) => {
      uses.set(key(host, launch.image), (uses.get(key(host, launch.image)) ?? 0) + 1);
    },
  };
};

/**
 * Nova's image cache manager: fetch on first use; every `image_cache_manager_interval`
 * (2,400 s by default) remove images unused for `remove_unused_original_minimum_age_seconds`
 * (86,400 s by default). Nova has no byte budget of its own; under the shared budget a new image
 * may only displace images already past that age, otherwise it is used once and not kept.
 */
export const novaAgePolicy = (maxAgeS = DAY_S, intervalS = 2_400): CachePolicy => {
  const aged = (fleet: Fleet, host: SimHost, nowS: number) =>
    lruOrder(fleet, host, nowS).filter((entry) => nowS - entry.lastUsedS >= maxAgeS);
  return {
    name: 'nova-age',
    tickIntervalS: intervalS,
    tick: (fleet, nowS) => {
      for (const host of fleet.hosts)
        for (const entry of aged(fleet, host, nowS)) fleet.evict(host, entry.image, nowS);
    },
    place: (_launch, candidates, _fleet, nowS) => spreadPick(candidates, nowS),
    admit: (launch, host, fleet, nowS) =>
      fleet.makeRoom(host, launch.sizeBytes, nowS, aged(fleet, host, nowS)),
  };
};

/**
 * The most requested images of the trace's first day, pinned on every host once that day is
 * over (nobody can know them earlier), as many as fit in `pinShare` of the budget; the rest of
 * the budget works as LRU.
 */
export const staticPinsPolicy = (
  launches: readonly Launch[],
  cacheBytes: number,
  pinShare = 0.5,
): CachePolicy => {
  const counts = new Map<string, { count: number; sizeBytes: number }>();
  for (const launch of launches) {
    if (launch.timeS >= DAY_S) break;
    const entry = counts.get(launch.image) ?? { count: 0, sizeBytes: launch.sizeBytes };
    entry.count++;
    counts.set(launch.image, entry);
  }
  const pins: { image: string; sizeBytes: number }[] = [];
  let pinnedBytes = 0;
  for (const [image, { sizeBytes }] of [...counts].sort(
    ([a, x], [b, y]) => y.count - x.count || (a < b ? -1 : 1),
  )) {
    if (pinnedBytes + sizeBytes > pinShare * cacheBytes) continue;
    pins.push({ image, sizeBytes });
    pinnedBytes += sizeBytes;
  }
  return {
    name: 'static-pins',
    tickIntervalS: DAY_S,
    tick: (fleet, nowS) => {
      if (nowS !== DAY_S) return;
      for (const host of fleet.hosts) {
        for (const pin of pins) {
          const held = host.entries.get(pin.image);
          if (held) {
            held.pinned = true;
            continue;
          }
          if (fleet.makeRoom(host, pin.sizeBytes, nowS, lruOrder(fleet, host, nowS))) {
            fleet.prefetch(host, pin.image, pin.sizeBytes, nowS, true);
          }
        }
      }
    },
    place: (_launch, candidates, _fleet, nowS) => spreadPick(candidates, nowS),
    admit: (launch, host, fleet, nowS) =>
      fleet.makeRoom(host, launch.sizeBytes, nowS, lruOrder(fleet, host, nowS)),
  };
};

/** Every future request time per image, for clairvoyant decisions. */
export class Future {
  readonly #times = new Map<string, number[]>();
  readonly #firstIndex = new Map<string, number>();

  constructor(launches: readonly Launch[]) {
    for (const launch of launches) {
      const times = this.#times.get(launch.image) ?? [];
      times.push(launch.timeS);
      this.#times.set(launch.image, times);
      if (!this.#firstIndex.has(launch.image)) this.#firstIndex.set(launch.image, launch.index);
    }
  }

  /** First request of `image` strictly after `timeS`; Infinity when there is none. */
  nextUseAfter(image: string, timeS: number): number {
    const times = this.#times.get(image) ?? [];
    let low = 0;
    let high = times.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if ((times[mid] ?? Number.POSITIVE_INFINITY) <= timeS) low = mid + 1;
      else high = mid;
    }
    return times[low] ?? Number.POSITIVE_INFINITY;
  }

  /** Whether an earlier launch in the fleet already asked for this image. */
  seenBefore(launch: Launch): boolean {
    return (this.#firstIndex.get(launch.image) ?? launch.index) < launch.index;
  }
}

/** Per image requested in the outage window (and before it), what staging it there takes. */
export interface OutageDemand {
  readonly image: string;
  readonly sizeBytes: number;
  /** Launches of the image in the window. */
  readonly launches: number;
  /** Copies its busiest `holdS` of the window needs: ceil(concurrent launches / slots per host). */
  readonly copies: number;
}

/**
 * What the outage window asks for, most requested first. Images first requested inside the window
 * are left out: nothing can know them before (the first-request ceiling counts them cold).
 */
export const outageDemand = (launches: readonly Launch[], config: FleetConfig): OutageDemand[] => {
  const { startS, endS } = config.outage;
  const seen = new Set<string>();
  const window = new Map<string, { sizeBytes: number; times: number[] }>();
  for (const launch of launches) {
    if (launch.timeS >= startS && launch.timeS < endS && seen.has(launch.image)) {
      const entry = window.get(launch.image) ?? { sizeBytes: launch.sizeBytes, times: [] };
      entry.times.push(launch.timeS);
      window.set(launch.image, entry);
    }
    if (launch.timeS < startS) seen.add(launch.image);
  }
  return [...window]
    .map(([image, { sizeBytes, times }]) => {
      let concurrent = 0;
      for (let first = 0, last = 0; last < times.length; last++) {
        while (first < last && (times[first] ?? 0) <= (times[last] ?? 0) - config.holdS) first++;
        concurrent = Math.max(concurrent, last - first + 1);
      }
      const copies = Math.min(config.hosts, Math.ceil(concurrent / config.slots));
      return { image, sizeBytes, launches: times.length, copies };
    })
    .sort((a, b) => b.launches - a.launches || (a.image < b.image ? -1 : 1));
};

/**
 * Clairvoyant reference. Placement: a host holding the image (least busy). Otherwise, if the
 * image was requested anywhere before, a just-in-time prefetch onto the least busy host whose
 * link was idle for the transfer right before the launch (and not during the outage), making
 * room Belady-style. Eviction (Belady): first copies that another host also holds, then the
 * image whose next request in the whole trace is furthest away; a cold image is kept only if it
 * is needed again before the victims it would displace. Images never requested before are cold.
 * Outage staging: early enough before the outage for every host to fill its whole cache over its
 * link, it stages every image the window will ask for (most requested first, as many copies as
 * its busiest moment needs) on the hosts with the most room, evicting only images the window does
 * not need (furthest next use first), as far as the fleet's budget goes.
 */
export const oraclePolicy = (launches: readonly Launch[]): CachePolicy => {
  const future = new Future(launches);
  const copies = (fleet: Fleet, image: string) =>
    fleet.hosts.filter((host) => host.entries.has(image)).length;
  /** What staging put on the hosts for the outage: not evicted until the outage is over. */
  let staged: ReadonlySet<string> | undefined;
  const beladyOrder = (fleet: Fleet, host: SimHost, nowS: number): CacheEntry[] =>
    fleet
      .evictable(host, nowS)
      .filter((entry) => !(staged?.has(entry.image) && nowS < fleet.config.outage.endS))
      .map((entry) => ({
        entry,
        replicated: copies(fleet, entry.image) > 1,
        next: future.nextUseAfter(entry.image, nowS),
      }))
      .sort((a, b) => Number(b.replicated) - Number(a.replicated) || b.next - a.next)
      .map(({ entry }) => entry);
  const byLoad = (hosts: readonly SimHost[], nowS: number): SimHost[] =>
    [...hosts].sort((a, b) => a.active(nowS) - b.active(nowS) || a.placed - b.placed || a.index - b.index);
  const stage = (fleet: Fleet, nowS: number) => {
    const demand = outageDemand(launches, fleet.config);
    const needed = new Set(demand.map((item) => item.image));
    staged = needed;
    // Victims: what the window does not need, the one needed furthest in the future first.
    const expendable = (host: SimHost) =>
      fleet
        .evictable(host, nowS)
        .filter((entry) => !needed.has(entry.image))
        .sort((a, b) => future.nextUseAfter(b.image, nowS) - future.nextUseAfter(a.image, nowS));
    const room = (host: SimHost) =>
      fleet.freeBytes(host) + expendable(host).reduce((sum, entry) => sum + entry.sizeBytes, 0);
    for (const item of demand) {
      for (let held = copies(fleet, item.image); held < item.copies; held++) {
        const host = fleet.hosts
          .filter((candidate) => !candidate.entries.has(item.image) && room(candidate) >= item.sizeBytes)
          .sort((a, b) => room(b) - room(a) || a.index - b.index)[0];
        if (!host || !fleet.makeRoom(host, item.sizeBytes, nowS, expendable(host))) break;
        if (!fleet.prefetch(host, item.image, item.sizeBytes, nowS).ok) break;
      }
    }
  };
  return {
    name: 'oracle',
    tickIntervalS: 60,
    tick: (fleet, nowS) => {
      const leadS = fleet.transferS(fleet.config.cacheBytes) + 2 * 60;
      if (
        staged === undefined &&
        nowS >= fleet.config.outage.startS - leadS &&
        nowS < fleet.config.outage.startS
      )
        stage(fleet, nowS);
    },
    place: (launch, candidates, fleet, nowS) => {
      const warm = candidates.filter((host) => host.holds(launch.image, nowS));
      if (warm.length > 0) return spreadPick(warm, nowS);
      if (future.seenBefore(launch)) {
        for (const host of byLoad(candidates, nowS)) {
          if (host.entries.has(launch.image)) continue;
          if (fleet.prefetchWindowS(host, launch.sizeBytes, nowS) === undefined) continue;
          if (!fleet.makeRoom(host, launch.sizeBytes, nowS, beladyOrder(fleet, host, nowS))) continue;
          if (fleet.prefetchBy(host, launch.image, launch.sizeBytes, nowS)) return host;
        }
      }
      return spreadPick(candidates, nowS);
    },
    admit: (launch, host, fleet, nowS) => {
      const next = future.nextUseAfter(launch.image, nowS);
      if (next === Number.POSITIVE_INFINITY) return false;
      const victims = beladyOrder(fleet, host, nowS).filter(
        (entry) => future.nextUseAfter(entry.image, nowS) > next || copies(fleet, entry.image) > 1,
      );
      return fleet.makeRoom(host, launch.sizeBytes, nowS, victims);
    },
  };
};
