import type { PoolRecord, PoolStore } from '../../pools/adapters/store';
import { allowedInstanceTypes } from '../../pools/config';
import {
  CLAIM_LEASE_MS,
  type ClaimError,
  type ClaimRecord,
  isLeased,
  isTerminal,
  WAITING_FOR_INIT,
} from '../../pools/domain/claims';
import type { PoolMember } from '../../pools/domain/lifecycle';
import type { Caller } from '../../shared/caller';
import { NotFoundError, ValidationError } from '../../shared/errors';
import type { ClaimDependencies } from '../dependencies';
import { architectureOf, resizeCompatible, wantedInstanceType } from '../domain/choice';
import { quotaKeyOf, requestDigest } from '../domain/request-digest';
import { checkNamedDocument, personalizeParameters, type ServerRequest } from '../schemas';
import { advance, claimMember } from './claim-member';
import { type ClaimOutcome, coldLaunching, inProgress, publishFailure, republish } from './outcomes';
import { ClaimTakenOverError, drive, Saga } from './saga-lease';

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

const poolFor = async (store: PoolStore, request: ServerRequest): Promise<PoolRecord> => {
  if (request.pool) {
    const record = await store.getPool(request.pool);
    if (record?.status === 'active') return record;
    throw new NotFoundError(`pool ${request.pool} is not defined or is draining`);
  }
  const match = (await store.listPools()).pools.find(
    (record) => record.status === 'active' && record.spec.image === request.image,
  );
  if (!match) throw new NotFoundError(`no active pool for image ${request.image}`);
  return match;
};

/**
 * The claim saga: `requested → member-claimed → started → personalized → transferred → ready`, or
 * `requested → cold-launching → (pools initializes) → personalized → transferred → ready`, or
 * `failed`. A request whose saga exists already continues it from the recorded step instead of
 * starting over, so a retried or re-sent request finishes what an interrupted one began; the pools
 * reconcile resumes (or gives up and reports) a saga nobody drives.
 */
export const claimServer = async (
  deps: ClaimDependencies,
  requestId: string,
  request: ServerRequest,
  caller?: Caller,
): Promise<ClaimOutcome> => {
  checkNamedDocument(request, caller);
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
    request,
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
const continueRequest = (
  deps: ClaimDependencies,
  claim: ClaimRecord,
  digest: string,
): Promise<ClaimOutcome> => {
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
  const wanted = wantedInstanceType(request, spec);
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
export const resumeClaim = async (deps: ClaimDependencies, requestId: string): Promise<ClaimOutcome> => {
  const claim = await deps.store.getClaim(requestId);
  if (!claim) return { status: 'in-progress', requestId, step: 'unknown' };
  return continueClaim(deps, claim);
};

/** Continues a saga from its recorded step, unless another invocation is driving it. */
const continueClaim = async (deps: ClaimDependencies, claim: ClaimRecord): Promise<ClaimOutcome> => {
  if (isTerminal(claim.step)) return republish(deps, claim);
  const now = deps.clock.now();
  if (isLeased(claim, now)) return inProgress(claim);
  let member: PoolMember | undefined;
  if (claim.step === 'cold-launching' && claim.instanceId) {
    member = await deps.store.findMember(claim.instanceId);
    // Still initializing: the pools function sends the resume when it is done.
    if (member && WAITING_FOR_INIT.includes(member.state)) {
      return coldLaunching(claim.requestId, claim.instanceId, claim.pool);
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
