import { type HostImageEntry, heldBytes } from '../../image-cache/domain/model';

export interface PlacementHost {
  readonly instanceId: string;
  readonly availabilityZone: string;
  readonly entries: readonly HostImageEntry[];
  /** Instances this host can still take; undefined = no limit known. */
  readonly freeSlots?: number;
  /**
   * Instances placement advised here recently, decayed (`recentlyAdvised`, domain/recent-advice.ts):
   * the tie-breaker among equally good hosts, least advised first.
   */
  readonly recentlyAdvised?: number;
}

export interface PlacementRequest {
  readonly image: string;
  readonly count: number;
  readonly hostGroup: string;
  /** Restrict to these AZs; all AZs of the group when absent. */
  readonly azs?: readonly string[];
  readonly hosts: readonly PlacementHost[];
  /** Size of the image, to judge which cold hosts have room; unknown = no cold fallback by size. */
  readonly imageBytes?: number;
  /** The group's per-host cache budget. */
  readonly cacheBytes: number;
  /** The group's pinned images: never displaced to make room for a launch. */
  readonly pins?: readonly string[];
  readonly now: number;
}

export interface Placement {
  readonly instanceId: string;
  readonly availabilityZone: string;
  readonly count: number;
  /** The host holds the image now; false = placed on a host with room, warming started. */
  readonly warm: boolean;
}

export interface PlacementAdvice {
  readonly image: string;
  readonly hostGroup: string;
  readonly requested: number;
  readonly placements: readonly Placement[];
  readonly placed: number;
  readonly unplaced: number;
  /** Most instances any warm host gets: ceil(count / eligible warm hosts). */
  readonly share: number;
  readonly spread: 'even' | 'partial';
  /** Why the spread is partial; empty when even. */
  readonly reasons: readonly string[];
  /** Cold hosts chosen that must fetch the image (the caller starts these warms). */
  readonly warmHosts: readonly string[];
  readonly advisedAt: number;
}

interface Slot {
  readonly host: PlacementHost;
  readonly cap: number;
  /** Lower ranks fill first (a host already downloading the image before one that would start). */
  readonly rank: number;
  assigned: number;
}

const cmp = (a: number | string, b: number | string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Spreads `n` instances over `slots`: each instance goes to the best rank with a slot below its
 * cap, then to the AZ with the fewest so far, then to that AZ's host with the fewest so far, the
 * less recently advised and then the lower id first. Caps bound every host to its share. Returns how many
 * found no slot.
 */
const spreadOver = (slots: readonly Slot[], n: number): number => {
  let remaining = n;
  const perAz = new Map<string, number>();
  const order = (a: Slot, b: Slot) =>
    cmp(a.rank, b.rank) ||
    cmp(perAz.get(a.host.availabilityZone) ?? 0, perAz.get(b.host.availabilityZone) ?? 0) ||
    cmp(a.assigned, b.assigned) ||
    cmp(a.host.recentlyAdvised ?? 0, b.host.recentlyAdvised ?? 0) ||
    cmp(a.host.instanceId, b.host.instanceId);
  while (remaining > 0) {
    // The first open slot in `order` (a scan, not a sort per instance: ties keep the slots' order).
    let next: Slot | undefined;
    for (const slot of slots) if (slot.assigned < slot.cap && (!next || order(slot, next) < 0)) next = slot;
    if (!next) break;
    next.assigned += 1;
    perAz.set(next.host.availabilityZone, (perAz.get(next.host.availabilityZone) ?? 0) + 1);
    remaining -= 1;
  }
  return remaining;
};

const capOf = (host: PlacementHost, share: number): number =>
  Math.max(0, Math.min(share, host.freeSlots ?? Number.POSITIVE_INFINITY));

/**
 * Advises where to place `count` instances of `image` in a host group: on hosts that hold the
 * image, spread across AZs first and hosts second, no host above ceil(count / warm hosts).
 * Instances the warm hosts cannot take go to cold hosts: already fetching the image first, then
 * hosts with room for it, then hosts that make room by evicting unpinned images; those hosts are
 * returned in `warmHosts` so the caller starts the warm (demand for the planner).
 * Anything that still does not fit is `unplaced`. `spread` is `partial` with reasons whenever the
 * answer piles more than the even share somewhere, misses a requested AZ, or uses cold hosts.
 */
export const advisePlacement = (request: PlacementRequest): PlacementAdvice => {
  const { image, count } = request;
  const inScope = request.hosts.filter(
    (host) => request.azs === undefined || request.azs.includes(host.availabilityZone),
  );
  const entryOf = (host: PlacementHost) => host.entries.find((entry) => entry.imageId === image);
  const hasSlot = (host: PlacementHost) => (host.freeSlots ?? 1) > 0;

  const warm = inScope.filter((host) => entryOf(host)?.state === 'cached' && hasSlot(host));
  const share = warm.length === 0 ? 0 : Math.ceil(count / warm.length);
  const warmSlots: Slot[] = warm.map((host) => ({ host, cap: capOf(host, share), rank: 0, assigned: 0 }));
  const afterWarm = spreadOver(warmSlots, count);

  // A launch on a host without the image brings the image there (its own pull), so a cold host
  // qualifies when the image fits beside what it holds, or fits once unpinned cached images are
  // evicted (the planner admits the launch's image as demand and evicts the least valuable).
  // Hosts already downloading it come first: a second launch must not start a second download.
  const pins = new Set(request.pins ?? []);
  const coldRank = (host: PlacementHost): number | undefined => {
    const entry = entryOf(host);
    if (entry?.state === 'fetching') return 0;
    if (entry !== undefined && entry.state !== 'failed') return undefined;
    if (request.imageBytes === undefined) return undefined;
    const held = heldBytes(host.entries);
    if (held + request.imageBytes <= request.cacheBytes) return 1;
    const displaceable = host.entries
      .filter((other) => other.state === 'cached' && !pins.has(other.imageId))
      .reduce((sum, other) => sum + other.bytes, 0);
    return held - displaceable + request.imageBytes <= request.cacheBytes ? 2 : undefined;
  };
  const cold = inScope.flatMap((host) => {
    const rank = entryOf(host)?.state !== 'cached' && hasSlot(host) ? coldRank(host) : undefined;
    return rank === undefined ? [] : [{ host, rank }];
  });
  const coldShare = cold.length === 0 ? 0 : Math.ceil(afterWarm / cold.length);
  const coldSlots: Slot[] = cold.map(({ host, rank }) => ({
    host,
    cap: capOf(host, coldShare),
    rank,
    assigned: 0,
  }));
  const unplaced = spreadOver(coldSlots, afterWarm);

  const used = [...warmSlots, ...coldSlots].filter((slot) => slot.assigned > 0);
  const placements: Placement[] = used.map((slot) => ({
    instanceId: slot.host.instanceId,
    availabilityZone: slot.host.availabilityZone,
    count: slot.assigned,
    warm: warmSlots.includes(slot),
  }));
  const warmHosts = coldSlots
    .filter((slot) => slot.assigned > 0 && entryOf(slot.host)?.state !== 'fetching')
    .map((slot) => slot.host.instanceId);

  const reasons = spreadReasons(request, inScope, warm, placements, afterWarm, unplaced);
  return {
    image,
    hostGroup: request.hostGroup,
    requested: count,
    placements,
    placed: count - unplaced,
    unplaced,
    share,
    spread: reasons.length === 0 ? 'even' : 'partial',
    reasons,
    warmHosts,
    advisedAt: request.now,
  };
};

const spreadReasons = (
  request: PlacementRequest,
  inScope: readonly PlacementHost[],
  warm: readonly PlacementHost[],
  placements: readonly Placement[],
  onColdHosts: number,
  unplaced: number,
): string[] => {
  const reasons: string[] = [];
  if (inScope.length === 0) reasons.push('no host of the group in the requested AZs');
  else if (warm.length === 0) reasons.push('no host holds the image');
  else if (warm.length === 1 && request.count > 1) reasons.push('only one host holds the image');
  const azs = request.azs ?? [...new Set(inScope.map((host) => host.availabilityZone))];
  const warmAzs = new Set(warm.map((host) => host.availabilityZone));
  const missing = azs.filter((az) => !warmAzs.has(az));
  if (warm.length > 0 && missing.length > 0 && request.count > warmAzs.size)
    reasons.push(`no warm host in ${missing.sort().join(', ')}`);
  if (onColdHosts - unplaced > 0)
    reasons.push(`${onColdHosts - unplaced} instance(s) on hosts without the image (warming started)`);
  if (unplaced > 0) reasons.push(`${unplaced} instance(s) found no host with a free slot or room`);
  const counts = placements.map((placement) => placement.count);
  if (counts.length > 0 && Math.max(...counts) - Math.min(...counts) > 1)
    reasons.push('hosts got uneven shares (free slots limit some hosts)');
  return reasons;
};
