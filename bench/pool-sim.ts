import { rankCandidates } from '../functions/claim/domain/choice';
import { MinHeap } from '../functions/image-cache/domain/min-heap';
import { type PoolSpec, poolSpecSchema } from '../functions/pools/config';
import { countsAgainstMax, type PoolMember, transition } from '../functions/pools/domain/lifecycle';
import {
  afterInitialization,
  type ObservedInstance,
  reconcilePool,
} from '../functions/pools/domain/reconcile';
import {
  DEMAND_HISTORY_MINUTES,
  decideSize,
  demandFromCounts,
  initializeSecondsOf,
  type SizingState,
  TIMINGS,
} from '../functions/pools/domain/sizing';

/**
 * A discrete-event replay of pool requests on virtual time. The members move through the same
 * lifecycle (`transition`), the same reconcile (`reconcilePool`), the same sizing (`decideSize`
 * on `demandFromCounts` over the counters the store returns for `DEMAND_HISTORY_MINUTES`, with
 * `initializeSecondsOf(spec)` as the pools Lambda passes it) and the same claim choice
 * (`rankCandidates`) the pools and claim Lambdas use; only EC2 and SSM are replaced by their
 * calibrated latencies.
 */

export interface SimRequest {
  readonly timeS: number;
  readonly pool: string;
  readonly instanceType: string;
}

export interface SimPool {
  readonly spec: PoolSpec;
  /**
   * How long a member takes from `running` until initialized in this replay (agent registration
   * + the init command). Sizing does not see it: it plans with production's `initializeSecondsOf`.
   */
  readonly initializeSeconds: number;
}

export interface SimPrices {
  /** gp3 storage, USD per GB-month (730 h). */
  readonly ebsGbMonthUsd: number;
  /** The pools' instance type, USD per instance-hour. */
  readonly instanceHourUsd: number;
}

export interface SimTimings {
  readonly personalizeSeconds: number;
  readonly terminateSeconds: number;
  readonly reconcilePeriodSeconds: number;
}

export interface SimOutcome {
  readonly path: 'hot' | 'warm' | 'cold';
  readonly readySeconds: number;
}

/** One pool's share of the bill (pools are independent: a request only ever touches its own). */
export interface PoolCost {
  readonly idleCostUsd: number;
  readonly refillCostUsd: number;
}

export interface SimResult {
  readonly outcomes: readonly SimOutcome[];
  readonly idleCostUsd: number;
  /** Launch, initialization and stop of members before they are ready. */
  readonly refillCostUsd: number;
  readonly costByPool: ReadonlyMap<string, PoolCost>;
  readonly membersLaunched: number;
  readonly membersWasted: number;
  /** Max over every reconcile of (members counted against max − maxSize); ≤ 0 means the quota held. */
  readonly maxOverQuota: number;
}

interface Instance {
  id: string;
  state: ObservedInstance['state'];
  launchedAt: number;
  subnetId: string;
  instanceType: string;
  /** Since when the current billing regime (running vs stopped) applies, ms. */
  billedSince: number;
  inPool: boolean;
  served: boolean;
}

/** Events by time, then by the order they were scheduled. */
class EventQueue {
  private readonly heap = new MinHeap<{ at: number; seq: number; run: () => void }>(
    (x, y) => x.at < y.at || (x.at === y.at && x.seq < y.seq),
  );
  private seq = 0;
  push(at: number, run: () => void): void {
    this.heap.push({ at, seq: this.seq++, run });
  }
  pop(): { at: number; run: () => void } | undefined {
    return this.heap.pop();
  }
}

const AVAILABILITY_ZONE = 'us-east-1a';
const MINUTE_MS = 60_000;

/**
 * The counters the pools Lambda reads at `now`: the store's query starts at the minute of
 * `now − DEMAND_HISTORY_MINUTES` (functions/pools/adapters/store.ts `demandCounts`). Older ones are
 * dropped from `counts`, as no later reconcile reads them.
 */
const countsReadAt = (counts: Map<number, number>, now: number): Map<number, number> => {
  const from = Math.floor((now - DEMAND_HISTORY_MINUTES * MINUTE_MS) / MINUTE_MS) * MINUTE_MS;
  for (const minute of counts.keys()) if (minute < from) counts.delete(minute);
  return counts;
};

/**
 * Replays `requests` against `pools` (requests for other pools are cold). `pools` empty means
 * the `none` policy. Returns one outcome per request, in request order.
 */
export const simulatePools = (input: {
  readonly requests: readonly SimRequest[];
  readonly pools: ReadonlyMap<string, SimPool>;
  readonly coldInitializeSeconds: (pool: string) => number;
  readonly prices: SimPrices;
  readonly timings: SimTimings;
  readonly startMs?: number;
  /** When the replay (and the bill) ends, seconds after `startMs`; default the last request. */
  readonly endS?: number;
}): SimResult => {
  const { requests, pools, prices, timings } = input;
  const startMs = input.startMs ?? Date.UTC(2024, 10, 15);
  const queue = new EventQueue();
  const instances = new Map<string, Instance>();
  const members = new Map<string, Map<string, PoolMember>>();
  const demand = new Map<string, Map<number, number>>();
  const sizing = new Map<string, SizingState>();
  const outcomes: SimOutcome[] = new Array(requests.length);
  let now = startMs;
  let nextId = 0;
  const costByPool = new Map<string, { idleCostUsd: number; refillCostUsd: number }>();
  let launched = 0;
  let wasted = 0;
  let maxOverQuota = Number.NEGATIVE_INFINITY;
  const ebsPerMs = (gib: number): number => (gib * prices.ebsGbMonthUsd) / (730 * 3_600_000);
  const runningPerMs = prices.instanceHourUsd / 3_600_000;

  const volumeOf = (pool: string): number => pools.get(pool)?.spec.volumeSizeGiB ?? 0;
  /**
   * Accrue an instance's cost up to now: a ready member is idle (waiting for a claim) and pays
   * EBS GB-hours, plus instance-hours when it is kept running; before it is ready (launch,
   * initialize, stop) it is being refilled, which every pooling policy pays once per claim.
   */
  const accrue = (pool: string, instance: Instance): void => {
    if (!instance.inPool) return;
    const elapsed = now - instance.billedSince;
    instance.billedSince = now;
    const powered =
      instance.state === 'pending' || instance.state === 'running' || instance.state === 'stopping';
    const cost = elapsed * (ebsPerMs(volumeOf(pool)) + (powered ? runningPerMs : 0));
    const tally = costByPool.get(pool) ?? { idleCostUsd: 0, refillCostUsd: 0 };
    if (poolMembers(pool).get(instance.id)?.state === 'ready') tally.idleCostUsd += cost;
    else tally.refillCostUsd += cost;
    costByPool.set(pool, tally);
  };
  const setState = (pool: string, instance: Instance, state: Instance['state']): void => {
    accrue(pool, instance);
    instance.state = state;
  };
  const poolMembers = (pool: string): Map<string, PoolMember> => {
    let map = members.get(pool);
    if (!map) {
      map = new Map();
      members.set(pool, map);
    }
    return map;
  };
  const write = (member: PoolMember): void => {
    const instance = instances.get(member.instanceId);
    if (instance) accrue(member.pool, instance);
    poolMembers(member.pool).set(member.instanceId, member);
  };
  const observed = (pool: string): ObservedInstance[] =>
    [...poolMembers(pool).values()].flatMap((member) => {
      const instance = instances.get(member.instanceId);
      if (!instance) return [];
      return [
        {
          instanceId: instance.id,
          state: instance.state,
          imageId: member.imageId,
          instanceType: instance.instanceType,
          availabilityZone: AVAILABILITY_ZONE,
          subnetId: instance.subnetId,
          launchedAt: instance.launchedAt,
          tags: { 'warmboot:pools': 'true', 'warmboot:pool': pool, 'warmboot:member-state': member.state },
        },
      ];
    });

  // EC2 + SSM, at the measured latencies; each completion is handled like the pools Lambda does.
  const onRunning = (pool: string, id: string): void => {
    const member = poolMembers(pool).get(id);
    const instance = instances.get(id);
    if (!member || !instance) return;
    setState(pool, instance, 'running');
    if (member.state === 'launching') {
      write(transition(member, 'initializing', now, { initCommandId: `cmd-${id}` }));
      const spec = pools.get(pool);
      queue.push(now + (spec?.initializeSeconds ?? 0) * 1000, () => onInitialized(pool, id));
    } else if (member.state === 'starting') {
      write(transition(member, 'ready', now, { running: true }));
    }
  };
  const onInitialized = (pool: string, id: string): void => {
    const member = poolMembers(pool).get(id);
    if (member?.state !== 'initializing') return;
    const action = afterInitialization(
      member,
      [...poolMembers(pool).values()],
      sizing.get(pool)?.runningSize ?? 0,
    );
    if (action.kind === 'mark-ready') write(transition(member, 'ready', now, { running: true }));
    else stop(pool, member);
  };
  const stop = (pool: string, member: PoolMember): void => {
    const instance = instances.get(member.instanceId);
    if (!instance) return;
    write(member.state === 'stopping' ? member : transition(member, 'stopping', now));
    setState(pool, instance, 'stopping');
    queue.push(now + TIMINGS.stopSeconds * 1000, () => {
      setState(pool, instance, 'stopped');
      const current = poolMembers(pool).get(member.instanceId);
      if (current?.state === 'stopping') write(transition(current, 'ready', now, { running: false }));
    });
  };
  const terminate = (pool: string, member: PoolMember): void => {
    const instance = instances.get(member.instanceId);
    if (instance) {
      setState(pool, instance, 'shutting-down');
      if (!instance.served) wasted++;
      queue.push(now + timings.terminateSeconds * 1000, () => {
        setState(pool, instance, 'terminated');
        instance.inPool = false;
        instances.delete(instance.id);
        const current = poolMembers(pool).get(member.instanceId);
        if (current) poolMembers(pool).delete(member.instanceId);
      });
    }
  };

  const reconcile = (pool: string): void => {
    const simPool = pools.get(pool);
    if (!simPool) return;
    const counts = countsReadAt(demand.get(pool) ?? new Map<number, number>(), now);
    const decision = decideSize({
      spec: simPool.spec,
      demand: demandFromCounts(counts, now),
      previous: sizing.get(pool),
      initializeSeconds: initializeSecondsOf(simPool.spec),
      now,
    });
    sizing.set(pool, decision);
    const actions = reconcilePool({
      spec: simPool.spec,
      draining: false,
      members: [...poolMembers(pool).values()],
      observed: observed(pool),
      currentImageId: simPool.spec.image,
      sizing: decision,
      initResults: new Map(),
      // Every member is written with its launch here (no crashes): no intent is ever left to adopt.
      intents: [],
      launchNonce: 'bench',
      now,
    });
    for (const action of actions) {
      switch (action.kind) {
        case 'launch': {
          const id = `i-${(nextId++).toString(16).padStart(17, '0')}`;
          const instance: Instance = {
            id,
            state: 'pending',
            launchedAt: now,
            subnetId: action.subnetId,
            instanceType: simPool.spec.instanceType,
            billedSince: now,
            inPool: true,
            served: false,
          };
          instances.set(id, instance);
          launched++;
          write({
            pool,
            instanceId: id,
            origin: 'pool',
            state: 'launching',
            running: true,
            imageId: action.imageId,
            instanceType: simPool.spec.instanceType,
            availabilityZone: AVAILABILITY_ZONE,
            subnetId: action.subnetId,
            launchedAt: now,
            stateSince: now,
            version: 0,
          });
          queue.push(now + TIMINGS.coldLaunchSeconds * 1000, () => onRunning(pool, id));
          break;
        }
        case 'retire': {
          write(transition(action.member, 'retiring', now, { reason: action.reason }));
          terminate(pool, action.member);
          break;
        }
        case 'start': {
          const instance = instances.get(action.member.instanceId);
          if (!instance) break;
          write(transition(action.member, 'starting', now));
          setState(pool, instance, 'pending');
          queue.push(now + TIMINGS.startStoppedSeconds * 1000, () =>
            onRunning(pool, action.member.instanceId),
          );
          break;
        }
        case 'stop':
          stop(pool, action.member);
          break;
        case 'forget':
          poolMembers(pool).delete(action.member.instanceId);
          break;
        default:
          // The replay delivers every EC2 and SSM completion, so reconcile has nothing to heal.
          break;
      }
    }
    const counted = [...poolMembers(pool).values()].filter(countsAgainstMax).length;
    maxOverQuota = Math.max(maxOverQuota, counted - simPool.spec.maxSize);
  };

  const claim = (index: number, request: SimRequest): void => {
    const personalize = timings.personalizeSeconds;
    const simPool = pools.get(request.pool);
    if (!simPool) {
      outcomes[index] = {
        path: 'cold',
        readySeconds: TIMINGS.coldLaunchSeconds + input.coldInitializeSeconds(request.pool) + personalize,
      };
      return;
    }
    const minute = Math.floor(now / MINUTE_MS) * MINUTE_MS;
    const counts = demand.get(request.pool) ?? new Map<number, number>();
    counts.set(minute, (counts.get(minute) ?? 0) + 1);
    demand.set(request.pool, counts);
    const [candidate] = rankCandidates([...poolMembers(request.pool).values()], {
      instanceType: request.instanceType,
    });
    if (candidate === undefined) {
      outcomes[index] = {
        path: 'cold',
        readySeconds: TIMINGS.coldLaunchSeconds + simPool.initializeSeconds + personalize,
      };
    } else {
      const member = candidate.member;
      const instance = instances.get(member.instanceId);
      write(transition(member, 'claimed', now, { claimId: `claim-${index}` }));
      if (instance) {
        accrue(request.pool, instance);
        instance.inPool = false;
        instance.served = true;
      }
      const startSeconds =
        candidate.path === 'hot' ? TIMINGS.runningConnectSeconds : TIMINGS.startStoppedSeconds;
      outcomes[index] = { path: candidate.path, readySeconds: startSeconds + personalize };
      const claimed = poolMembers(request.pool).get(member.instanceId);
      if (claimed) write(transition(claimed, 'handed-over', now));
      poolMembers(request.pool).delete(member.instanceId);
      instances.delete(member.instanceId);
    }
    // Refill right after the claim (the claim function publishes Server Claimed to pools).
    reconcile(request.pool);
  };

  for (const pool of pools.keys()) queue.push(now, () => reconcile(pool));
  const endMs = startMs + (input.endS ?? requests.at(-1)?.timeS ?? 0) * 1000;
  const period = timings.reconcilePeriodSeconds * 1000;
  const scheduleReconcile = (at: number): void => {
    if (at > endMs) return;
    queue.push(at, () => {
      for (const pool of pools.keys()) reconcile(pool);
      scheduleReconcile(at + period);
    });
  };
  scheduleReconcile(startMs + period);
  requests.forEach((request, index) => {
    queue.push(startMs + request.timeS * 1000, () => claim(index, request));
  });
  for (let event = queue.pop(); event !== undefined; event = queue.pop()) {
    if (event.at > endMs) break;
    now = Math.max(now, event.at);
    event.run();
  }
  now = endMs;
  for (const [pool, map] of members) {
    for (const member of map.values()) {
      const instance = instances.get(member.instanceId);
      if (instance) accrue(pool, instance);
    }
  }
  const sum = (key: keyof PoolCost): number =>
    [...costByPool.values()].reduce((total, cost) => total + cost[key], 0);
  return {
    outcomes,
    idleCostUsd: sum('idleCostUsd'),
    refillCostUsd: sum('refillCostUsd'),
    costByPool,
    membersLaunched: launched,
    membersWasted: wasted,
    maxOverQuota,
  };
};

/** A pool spec for the replay, through the same schema operators use. */
export const benchPoolSpec = (input: {
  readonly name: string;
  readonly instanceType: string;
  readonly volumeGiB: number;
  readonly platform: 'linux' | 'windows';
  readonly minSize: number;
  readonly maxSize: number;
  readonly sizing: PoolSpec['sizing'];
}): PoolSpec =>
  poolSpecSchema.parse({
    name: input.name,
    image: 'ami-0a1b2c3d4e5f60718',
    instanceType: input.instanceType,
    subnets: ['subnet-0a1b2c3d4e5f60718'],
    volumeSizeGiB: input.volumeGiB,
    initialization: { platform: input.platform, timeoutMinutes: 180 },
    tier: 'stopped',
    minSize: input.minSize,
    maxSize: input.maxSize,
    sizing: input.sizing,
  });
