/**
 * The simulation frame of the `cache` scenario: a host group whose hosts have a cache budget,
 * a download link and placement slots; launches from a trace arrive in time order; a policy
 * decides placement, what to keep, and what to prefetch. The frame enforces the constraints
 * (budget, bandwidth, slots, the outage) identically for every policy and measures the result.
 */

export interface FleetConfig {
  readonly hosts: number;
  readonly azs: number;
  /** Cache budget per host, bytes. Held plus in-flight bytes never exceed it. */
  readonly cacheBytes: number;
  /** Download bandwidth per host, bytes/s; fetches on one host share it one after another. */
  readonly bandwidthBytesPerS: number;
  /** Instances a host runs at once. */
  readonly slots: number;
  /** How long a launched instance occupies its slot, seconds. */
  readonly holdS: number;
  /** The image source is unreachable in [startS, endS) (trace-relative seconds). */
  readonly outage: { readonly startS: number; readonly endS: number };
}

export interface Launch {
  /** Position in the trace: keys the cold-penalty draw, so every policy gets the same draw. */
  readonly index: number;
  readonly timeS: number;
  readonly image: string;
  readonly sizeBytes: number;
}

export interface CacheEntry {
  readonly image: string;
  readonly sizeBytes: number;
  /** When the image is complete on the host; later than now while it is in flight. */
  readyAtS: number;
  lastUsedS: number;
  pinned: boolean;
}

export class SimHost {
  readonly entries = new Map<string, CacheEntry>();
  usedBytes = 0;
  linkFreeAtS = 0;
  /** Instances placed here over the whole run. */
  placed = 0;
  /** End times of running instances, ascending. */
  readonly #running: number[] = [];
  /** Per image, when its last running instance on this host ends (in-use images are not evicted). */
  readonly #inUseUntil = new Map<string, number>();

  constructor(
    readonly index: number,
    readonly id: string,
    readonly az: string,
  ) {}

  active(nowS: number): number {
    while ((this.#running[0] ?? Number.POSITIVE_INFINITY) <= nowS) this.#running.shift();
    return this.#running.length;
  }

  /** When the next slot frees up (now if one is free). */
  nextFreeSlotS(nowS: number, slots: number): number {
    return this.active(nowS) < slots ? nowS : (this.#running[this.#running.length - slots] ?? nowS);
  }

  holds(image: string, nowS: number): boolean {
    const entry = this.entries.get(image);
    return entry !== undefined && entry.readyAtS <= nowS;
  }

  inUse(image: string, nowS: number): boolean {
    return (this.#inUseUntil.get(image) ?? Number.NEGATIVE_INFINITY) > nowS;
  }

  startInstance(image: string, endS: number): void {
    const at = this.#running.findIndex((end) => end > endS);
    this.#running.splice(at < 0 ? this.#running.length : at, 0, endS);
    this.#inUseUntil.set(image, Math.max(endS, this.#inUseUntil.get(image) ?? 0));
    this.placed++;
  }
}

export type FetchResult =
  | { readonly ok: true; readonly startS: number; readonly doneS: number }
  | { readonly ok: false; readonly reason: 'source-unreachable' | 'over-budget' };

/** Shared mutable state plus the operations every policy uses; all constraints live here. */
export class Fleet {
  readonly hosts: readonly SimHost[];
  bytesFetched = 0;

  constructor(readonly config: FleetConfig) {
    this.hosts = Array.from(
      { length: config.hosts },
      (_, index) =>
        new SimHost(index, `i-${index.toString(16).padStart(17, '0')}`, `az-${index % config.azs}`),
    );
  }

  transferS(sizeBytes: number): number {
    return sizeBytes / this.config.bandwidthBytesPerS;
  }

  inOutage(timeS: number): boolean {
    return timeS >= this.config.outage.startS && timeS < this.config.outage.endS;
  }

  /** Whether a transfer in [startS, endS) touches the outage. */
  overlapsOutage(startS: number, endS: number): boolean {
    return startS < this.config.outage.endS && endS > this.config.outage.startS;
  }

  freeBytes(host: SimHost): number {
    return this.config.cacheBytes - host.usedBytes;
  }

  /** Images that may be evicted now: complete, not pinned, not used by a running instance. */
  evictable(host: SimHost, nowS: number): CacheEntry[] {
    return [...host.entries.values()].filter(
      (entry) => !entry.pinned && entry.readyAtS <= nowS && !host.inUse(entry.image, nowS),
    );
  }

  /** Removes an image; refused (false) while it is in use, in flight or pinned. */
  evict(host: SimHost, image: string, nowS: number): boolean {
    const entry = host.entries.get(image);
    if (!entry || entry.pinned || entry.readyAtS > nowS || host.inUse(image, nowS)) return false;
    host.entries.delete(image);
    host.usedBytes -= entry.sizeBytes;
    return true;
  }

  /**
   * Frees `bytes` by evicting `order` (victims, most expendable first) until enough is free.
   * Evicts nothing and returns false when even all of them would not make room.
   */
  makeRoom(host: SimHost, bytes: number, nowS: number, order: readonly CacheEntry[]): boolean {
    if (bytes > this.config.cacheBytes) return false;
    let free = this.freeBytes(host);
    if (free >= bytes) return true;
    const chosen: CacheEntry[] = [];
    for (const entry of order) {
      if (free >= bytes) break;
      if (entry.pinned || entry.readyAtS > nowS || host.inUse(entry.image, nowS)) continue;
      chosen.push(entry);
      free += entry.sizeBytes;
    }
    if (free < bytes) return false;
    for (const entry of chosen) this.evict(host, entry.image, nowS);
    return true;
  }

  /**
   * A background fetch (prefetch, warm command) onto `host`, kept in its cache. It queues
   * behind the host's earlier fetches; it fails when it would run while the source is down or
   * when it does not fit the budget (make room first).
   */
  prefetch(host: SimHost, image: string, sizeBytes: number, nowS: number, pinned = false): FetchResult {
    if (host.entries.has(image))
      return { ok: true, startS: nowS, doneS: host.entries.get(image)?.readyAtS ?? nowS };
    const startS = Math.max(nowS, host.linkFreeAtS);
    const doneS = startS + this.transferS(sizeBytes);
    if (this.overlapsOutage(startS, doneS)) return { ok: false, reason: 'source-unreachable' };
    if (this.freeBytes(host) < sizeBytes) return { ok: false, reason: 'over-budget' };
    this.#transfer(host, doneS, sizeBytes);
    host.entries.set(image, { image, sizeBytes, readyAtS: doneS, lastUsedS: nowS, pinned });
    host.usedBytes += sizeBytes;
    return { ok: true, startS, doneS };
  }

  /**
   * Start of a transfer that would land exactly by `deadlineS` (the oracle only): placed in
   * [deadline − transfer, deadline), or just before the outage when that window touches it; it
   * must not overlap an earlier transfer on the host's link. Undefined when no such window exists.
   */
  prefetchWindowS(host: SimHost, sizeBytes: number, deadlineS: number): number | undefined {
    const transfer = this.transferS(sizeBytes);
    let startS = deadlineS - transfer;
    if (this.overlapsOutage(startS, deadlineS)) startS = this.config.outage.startS - transfer;
    return startS < host.linkFreeAtS || startS < 0 ? undefined : startS;
  }

  /** A clairvoyant prefetch in the window `prefetchWindowS` found; room must have been made. */
  prefetchBy(host: SimHost, image: string, sizeBytes: number, deadlineS: number): boolean {
    const startS = this.prefetchWindowS(host, sizeBytes, deadlineS);
    if (startS === undefined || this.freeBytes(host) < sizeBytes) return false;
    const doneS = startS + this.transferS(sizeBytes);
    this.#transfer(host, doneS, sizeBytes);
    host.entries.set(image, { image, sizeBytes, readyAtS: doneS, lastUsedS: startS, pinned: false });
    host.usedBytes += sizeBytes;
    return true;
  }

  /**
   * The fetch a cold launch triggers. It waits for the link and, during the outage, for the
   * source to return. `loadS` is the measured load time of an image that is not on the host;
   * the launch is ready after max(transfer, loadS). `retain` keeps the image (room must have
   * been made); otherwise it is used once and dropped.
   */
  launchFetch(host: SimHost, launch: Launch, nowS: number, loadS: number, retain: boolean): number {
    let startS = Math.max(nowS, host.linkFreeAtS);
    const transfer = this.transferS(launch.sizeBytes);
    if (this.overlapsOutage(startS, startS + transfer)) startS = Math.max(startS, this.config.outage.endS);
    const readyS = startS + Math.max(transfer, loadS);
    this.#transfer(host, startS + transfer, launch.sizeBytes);
    if (retain && this.freeBytes(host) >= launch.sizeBytes) {
      host.entries.set(launch.image, {
        image: launch.image,
        sizeBytes: launch.sizeBytes,
        readyAtS: readyS,
        lastUsedS: nowS,
        pinned: false,
      });
      host.usedBytes += launch.sizeBytes;
    }
    return readyS;
  }

  #transfer(host: SimHost, endS: number, bytes: number): void {
    host.linkFreeAtS = Math.max(host.linkFreeAtS, endS);
    this.bytesFetched += bytes;
  }
}

/** What a policy decides. The frame calls these in time order. */
export interface CachePolicy {
  readonly name: string;
  /** `tick` runs at every multiple of this many seconds (none when absent). */
  readonly tickIntervalS?: number;
  tick?(fleet: Fleet, nowS: number): void | Promise<void>;
  /** The host for a launch, among `candidates` (hosts with a free slot; never empty). */
  place(
    launch: Launch,
    candidates: readonly SimHost[],
    fleet: Fleet,
    nowS: number,
  ): SimHost | Promise<SimHost>;
  /**
   * After a cold placement: keep the image on the host? A policy that keeps it makes room
   * first (fleet.makeRoom) and returns true only if room was made.
   */
  admit(launch: Launch, host: SimHost, fleet: Fleet, nowS: number): boolean | Promise<boolean>;
  /** Every launch, after placement (popularity feeds on this). */
  observe?(launch: Launch, host: SimHost, warm: boolean, fleet: Fleet, nowS: number): void | Promise<void>;
}

export interface LaunchOutcome {
  readonly warm: boolean;
  readonly readyS: number;
  readonly inOutage: boolean;
  readonly host: number;
}

export interface PolicyRun {
  readonly outcomes: readonly LaunchOutcome[];
  readonly placedPerHost: readonly number[];
  readonly bytesFetched: number;
}

/** Least busy first, then fewest placed so far, then index: the image-agnostic spread. */
export const spreadPick = (candidates: readonly SimHost[], nowS: number): SimHost => {
  let best: SimHost | undefined;
  for (const host of candidates) {
    if (
      !best ||
      host.active(nowS) < best.active(nowS) ||
      (host.active(nowS) === best.active(nowS) && host.placed < best.placed)
    ) {
      best = host;
    }
  }
  if (!best) throw new Error('no candidate host');
  return best;
};

/**
 * Replays `launches` (time-ordered) against a fresh fleet under `policy`. `loadS[i]` is the
 * cold load time of launch i, drawn once for all policies.
 */
export const simulate = async (
  policy: CachePolicy,
  launches: readonly Launch[],
  config: FleetConfig,
  loadS: readonly number[],
): Promise<PolicyRun> => {
  const fleet = new Fleet(config);
  const outcomes: LaunchOutcome[] = [];
  let nextTickS = 0;
  for (const launch of launches) {
    if (policy.tick && policy.tickIntervalS) {
      while (nextTickS <= launch.timeS) {
        await policy.tick(fleet, nextTickS);
        nextTickS += policy.tickIntervalS;
      }
    }
    // Slots: when every host is full, the launch waits for the first slot that frees up.
    let startS = launch.timeS;
    let candidates = fleet.hosts.filter((host) => host.active(startS) < config.slots);
    if (candidates.length === 0) {
      startS = Math.min(...fleet.hosts.map((host) => host.nextFreeSlotS(launch.timeS, config.slots)));
      candidates = fleet.hosts.filter((host) => host.active(startS) < config.slots);
    }
    const host = await policy.place(launch, candidates, fleet, startS);
    const entry = host.entries.get(launch.image);
    const warm = entry !== undefined && entry.readyAtS <= startS;
    let readyAtS = startS;
    if (entry && !warm) {
      readyAtS = entry.readyAtS;
    } else if (!entry) {
      const retain = await policy.admit(launch, host, fleet, startS);
      readyAtS = fleet.launchFetch(host, launch, startS, loadS[launch.index] ?? 0, retain);
    }
    const held = host.entries.get(launch.image);
    if (held) held.lastUsedS = startS;
    host.startInstance(launch.image, Math.max(readyAtS, startS) + config.holdS);
    await policy.observe?.(launch, host, warm, fleet, startS);
    outcomes.push({
      warm,
      readyS: readyAtS - launch.timeS,
      inOutage: fleet.inOutage(launch.timeS),
      host: host.index,
    });
  }
  return {
    outcomes,
    placedPerHost: fleet.hosts.map((host) => host.placed),
    bytesFetched: fleet.bytesFetched,
  };
};
