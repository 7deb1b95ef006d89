import { randomBytes } from 'node:crypto';
import { boundedWait } from '../../shared/deadline';
import { NotFoundError } from '../../shared/errors';
import { failedItem } from '../../shared/results';
import { pollUntil } from '../../shared/retry';
import type { PoolRecord } from '../adapters/store';
import type { PoolSpec } from '../config';
import type { PoolsDependencies } from '../dependencies';
import { healClaims } from '../domain/claims';
import { launchedByPool, sortTagged } from '../domain/launch-intents';
import { encryptionKeyHold, type InitResult, KEY_FAILURE_HOLD_MS, reconcilePool } from '../domain/reconcile';
import { DEMAND_HISTORY_MINUTES, decideSize, demandFromCounts, initializeSecondsOf } from '../domain/sizing';
import { initParameters } from '../schemas';
import { type ActionResult, applyAll, deadlineOf } from './actions';

/** How long a reconcile may hold its pool's lease before another may take it over (crash). */
const RECONCILE_LEASE_MS = 5 * 60_000;
/** A reconcile that finds the lease taken waits at most this long for it (within its deadline). */
const LEASE_WAIT_MS = 30_000;
/** What reconciling one more pool needs at least: its reads, the sizing write, one action. */
export const POOL_RESERVE_MS = 30_000;

/**
 * Random bytes in each reconcile's launch tokens (domain/launch-intents.ts poolLaunchToken): from
 * the system's CSPRNG, not `deps.random`, because the tokens must be impossible to guess.
 */
const LAUNCH_NONCE_BYTES = 16;

export interface ReconcileSummary {
  readonly pool: string;
  readonly targetSize: number;
  readonly runningSize: number;
  readonly ready: number;
  readonly results: ActionResult[];
  /** Actions left to the next reconcile because this invocation was running out of time. */
  readonly deferred?: number;
  /**
   * Set when nothing was applied: another reconcile held the pool's lease the whole time (it
   * applies the changes), or too little of the invocation was left to start.
   */
  readonly skipped?: string;
  /**
   * Live instances carrying the pool's tag that warmboot did not launch (no member record, no
   * open launch intent: someone else tagged them). Never adopted, stopped, handed out or
   * terminated; reported (logged, and counted in the `ForeignTaggedInstances` metric).
   */
  readonly foreignTagged?: readonly string[];
}

const leaseOwner = (deps: PoolsDependencies): string =>
  `reconcile-${Math.floor(deps.random() * 2 ** 48).toString(36)}`;

/** Takes the pool's reconcile lease, waiting a little (within the deadline) for a concurrent reconcile to finish. */
const takeLease = async (deps: PoolsDependencies, pool: string, owner: string): Promise<boolean> => {
  const taken = await pollUntil(
    async () => {
      const now = deps.clock.now();
      return (await deps.store.acquireLease(pool, owner, now, now + RECONCILE_LEASE_MS)) ? true : undefined;
    },
    {
      clock: deps.clock,
      timeoutMs: boundedWait(deadlineOf(deps), LEASE_WAIT_MS, POOL_RESERVE_MS),
      intervalMs: (attempt) => Math.min(1_000 * 2 ** attempt, 15_000),
    },
  );
  return taken === true;
};

export const skipped = (pool: string, reason: string): ReconcileSummary => ({
  pool,
  targetSize: 0,
  runningSize: 0,
  ready: 0,
  results: [],
  skipped: reason,
});

/**
 * Level-triggered reconcile of one pool: re-derives everything from DynamoDB + EC2 + SSM under the
 * pool's lease, so the members it counts are not changed by another reconcile's launches, and
 * resumes or gives up the pool's claims that nobody drives any more. Reports the instances that
 * carry the pool's tag without warmboot having launched them.
 */
export const reconcileOne = async (
  deps: PoolsDependencies,
  name: string,
  now: number,
): Promise<ReconcileSummary> => {
  const summary = await reconcileLeased(deps, name, now);
  deps.telemetry.foreignTagged(summary.pool, summary.foreignTagged ?? []);
  return summary;
};

const reconcileLeased = async (
  deps: PoolsDependencies,
  name: string,
  now: number,
): Promise<ReconcileSummary> => {
  if (deadlineOf(deps).remainingMs() < POOL_RESERVE_MS) return skipped(name, 'out of time');
  const owner = leaseOwner(deps);
  if (!(await takeLease(deps, name, owner))) return skipped(name, 'lease held');
  try {
    const record = await deps.store.getPool(name);
    if (!record) throw new NotFoundError(`pool ${name} is not defined`);
    return await reconcileHeld(deps, record, Math.max(now, deps.clock.now()));
  } finally {
    // False when the lease lapsed and another reconcile took it: nothing to give back.
    await deps.store.releaseLease(name, owner);
  }
};

const reconcileHeld = async (
  deps: PoolsDependencies,
  record: PoolRecord,
  now: number,
): Promise<ReconcileSummary> => {
  const { spec } = record;
  const [members, observed, currentImageId, counts, claims, intents] = await Promise.all([
    deps.store.listMembers(spec.name),
    deps.ec2.describePool(spec.name),
    deps.ssm.resolveImage(spec.image),
    deps.store.demandCounts(spec.name, now - DEMAND_HISTORY_MINUTES * 60_000),
    deps.store.listOpenClaims(spec.name),
    deps.store.launchIntents(spec.name, now),
  ]);
  const initResults = new Map<string, InitResult>();
  for (const member of members) {
    if (member.state === 'initializing' && member.initCommandId !== undefined) {
      initResults.set(member.instanceId, await deps.ssm.result(member.initCommandId, member.instanceId));
    }
  }
  const sizing = decideSize({
    spec,
    demand: demandFromCounts(counts, now),
    previous: record.sizing,
    initializeSeconds: initializeSecondsOf(spec),
    now,
  });
  const sizingState = {
    targetSize: sizing.targetSize,
    runningSize: sizing.runningSize,
    changedAt: sizing.changedAt,
  };
  if (!(await deps.store.saveSizing(spec.name, sizingState)))
    throw new NotFoundError(`pool ${spec.name} is not defined`);
  const actions = reconcilePool({
    spec,
    draining: record.status === 'draining',
    members,
    observed,
    currentImageId,
    sizing,
    initResults,
    openClaims: new Set(claims.map((claim) => claim.requestId)),
    intents,
    launchNonce: randomBytes(LAUNCH_NONCE_BYTES).toString('hex'),
    now,
  });
  const { results, deferred } = await applyAll(
    deps,
    spec,
    [...actions, ...healClaims(claims, members, now)],
    now,
  );
  const held = encryptionKeyHold(launchedByPool(spec.name, observed, intents), now);
  if (held) {
    results.push(
      failedItem(
        held.instanceId,
        {
          code: 'EncryptionKeyUnusable',
          message: `member ${held.instanceId} ended at launch (${held.stateReason}): EC2 could not use an EBS encryption key for the pools role; no launch for ${KEY_FAILURE_HOLD_MS / 60_000} min. Add the key to ebsKmsKeyArns (or enable it)`,
        },
        { action: 'launch' },
      ),
    );
  }
  const ready = members.filter((member) => member.state === 'ready').length;
  const { foreign } = sortTagged(
    spec.name,
    observed,
    new Set(members.map((member) => member.instanceId)),
    intents,
    now,
  );
  return {
    pool: spec.name,
    targetSize: sizing.targetSize,
    runningSize: sizing.runningSize,
    ready,
    results,
    ...(deferred > 0 ? { deferred } : {}),
    ...(foreign.length > 0 ? { foreignTagged: foreign.map((instance) => instance.instanceId) } : {}),
  };
};

/**
 * The scheduled reconcile: upserts the pools defined in CDK context (`POOLS`, always their
 * configured spec), then reconciles every stored pool and reports its ready members.
 */
export const reconcileAllPools = async (
  deps: PoolsDependencies,
  contextPools: readonly PoolSpec[],
  now: number,
): Promise<ReconcileSummary[]> => {
  const listed = await deps.store.listPools();
  const stored = new Map(listed.pools.map((record) => [record.spec.name, record]));
  for (const spec of contextPools) {
    const existing = stored.get(spec.name);
    // A deploy-time pool is configuration: an operator record of the same name (Define Pool of an
    // earlier release) never shadows it (security review C2).
    initParameters(spec);
    const record: PoolRecord = { spec, source: 'context', status: existing?.status ?? 'active' };
    await deps.store.putPool(record, now);
    stored.set(spec.name, record);
  }
  const summaries: ReconcileSummary[] = listed.unreadable
    .filter((pool) => !stored.has(pool.name))
    .map((pool) => ({
      ...skipped(pool.name, pool.problem),
      results: [failedItem(pool.name, { code: 'ValidationError', message: pool.problem })],
    }));
  for (const name of stored.keys()) {
    const summary = await reconcileOne(deps, name, deps.clock.now());
    deps.telemetry.readyMembers(summary.pool, summary.ready);
    summaries.push(summary);
  }
  return summaries;
};
