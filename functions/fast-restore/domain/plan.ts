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
 * - Hysteresis: an AMI that already has its pairs on (the incumbent) counts its score ×
 *   `hysteresis` wherever it is compared with a challenger: in its AZ's top-`topPerAz` cut and in
 *   the budget fill alike. A challenger thus needs more than `hysteresis` × the incumbent's score
 *   to take its place (FSR is billed per hour); the caller passes the incumbents' scores in
 *   `demand` even when they are not in the AZ's raw top list.
 * - Minimum hold: FSR is billed per minute with a one-hour minimum per enable, so disabling a pair
 *   in its first hour saves nothing and re-enabling elsewhere pays again. A managed pair enabled
 *   less than `minHoldMs` ago keeps its place in the budget: challengers wait (`deferred`,
 *   `waiting-for-hold`) and a cooled-down AMI is disabled only once the hold is over. Only a
 *   budget lowered below the held pairs sheds some of them (`over-budget`).
 * - An AMI that left the top set keeps its pairs while there is room, until `cooldownMs` after it
 *   was last wanted; then they are disabled.
 * - Never over budget, not even for a moment: enables this round only use room that exists now,
 *   counting pairs being disabled (this round's disables included) as still billed. Enables that
 *   do not fit yet are `deferred`; the `disabled` state event triggers the next round.
 */

export const FSR_STATES = ['enabling', 'optimizing', 'enabled', 'disabling', 'disabled'] as const;
export type FsrState = (typeof FSR_STATES)[number];
export const isFsrState = (value: string | undefined): value is FsrState =>
  FSR_STATES.includes(value as FsrState);

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
  /** When warmboot last asked EC2 to enable it, epoch ms: its billing (and hold) starts here. */
  readonly enabledAt?: number | undefined;
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
  /** A managed pair stays at least this long after its enable (≥ FSR's one-hour billing minimum). */
  readonly minHoldMs: number;
  readonly now: number;
}

export type PairReason =
  | 'hot'
  | 'cooling'
  /** Kept only because its minimum hold (the first billed hour) is not over. */
  | 'held'
  | 'cooled-down'
  | 'outranked'
  /** Held, but the budget was lowered below the held pairs. */
  | 'over-budget'
  | 'waiting-for-budget'
  | 'waiting-for-disable'
  /** Would displace a pair whose minimum hold is not over; goes once the hold ends. */
  | 'waiting-for-hold';

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

interface Slot {
  readonly unit: Unit;
  readonly pair: PairKey;
}

const byPriorityThenId = (a: Unit, b: Unit): number =>
  b.priority - a.priority ||
  a.imageId.localeCompare(b.imageId) ||
  a.availabilityZone.localeCompare(b.availabilityZone);

const unitId = (imageId: string, az: string): string => `${imageId}@${az}`;

/** Greedy fill by priority, all of a unit or nothing; a pair two units share is paid once. */
const fillByPriority = (units: readonly Unit[], maxPairs: number) => {
  const selected = new Map<string, Slot>();
  const chosen: Unit[] = [];
  for (const unit of units) {
    if (unit.cooledDown) continue;
    const missing = unit.pairs.filter((pair) => !selected.has(pairId(pair)));
    if (selected.size + missing.length > maxPairs) continue;
    for (const pair of missing) selected.set(pairId(pair), { unit, pair });
    chosen.push(unit);
  }
  return { selected, chosen };
};

export const planFastRestore = (input: FastRestorePlanInput): FastRestorePlan => {
  const maxPairs = Math.max(
    0,
    Math.min(input.budget.maxPairs, Math.floor(input.budget.maxUsdPerHour / input.usdPerPairHour + 1e-9)),
  );
  const current = new Map(input.current.map((pair) => [pairId(pair), pair]));
  const isManagedActive = (pair: CurrentPair | undefined): boolean =>
    pair?.managed === true && ACTIVE.has(pair.state);
  const isHeld = (pair: CurrentPair | undefined): boolean =>
    isManagedActive(pair) && pair?.enabledAt !== undefined && input.now - pair.enabledAt < input.minHoldMs;
  const coveredByOthers = (key: PairKey): boolean => {
    const pair = current.get(pairId(key));
    return pair !== undefined && !pair.managed && ACTIVE.has(pair.state);
  };

  // Candidates per AZ, one unit per AMI; an incumbent counts score × hysteresis from here on, so
  // the top-N cut and the budget fill compare the same numbers.
  const candidates = new Map<string, Unit>();
  for (const demand of input.demand) {
    if (demand.score < input.minScore || demand.snapshotIds.length === 0) continue;
    const pairs = [...new Set(demand.snapshotIds)]
      .map((snapshotId) => ({ snapshotId, availabilityZone: demand.availabilityZone }))
      .filter((pair) => !coveredByOthers(pair));
    const incumbent = pairs.length > 0 && pairs.every((pair) => isManagedActive(current.get(pairId(pair))));
    const unit: Unit = {
      imageId: demand.imageId,
      availabilityZone: demand.availabilityZone,
      priority: demand.score * (incumbent ? input.hysteresis : 1),
      wanted: true,
      cooledDown: false,
      pairs,
    };
    const id = unitId(demand.imageId, demand.availabilityZone);
    const seen = candidates.get(id);
    if (!seen || seen.priority < unit.priority) candidates.set(id, unit);
  }
  const candidatesByAz = new Map<string, Unit[]>();
  for (const unit of candidates.values())
    candidatesByAz.set(unit.availabilityZone, [...(candidatesByAz.get(unit.availabilityZone) ?? []), unit]);
  const units = [...candidatesByAz.values()].flatMap((list) =>
    list.sort(byPriorityThenId).slice(0, input.topPerAz),
  );
  const hotUnits = new Set(units.map((unit) => unitId(unit.imageId, unit.availabilityZone)));
  const hotPairs = new Set(units.flatMap((unit) => unit.pairs.map(pairId)));

  // Managed pairs no hot AMI needs: cooling until the cool-down passes.
  const leftovers = new Map<string, CurrentPair[]>();
  for (const pair of input.current) {
    if (!isManagedActive(pair) || hotPairs.has(pairId(pair))) continue;
    const id = unitId(pair.imageId ?? pair.snapshotId, pair.availabilityZone);
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
  units.sort(byPriorityThenId);

  // What the budget buys if every pair could change now.
  const ideal = fillByPriority(units, maxPairs);
  const selected = new Map(ideal.selected);

  // Held pairs the ideal would drop stay: their first billed hour is paid whatever happens. Their
  // room comes from challengers (units with nothing on yet), the least valuable first; those wait.
  const heldOut: Slot[] = [];
  for (const unit of units)
    for (const pair of unit.pairs) {
      const id = pairId(pair);
      if (isHeld(current.get(id)) && !selected.has(id) && !heldOut.some((slot) => pairId(slot.pair) === id))
        heldOut.push({ unit, pair });
    }
  const waitingForHold: Slot[] = [];
  const overBudget = new Set<string>();
  let excess = selected.size + heldOut.length - maxPairs;
  const release = (unit: Unit, onto: (slot: Slot) => void): void => {
    for (const pair of unit.pairs) {
      if (selected.get(pairId(pair))?.unit !== unit) continue;
      selected.delete(pairId(pair));
      onto({ unit, pair });
      excess--;
    }
  };
  for (const unit of [...ideal.chosen].reverse()) {
    if (excess <= 0) break;
    if (!unit.pairs.some((pair) => isManagedActive(current.get(pairId(pair)))))
      release(unit, (slot) => waitingForHold.push(slot));
  }
  // Still too many: the budget was lowered below what is on. Shed pairs past their hold first
  // (that saves money at once; a held pair bills its first hour anyway), the least valuable first.
  for (const unit of [...ideal.chosen].reverse()) {
    if (excess <= 0) break;
    if (!unit.pairs.some((pair) => isHeld(current.get(pairId(pair)))))
      release(unit, (slot) => overBudget.add(pairId(slot.pair)));
  }
  const heldOnly = new Set<string>();
  for (const slot of heldOut) {
    const id = pairId(slot.pair);
    if (selected.size < maxPairs) {
      selected.set(id, slot);
      heldOnly.add(id);
    } else overBudget.add(id);
  }

  const disable: PlannedPair[] = [];
  const disabled = new Set<string>();
  for (const unit of units)
    for (const pair of unit.pairs) {
      const id = pairId(pair);
      // A snapshot shared by two AMIs may be selected through the other one.
      if (selected.has(id) || disabled.has(id) || !isManagedActive(current.get(id))) continue;
      disabled.add(id);
      const reason: PairReason = overBudget.has(id)
        ? 'over-budget'
        : unit.cooledDown
          ? 'cooled-down'
          : 'outranked';
      disable.push({ ...pair, imageId: unit.imageId, reason });
    }

  const keep: PlannedPair[] = [];
  const enable: PlannedPair[] = [];
  const deferred: PlannedPair[] = [];
  let billedNow = input.current.filter((pair) => pair.managed && BILLED.has(pair.state)).length;
  for (const [id, { unit, pair }] of selected) {
    const existing = current.get(id);
    const reason: PairReason = heldOnly.has(id) ? 'held' : unit.wanted ? 'hot' : 'cooling';
    if (isManagedActive(existing)) keep.push({ ...pair, imageId: unit.imageId, reason });
    else if (existing?.state === 'disabling')
      deferred.push({ ...pair, imageId: unit.imageId, reason: 'waiting-for-disable' });
    else if (billedNow < maxPairs) {
      enable.push({ ...pair, imageId: unit.imageId, reason });
      billedNow++;
    } else deferred.push({ ...pair, imageId: unit.imageId, reason: 'waiting-for-budget' });
  }
  for (const { unit, pair } of waitingForHold)
    deferred.push({ ...pair, imageId: unit.imageId, reason: 'waiting-for-hold' });

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
