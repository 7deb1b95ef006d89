import type { Metrics } from '@aws-lambda-powertools/metrics';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { PoolEc2, PoolSsm } from '../pools/adapters/ec2';
import type { ClaimRecord, PoolRecord, PoolStore } from '../pools/adapters/store';
import { documentNamed, PERSONALIZE_DOCUMENT } from '../pools/documents';
import { type PoolMember, transition } from '../pools/domain/lifecycle';
import type { ObservedInstance } from '../pools/domain/reconcile';
import { isManagedBy, TAG } from '../pools/domain/tags';
import type { FactPublisher } from '../shared/adapters/facts';
import type { Clock } from '../shared/clock';
import {
  CapacityError,
  ConflictError,
  errorMessage,
  IncorrectStateError,
  NotFoundError,
  ValidationError,
  WarmbootError,
} from '../shared/errors';
import { pollUntil } from '../shared/retry';
import { invalidDocumentParameter } from '../shared/ssm-document';
import { type ClaimPath, rankCandidates } from './domain/choice';
import type { ServerRequest } from './schemas';

export interface ClaimDeps {
  readonly store: PoolStore;
  readonly ec2: PoolEc2;
  readonly ssm: PoolSsm;
  readonly facts: FactPublisher;
  readonly clock: Clock;
  readonly metrics: Metrics;
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
const COMMAND_WAIT_MS = 10 * 60_000;

/** Personalization parameters, validated with the same patterns as the document's allowedPattern. */
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
  const named = request.personalization?.document;
  if (named) {
    const document = documentNamed(named.name);
    if (!document)
      throw new ValidationError('detail.personalization.document.name', `unknown document ${named.name}`);
    const bad = invalidDocumentParameter(document, named.parameters);
    if (bad)
      throw new ValidationError(`detail.personalization.document.parameters.${bad.parameter}`, bad.message);
  }
  return parameters;
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

const waitFor = async <T>(
  clock: Clock,
  timeoutMs: number,
  poll: () => Promise<T | undefined>,
  what: string,
): Promise<T> => {
  const value = await pollUntil(poll, {
    clock,
    timeoutMs,
    // Fine-grained at first: the hot path is ~2 s and every poll step adds to time-to-ready.
    intervalMs: (attempt) => Math.min(2_000, 500 * 2 ** attempt),
  });
  if (value === undefined) throw new IncorrectStateError(`timed out waiting for ${what}`);
  return value;
};

/**
 * The claim saga. Every step is recorded on the claim record (conditional on its version), so a
 * crashed claim either resumes (cold launch finished) or is healed by the pools reconcile
 * (member stuck in `claimed`: released if never started, retired otherwise).
 */
export const claimServer = async (
  deps: ClaimDeps,
  requestId: string,
  request: ServerRequest,
): Promise<ClaimOutcome> => {
  const started = deps.clock.now();
  const record = await poolFor(deps.store, request);
  const spec = record.spec;
  const platform = spec.initialization.platform;
  personalizeParameters(request, platform);
  const claim: ClaimRecord = {
    requestId,
    step: 'requested',
    pool: spec.name,
    request: request as Record<string, unknown>,
    requestedAt: started,
    version: 0,
  };
  if (!(await deps.store.createClaim(claim))) {
    const existing = await deps.store.getClaim(requestId);
    return existing?.step === 'ready' && existing.instanceId && existing.path
      ? {
          status: 'ready',
          requestId,
          instanceId: existing.instanceId,
          path: existing.path,
          pool: existing.pool,
          timeToReadySeconds: 0,
        }
      : { status: 'in-progress', requestId, step: existing?.step ?? 'unknown' };
  }
  await deps.store.recordRequest(spec.name, started);
  let saga = claim;
  const step = async (changes: Partial<ClaimRecord>) => {
    const next = { ...saga, ...changes, version: saga.version + 1 };
    await deps.store.updateClaim(saga, next);
    saga = next;
  };
  const instanceType = request.instanceType ?? spec.instanceType;
  const tried = new Set<string>();
  for (;;) {
    const members = await deps.store.listMembers(spec.name);
    const [candidate] = rankCandidates(
      members,
      { instanceType, availabilityZone: request.availabilityZone },
      tried,
    );
    if (!candidate) break;
    tried.add(candidate.member.instanceId);
    const claimed = transition(candidate.member, 'claimed', deps.clock.now(), { claimId: requestId });
    try {
      await deps.store.updateMember(candidate.member, claimed);
    } catch (error) {
      if (error instanceof ConflictError) continue; // another claim won this member
      throw error;
    }
    await step({ step: 'member-claimed', instanceId: claimed.instanceId, path: candidate.path });
    const instance = await deps.ec2.describe(claimed.instanceId);
    if (!instance) {
      // Terminated behind warmboot's back: the reconcile forgets the record.
      await deps.store.updateMember(
        claimed,
        transition(claimed, 'retiring', deps.clock.now(), { reason: 'vanished' }),
      );
      continue;
    }
    let resized = false;
    try {
      if (candidate.resize) {
        await deps.ec2.resize(instance, spec.name, instanceType);
        resized = true;
      }
      if (!claimed.running) await deps.ec2.start(instance, spec.name);
    } catch (error) {
      if (!(error instanceof CapacityError || error instanceof IncorrectStateError)) throw error;
      await giveBack(deps, spec.name, claimed, instance, resized);
      continue;
    }
    if (!claimed.running) {
      await waitFor(
        deps.clock,
        RUNNING_WAIT_MS,
        async () => ((await deps.ec2.describe(claimed.instanceId))?.state === 'running' ? true : undefined),
        'running',
      );
    }
    await step({ step: 'started' });
    await deps.facts.publish([
      {
        detailType: 'Server Claimed',
        detail: { pool: spec.name, requestId, instanceId: claimed.instanceId },
      },
    ]);
    return handOver(deps, saga, claimed, request, candidate.path, step);
  }
  return coldLaunch(deps, saga, record, instanceType, step);
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
  saga: ClaimRecord,
  record: PoolRecord,
  instanceType: string,
  step: (changes: Partial<ClaimRecord>) => Promise<void>,
): Promise<ClaimOutcome> => {
  const { spec } = record;
  let lastError: WarmbootError | undefined;
  for (const subnetId of spec.subnets) {
    try {
      const instance = await deps.ec2.launch({
        spec,
        imageId: await deps.ssm.resolveImage(spec.image),
        subnetId,
        clientToken: `${saga.requestId}-${subnetId}`.slice(0, 64),
        instanceType,
        tags: {
          [TAG.managed]: 'true',
          [TAG.pool]: spec.name,
          [TAG.memberState]: 'launching',
          [TAG.claim]: saga.requestId,
        },
      });
      const now = deps.clock.now();
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
        claimId: saga.requestId,
      });
      await step({ step: 'cold-launching', instanceId: instance.instanceId, path: 'cold' });
      return {
        status: 'launching',
        requestId: saga.requestId,
        instanceId: instance.instanceId,
        path: 'cold',
        pool: spec.name,
      };
    } catch (error) {
      if (!(error instanceof CapacityError)) throw error;
      lastError = error;
    }
  }
  const failure = {
    code: lastError?.code ?? 'InsufficientCapacity',
    message: lastError?.message ?? 'no capacity',
  };
  await step({ step: 'failed', error: failure });
  await deps.facts.publish([
    {
      detailType: 'Server Request Failed',
      detail: { requestId: saga.requestId, pool: spec.name, error: failure },
    },
  ]);
  return { status: 'failed', requestId: saga.requestId, error: failure };
};

/** Resumes a claim whose cold launch the pools function initialized (member now `claimed`). */
export const resumeClaim = async (deps: ClaimDeps, requestId: string): Promise<ClaimOutcome> => {
  const saga = await deps.store.getClaim(requestId);
  if (!saga?.instanceId || saga.step !== 'cold-launching') {
    return { status: 'in-progress', requestId, step: saga?.step ?? 'unknown' };
  }
  const member = await deps.store.findMember(saga.instanceId);
  if (member?.state !== 'claimed' || member.claimId !== requestId) {
    return { status: 'in-progress', requestId, step: saga.step };
  }
  let current = saga;
  const step = async (changes: Partial<ClaimRecord>) => {
    const next = { ...current, ...changes, version: current.version + 1 };
    await deps.store.updateClaim(current, next);
    current = next;
  };
  return handOver(deps, saga, member, saga.request as ServerRequest, 'cold', step);
};

/** Ownership transfer, personalization, Server Ready. Owner tags come only from the request. */
const handOver = async (
  deps: ClaimDeps,
  saga: ClaimRecord,
  member: PoolMember,
  request: ServerRequest,
  path: ClaimPath,
  step: (changes: Partial<ClaimRecord>) => Promise<void>,
): Promise<ClaimOutcome> => {
  const record = await deps.store.getPool(member.pool);
  const platform = record?.spec.initialization.platform ?? 'linux';
  await deps.ec2.tag(member.instanceId, request.ownerTags);
  const poolTags = [TAG.pool, TAG.memberState, TAG.managed, TAG.claim];
  // Volumes first: their fence is the instance's pool tags, which the next call removes. A retried
  // hand-over that finds the instance already re-owned has done the volumes before.
  const instance = await deps.ec2.describe(member.instanceId);
  if (instance && isManagedBy(instance.tags, member.pool)) {
    await deps.ec2.untagVolumes(instance, member.pool, poolTags);
  }
  await deps.ec2.untag(member.instanceId, poolTags);
  const handedOver = transition(member, 'handed-over', deps.clock.now());
  await deps.store.updateMember(member, handedOver);
  await deps.store.deleteMember(handedOver);
  await step({ step: 'transferred' });
  const commands: [string, Record<string, string[]>][] = [
    [PERSONALIZE_DOCUMENT, personalizeParameters(request, platform)],
  ];
  const named = request.personalization?.document;
  if (named) commands.push([named.name, named.parameters]);
  for (const [document, parameters] of commands) {
    const commandId = await deps.ssm.send(member.instanceId, document, parameters);
    const result = await waitFor(
      deps.clock,
      COMMAND_WAIT_MS,
      async () => {
        const status = await deps.ssm.result(commandId, member.instanceId);
        return status === 'pending' ? undefined : status;
      },
      `${document} on ${member.instanceId}`,
    );
    if (result === 'failed') {
      const error = { code: 'PersonalizationFailed', message: `${document} failed on ${member.instanceId}` };
      await step({ step: 'failed', error });
      await deps.facts.publish([
        {
          detailType: 'Server Request Failed',
          detail: { requestId: saga.requestId, pool: member.pool, instanceId: member.instanceId, error },
        },
      ]);
      return { status: 'failed', requestId: saga.requestId, error };
    }
  }
  const timeToReadySeconds = Math.round((deps.clock.now() - saga.requestedAt) / 100) / 10;
  await step({ step: 'ready' });
  await deps.facts.publish([
    {
      detailType: 'Server Ready',
      detail: {
        requestId: saga.requestId,
        instanceId: member.instanceId,
        path,
        timeToReadySeconds,
        pool: member.pool,
      },
      resources: [],
    },
  ]);
  deps.metrics
    .singleMetric()
    .addDimension('Path', path)
    .addMetric('TimeToReadySeconds', MetricUnit.Seconds, timeToReadySeconds);
  deps.metrics
    .singleMetric()
    .addDimension('Pool', member.pool)
    .addMetric('PoolHitRatio', MetricUnit.Percent, path === 'cold' ? 0 : 100);
  return {
    status: 'ready',
    requestId: saga.requestId,
    instanceId: member.instanceId,
    path,
    pool: member.pool,
    timeToReadySeconds,
  };
};

export const failureOf = (requestId: string, error: unknown): ClaimOutcome => ({
  status: 'failed',
  requestId,
  error: { code: error instanceof WarmbootError ? error.code : 'Error', message: errorMessage(error) },
});
