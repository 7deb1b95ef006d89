import type { Metrics } from '@aws-lambda-powertools/metrics';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { PoolEc2, PoolSsm } from '../pools/adapters/ec2';
import type { PoolRecord, PoolStore } from '../pools/adapters/store';
import { allowedInstanceTypes, type PoolPolicy } from '../pools/config';
import { documentNamed, PERSONALIZE_DOCUMENT } from '../pools/documents';
import {
  CLAIM_LEASE_MS,
  type ClaimError,
  type ClaimRecord,
  type ClaimStep,
  isLeased,
  isOnItsWay,
  isTerminal,
  usesPoolCapacity,
  WAITING_FOR_INIT,
} from '../pools/domain/claims';
import { type PoolMember, transition } from '../pools/domain/lifecycle';
import type { ObservedInstance } from '../pools/domain/reconcile';
import { isManagedBy, TAG } from '../pools/domain/tags';
import type { FactPublisher } from '../shared/adapters/facts';
import { awsErrorCode, classifyAwsError } from '../shared/aws-errors';
import type { Caller } from '../shared/caller';
import type { Clock } from '../shared/clock';
import { boundedWait, type Deadline, NO_DEADLINE } from '../shared/deadline';
import {
  CapacityError,
  ConflictError,
  IncorrectStateError,
  NotFoundError,
  ValidationError,
  WarmbootError,
} from '../shared/errors';
import { pollUntil } from '../shared/retry';
import { invalidDocumentParameter } from '../shared/ssm-document';
import { architectureOf, type ClaimPath, rankCandidates, resizeCompatible } from './domain/choice';
import {
  canonicalJson,
  coldLaunchClientToken,
  quotaKeyOf,
  requestDigest,
  sha256Hex,
} from './domain/request-digest';
import type { ServerRequest } from './schemas';

export interface ClaimDeps {
  readonly store: PoolStore;
  readonly ec2: PoolEc2;
  readonly ssm: PoolSsm;
  readonly facts: FactPublisher;
  readonly clock: Clock;
  readonly metrics: Metrics;
  /** What pools may launch and how many requests a caller may make (POOL_POLICY). */
  readonly policy: PoolPolicy;
  /** The invocation's time left (Lambda context): no wait runs past it (W7). */
  readonly deadline?: Deadline;
}

/**
 * A request id that names an earlier request with another payload (security review H5: a
 * squatted id must not hand the later requester the squatter's server). Reported like a schema
 * rejection, naming `detail.requestId`, with EC2's code for a reused ClientToken.
 */
export class IdempotentParameterMismatchError extends ValidationError {
  override readonly code = 'IdempotentParameterMismatch';
  constructor(requestId: string) {
    super(
      'detail.requestId',
      `${requestId} was already used for a request with other parameters; use a new request id`,
    );
    this.name = 'IdempotentParameterMismatchError';
  }
}

export type ClaimOutcome =
  | {
      readonly status: 'ready';
      readonly requestId: string;
      readonly instanceId: string;
      readonly path: ClaimPath;
      readonly pool: string;
      readonly timeToReadySeconds: number;
    }
  | {
      readonly status: 'launching';
      readonly requestId: string;
      readonly instanceId: string;
      readonly path: 'cold';
      readonly pool: string;
    }
  | {
      readonly status: 'failed';
      readonly requestId: string;
      readonly error: { readonly code: string; readonly message: string };
    }
  | { readonly status: 'in-progress'; readonly requestId: string; readonly step: string };

const RUNNING_WAIT_MS = 5 * 60_000;
/** The codes EC2 refuses a resize of a stopped instance with (resize-limitations). */
const RESIZE_REFUSALS: ReadonlySet<string> = new Set([
  'InvalidInstanceAttributeValue',
  'InvalidParameterCombination',
  'UnsupportedOperation',
]);
const COMMAND_WAIT_MS = 10 * 60_000;

/** The personalization document's parameters, validated with the document's own allowedPatterns. */
export const personalizeParameters = (request: ServerRequest, platform: string) => {
  const personalize = documentNamed(PERSONALIZE_DOCUMENT);
  const parameters: Record<string, string[]> = {
    platform: [platform],
    hostname: [request.personalization?.hostname ?? ''],
    sshPublicKey: [request.personalization?.sshPublicKey ?? ''],
    sshUser: [request.personalization?.sshUser ?? 'ec2-user'],
  };
  const invalid = personalize && invalidDocumentParameter(personalize, parameters);
  if (invalid) throw new ValidationError(`detail.personalization.${invalid.parameter}`, invalid.message);
  return parameters;
};

/**
 * A further named document must be one warmboot deploys (the schema checked its values against
 * that document's allowedPatterns already). Checked before any AWS call, like the schema.
 */
const checkNamedDocument = (request: ServerRequest): void => {
  const named = request.personalization?.document;
  if (!named) return;
  const document = documentNamed(named.name);
  if (!document)
    throw new ValidationError('detail.personalization.document.name', `unknown document ${named.name}`);
  const bad = invalidDocumentParameter(document, named.parameters);
  if (bad)
    throw new ValidationError(`detail.personalization.document.parameters.${bad.parameter}`, bad.message);
};

const poolFor = async (store: PoolStore, request: ServerRequest): Promise<PoolRecord> => {
  if (request.pool) {
    const record = await store.getPool(request.pool);
    if (record?.status === 'active') return record;
    throw new NotFoundError(`pool ${request.pool} is not defined or is draining`);
  }
  const match = (await store.listPools()).find(
    (record) => record.status === 'active' && record.spec.image === request.image,
  );
  if (!match) throw new NotFoundError(`no active pool for image ${request.image}`);
  return match;
};

/**
 * The saga as one driver holds it: every step is a conditional write on the claim's version that
 * also extends the driver's lease, so a second driver (a Lambda retry, a client retry, a resume
 * from the pools reconcile) takes over only a saga nobody drives, and a driver that was taken
 * over learns it at its next write.
 */
class Saga {
  #record: ClaimRecord;
  constructor(
    private readonly deps: ClaimDeps,
    record: ClaimRecord,
  ) {
    this.#record = record;
  }

  get record(): ClaimRecord {
    return this.#record;
  }

  get requestId(): string {
    return this.#record.requestId;
  }

  get request(): ServerRequest {
    return this.#record.request as ServerRequest;
  }

  /**
   * Records a step (or just renews the lease); a finished saga needs no lease. Once the
   * personalization was sent (or the saga failed) its values are replaced by their digest.
   */
  async step(changes: Partial<Omit<ClaimRecord, 'version' | 'leaseUntil' | 'updatedAt'>> = {}) {
    const now = this.deps.clock.now();
    const { leaseUntil: _held, ...current } = this.#record;
    const step = changes.step ?? current.step;
    const merged: ClaimRecord = {
      ...current,
      ...changes,
      version: this.#record.version + 1,
      updatedAt: now,
      ...(isTerminal(step) ? {} : { leaseUntil: now + CLAIM_LEASE_MS }),
    };
    const next = PERSONALIZATION_SPENT.includes(step) ? forgetPersonalization(merged) : merged;
    try {
      await this.deps.store.updateClaim(this.#record, next);
    } catch (error) {
      if (error instanceof ConflictError) throw new ClaimTakenOverError(this.requestId, error);
      throw error;
    }
    this.#record = next;
  }

  /** While waiting on EC2 or SSM: keep the saga ours once half the lease has passed. */
  async keep(): Promise<void> {
    const left = (this.#record.leaseUntil ?? 0) - this.deps.clock.now();
    if (left < CLAIM_LEASE_MS / 2) await this.step();
  }

  /** After a failed invocation: let the next driver (Lambda's retry) take over at once. */
  async letGo(): Promise<void> {
    if (isTerminal(this.#record.step)) return;
    const { leaseUntil: _held, ...released } = this.#record;
    await this.deps.store
      .updateClaim(this.#record, { ...released, version: this.#record.version + 1 })
      .catch(() => undefined); // best effort: the lease lapses by itself
  }
}

/** Steps after which the saga never sends the personalization again. */
const PERSONALIZATION_SPENT: readonly ClaimStep[] = ['personalized', 'transferred', 'ready', 'failed'];

/**
 * The claim without its personalization values (SSH key, host name, document parameters), only
 * their digest: the record outlives the hand-over by days and is backed up (security review M6).
 */
const forgetPersonalization = (claim: ClaimRecord): ClaimRecord => {
  const { personalization, ...request } = claim.request;
  if (personalization === undefined) return claim;
  return { ...claim, request, personalizationSha256: sha256Hex(canonicalJson(personalization)) };
};

/** Another driver took the saga over (its lease had lapsed): it carries the claim on. */
class ClaimTakenOverError extends ConflictError {
  constructor(requestId: string, cause: unknown) {
    super(`claim ${requestId} is driven by another invocation`, { cause });
    this.name = 'ClaimTakenOverError';
  }
}

const inProgress = (claim: ClaimRecord): ClaimOutcome => ({
  status: 'in-progress',
  requestId: claim.requestId,
  step: claim.step,
});

/**
 * Kept back from the invocation after a wait: the hand-over's tag and record writes and the
 * Server Ready fact take seconds.
 */
const STEP_RESERVE_MS = 15_000;

/**
 * The invocation ran out of time before a wait was over (not the wait's own limit): the saga is
 * given up by this driver and continued by the next one — a retried request, or the pools
 * reconcile's resume once the lease period has passed (`healClaims`).
 */
class OutOfTimeError extends Error {
  constructor(what: string) {
    super(`the invocation ran out of time waiting for ${what}`);
    this.name = 'OutOfTimeError';
  }
}

const waitFor = async <T>(
  deps: Pick<ClaimDeps, 'clock' | 'deadline'>,
  timeoutMs: number,
  poll: () => Promise<T | undefined>,
  what: string,
): Promise<T> => {
  const allowedMs = boundedWait(deps.deadline ?? NO_DEADLINE, timeoutMs, STEP_RESERVE_MS);
  const value = await pollUntil(poll, {
    clock: deps.clock,
    timeoutMs: allowedMs,
    // Fine-grained at first: the hot path is ~2 s and every poll step adds to time-to-ready.
    intervalMs: (attempt) => Math.min(2_000, 500 * 2 ** attempt),
  });
  if (value === undefined && allowedMs < timeoutMs) throw new OutOfTimeError(what);
  if (value === undefined) throw new IncorrectStateError(`timed out waiting for ${what}`);
  return value;
};

/** Publishes the failure every asynchronous requester waits for. */
const publishFailure = async (
  deps: ClaimDeps,
  detail: { requestId: string; pool?: string; image?: string; instanceId?: string; error: ClaimError },
): Promise<ClaimOutcome> => {
  await deps.facts.publish([{ detailType: 'Server Request Failed', detail }]);
  return { status: 'failed', requestId: detail.requestId, error: detail.error };
};

/** Records the failure on the saga, then reports it (a retry of a failed saga reports it again). */
const fail = async (deps: ClaimDeps, saga: Saga, error: ClaimError): Promise<ClaimOutcome> => {
  await saga.step({ step: 'failed', error });
  return republish(deps, saga.record);
};

/**
 * A finished saga's fact, published again: a request seen again (client retry, a retry after a
 * crash between the step write and the publish) gets the same answer, at least once.
 */
const republish = async (deps: ClaimDeps, claim: ClaimRecord): Promise<ClaimOutcome> => {
  if (claim.step === 'ready' && claim.instanceId && claim.path) {
    const timeToReadySeconds = secondsSince(claim.requestedAt, claim.updatedAt ?? claim.requestedAt);
    await deps.facts.publish([
      {
        detailType: 'Server Ready',
        detail: {
          requestId: claim.requestId,
          instanceId: claim.instanceId,
          path: claim.path,
          timeToReadySeconds,
          pool: claim.pool,
        },
        resources: [],
      },
    ]);
    return {
      status: 'ready',
      requestId: claim.requestId,
      instanceId: claim.instanceId,
      path: claim.path,
      pool: claim.pool,
      timeToReadySeconds,
    };
  }
  return publishFailure(deps, {
    requestId: claim.requestId,
    pool: claim.pool,
    ...(claim.instanceId ? { instanceId: claim.instanceId } : {}),
    error: claim.error ?? { code: 'ClaimFailed', message: `claim ended at step ${claim.step}` },
  });
};

const secondsSince = (from: number, to: number): number => Math.round((to - from) / 100) / 10;

/**
 * The claim saga: `requested → member-claimed → started → personalized → transferred → ready`, or
 * `requested → cold-launching → (pools initializes) → personalized → transferred → ready`, or
 * `failed`. A request
 * whose saga exists already continues it from the recorded step instead of starting over, so a
 * retried or re-sent request finishes what an interrupted one began; the pools reconcile resumes
 * (or gives up and reports) a saga nobody drives.
 */
export const claimServer = async (
  deps: ClaimDeps,
  requestId: string,
  request: ServerRequest,
  caller?: Caller,
): Promise<ClaimOutcome> => {
  checkNamedDocument(request);
  const digest = requestDigest(request);
  const existing = await deps.store.getClaim(requestId);
  if (existing) return continueRequest(deps, existing, digest);
  let record: PoolRecord;
  try {
    record = await poolFor(deps.store, request);
  } catch (error) {
    if (!(error instanceof NotFoundError)) throw error;
    return publishFailure(deps, {
      requestId,
      ...(request.pool ? { pool: request.pool } : { image: request.image }),
      error: { code: error.code, message: error.message },
    });
  }
  const spec = record.spec;
  personalizeParameters(request, spec.initialization.platform);
  const refusal = poolRefusal(spec, request);
  if (refusal) return publishFailure(deps, { requestId, pool: spec.name, error: refusal });
  const now = deps.clock.now();
  const quotaKey = quotaKeyOf(caller);
  if (
    quotaKey !== undefined &&
    !(await deps.store.takeRequestQuota(spec.name, quotaKey, now, deps.policy.requestsPerCallerPerHour))
  ) {
    return publishFailure(deps, {
      requestId,
      pool: spec.name,
      error: {
        code: 'RequestQuotaExceeded',
        message: `the caller made ${deps.policy.requestsPerCallerPerHour} requests for pool ${spec.name} this hour (requestsPerCallerPerHour); retry next hour`,
      },
    });
  }
  const claim: ClaimRecord = {
    requestId,
    step: 'requested',
    pool: spec.name,
    request: request as Record<string, unknown>,
    requestSha256: digest,
    requestedAt: now,
    updatedAt: now,
    leaseUntil: now + CLAIM_LEASE_MS,
    version: 0,
  };
  if (!(await deps.store.createClaim(claim))) {
    const raced = await deps.store.getClaim(requestId);
    return raced
      ? continueRequest(deps, raced, digest)
      : { status: 'in-progress', requestId, step: 'requested' };
  }
  await deps.store.recordRequest(spec.name, now);
  const saga = new Saga(deps, claim);
  return drive(saga, () => claimMember(deps, saga, record));
};

/** A request whose id has a saga already: the same request continues it, another one is refused. */
const continueRequest = (deps: ClaimDeps, claim: ClaimRecord, digest: string): Promise<ClaimOutcome> => {
  // A saga recorded by an earlier release has no digest: it continues as before.
  if (claim.requestSha256 !== undefined && claim.requestSha256 !== digest)
    throw new IdempotentParameterMismatchError(claim.requestId);
  return continueClaim(deps, claim);
};

/**
 * What the pool does not allow a request, named by the field (security review H4, H5): an
 * instance type the image cannot run or the pool does not list, or an owner tag key outside the
 * pool's list.
 */
const poolRefusal = (spec: PoolRecord['spec'], request: ServerRequest): ClaimError | undefined => {
  const wanted = request.instanceType ?? spec.instanceType;
  if (!resizeCompatible(spec.instanceType, wanted)) {
    // No member can be resized to it and a cold launch of the pool's image on it is refused
    // (RunInstances: the instance type's architecture must match the AMI's).
    return {
      code: 'IncompatibleInstanceType',
      message: `detail.instanceType: ${wanted} (${architectureOf(wanted)}) cannot run pool ${spec.name}'s image (${architectureOf(spec.instanceType)})`,
    };
  }
  const allowedTypes = allowedInstanceTypes(spec);
  if (!allowedTypes.has(wanted)) {
    return {
      code: 'InstanceTypeNotAllowed',
      message: `detail.instanceType: pool ${spec.name} serves only ${[...allowedTypes].join(', ')} (its instanceTypes)`,
    };
  }
  if (spec.ownerTagKeys !== undefined) {
    const allowedKeys = new Set(spec.ownerTagKeys);
    const foreign = Object.keys(request.ownerTags).find((key) => !allowedKeys.has(key));
    if (foreign !== undefined) {
      return {
        code: 'OwnerTagNotAllowed',
        message: `detail.ownerTags.${foreign}: pool ${spec.name} allows only the owner tag keys ${spec.ownerTagKeys.join(', ')}`,
      };
    }
  }
  return undefined;
};

/** `Request Server {requestId, resume: true}`: the pools function initialized a cold launch, or its reconcile found the saga stalled. */
export const resumeClaim = async (deps: ClaimDeps, requestId: string): Promise<ClaimOutcome> => {
  const claim = await deps.store.getClaim(requestId);
  if (!claim) return { status: 'in-progress', requestId, step: 'unknown' };
  return continueClaim(deps, claim);
};

/** Continues a saga from its recorded step, unless another invocation is driving it. */
const continueClaim = async (deps: ClaimDeps, claim: ClaimRecord): Promise<ClaimOutcome> => {
  if (isTerminal(claim.step)) return republish(deps, claim);
  const now = deps.clock.now();
  if (isLeased(claim, now)) return inProgress(claim);
  let member: PoolMember | undefined;
  if (claim.step === 'cold-launching' && claim.instanceId) {
    member = await deps.store.findMember(claim.instanceId);
    // Still initializing: the pools function sends the resume when it is done.
    if (member && WAITING_FOR_INIT.includes(member.state)) {
      return {
        status: 'launching',
        requestId: claim.requestId,
        instanceId: claim.instanceId,
        path: 'cold',
        pool: claim.pool,
      };
    }
  }
  const saga = new Saga(deps, claim);
  try {
    await saga.step(); // take the saga over
  } catch (error) {
    if (error instanceof ClaimTakenOverError) return inProgress(claim);
    throw error;
  }
  return drive(saga, () => advance(deps, saga, member));
};

/**
 * Runs the saga; a failed invocation gives its lease up so Lambda's retry continues at once. One
 * that ran out of time gives it up too and answers `in-progress`: not an error for Lambda, and
 * the next driver continues from the recorded step.
 */
const drive = async (saga: Saga, run: () => Promise<ClaimOutcome>): Promise<ClaimOutcome> => {
  try {
    return await run();
  } catch (error) {
    if (error instanceof ClaimTakenOverError) return inProgress(saga.record);
    await saga.letGo();
    if (error instanceof OutOfTimeError) return inProgress(saga.record);
    throw error;
  }
};

const advance = async (deps: ClaimDeps, saga: Saga, coldMember?: PoolMember): Promise<ClaimOutcome> => {
  const { step, instanceId } = saga.record;
  if (step === 'cold-launching') {
    if (coldMember && coldMember.state !== 'claimed' && coldMember.state !== 'handed-over') {
      return fail(deps, saga, {
        code: 'ColdLaunchFailed',
        message: `the server launched for the request (${coldMember.instanceId}) is ${coldMember.state}: ${coldMember.reason ?? 'unknown'}`,
      });
    }
    return handOver(deps, saga, instanceId ?? '', 'cold');
  }
  if (step === 'started' || step === 'personalized') {
    return handOver(deps, saga, instanceId ?? '', saga.record.path ?? 'warm');
  }
  if (step === 'transferred') return finish(deps, saga, saga.record.path ?? 'warm');
  const record = await deps.store.getPool(saga.record.pool);
  // A claim that holds a member already finishes even if the pool started draining meanwhile.
  if (!record || (record.status !== 'active' && step === 'requested')) {
    return fail(deps, saga, {
      code: 'NotFound',
      message: `pool ${saga.record.pool} is not defined or is draining`,
    });
  }
  return claimMember(deps, saga, record);
};

/**
 * Takes a ready member (or continues with the one this saga already took) and starts it; no
 * member left → cold launch. A crash after the member's conditional write but before the step
 * write is found again by the member's claim id.
 */
const claimMember = async (deps: ClaimDeps, saga: Saga, record: PoolRecord): Promise<ClaimOutcome> => {
  const spec = record.spec;
  const request = saga.request;
  const requestId = saga.requestId;
  const instanceType = request.instanceType ?? spec.instanceType;
  const tried = new Set<string>();
  for (;;) {
    const members = await deps.store.listMembers(spec.name);
    // What an interrupted run of this saga took already: a claimed member, or its cold launch.
    const mine = members.find(
      (member) =>
        member.claimId === requestId &&
        !tried.has(member.instanceId) &&
        (member.state === 'claimed' ||
          (member.origin === 'claim' && WAITING_FOR_INIT.includes(member.state))),
    );
    if (mine?.origin === 'claim') {
      await saga.step({ step: 'cold-launching', instanceId: mine.instanceId, path: 'cold' });
      return advance(deps, saga, mine);
    }
    let claimed: PoolMember;
    let path: Exclude<ClaimPath, 'cold'>;
    if (mine?.state === 'claimed') {
      claimed = mine;
      path = pathOf(mine);
    } else {
      const [candidate] = rankCandidates(
        members,
        { instanceType, availabilityZone: request.availabilityZone },
        tried,
      );
      if (!candidate) break;
      claimed = transition(candidate.member, 'claimed', deps.clock.now(), { claimId: requestId });
      path = candidate.path;
      try {
        await deps.store.updateMember(candidate.member, claimed);
      } catch (error) {
        if (error instanceof ConflictError) {
          tried.add(candidate.member.instanceId);
          continue; // another claim won this member
        }
        throw error;
      }
    }
    tried.add(claimed.instanceId);
    if (saga.record.step !== 'member-claimed' || saga.record.instanceId !== claimed.instanceId) {
      await saga.step({ step: 'member-claimed', instanceId: claimed.instanceId, path });
    }
    if (!(await startMember(deps, saga, spec.name, claimed, instanceType))) continue;
    await saga.step({ step: 'started' });
    await deps.facts.publish([
      {
        detailType: 'Server Claimed',
        detail: { pool: spec.name, requestId, instanceId: claimed.instanceId },
      },
    ]);
    return handOver(deps, saga, claimed.instanceId, path);
  }
  return coldLaunch(deps, saga, record, instanceType);
};

const pathOf = (member: PoolMember): Exclude<ClaimPath, 'cold'> => (member.running ? 'hot' : 'warm');

const GONE: readonly ObservedInstance['state'][] = ['shutting-down', 'terminated'];

/**
 * Resizes and starts a claimed member, from whatever EC2 shows (a resumed saga may find it
 * resized or already starting). False when the member cannot serve: vanished (retired), or a
 * start refused for capacity or state (given back to the pool, so the next candidate is tried).
 */
const startMember = async (
  deps: ClaimDeps,
  saga: Saga,
  pool: string,
  claimed: PoolMember,
  instanceType: string,
): Promise<boolean> => {
  const instance = await deps.ec2.describe(claimed.instanceId);
  if (!instance || GONE.includes(instance.state)) {
    // Terminated behind warmboot's back: the reconcile forgets the record.
    await deps.store.updateMember(
      claimed,
      transition(claimed, 'retiring', deps.clock.now(), { reason: 'vanished' }),
    );
    return false;
  }
  let resized = instance.instanceType !== claimed.instanceType;
  let resizing = false;
  try {
    if (instance.state === 'stopped' && instance.instanceType !== instanceType) {
      resizing = true;
      await deps.ec2.resize(instance, pool, instanceType);
      resizing = false;
      resized = instanceType !== claimed.instanceType;
    }
    if (instance.state !== 'running' && instance.state !== 'pending') await deps.ec2.start(instance, pool);
  } catch (error) {
    // A resize EC2 refuses for this member (resize-limitations: architecture or boot mode
    // InvalidInstanceAttributeValue, ENA InvalidParameterCombination, hibernation
    // UnsupportedOperation) is the member's problem, not the request's: it goes back and the next
    // candidate is tried.
    const resizeRefused =
      resizing && error instanceof WarmbootError && RESIZE_REFUSALS.has(awsErrorCode(error.cause));
    if (!(error instanceof CapacityError || error instanceof IncorrectStateError || resizeRefused))
      throw error;
    await giveBack(deps, pool, claimed, instance, resized);
    return false;
  }
  if (instance.state !== 'running') {
    await waitFor(
      deps,
      RUNNING_WAIT_MS,
      async () => {
        await saga.keep();
        return (await deps.ec2.describe(claimed.instanceId))?.state === 'running' ? true : undefined;
      },
      'running',
    );
  }
  return true;
};

/**
 * A start refused for capacity (or a member not in a startable state): the member goes back to
 * the pool still stopped and pool-tagged, resized back to the type its record says, so the next
 * claim sees what EC2 has. If the resize back fails too, the member is retired instead.
 */
const giveBack = async (
  deps: ClaimDeps,
  pool: string,
  claimed: PoolMember,
  instance: ObservedInstance,
  resized: boolean,
): Promise<void> => {
  const now = deps.clock.now();
  try {
    if (resized) await deps.ec2.resize(instance, pool, claimed.instanceType);
  } catch (error) {
    if (!(error instanceof WarmbootError)) throw error;
    await deps.store.updateMember(
      claimed,
      transition(claimed, 'retiring', now, {
        claimId: undefined,
        reason: `resize back failed: ${error.code}`,
      }),
    );
    return;
  }
  await deps.store.updateMember(
    claimed,
    transition(claimed, 'ready', now, { running: false, claimId: undefined }),
  );
};

const coldLaunch = async (
  deps: ClaimDeps,
  saga: Saga,
  record: PoolRecord,
  instanceType: string,
): Promise<ClaimOutcome> => {
  const { spec } = record;
  const requestId = saga.requestId;
  const members = await deps.store.listMembers(spec.name);
  const live = members.filter(usesPoolCapacity).length;
  if (live >= spec.maxSize) {
    // The pool is full of members still on their way: the claim waits for one instead of failing,
    // at most as long as a member may take to initialize. It stays at `requested`; once its lease
    // ends the pools reconcile resumes it (pools/domain/claims.ts healClaims).
    const waitedMs = deps.clock.now() - saga.record.requestedAt;
    if (members.some(isOnItsWay) && waitedMs < spec.initialization.timeoutMinutes * 60_000) {
      await saga.step(); // marks the wait, so the give-up counts from here
      return inProgress(saga.record);
    }
    return fail(deps, saga, {
      code: 'PoolAtCapacity',
      message: `pool ${spec.name} has ${live} members and cold launches under way, its maxSize is ${spec.maxSize}: no ready member and no room for a cold launch`,
    });
  }
  let lastError: WarmbootError | undefined;
  for (const subnetId of spec.subnets) {
    try {
      // The client token makes a retried launch return the instance a crashed attempt started.
      const clientToken = coldLaunchClientToken(requestId, subnetId);
      // The intent first: if this saga dies before the member write and is never resumed, the
      // pools reconcile adopts the instance only because its ClientToken names this intent
      // (pools/domain/launch-intents.ts); the tags alone would not do.
      await deps.store.recordLaunchIntent({
        clientToken,
        pool: spec.name,
        subnetId,
        count: 1,
        origin: 'claim',
        claimId: requestId,
        createdAt: deps.clock.now(),
      });
      const instance = await deps.ec2.launch({
        spec,
        imageId: await deps.ssm.resolveImage(spec.image),
        subnetId,
        clientToken,
        instanceType,
        tags: {
          [TAG.managed]: 'true',
          [TAG.pool]: spec.name,
          [TAG.memberState]: 'launching',
          [TAG.claim]: requestId,
        },
      });
      const now = deps.clock.now();
      try {
        await deps.store.createMember({
          pool: spec.name,
          instanceId: instance.instanceId,
          origin: 'claim',
          state: 'launching',
          running: true,
          imageId: instance.imageId,
          instanceType,
          availabilityZone: instance.availabilityZone,
          subnetId,
          launchedAt: now,
          stateSince: now,
          version: 0,
          claimId: requestId,
        });
      } catch (error) {
        // Created by the crashed attempt (or adopted by the reconcile under its launch intent).
        if (!(error instanceof ConflictError)) throw error;
      }
      await saga.step({ step: 'cold-launching', instanceId: instance.instanceId, path: 'cold' });
      return {
        status: 'launching',
        requestId,
        instanceId: instance.instanceId,
        path: 'cold',
        pool: spec.name,
      };
    } catch (error) {
      if (error instanceof WarmbootError && classifyAwsError(error.cause) === 'invalid-parameter') {
        // EC2 refuses the pool's image on this type (architecture, boot mode, ENA): another subnet
        // or a retry of the request would be refused the same way, so the request ends here.
        return fail(deps, saga, {
          code: 'LaunchRefused',
          message: `detail.instanceType: EC2 refused ${instanceType} for pool ${spec.name}'s image (${awsErrorCode(error.cause)}): ${error.message}`,
        });
      }
      if (!(error instanceof CapacityError)) throw error;
      lastError = error;
    }
  }
  return fail(deps, saga, {
    code: lastError?.code ?? 'InsufficientCapacity',
    message: lastError?.message ?? 'no capacity',
  });
};

/**
 * Personalization, then the ownership transfer. In that order because the claim role may send
 * commands only to instances that still carry warmboot's pool tags (IAM conditions on
 * `ssm:resourceTag/warmboot:*`): the transfer removes them, so a command sent after it is denied.
 * Idempotent from any point: a saga resumed after a crash sends the commands again while the pool
 * tags are on, and finds the owner tags applied and the pool tags gone once it transferred, or the
 * member record already handed over or deleted (the reconcile hands over a claimed member whose
 * instance lost its pool tags).
 */
const handOver = async (
  deps: ClaimDeps,
  saga: Saga,
  instanceId: string,
  path: ClaimPath,
): Promise<ClaimOutcome> => {
  const requestId = saga.requestId;
  const member = await deps.store.findMember(instanceId);
  const ours =
    member?.claimId === requestId && (member.state === 'claimed' || member.state === 'handed-over');
  if (member && !ours) {
    return fail(deps, saga, {
      code: 'ClaimLost',
      message: `${instanceId} went back to the pool (${member.state}) before it was handed over`,
    });
  }
  const instance = await deps.ec2.describe(instanceId);
  if (!instance || GONE.includes(instance.state)) {
    return fail(deps, saga, { code: 'ServerLost', message: `${instanceId} is gone` });
  }
  const pool = saga.record.pool;
  const stillPooled = isManagedBy(instance.tags, pool);
  if (stillPooled && !member) {
    return fail(deps, saga, {
      code: 'ClaimLost',
      message: `${instanceId} is no longer claimed for this request`,
    });
  }
  if (saga.record.step !== 'personalized') {
    if (!stillPooled) {
      // Only a transfer this saga did not record removes the pool tags before personalization
      // (an older release transferred first): the commands can no longer be sent.
      return fail(deps, saga, {
        code: 'PersonalizationFailed',
        message: `${instanceId} left the pool before it was personalized`,
      });
    }
    const failure = await personalize(deps, saga, instanceId);
    if (failure) return fail(deps, saga, failure);
    await saga.step({ step: 'personalized', instanceId, path });
  }
  if (stillPooled) {
    await deps.ec2.tag(instanceId, saga.request.ownerTags);
    // Volumes first: their fence is the instance's pool tags, which the next call removes.
    await deps.ec2.untagVolumes(instance, pool, POOL_TAGS);
    await deps.ec2.untag(instanceId, POOL_TAGS);
  }
  if (member?.state === 'claimed') {
    const handedOver = transition(member, 'handed-over', deps.clock.now());
    await deps.store.updateMember(member, handedOver);
    await deps.store.deleteMember(handedOver);
  } else if (member) {
    await deps.store.deleteMember(member);
  }
  await saga.step({ step: 'transferred', instanceId, path });
  return finish(deps, saga, path);
};

const POOL_TAGS = [TAG.pool, TAG.memberState, TAG.managed, TAG.claim];

/**
 * Personalization over SSM, on the still-pooled member; what went wrong, or nothing. A failed or
 * timed-out personalization leaves the member claimed and pool-tagged: it is running, so the
 * pools reconcile retires it once the claim is over (`claim-abandoned`) and it never goes back to
 * the pool with a half-applied requester's key or host name on it.
 */
const personalize = async (
  deps: ClaimDeps,
  saga: Saga,
  instanceId: string,
): Promise<ClaimError | undefined> => {
  const request = saga.request;
  const record = await deps.store.getPool(saga.record.pool);
  const platform = record?.spec.initialization.platform ?? 'linux';
  const commands: [string, Record<string, string[]>][] = [
    [PERSONALIZE_DOCUMENT, personalizeParameters(request, platform)],
  ];
  const named = request.personalization?.document;
  if (named) commands.push([named.name, named.parameters]);
  for (const [document, parameters] of commands) {
    const commandId = await deps.ssm.send(instanceId, document, parameters);
    const result = await waitFor(
      deps,
      COMMAND_WAIT_MS,
      async () => {
        await saga.keep();
        const status = await deps.ssm.result(commandId, instanceId);
        return status === 'pending' ? undefined : status;
      },
      `${document} on ${instanceId}`,
    );
    if (result === 'failed') {
      return { code: 'PersonalizationFailed', message: `${document} failed on ${instanceId}` };
    }
  }
  return undefined;
};

/** The server is personalized and the requester's: Server Ready. */
const finish = async (deps: ClaimDeps, saga: Saga, path: ClaimPath): Promise<ClaimOutcome> => {
  await saga.step({ step: 'ready' });
  const outcome = await republish(deps, saga.record);
  if (outcome.status === 'ready') {
    deps.metrics
      .singleMetric()
      .addDimension('Path', path)
      .addMetric('TimeToReadySeconds', MetricUnit.Seconds, outcome.timeToReadySeconds);
    deps.metrics
      .singleMetric()
      .addDimension('Pool', outcome.pool)
      .addMetric('PoolHitRatio', MetricUnit.Percent, path === 'cold' ? 0 : 100);
  }
  return outcome;
};
