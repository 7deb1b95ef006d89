import { TIMINGS } from '../functions/pools/domain/sizing';
import { type Trace, traceLabel } from '../local/trace';
import { type BenchArgs, BenchUsageError, type FlagSpec, numberFlag } from './args';
import { POOL_AIM } from './pool-baselines';
import { choosePlatforms, type PlatformInput } from './pool-platform';
import {
  evaluateTrace,
  INSTANCE_TYPE,
  type PoolSettings,
  RECONCILE_PERIOD_S,
  type Variant,
} from './pool-run';
import type { BenchResult, Metrics, Scenario } from './report';
import { resolveTraces, TRACE_FLAG } from './traces';
import { summarize, traceWindows } from './windows';

/**
 * `npm run bench -- pool`: prestarted pools on request traces (docs/benchmarks.md, pool).
 * Pooled images: those that make 80% of the requests in the first 24 h (at most 50). On every
 * trace of `--traces`, in one run: none (cold launch + initialize every time), the fixed warm pool
 * (Auto Scaling warm-pool semantics: one uniform size, stopped tier, refilled after each claim)
 * and its cost interpolated at warmboot's hit ratio, the per-pool static sizes chosen with
 * hindsight, and warmboot (Erlang-loss demand sizing, production's code and demand history);
 * then warmboot and both baselines again on every `--window-days` slice of each trace.
 */

const FLAGS = {
  windowDays: {
    name: 'window-days',
    description: 'length of the robustness slices, days (0: no robustness rows, for sweeps)',
    default: '7',
  },
  linuxInit: {
    name: 'linux-init-s',
    description: 'Linux init command, seconds (after agent registration)',
    default: '120',
  },
  windowsInit: {
    name: 'windows-init-s',
    description: 'Windows-like init command (sysprep, OOBE), seconds (after agent registration); >= 900',
    default: '900',
  },
  windowsImages: {
    name: 'windows-images',
    description:
      'traces without a platform column: comma-separated Windows-like image ids (none: use --windows-share/--windows-start)',
    default: 'none',
  },
  windowsShare: {
    name: 'windows-share',
    description:
      'traces without a platform column and without --windows-images: share of images that are Windows-like',
    default: '0.25',
  },
  windowsStart: {
    name: 'windows-start',
    description:
      'with --windows-share S: images ranked by requests over the whole trace, Windows-like at ranks R, R + round(1/S), ...',
    default: '1',
  },
  volume: { name: 'volume-gib', description: 'root volume per member, GiB (gp3)', default: '30' },
  ebsPrice: { name: 'ebs-gb-month-usd', description: 'gp3 storage price, USD per GB-month', default: '0.08' },
  instancePrice: {
    name: 'instance-hour-usd',
    description: 'instance price, USD per hour (m7i.large, us-east-1 on-demand)',
    default: '0.1008',
  },
  // The warmboot defaults below were chosen on the generated traces only (docs/benchmarks.md,
  // pool, "How the defaults were chosen") and are frozen: the Alibaba rows test them.
  target: { name: 'target-hit-share', description: 'warmboot sizing target (Erlang-loss)', default: '0.95' },
  retire: {
    name: 'retire-surplus',
    description: 'warmboot: at-once or after-break-even (the other rule is reported as a variant)',
    default: 'after-break-even',
  },
  hot: {
    name: 'running-tier-above-per-hour',
    description:
      'warmboot: the hottest pools keep members running in hours at or above this rate (0: stopped tier only)',
    default: '0',
  },
  hotPools: {
    name: 'running-tier-pools',
    description: 'warmboot: how many of the hottest pools (first-24 h requests) get the running tier',
    default: '1',
  },
  hotShare: {
    name: 'running-tier-hit-share',
    description: 'warmboot: share of requests the running members serve hot (Erlang-B on 21.2 s)',
    default: '0.5',
  },
  cooldown: {
    name: 'scale-down-cooldown-min',
    description: 'warmboot: minutes between two one-member scale-down steps',
    default: '30',
  },
  minSize: { name: 'min-size', description: 'warmboot pools: min size', default: '0' },
  maxSize: { name: 'max-size', description: 'every pool: max size (the quota)', default: '40' },
  personalize: { name: 'personalize-s', description: 'personalization over SSM, seconds', default: '3' },
} as const satisfies Record<string, FlagSpec>;

const RETIRE_RULES = ['at-once', 'after-break-even'] as const;
type RetireRule = (typeof RETIRE_RULES)[number];

const retireRuleOf = (args: BenchArgs): RetireRule => {
  const text = args.flags.get(FLAGS.retire.name) ?? FLAGS.retire.default;
  const rule = RETIRE_RULES.find((candidate) => candidate === text);
  if (rule === undefined)
    throw new BenchUsageError(`--${FLAGS.retire.name} must be ${RETIRE_RULES.join(' or ')}, got '${text}'`);
  return rule;
};

const settingsOf = (args: BenchArgs): PoolSettings => ({
  linuxInitS: numberFlag(args, FLAGS.linuxInit, { min: 0 }),
  windowsInitS: numberFlag(args, FLAGS.windowsInit, { min: 900 }),
  volumeGiB: numberFlag(args, FLAGS.volume, { min: 8, integer: true }),
  prices: {
    ebsGbMonthUsd: numberFlag(args, FLAGS.ebsPrice, { min: 0 }),
    instanceHourUsd: numberFlag(args, FLAGS.instancePrice, { min: 0 }),
  },
  targetHitShare: numberFlag(args, FLAGS.target, { min: 0.5 }),
  runningTierAbovePerHour: numberFlag(args, FLAGS.hot, { min: 0 }),
  runningTierPools: numberFlag(args, FLAGS.hotPools, { min: 0, integer: true }),
  runningTierHitShare: numberFlag(args, FLAGS.hotShare, { min: 0.1 }),
  cooldownMinutes: numberFlag(args, FLAGS.cooldown, { min: 1, integer: true }),
  minSize: numberFlag(args, FLAGS.minSize, { min: 0, integer: true }),
  maxSize: numberFlag(args, FLAGS.maxSize, { min: 1, integer: true }),
  personalizeSeconds: numberFlag(args, FLAGS.personalize, { min: 0 }),
});

const platformInputOf = (args: BenchArgs): PlatformInput => {
  const listed = args.flags.get(FLAGS.windowsImages.name);
  const images =
    listed === undefined || listed === 'none' ? undefined : listed.split(',').map((id) => id.trim());
  if (images?.some((id) => id === ''))
    throw new BenchUsageError(`--windows-images has an empty entry: '${listed}'`);
  return {
    ...(images === undefined ? {} : { windowsImages: images }),
    windowsShare: numberFlag(args, FLAGS.windowsShare, { min: 0 }),
    windowsStart: numberFlag(args, FLAGS.windowsStart, { min: 1, integer: true }),
  };
};

const fixed3 = (value: number): string => (Number.isFinite(value) ? value.toFixed(3) : 'n/a');

/** The report's words for a trace's source: what was read, and what the loader repaired. */
const sourceOf = (trace: Trace): string => {
  const repairs = Object.entries(trace.repairs)
    .map(([reason, count]) => `${reason}: ${count}`)
    .join(', ');
  const read =
    trace.path === null
      ? `generated in memory (${trace.format})`
      : `read from ${traceLabel(trace.path)} (${trace.format})`;
  return `${trace.name}: ${read}, ${trace.requests.length} requests${repairs ? `; loader: ${repairs}` : ''}`;
};

export const runPoolBench = async (args: BenchArgs): Promise<BenchResult> => {
  const settings = settingsOf(args);
  const platformInput = platformInputOf(args);
  const windowDays = numberFlag(args, FLAGS.windowDays, { min: 0, integer: true });
  const traces = resolveTraces(args);
  const retire = retireRuleOf(args);
  const otherRetire = retire === 'at-once' ? 'after-break-even' : 'at-once';
  const hotTier = settings.runningTierAbovePerHour > 0 && settings.runningTierPools > 0;
  const variants: Record<string, Variant> = {
    warmboot: { runningTier: hotTier, retireSurplus: retire },
    ...(hotTier ? { 'warmboot-stopped-only': { runningTier: false, retireSurplus: retire } } : {}),
    [otherRetire === 'at-once' ? 'warmboot-at-once' : 'warmboot-break-even']: {
      runningTier: hotTier,
      retireSurplus: otherRetire,
    },
  };
  const policies: Record<string, Metrics> = {};
  const parameters: Record<string, string | number> = {};
  const notes: string[] = [];
  for (const trace of traces) {
    const platforms = choosePlatforms(trace, platformInput);
    const evaluation = evaluateTrace(trace, settings, platforms.platformOf, variants);
    for (const [policy, metrics] of Object.entries(evaluation.rows))
      policies[`${trace.name}/${policy}`] = metrics;
    const slices = windowDays === 0 ? [] : traceWindows(trace, windowDays);
    const windows = slices.map((window) => {
      const judged = evaluateTrace(window, settings, platforms.platformOf, {
        warmboot: variants.warmboot as Variant,
      }).variants.warmboot;
      if (judged === undefined) throw new Error('the window run lost its warmboot variant');
      return judged.judgement;
    });
    const spread = (name: string, values: readonly number[]): Metrics => {
      const finite = values.filter(Number.isFinite);
      if (finite.length === 0) return {};
      const { min, median, max } = summarize(finite);
      return { [`${name}_min`]: min, [`${name}_median`]: median, [`${name}_max`]: max };
    };
    if (windows.length > 0)
      policies[`${trace.name}/warmboot-windows`] = {
        windows: windows.length,
        ...spread(
          'pool_hit_ratio',
          windows.map((judged) => judged.hitRatio),
        ),
        ...spread(
          'vs_fixed_interpolated',
          windows.map((judged) => judged.vsInterpolatedFixed),
        ),
        ...spread(
          'vs_static_hindsight',
          windows.map((judged) => judged.vsHindsightStatic),
        ),
        aim_met_windows: windows.filter((judged) => judged.met).length,
      };
    const pooledWindows = evaluation.pooled.filter((image) => platforms.platformOf(image) === 'windows');
    parameters[`pools_${trace.name}`] = evaluation.pooled.length;
    parameters[`pooled_requests_${trace.name}`] = evaluation.pooledRequests;
    parameters[`windows_like_pools_${trace.name}`] = pooledWindows.join(' ') || 'none';
    const main = evaluation.variants.warmboot;
    if (slices.length > 0) {
      notes.push(
        `${trace.name}: robustness slices ${slices.map((slice) => slice.name).join(', ')}: warmboot meets the aim on ${windows.filter((judged) => judged.met).length} of ${slices.length}`,
      );
    }
    notes.push(
      `source: ${sourceOf(trace)}`,
      `${trace.name}: pooled images (80% of the first 24 h): ${evaluation.pooled.join(', ')}; Windows-like among them: ${pooledWindows.join(', ') || 'none'} (platform from ${platforms.source}); ${evaluation.requests - evaluation.pooledRequests} requests for other images are cold under every policy and not in pool_hit_ratio or p50/p95`,
    );
    if (main?.fixed) {
      notes.push(
        `${trace.name}: fixed-interpolated = the uniform fixed pool's idle and refill cost at warmboot's hit ratio ${fixed3(main.judgement.hitRatio)}, linear between fixed-warm-pool@${main.fixed.lowerSize} and @${main.fixed.upperSize}`,
      );
    }
    if (main?.hindsight) {
      const sizes = [...main.hindsight.sizes].map(([pool, size]) => `${pool}@${size}`).join(', ');
      notes.push(
        `${trace.name}: static-hindsight = per-pool fixed sizes with the least idle + refill cost serving at least warmboot's ${main.hindsight.hits} hits, chosen knowing the whole trace: ${sizes}`,
      );
    }
    for (const [name, result] of Object.entries(evaluation.variants)) {
      const { judgement } = result;
      notes.push(
        `${trace.name}: ${name}: hit ${fixed3(judgement.hitRatio)}, idle + refill $${judgement.totalUsd.toFixed(2)} = ${fixed3(judgement.vsInterpolatedFixed)} x fixed-interpolated, ${fixed3(judgement.vsHindsightStatic)} x static-hindsight: aim ${judgement.met ? 'MET' : 'NOT MET'}; quota check (max members over maxSize): ${result.maxOverQuota}`,
      );
    }
  }
  return {
    scenario: 'pool',
    trace: traces.map((trace) => trace.name).join(', '),
    policies,
    parameters: {
      traces: traces.map((trace) => trace.name).join(','),
      window_days: windowDays,
      ...parameters,
      instance_type: INSTANCE_TYPE,
      instance_hour_usd: settings.prices.instanceHourUsd,
      gp3_gb_month_usd: settings.prices.ebsGbMonthUsd,
      volume_gib: settings.volumeGiB,
      cold_s: TIMINGS.coldLaunchSeconds,
      start_stopped_s: TIMINGS.startStoppedSeconds,
      running_connect_s: TIMINGS.runningConnectSeconds,
      personalize_s: settings.personalizeSeconds,
      linux_agent_registration_s: TIMINGS.linuxAgentRegistrationSeconds,
      windows_agent_registration_s: TIMINGS.windowsAgentRegistrationSeconds,
      linux_init_s: settings.linuxInitS,
      windows_init_s: settings.windowsInitS,
      windows_images: args.flags.get(FLAGS.windowsImages.name) ?? FLAGS.windowsImages.default,
      windows_share: platformInput.windowsShare,
      windows_start: platformInput.windowsStart,
      target_hit_share: settings.targetHitShare,
      retire_surplus: retire,
      running_tier_above_per_hour: settings.runningTierAbovePerHour,
      running_tier_pools: settings.runningTierPools,
      running_tier_hit_share: settings.runningTierHitShare,
      warmboot_min_size: settings.minSize,
      scale_down_cooldown_min: settings.cooldownMinutes,
      max_size: settings.maxSize,
      reconcile_period_s: RECONCILE_PERIOD_S,
      aim_min_hit_ratio: POOL_AIM.minHitRatio,
      aim_max_vs_fixed_interpolated: POOL_AIM.maxVsInterpolatedFixed,
      aim_max_vs_static_hindsight: POOL_AIM.maxVsHindsightStatic,
    },
    notes: [
      `warmboot: demand sizing (target ${settings.targetHitShare}, one member down per ${settings.cooldownMinutes} min), surplus retired ${retire}, ${hotTier ? `running tier for the ${settings.runningTierPools} hottest pools at >= ${settings.runningTierAbovePerHour} req/h (warmboot-stopped-only: without it)` : 'stopped tier only'}; ${Object.keys(variants).at(-1)}: the same with the surplus retired ${otherRetire}`,
      ...notes,
      'idle_cost_usd: ready members waiting for a claim: gp3 GB-hours, plus instance-hours for running (hot) ones; refill_cost_usd: launch + agent registration + initialize + stop of members before they are ready (same prices); total_cost_usd = idle + refill, the aim metric',
      `aim: pool_hit_ratio >= ${POOL_AIM.minHitRatio} and total <= ${POOL_AIM.maxVsInterpolatedFixed} x fixed-interpolated and <= ${POOL_AIM.maxVsHindsightStatic} x static-hindsight; <trace>/warmboot-windows: the default warmboot and both baselines on every slice (traceWindows: ${windowDays}-day windows, or a day each when the trace is shorter than two windows)`,
      'timings: brevdev/ec2-coldboot-research (data/README.md, docs/ec2-timings.md); demand history, sizing inputs and the reconcile period are production constants (functions/pools/domain/sizing.ts, functions/catalog.ts)',
    ],
  };
};

export const poolScenario: Scenario = {
  name: 'pool',
  description:
    'prestarted pools: none vs fixed warm pools (uniform, interpolated, per-pool hindsight) vs warmboot on request traces',
  flags: [TRACE_FLAG, ...Object.values(FLAGS)],
  run: runPoolBench,
};
