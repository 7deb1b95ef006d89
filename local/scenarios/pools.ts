import { resolve } from 'node:path';
import { WARMBOOT, WARMBOOT_FACT } from '../../functions/catalog';
import { dynamoPoolStore } from '../../functions/pools/adapters/store';
import type { PoolSpecInput } from '../../functions/pools/config';
import type { MemberState } from '../../functions/pools/domain/lifecycle';
import type { EventEnvelope } from '../bus';
import type { LocalCloud } from '../cloud';
import { ensureSsmManagedProfile } from '../iam/instance-profiles';
import { DEFAULT_TRACE_FILE, dataDir, loadTrace, type TraceRequest } from '../trace';

/** The two pools of the sandbox story; their ids are fixed so settings can name them before the cloud exists. */
export const SCENARIO_POOLS = {
  linux: {
    name: 'genai-linux',
    imageId: 'ami-0a11a11a11a11a11a',
    subnets: ['subnet-0a11a11a11a11a111', 'subnet-0b11a11a11a11a112'],
  },
  windows: {
    name: 'genai-windows',
    imageId: 'ami-0b22b22b22b22b22b',
    subnets: ['subnet-0a22b22b22b22b221', 'subnet-0b22b22b22b22b222'],
  },
} as const;
const SUBNET_ZONES = ['us-east-1a', 'us-east-1b'] as const;
/**
 * The members' instance profile: its role carries AmazonSSMManagedInstanceCore, without which
 * their SSM agents never register (docs/pools.md, "Before you define a pool").
 */
export const POOL_MEMBER_PROFILE = 'genai-pool-member';

/** The pool specs: a Linux pool (2 min init) and a Windows-like pool (sysprep-like init, ≥ 15 min). */
export const scenarioPoolSpecs = (): PoolSpecInput[] => [
  {
    name: SCENARIO_POOLS.linux.name,
    image: SCENARIO_POOLS.linux.imageId,
    instanceType: 'm7i.large',
    subnets: [...SCENARIO_POOLS.linux.subnets],
    instanceProfile: POOL_MEMBER_PROFILE,
    initialization: { platform: 'linux', packages: ['nvidia-container-toolkit'], timeoutMinutes: 30 },
    minSize: 1,
    maxSize: 10,
    sizing: {
      mode: 'demand',
      targetHitShare: 0.95,
      runningTierAbovePerHour: 30,
      scaleDownCooldownMinutes: 30,
    },
  },
  {
    name: SCENARIO_POOLS.windows.name,
    image: SCENARIO_POOLS.windows.imageId,
    instanceType: 'm7i.xlarge',
    subnets: [...SCENARIO_POOLS.windows.subnets],
    instanceProfile: POOL_MEMBER_PROFILE,
    volumeSizeGiB: 50,
    initialization: { platform: 'windows', generalize: 'true', timeoutMinutes: 60 },
    minSize: 1,
    // Cold launches count against maxSize too (security review H4), and a Windows member holds its
    // room for the 4–15 min its agent takes to register: sized for the trace's bursts.
    maxSize: 24,
    sizing: { mode: 'demand', targetHitShare: 0.95, scaleDownCooldownMinutes: 60 },
  },
];

/**
 * What the caller passes to `LocalCloud.start` for this scenario:
 * `{ functions: ['pools', 'claim'], settings: poolsSettings() }` (merge the settings with other
 * capabilities' settings if more functions are deployed). The pools come from `POOLS` (CDK
 * context in production) and are upserted by the scheduled reconcile.
 */
export const poolsSettings = (): Record<string, string> => ({ POOLS: JSON.stringify(scenarioPoolSpecs()) });

export interface PoolsScenarioOptions {
  /** Trace requests (for the two pooled images) to replay (default 100, about 35 s of real time). */
  readonly requests?: number;
  /** Where in the trace to start, seconds from its first request (default 6 days: a busy weekday). */
  readonly fromTraceSeconds?: number;
  /** A trace file in the bench format (default the Alibaba GenAI trace in the shared data directory). */
  readonly tracePath?: string;
  /**
   * Virtual time the pools get to fill before the first request (default 35 min: a Windows
   * member's agent registers 4-15 min after boot, then its init takes 15).
   */
  readonly warmupMinutes?: number;
  /** How often pool levels are sampled (default 5 min of virtual time). */
  readonly sampleEveryMinutes?: number;
}

export type ClaimPathName = 'hot' | 'warm' | 'cold';

export interface PoolsScenarioSummary {
  /** Trace image → pool (the two busiest images of the trace). */
  readonly pools: Readonly<Record<string, string>>;
  readonly requests: number;
  readonly served: Readonly<Record<ClaimPathName, number>>;
  readonly failed: number;
  /** Requests served from a ready member (hot + warm) ÷ requests. */
  readonly hitRatio: number;
  readonly hitRatioByPool: Readonly<Record<string, number>>;
  /** Time to ready of every served request, per path: the samples, for a histogram. */
  readonly timeToReadySeconds: Readonly<Record<ClaimPathName, readonly number[]>>;
  /** Members per state of each pool, sampled on virtual time (minutes since the replay began). */
  readonly levels: readonly {
    readonly atMinutes: number;
    readonly pool: string;
    readonly ready: number;
    readonly readyRunning: number;
    readonly filling: number;
    readonly retiring: number;
  }[];
  readonly virtualHours: number;
}

const MINUTE = 60_000;
const FILLING: readonly MemberState[] = ['launching', 'joining', 'initializing', 'stopping', 'starting'];

/** The subnets and AMIs the pools name, and the members' instance profile. */
const seedNetwork = (cloud: LocalCloud): void => {
  ensureSsmManagedProfile(cloud.instanceProfiles, POOL_MEMBER_PROFILE);
  const known = new Set(cloud.ec2.instances().map((instance) => instance.subnetId));
  for (const pool of [SCENARIO_POOLS.linux, SCENARIO_POOLS.windows]) {
    pool.subnets.forEach((subnetId, index) => {
      if (!known.has(subnetId))
        cloud.ec2.addSubnet({ subnetId, availabilityZone: SUBNET_ZONES[index] ?? 'us-east-1a' });
    });
  }
  if (!cloud.ec2.images().some((image) => image.imageId === SCENARIO_POOLS.linux.imageId)) {
    cloud.ec2.registerImage({
      name: 'genai-linux-base',
      rootSizeGiB: 30,
      imageId: SCENARIO_POOLS.linux.imageId,
    });
  }
  if (!cloud.ec2.images().some((image) => image.imageId === SCENARIO_POOLS.windows.imageId)) {
    cloud.ec2.registerImage({
      name: 'genai-windows-base',
      rootSizeGiB: 50,
      platform: 'windows',
      imageId: SCENARIO_POOLS.windows.imageId,
    });
  }
};

/** The two busiest images of the whole trace and the slice of their requests to replay. */
const traceSlice = (options: PoolsScenarioOptions) => {
  const trace = loadTrace(options.tracePath ?? resolve(dataDir(), DEFAULT_TRACE_FILE));
  const counts = new Map<string, number>();
  for (const request of trace.requests) counts.set(request.image, (counts.get(request.image) ?? 0) + 1);
  const [busiest, second] = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  if (!busiest || !second) throw new Error('the trace needs at least two images');
  const poolOf = new Map([
    [busiest[0], SCENARIO_POOLS.linux.name],
    [second[0], SCENARIO_POOLS.windows.name],
  ]);
  const from = options.fromTraceSeconds ?? 6 * 86_400;
  const slice: TraceRequest[] = trace.requests
    .filter((request) => request.timeS >= from && poolOf.has(request.image))
    .slice(0, options.requests ?? 100);
  return { poolOf, slice, from };
};

/**
 * Prestarted pools on the caller's cloud (functions `pools` and `claim` deployed, settings from
 * `poolsSettings()`): seeds the subnets and AMIs the pools name, lets the scheduled reconcile
 * define and fill both pools, then replays the slice of the trace as `Request Server` events at
 * their trace times (image = pool key), and reads every outcome from the `Server Ready` /
 * `Server Request Failed` facts. Everything runs through the real handlers on virtual time.
 */
export async function runPoolsScenario(
  cloud: LocalCloud,
  options: PoolsScenarioOptions = {},
): Promise<PoolsScenarioSummary> {
  seedNetwork(cloud);
  const { poolOf, slice, from } = traceSlice(options);
  const outcomes = new Map<
    string,
    { pool: string; path?: ClaimPathName; seconds?: number; failed?: boolean }
  >();
  const unsubscribe = cloud.bus.onEvent((event: EventEnvelope) => {
    if (event.source !== WARMBOOT_FACT) return;
    const requestId = String(event.detail.requestId ?? '');
    const outcome = outcomes.get(requestId);
    if (!outcome) return;
    if (event['detail-type'] === 'Server Ready') {
      outcome.path = event.detail.path as ClaimPathName;
      outcome.seconds = Number(event.detail.timeToReadySeconds);
    } else if (event['detail-type'] === 'Server Request Failed') {
      outcome.failed = true;
    }
  });
  const store = dynamoPoolStore(cloud.documents, cloud.tables.pools);
  const levels: PoolsScenarioSummary['levels'][number][] = [];
  const startedAt = cloud.clock.now();
  const sample = async () => {
    for (const pool of [SCENARIO_POOLS.linux.name, SCENARIO_POOLS.windows.name]) {
      const members = (await cloud.run(() => store.listMembers(pool))).filter(
        (member) => member.origin === 'pool',
      );
      levels.push({
        atMinutes: Math.round((cloud.clock.now() - startedAt) / MINUTE),
        pool,
        ready: members.filter((member) => member.state === 'ready').length,
        readyRunning: members.filter((member) => member.state === 'ready' && member.running).length,
        filling: members.filter((member) => FILLING.includes(member.state)).length,
        retiring: members.filter((member) => member.state === 'retiring').length,
      });
    }
  };

  try {
    cloud.startSchedules();
    const sampleEvery = (options.sampleEveryMinutes ?? 5) * MINUTE;
    const warmup = (options.warmupMinutes ?? 35) * MINUTE;
    for (let elapsed = 0; elapsed < warmup; elapsed += sampleEvery) {
      await sample();
      await cloud.settleFor(Math.min(sampleEvery, warmup - elapsed));
    }
    const replayStart = cloud.clock.now();
    let nextSample = replayStart;
    for (const [index, request] of slice.entries()) {
      const due = replayStart + (request.timeS - from) * 1000;
      while (nextSample <= due) {
        await cloud.settleFor(Math.max(0, nextSample - cloud.clock.now()));
        await sample();
        nextSample += sampleEvery;
      }
      await cloud.settleFor(Math.max(0, due - cloud.clock.now()));
      const pool = poolOf.get(request.image) ?? SCENARIO_POOLS.linux.name;
      const requestId = `trace-${index}`;
      outcomes.set(requestId, { pool });
      await cloud.putEvent({
        source: WARMBOOT,
        detailType: 'Request Server',
        detail: {
          requestId,
          pool,
          ownerTags: { tenant: request.tenant ?? 'unknown' },
          personalization: { hostname: `srv-${index}` },
        },
      });
    }
    // Long enough for the slowest cold path (Windows init, 15 min) to finish.
    for (let waited = 0; waited < 25 * MINUTE; waited += sampleEvery) {
      await cloud.settleFor(sampleEvery);
      await sample();
    }
  } finally {
    unsubscribe();
  }

  const all = [...outcomes.values()];
  const paths: ClaimPathName[] = ['hot', 'warm', 'cold'];
  const served = Object.fromEntries(
    paths.map((path) => [path, all.filter((o) => o.path === path).length]),
  ) as Record<ClaimPathName, number>;
  const hits = (subset: typeof all) =>
    subset.length === 0
      ? 0
      : subset.filter((o) => o.path === 'hot' || o.path === 'warm').length / subset.length;
  const pools = [...new Set(poolOf.values())];
  return {
    pools: Object.fromEntries(poolOf),
    requests: all.length,
    served,
    failed: all.filter((o) => o.failed || o.path === undefined).length,
    hitRatio: hits(all),
    hitRatioByPool: Object.fromEntries(pools.map((pool) => [pool, hits(all.filter((o) => o.pool === pool))])),
    timeToReadySeconds: Object.fromEntries(
      paths.map((path) => [path, all.filter((o) => o.path === path).map((o) => o.seconds ?? 0)]),
    ) as Record<ClaimPathName, number[]>,
    levels,
    virtualHours: (cloud.clock.now() - startedAt) / 3_600_000,
  };
}
