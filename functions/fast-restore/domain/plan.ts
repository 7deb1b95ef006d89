/**
 * Which snapshot-AZ pairs should have fast snapshot restore (FSR) on. Pure: popularity, the
 * current pairs and the budget in, enable/disable decisions out.
 *
 * Rules:
 * - Demand is the top `topPerAz` AMIs of each AZ by decayed launch score (at least `minScore`);
 *   an AMI needs FSR for each of its EBS snapshots in that AZ.
 * - Budget: at most `maxPairs` pairs and `maxUsdPerHour`, counting every pair warmboot manages
 *   that is billed or may still be (enabling, optimizing, enabled, disabling). Pairs someone
 *   else enabled are neither counted nor touched; a wanted pair they already cover is free.
 * - Units (an AMI in an AZ, all its pairs) are filled by score, highest first, all or nothing.
 *   An AMI that already has its pairs on counts its score × `hysteresis`, so a near-equal
 *   challenger does not flip it (FSR is billed per hour).
 * - An AMI that left the top set keeps its pairs while there is room, until `cooldownMs` after it
 *   was last wanted; then they are disabled.
 * - Never over budget, not even for a moment: enables this round only use room that exists now,
 *   counting pairs being disabled (this round's disables included) as still billed. Enables that
 *   do not fit yet are `deferred`; the `disabled` state event triggers the next round.
 */

export const FSR_STATES = ['enabling', 'optimizing', 'enabled', 'disabling', 'disabled'] as const;
export type FsrState = (typeof FSR_STATES)[number];

export interface PairKey {
  readonly snapshotId: string;
  readonly availabilityZone: string;
}

export interface CurrentPair extends PairKey {
  readonly state: FsrState;
  /** warmboot enabled it (recorded before the Enable call); only these are ever disabled. */
  readonly managed: boolean;
  readonly imageId?: string | undefined;
  /** Last time its AMI was in the AZ's top set, epoch ms. */
  readonly lastWantedAt?: number | undefined;
}

export interface AmiDemand {
  readonly imageId: string;
  readonly availabilityZone: string;
  readonly score: number;
  readonly snapshotIds: readonly string[];
}

export interface FastRestoreBudget {
  readonly maxPairs: number;
  readonly maxUsdPerHour: number;
}

export interface FastRestorePlanInput {
  readonly demand: readonly AmiDemand[];
  readonly current: readonly CurrentPair[];
  readonly budget: FastRestoreBudget;
  readonly usdPerPairHour: number;
  readonly topPerAz: number;
  readonly minScore: number;
  readonly cooldownMs: number;
  readonly hysteresis: number;
  readonly now: number;
}

export type PairReason =
  | 'hot'
  | 'cooling'
  | 'cooled-down'
  | 'outranked'
  | 'waiting-for-budget'
  | 'waiting-for-disable';

export interface PlannedPair extends PairKey {
  readonly imageId: string;
  readonly reason: PairReason;
}

export interface FastRestorePlan {
  /** Disable these first. */
  readonly disable: readonly PlannedPair[];
  /** Then enable these; they fit the budget even while this round's disables are in progress. */
  readonly enable: readonly PlannedPair[];
  /** Selected but not enabled this round (room appears once pairs finish disabling). */
  readonly deferred: readonly PlannedPair[];
  /** Managed pairs that stay on. */
  readonly keep: readonly PlannedPair[];
  /** Managed pairs whose AMI is in the top set now: their `lastWantedAt` becomes `now`. */
  readonly wanted: readonly PairKey[];
  /** What warmboot pays once this plan has converged. */
  readonly target: { readonly pairs: number; readonly usdPerHour: number };
  /** The tighter of the two budgets, in pairs. */
  readonly maxPairs: number;
}

const ACTIVE: ReadonlySet<FsrState> = new Set(['enabling', 'optimizing', 'enabled']);
const BILLED: ReadonlySet<FsrState> = new Set(['enabling', 'optimizing', 'enabled', 'disabling']);

export const pairId = (pair: PairKey): string => `${pair.snapshotId}@${pair.availabilityZone}`;

interface Unit {
  readonly imageId: string;
  readonly availabilityZone: string;
  readonly priority: number;
  readonly wanted: boolean;
  readonly cooledDown: boolean;
  readonly pairs: readonly PairKey[];
}

const byScoreThenId = (a: AmiDemand, b: AmiDemand): number =>
  b.score - a.score || a.imageId.localeCompare(b.imageId);

export const planFastRestore = (input: FastRestorePlanInput): FastRestorePlan => {
  const maxPairs = Math.max(
    0,
    Math.min(input.budget.maxPairs, Math.floor(input.budget.maxUsdPerHour / input.usdPerPairHour + 1e-9)),
  );
  const current = new Map(input.current.map((pair) => [pairId(pair), pair]));
  const isManagedActive = (pair: CurrentPair | undefined): boolean =>
    pair?.managed === true && ACTIVE.has(pair.state);
  const coveredByOthers = (key: PairKey): boolean => {
    const pair = current.get(pairId(key));
    return pair !== undefined && !pair.managed && ACTIVE.has(pair.state);
  };

  // Demand: the top AMIs of each AZ.
  const demandByAz = new Map<string, AmiDemand[]>();
  for (const demand of input.demand) {
    if (demand.score < input.minScore || demand.snapshotIds.length === 0) continue;
    demandByAz.set(demand.availabilityZone, [...(demandByAz.get(demand.availabilityZone) ?? []), demand]);
  }
  const hot = [...demandByAz.values()].flatMap((list) => list.sort(byScoreThenId).slice(0, input.topPerAz));
  const unitId = (imageId: string, az: string): string => `${imageId}@${az}`;
  const hotUnits = new Set(hot.map((demand) => unitId(demand.imageId, demand.availabilityZone)));

  const units: Unit[] = hot.map((demand) => {
    const pairs = demand.snapshotIds
      .map((snapshotId) => ({ snapshotId, availabilityZone: demand.availabilityZone }))
      .filter((pair) => !coveredByOthers(pair));
    const incumbent = pairs.length > 0 && pairs.every((pair) => isManagedActive(current.get(pairId(pair))));
    return {
      imageId: demand.imageId,
      availabilityZone: demand.availabilityZone,
      priority: demand.score * (incumbent ? input.hysteresis : 1),
      wanted: true,
      cooledDown: false,
      pairs,
    };
  });

  // Managed pairs whose AMI left the top set: cooling until the cool-down passes.
  const leftovers = new Map<string, CurrentPair[]>();
  for (const pair of input.current) {
    if (!isManagedActive(pair)) continue;
    const id = unitId(pair.imageId ?? pair.snapshotId, pair.availabilityZone);
    if (hotUnits.has(id)) continue;
    leftovers.set(id, [...(leftovers.get(id) ?? []), pair]);
  }
  for (const pairs of leftovers.values()) {
    const first = pairs[0] as CurrentPair;
    const lastWantedAt = Math.max(...pairs.map((pair) => pair.lastWantedAt ?? 0));
    units.push({
      imageId: first.imageId ?? 'unknown',
      availabilityZone: first.availabilityZone,
      // Below every wanted unit; among themselves, the most recently wanted first.
      priority: -1 / (1 + Math.max(0, input.now - lastWantedAt)),
      wanted: false,
      cooledDown: input.now - lastWantedAt >= input.cooldownMs,
      pairs: pairs.map(({ snapshotId, availabilityZone }) => ({ snapshotId, availabilityZone })),
    });
  }

  // Fill the budget by priority, all of a unit or nothing.
  units.sort((a, b) => b.priority - a.priority || a.imageId.localeCompare(b.imageId));
  const selected = new Map<string, { unit: Unit; pair: PairKey }>();
  const unselected: { unit: Unit; pair: PairKey }[] = [];
  for (const unit of units) {
    const fits = !unit.cooledDown && selected.size + unit.pairs.length <= maxPairs;
    for (const pair of unit.pairs) {
      if (fits) selected.set(pairId(pair), { unit, pair });
      else unselected.push({ unit, pair });
    }
  }

  const disable: PlannedPair[] = [];
  for (const { unit, pair } of unselected) {
    // A snapshot shared by two AMIs may be selected through the other one.
    if (selected.has(pairId(pair)) || !isManagedActive(current.get(pairId(pair)))) continue;
    disable.push({ ...pair, imageId: unit.imageId, reason: unit.cooledDown ? 'cooled-down' : 'outranked' });
  }

  const keep: PlannedPair[] = [];
  const enable: PlannedPair[] = [];
  const deferred: PlannedPair[] = [];
  let billedNow = input.current.filter((pair) => pair.managed && BILLED.has(pair.state)).length;
  for (const { unit, pair } of selected.values()) {
    const existing = current.get(pairId(pair));
    const reason: PairReason = unit.wanted ? 'hot' : 'cooling';
    if (isManagedActive(existing)) keep.push({ ...pair, imageId: unit.imageId, reason });
    else if (existing?.state === 'disabling')
      deferred.push({ ...pair, imageId: unit.imageId, reason: 'waiting-for-disable' });
    else if (billedNow < maxPairs) {
      enable.push({ ...pair, imageId: unit.imageId, reason });
      billedNow++;
    } else deferred.push({ ...pair, imageId: unit.imageId, reason: 'waiting-for-budget' });
  }

  const wanted = input.current
    .filter(
      (pair) => pair.managed && hotUnits.has(unitId(pair.imageId ?? pair.snapshotId, pair.availabilityZone)),
    )
    .map(({ snapshotId, availabilityZone }) => ({ snapshotId, availabilityZone }));

  return {
    disable,
    enable,
    deferred,
    keep,
    wanted,
    target: { pairs: selected.size, usdPerHour: selected.size * input.usdPerPairHour },
    maxPairs,
  };
};
