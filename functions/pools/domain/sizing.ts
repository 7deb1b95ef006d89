import type { PoolSpec } from '../config';

/**
 * Demand sizing. A pool of n ready members that is refilled after every claim is a loss system:
 * requests arrive at rate λ, each hit takes one member away for the refill time T (launch +
 * initialize + stop), and a request that finds no ready member is served cold (it is "lost" to the
 * pool). With Poisson arrivals that is Erlang's loss model M/G/n/n, whose blocking probability
 * B(n, a) with offered load a = λT holds for any distribution of T (Erlang-B insensitivity). The
 * pool serves 1 − B(n, a) of its requests, so the size is the smallest n with
 * 1 − B(n, a) ≥ target, clamped to [min, max].
 */
export const erlangB = (servers: number, offeredLoad: number): number => {
  let blocking = 1;
  for (let k = 1; k <= servers; k++) blocking = (offeredLoad * blocking) / (k + offeredLoad * blocking);
  return blocking;
};

/** Smallest n with 1 − B(n, a) ≥ target (n ≤ limit). */
export const membersForHitShare = (offeredLoad: number, target: number, limit = 500): number => {
  if (offeredLoad <= 0) return 0;
  for (let n = 1; n <= limit; n++) if (1 - erlangB(n, offeredLoad) >= target) return n;
  return limit;
};

/** Measured EC2 timings (docs/ec2-timings.md: brevdev/ec2-coldboot-research, m7i.large). */
export const TIMINGS = {
  coldLaunchSeconds: 25.8,
  startStoppedSeconds: 21.2,
  runningConnectSeconds: 1.9,
  /** Stop of an initialized member until EC2 reports stopped (simulator calibration). */
  stopSeconds: 10,
  /** Windows launches "often take 15 minutes or longer" (AWS EC2 Windows guide). */
  windowsInitializeSeconds: 15 * 60,
  linuxInitializeSeconds: 120,
  /**
   * From `running` until the member's SSM agent has registered and the init command can be sent.
   * AWS publishes no figure: tens of seconds on Linux; on Windows after the first-boot tasks, "a
   * few minutes" and up to 15 (API_GetPasswordData). The middle of the ranges the local cloud
   * assumes (docs/ssm-fidelity.md, "Agent registration").
   */
  linuxAgentRegistrationSeconds: 40,
  windowsAgentRegistrationSeconds: 9.5 * 60,
} as const;

/** Time from a claim until its replacement is ready: launch, initialize, and stop for the stopped tier. */
export const refillSeconds = (initializeSeconds: number, tier: 'stopped' | 'running'): number =>
  TIMINGS.coldLaunchSeconds + initializeSeconds + (tier === 'stopped' ? TIMINGS.stopSeconds : 0);

/**
 * Prices the break-even scale-down uses when a pool does not set its own: m7i.large on-demand
 * (us-east-1) and gp3 storage, the bench's prices.
 */
export const DEFAULT_PRICES = { instanceHourUsd: 0.1008, ebsGbMonthUsd: 0.08 } as const;
const HOURS_PER_MONTH = 730;

/**
 * How long a surplus ready member must have idled before retiring it is cheaper than keeping it:
 * a replacement costs its refill time at instance + storage prices (launch, initialize, stop), a
 * kept member costs its idle price per hour (storage only on the stopped tier, instance + storage
 * on the running tier). Keeping a member up to this long and retiring it after is the
 * rent-or-buy rule: never more than twice what hindsight would have paid. With the default
 * prices and 30 GiB: ≈ 1.4 h for Linux (120 s init), ≈ 8.2 h for Windows-like (900 s init).
 */
export const breakEvenIdleMs = (input: {
  readonly tier: 'stopped' | 'running';
  readonly volumeGiB: number;
  readonly initializeSeconds: number;
  readonly instanceHourUsd: number;
  readonly ebsGbMonthUsd: number;
}): number => {
  const storageHourUsd = (input.volumeGiB * input.ebsGbMonthUsd) / HOURS_PER_MONTH;
  const replacementUsd =
    (refillSeconds(input.initializeSeconds, input.tier) / 3600) * (input.instanceHourUsd + storageHourUsd);
  const idleHourUsd = storageHourUsd + (input.tier === 'running' ? input.instanceHourUsd : 0);
  return idleHourUsd > 0 ? (replacementUsd / idleHourUsd) * 3_600_000 : Number.POSITIVE_INFINITY;
};

/** Recent and expected request rate of one pool, from per-minute request counters. */
export interface Demand {
  /** Requests per hour over the last 15 minutes (reacts to bursts). */
  readonly shortRatePerHour: number;
  /** Requests per hour over the last hour (rides through gaps between bursts). */
  readonly recentRatePerHour: number;
  /**
   * Requests per hour in the coming hour one day earlier: the daily cycle says what is about to
   * arrive, so a pool grows before the morning peak and shrinks at night instead of holding its
   * daytime size for hours.
   */
  readonly dailyRatePerHour: number;
}

export const DEMAND_WINDOWS = {
  shortMinutes: 15,
  recentMinutes: 60,
  dailyLagMinutes: 24 * 60,
  dailyMinutes: 60,
} as const;
/** The oldest counter sizing reads, relative to now (the counters' TTL must cover it). */
export const DEMAND_HISTORY_MINUTES = DEMAND_WINDOWS.dailyLagMinutes;

/** Per-minute counters → the three rates. `counts` maps minute (epoch ms, floored) to requests. */
export const demandFromCounts = (counts: ReadonlyMap<number, number>, now: number): Demand => {
  let short = 0;
  let recent = 0;
  let daily = 0;
  const { shortMinutes, recentMinutes, dailyLagMinutes, dailyMinutes } = DEMAND_WINDOWS;
  for (const [minute, requests] of counts) {
    const ageMinutes = (now - minute) / 60_000;
    if (ageMinutes < 0) continue;
    if (ageMinutes < shortMinutes) short += requests;
    if (ageMinutes < recentMinutes) recent += requests;
    if (ageMinutes <= dailyLagMinutes && ageMinutes > dailyLagMinutes - dailyMinutes) daily += requests;
  }
  return {
    shortRatePerHour: (short * 60) / shortMinutes,
    recentRatePerHour: (recent * 60) / recentMinutes,
    dailyRatePerHour: (daily * 60) / dailyMinutes,
  };
};

/** The rate sizing plans for: the largest of the windows (scale up fast, down with the daily cycle). */
export const planningRate = (demand: Demand): number =>
  Math.max(demand.shortRatePerHour, demand.recentRatePerHour, demand.dailyRatePerHour);

/** Where the last sizing decision left the pool; persisted on the pool record. */
export interface SizingState {
  readonly targetSize: number;
  readonly runningSize: number;
  /** Last time targetSize changed (ms), for the scale-down cool-down. */
  readonly changedAt: number;
}

export interface SizingDecision extends SizingState {
  /**
   * A ready member above the target is retired only once it has idled this long (break-even,
   * `retireSurplus: 'after-break-even'`); absent: at once (the default, and fixed pools, whose
   * size the operator chose).
   */
  readonly retireSurplusAfterIdleMs?: number;
  readonly ratePerHour: number;
  readonly offeredLoad: number;
  readonly reason: string;
}

/**
 * The pool's target size and how many ready members stay running. Fixed pools keep minSize
 * (all running for the running tier). Demand pools use the Erlang-loss size; a larger size
 * applies at once, a smaller one only one member at a time after the cool-down, so a lull
 * between bursts does not throw away members that took minutes to initialize.
 * The running tier: a pool whose rate reaches `runningTierAbovePerHour` keeps enough members
 * running that a hot member is there for the target share of requests while the stopped ones
 * are started behind it (offered load λ × start time).
 */
export const decideSize = (input: {
  readonly spec: PoolSpec;
  readonly demand: Demand;
  readonly previous: SizingState | undefined;
  readonly initializeSeconds: number;
  readonly now: number;
}): SizingDecision => {
  const { spec, demand, previous, now } = input;
  const rate = planningRate(demand);
  const clamp = (n: number): number => Math.min(spec.maxSize, Math.max(spec.minSize, n));
  if (spec.sizing.mode === 'fixed') {
    const size = clamp(spec.minSize);
    return {
      targetSize: size,
      runningSize: spec.tier === 'running' ? size : 0,
      changedAt: previous?.targetSize === size ? previous.changedAt : now,
      ratePerHour: rate,
      offeredLoad: 0,
      reason: 'fixed size',
    };
  }
  const { targetHitShare, runningTierAbovePerHour, scaleDownCooldownMinutes } = spec.sizing;
  const offeredLoad = (rate / 3600) * refillSeconds(input.initializeSeconds, spec.tier);
  const wanted = clamp(membersForHitShare(offeredLoad, targetHitShare, spec.maxSize));
  let targetSize = wanted;
  let changedAt = now;
  let reason = `Erlang-B size for λ=${rate.toFixed(2)}/h, a=${offeredLoad.toFixed(3)}`;
  if (previous !== undefined && wanted < previous.targetSize) {
    const cooled = now - previous.changedAt >= scaleDownCooldownMinutes * 60_000;
    targetSize = cooled ? previous.targetSize - 1 : previous.targetSize;
    changedAt = cooled ? now : previous.changedAt;
    reason = cooled
      ? `scale down one member toward ${wanted}`
      : `hold ${previous.targetSize} during cool-down`;
  } else if (previous !== undefined && wanted === previous.targetSize) {
    changedAt = previous.changedAt;
  }
  const hot =
    spec.tier === 'running' || (runningTierAbovePerHour !== undefined && rate >= runningTierAbovePerHour);
  const runningSize = !hot
    ? 0
    : spec.tier === 'running'
      ? targetSize
      : Math.min(
          targetSize,
          membersForHitShare(
            (rate / 3600) * TIMINGS.startStoppedSeconds,
            spec.sizing.runningTierHitShare ?? targetHitShare,
            targetSize,
          ),
        );
  const breakEven =
    spec.sizing.retireSurplus === 'after-break-even'
      ? {
          retireSurplusAfterIdleMs: breakEvenIdleMs({
            tier: spec.tier,
            volumeGiB: spec.volumeSizeGiB,
            initializeSeconds: input.initializeSeconds,
            instanceHourUsd: spec.sizing.instanceHourUsd ?? DEFAULT_PRICES.instanceHourUsd,
            ebsGbMonthUsd: spec.sizing.ebsGbMonthUsd ?? DEFAULT_PRICES.ebsGbMonthUsd,
          }),
        }
      : {};
  return {
    targetSize,
    runningSize,
    changedAt,
    ...breakEven,
    ratePerHour: rate,
    offeredLoad,
    reason,
  };
};

/** From `running` until a member is initialized: its SSM agent registers, then the init runs. */
export const initializeSecondsOf = (spec: PoolSpec): number =>
  spec.initialization.platform === 'windows'
    ? TIMINGS.windowsAgentRegistrationSeconds + TIMINGS.windowsInitializeSeconds
    : TIMINGS.linuxAgentRegistrationSeconds + TIMINGS.linuxInitializeSeconds;
