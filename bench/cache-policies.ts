import {
  type CacheEntry,
  type CachePolicy,
  type Fleet,
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

/**
 * Clairvoyant reference. Placement: a host holding the image (least busy). Otherwise, if the
 * image was requested anywhere before, a just-in-time prefetch onto the least busy host whose
 * link was idle for the transfer right before the launch (and not during the outage), making
 * room Belady-style. Eviction (Belady): first copies that another host also holds, then the
 * image whose next request in the whole trace is furthest away; a cold image is kept only if it
 * is needed again before the victims it would displace. Images never requested before are cold.
 */
export const oraclePolicy = (launches: readonly Launch[]): CachePolicy => {
  const future = new Future(launches);
  const copies = (fleet: Fleet, image: string) =>
    fleet.hosts.filter((host) => host.entries.has(image)).length;
  const beladyOrder = (fleet: Fleet, host: SimHost, nowS: number): CacheEntry[] =>
    fleet
      .evictable(host, nowS)
      .map((entry) => ({
        entry,
        replicated: copies(fleet, entry.image) > 1,
        next: future.nextUseAfter(entry.image, nowS),
      }))
      .sort((a, b) => Number(b.replicated) - Number(a.replicated) || b.next - a.next)
      .map(({ entry }) => entry);
  const byLoad = (hosts: readonly SimHost[], nowS: number): SimHost[] =>
    [...hosts].sort((a, b) => a.active(nowS) - b.active(nowS) || a.placed - b.placed || a.index - b.index);
  return {
    name: 'oracle',
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
