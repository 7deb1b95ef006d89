import { isUnknownInstance } from '../../shared/aws-errors';
import type { Caller } from '../../shared/caller';
import { ValidationError } from '../../shared/errors';
import { failedItem, type ItemResult } from '../../shared/results';
import type { ShelvingDependencies } from '../dependencies';
import { launchRefusal } from '../domain/launch-policy';
import {
  planShelve,
  type RequestedMove,
  requestOffload,
  requestSentAt,
  requestUnshelve,
  type ShelveRequestItem,
} from '../domain/requests';
import { unshelveAttempt } from '../domain/saga';
import {
  forCallersRecords,
  IN_PROCESS_CALLER,
  recordTenantRefusal,
  requestedTenantRefusal,
  shelveTenantRefusal,
} from '../domain/tenancy';
import {
  type MoveAnswer,
  phaseOf,
  type RequestIdentity,
  type RequestResolution,
  type ShelfRecord,
  type ShelveAnswer,
} from '../domain/types';
import type { OffloadInstancesDetail, ShelveInstancesDetail, UnshelveInstancesDetail } from '../schemas';
import { describeForShelve } from './reads';
import { FOLLOW_MS, type RoundRunner } from './rounds';

/**
 * The operator requests: Shelve, Offload and Unshelve Instances, each idempotent on its own event
 * id beyond the Powertools record (a ledger of answers in the shelves table), then advanced by
 * the rounds.
 */

/** What a request is: its event id (every retry and duplicate delivery keeps it), time and caller. */
export interface RequestOrigin {
  readonly requestId: string;
  /** The event's time; absent: sent when handled. */
  readonly sentAt?: number | undefined;
  /** Who it acts for (functions/shared/caller.ts); absent: in process, for every tenant. */
  readonly caller?: Caller | undefined;
}

/** The rounds a request hands the records it moved to. */
export type Rounds = Pick<RoundRunner, 'advance'>;

/** Instances a Shelve request describes in full (with their details) at a time. */
const SHELVE_PART = 50;
/** Steps a tenant-wide Unshelve resolves to: a record at rest, not on its way anywhere. */
const RESTING_STEPS: readonly ShelfRecord['step'][] = ['shelved', 'offloaded', 'failed'];

/** A list longer than the deployment's `maxInstancesPerRequest` refuses the request, naming the field. */
const checkSize = (
  deps: ShelvingDependencies,
  field: string,
  items: readonly unknown[] | undefined,
): void => {
  const max = deps.settings.maxInstancesPerRequest;
  if (items && items.length > max) throw new ValidationError(field, `at most ${max} items per request`);
};

/** A `detail.tenant` the caller does not act for refuses the whole request, naming the field. */
const checkRequestedTenant = (caller: Caller, tenant: string | undefined): void => {
  const refusal = requestedTenantRefusal(caller, tenant);
  if (refusal) throw new ValidationError('detail.tenant', refusal);
};

const requestIdentity = (deps: ShelvingDependencies, requestId: string): RequestIdentity => ({
  requestId,
  expiresAt: Math.floor(deps.clock.now() / 1000) + deps.settings.requestMemorySeconds,
});

/**
 * 'Shelve Instances'. The request id makes the request idempotent on its own, beyond the
 * Powertools record: each instance's answer is remembered under it (in the record's own
 * transaction when a record is created), and a later handling of the same request answers what
 * the first one answered, even after that record was unshelved or deleted. A new request (new
 * event id) is a new decision: it shelves the instance again if it is no longer in a live record.
 * An instance (or its record) of a tenant the caller does not act for gets its own error, before
 * anything else is told about it.
 */
export const shelveInstances = async (
  deps: ShelvingDependencies,
  rounds: Rounds,
  detail: ShelveInstancesDetail,
  origin: RequestOrigin,
): Promise<ShelveAnswer[]> => {
  checkSize(deps, 'detail.instanceIds', detail.instanceIds);
  const caller = origin.caller ?? IN_PROCESS_CALLER;
  checkRequestedTenant(caller, detail.tenant);
  const items: ShelveRequestItem[] = detail.instanceIds.map((instanceId) => ({
    instanceId,
    ...(detail.tenant !== undefined ? { tenant: detail.tenant } : {}),
    ...(detail.offloadAfterSeconds !== undefined ? { offloadAfterSeconds: detail.offloadAfterSeconds } : {}),
    ...(detail.snapshot !== undefined ? { snapshot: detail.snapshot } : {}),
  }));
  const { store, settings } = deps;
  const now = deps.clock.now();
  const request = requestIdentity(deps, origin.requestId);
  const answered = await store.shelveAnswers(request.requestId, now);
  const results: ShelveAnswer[] = [];
  const created: ShelfRecord[] = [];
  const remember = (answer: ShelveAnswer): Promise<ShelveAnswer> =>
    store.rememberShelveAnswer(request, answer, now);
  // A part at a time: reading an instance's details takes three DescribeInstanceAttribute calls,
  // so a handling that runs out of time has answered (and remembered) the parts before.
  let seen = await describeForShelve(deps.ec2, [], settings.allowedImageOwners);
  for (const [position, item] of items.entries()) {
    if (position % SHELVE_PART === 0) {
      const part = items.slice(position, position + SHELVE_PART);
      seen = await describeForShelve(
        deps.ec2,
        part
          .filter((candidate) => !answered.has(candidate.instanceId))
          .map((candidate) => candidate.instanceId),
        settings.allowedImageOwners,
      );
    }
    const { instances, volumes, details, images } = seen;
    const before = answered.get(item.instanceId);
    if (before) {
      results.push(before);
      continue;
    }
    const notTheCallers = shelveTenantRefusal(caller, instances.get(item.instanceId));
    if (notTheCallers) {
      results.push(await remember(failedItem(item.instanceId, notTheCallers)));
      continue;
    }
    const existing = await store.recordIdForInstance(item.instanceId);
    if (existing) {
      const held = await store.get(existing);
      const recordNotTheCallers = held
        ? recordTenantRefusal(caller, held, `instance ${item.instanceId}`)
        : undefined;
      results.push(
        await remember(
          recordNotTheCallers
            ? failedItem(item.instanceId, recordNotTheCallers)
            : { id: item.instanceId, ok: true, recordId: existing, created: false },
        ),
      );
      continue;
    }
    const plan = planShelve(
      item,
      instances.get(item.instanceId),
      volumes,
      settings,
      now,
      details.get(item.instanceId),
    );
    if (!plan.ok) {
      results.push(await remember(failedItem(item.instanceId, plan.error)));
      continue;
    }
    // A record no launch could serve (a profile or AMI the settings do not allow) is never made.
    const notLaunchable = launchRefusal(plan.record.config, images, settings);
    if (notLaunchable) {
      results.push(await remember(failedItem(item.instanceId, notLaunchable)));
      continue;
    }
    const record: ShelfRecord = {
      ...plan.record,
      shelvedBy: { requestId: request.requestId, sentAt: requestSentAt(origin.sentAt, now) },
    };
    const outcome = await store.create(record, request);
    if (outcome.created) {
      created.push(record);
      results.push({ id: item.instanceId, ok: true, recordId: record.recordId, created: true });
    } else if ('remembered' in outcome) {
      results.push(outcome.remembered);
    } else {
      results.push(
        await remember({ id: item.instanceId, ok: true, recordId: outcome.existingRecordId, created: false }),
      );
    }
  }
  // A handling that died after creating records may have left them before their first round:
  // its retry finishes them (the reconcile would too, a schedule period later).
  const unfinished = await unfinishedShelves(deps, results, created);
  if (created.length + unfinished.length > 0)
    await rounds.advance([...created, ...unfinished], { followForMs: FOLLOW_MS.request });
  return results;
};

/** Records this request created in an earlier handling that are still being shelved. */
const unfinishedShelves = async (
  deps: ShelvingDependencies,
  results: readonly ShelveAnswer[],
  created: readonly ShelfRecord[],
): Promise<ShelfRecord[]> => {
  const createdNow = new Set(created.map((record) => record.recordId));
  const earlier = results.flatMap((result) =>
    result.ok && result.created && !createdNow.has(result.recordId) ? [result.recordId] : [],
  );
  if (earlier.length === 0) return [];
  const records = await deps.store.getMany(earlier);
  return records.filter((record) => phaseOf(record.step) === 'shelving');
};

/** The records an Offload or Unshelve names: by record id and by instance id (shelved or replacement). */
interface NamedRecords {
  readonly recordIds?: readonly string[] | undefined;
  readonly instanceIds?: readonly string[] | undefined;
}

/**
 * How an Offload or Unshelve moves its records. `tenant`: the request's own (alone, it names the
 * tenant's records at rest); `marksUnshelve`: each move starts an unshelve attempt of this request;
 * `decision`: how each resolved record of the caller's moves.
 */
interface MoveHow {
  readonly tenant: string | undefined;
  readonly marksUnshelve: boolean;
  readonly decision: (
    recordIds: readonly string[],
    caller: Caller,
  ) => Promise<(record: ShelfRecord) => RequestedMove>;
}

/**
 * An Offload or Unshelve request: the names checked, resolved (and remembered), then each resolved
 * record moved as the request's `how` says.
 */
const moveRequest =
  <Detail extends NamedRecords>(how: (deps: ShelvingDependencies, detail: Detail) => MoveHow) =>
  async (
    deps: ShelvingDependencies,
    rounds: Rounds,
    detail: Detail,
    origin: RequestOrigin,
  ): Promise<ItemResult[]> => {
    const { tenant, marksUnshelve, decision } = how(deps, detail);
    checkSize(deps, 'detail.recordIds', detail.recordIds);
    checkSize(deps, 'detail.instanceIds', detail.instanceIds);
    const caller = origin.caller ?? IN_PROCESS_CALLER;
    checkRequestedTenant(caller, tenant);
    const request = requestIdentity(deps, origin.requestId);
    const resolution = await resolve(deps, detail, tenant, request, origin.sentAt);
    const decide = await decision(resolution.recordIds, caller);
    const results = await move(
      deps,
      rounds,
      resolution.recordIds,
      forCallersRecords(caller, decide),
      request,
      marksUnshelve,
    );
    return [...resolution.missing, ...results];
  };

/**
 * 'Offload Instances' as requested: the records named by id and by instance id. Like Shelve, the
 * request id makes it idempotent on its own: what the names resolved to is remembered before any
 * record moves, and each record's answer with its move, so a later handling of the same event
 * acts on the same records (not on a record of an instance shelved again since), answers the
 * records it already answered with that answer, and resumes the records a killed handling moved
 * but never advanced. A record of a tenant the caller does not act for is refused item by item
 * (`NotAuthorizedForTenant`).
 */
export const offloadInstances = moveRequest<OffloadInstancesDetail>((deps) => ({
  tenant: undefined,
  marksUnshelve: false,
  decision: async (recordIds, caller) => {
    const protectedNow = await terminationProtected(deps, recordIds, caller);
    return (record) => requestOffload(record, protectedNow.has(record.instanceId));
  },
}));

/** 'Unshelve Instances'; like Offload, and a tenant alone names all of its records at rest. */
export const unshelveInstances = moveRequest<UnshelveInstancesDetail>((_deps, detail) => ({
  tenant: detail.tenant,
  marksUnshelve: true,
  decision: async () => (record) => requestUnshelve(record, detail.tenant),
}));

/** The shelved instances of these records (the caller's) that have termination protection now. */
const terminationProtected = async (
  deps: ShelvingDependencies,
  recordIds: readonly string[],
  caller: Caller,
): Promise<Set<string>> => {
  const { ec2, store } = deps;
  const shelved = (await store.getMany(recordIds)).filter(
    (record) => record.step === 'shelved' && recordTenantRefusal(caller, record) === undefined,
  );
  const protectedIds = new Set<string>();
  await Promise.all(
    shelved.map(async (record) => {
      // An instance EC2 no longer knows is not protected: the offload step sees it gone.
      const attributes = await ec2
        .describeInstanceAttributes(record.instanceId, ['disableApiTermination'])
        .catch((error: unknown) => {
          if (isUnknownInstance(error)) return { disableApiTermination: false };
          throw error;
        });
      if (attributes.disableApiTermination === true) protectedIds.add(record.instanceId);
    }),
  );
  return protectedIds;
};

/** Resolves instance ids (shelved or replacement) to record ids; unknown ones are per-item errors. */
const recordIdsFor = async (
  deps: ShelvingDependencies,
  instanceIds: readonly string[],
): Promise<{ found: string[]; missing: ItemResult[] }> => {
  const found: string[] = [];
  const missing: ItemResult[] = [];
  for (const instanceId of instanceIds) {
    const recordId = await deps.store.recordIdForInstance(instanceId);
    if (recordId) found.push(recordId);
    else missing.push(failedItem(instanceId, { code: 'NotFound', message: `${instanceId} is not shelved` }));
  }
  return { found, missing };
};

const recordIdsOfTenant = async (deps: ShelvingDependencies, tenant: string): Promise<string[]> => {
  const records = await deps.store.byTenant(tenant, deps.settings.maxInstancesPerRequest);
  return records.filter((record) => RESTING_STEPS.includes(record.step)).map((r) => r.recordId);
};

/**
 * The records a request acts on: remembered from its first handling, or resolved now (instance
 * ids through their links, a tenant alone to its resting records) and remembered before any
 * record moves. A handling killed before the remembering moved nothing, so resolving afresh is
 * what its first handling would have done — except that a record whose Shelve was sent after
 * this request (`sentAt`, the event's time) cannot be what the request meant: a retry that
 * arrives after the instance was shelved again must not unshelve or offload the new record.
 */
const resolve = async (
  deps: ShelvingDependencies,
  named: NamedRecords,
  tenant: string | undefined,
  request: RequestIdentity,
  sentAt: number | undefined,
): Promise<RequestResolution> => {
  const { store, clock } = deps;
  const now = clock.now();
  const remembered = await store.resolution(request.requestId, now);
  if (remembered) return remembered;
  const resolved = await recordIdsFor(deps, named.instanceIds ?? []);
  const byName = [...(named.recordIds ?? []), ...resolved.found];
  const candidates =
    byName.length === 0 && tenant !== undefined ? await recordIdsOfTenant(deps, tenant) : byName;
  // A request sent now (no delivery of it can be a retry) cannot precede any record.
  const sent = requestSentAt(sentAt, now);
  const late = sent < now ? await shelvedAfter(deps, candidates, sent) : [];
  const recordIds = candidates.filter((recordId) => !late.some((record) => record.recordId === recordId));
  const missing = [
    ...resolved.missing,
    ...late
      .filter((record) => byName.includes(record.recordId))
      .map((record) =>
        failedItem(record.instanceId, {
          code: 'NotFound',
          message: `${record.instanceId} was shelved again (${record.recordId}) after this request was sent`,
        }),
      ),
  ];
  return store.rememberResolution(request, { recordIds, missing }, now);
};

/**
 * Records whose Shelve was sent after a request sent at `sentAt`. What counts is when the Shelve
 * was sent, not when it was handled: a Shelve sent first but delivered late is still what a later
 * request means. Both times are event times of one-second resolution, so only a later second is
 * certainly later; a record made outside a request counts from its creation.
 */
const shelvedAfter = async (
  deps: ShelvingDependencies,
  recordIds: readonly string[],
  sentAt: number,
): Promise<ShelfRecord[]> => {
  if (recordIds.length === 0) return [];
  const records = await deps.store.getMany(recordIds);
  return records.filter((record) => (record.shelvedBy?.sentAt ?? record.shelvedAt) >= sentAt + 1_000);
};

/** A record this request moved in an earlier handling that has not come to rest since. */
const startedBy = (record: ShelfRecord, requestId: string, marksUnshelve: boolean): boolean =>
  marksUnshelve
    ? phaseOf(record.step) === 'unshelving' && record.unshelve?.requestId === requestId
    : record.step === 'offload.terminate';

/**
 * Moves each record as `decide` says, remembering each answer with its move (or alone when
 * nothing moved), then advances what moved and what an earlier handling moved but never advanced.
 * `marksUnshelve`: the move starts an unshelve attempt of this request.
 */
const move = async (
  deps: ShelvingDependencies,
  rounds: Rounds,
  recordIds: readonly string[],
  decide: (record: ShelfRecord) => RequestedMove,
  request: RequestIdentity,
  marksUnshelve: boolean,
): Promise<MoveAnswer[]> => {
  const { store, clock } = deps;
  const now = clock.now();
  const answered = await store.moveAnswers(request.requestId, now);
  const records = new Map((await store.getMany(recordIds)).map((record) => [record.recordId, record]));
  const remember = (answer: MoveAnswer): Promise<MoveAnswer> =>
    store.rememberMoveAnswer(request, answer, now);
  const results: MoveAnswer[] = [];
  const moved: ShelfRecord[] = [];
  const resumed: ShelfRecord[] = [];
  for (const recordId of new Set(recordIds)) {
    const record = records.get(recordId);
    const before = answered.get(recordId);
    if (before) {
      results.push(before);
      if (before.ok && record && startedBy(record, request.requestId, marksUnshelve)) resumed.push(record);
      continue;
    }
    if (!record) {
      results.push(
        await remember(failedItem(recordId, { code: 'NotFound', message: `no shelve record ${recordId}` })),
      );
      continue;
    }
    const decided = decide(record);
    if (!decided.ok) {
      results.push(await remember(failedItem(recordId, decided.error)));
      continue;
    }
    if (decided.unchanged) {
      results.push(await remember({ id: recordId, ok: true, step: record.step }));
      continue;
    }
    const next: ShelfRecord = {
      ...record,
      step: decided.to,
      version: record.version + 1,
      stepSince: now,
      nextDueAt: now,
      error: undefined,
      ...(marksUnshelve ? { unshelve: unshelveAttempt(record, request.requestId, now) } : {}),
    };
    const answer: MoveAnswer = { id: recordId, ok: true, step: next.step };
    if (await store.update(record, next, { remember: { request, answer, now } })) {
      moved.push(next);
      results.push(answer);
      continue;
    }
    // An overlapping delivery of the same request may have moved it first: its answer stands.
    const overlapping = (await store.moveAnswers(request.requestId, now)).get(recordId);
    results.push(
      overlapping ??
        failedItem(recordId, { code: 'Conflict', message: `record ${recordId} changed concurrently; retry` }),
    );
  }
  const toAdvance = [...moved, ...resumed];
  if (toAdvance.length > 0) await rounds.advance(toAdvance, { followForMs: FOLLOW_MS.request });
  return results;
};
