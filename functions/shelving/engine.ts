import { randomBytes } from 'node:crypto';
import type { Fact, FactPublisher } from '../shared/adapters/facts';
import { isAddressInUse, isTransient, isUnknownInstance, mayHaveTakenEffect } from '../shared/aws-errors';
import type { Caller } from '../shared/caller';
import type { Clock } from '../shared/clock';
import { EncryptionKeyError, errorMessage, ThrottledError, WarmbootError } from '../shared/errors';
import type { ShelvingEc2 } from './adapters/ec2';
import { phaseOf, type ShelfStore, type UpdateOptions } from './adapters/store';
import type { ShelvingSettings } from './config';
import { chunk, fastLaunchRequest, planLaunchBatches, slowLaunchRequest } from './domain/bulk';
import {
  encryptionKeyUnusable,
  fastLaunchRefused,
  HOST_WAIT_RETRY_MS,
  LAUNCH_REISSUE_MS,
  mayNeedOtherZone,
  nextStep,
  ownedVolumeIds,
  privateIpInUse,
  slowLaunchRefused,
} from './domain/saga';
import {
  CONFIRMATION_TTL_MS,
  confirmedPlan,
  type DeletionPlan,
  deletionUnderWay,
  issueConfirmation,
  planDeletion,
  planShelve,
  type RequestedMove,
  requestOffload,
  requestUnshelve,
  type ShelveRequestItem,
  startDeletion,
  undoDeletion,
} from './domain/shelve';
import { REPLACEMENT_BATCH_TAG, REPLACEMENT_FOR_TAG, SHELVED_TAG } from './domain/tags';
import {
  forCallersRecords,
  IN_PROCESS_CALLER,
  recordTenantRefusal,
  shelveTenantRefusal,
} from './domain/tenancy';
import type {
  Action,
  Decision,
  ItemResult,
  MoveAnswer,
  Observation,
  ObservedInstance,
  ObservedSnapshot,
  ObservedVolume,
  RecordError,
  RequestIdentity,
  RequestResolution,
  ShelfRecord,
  ShelveAnswer,
  ShelvingFact,
  Step,
  UnshelveState,
} from './domain/types';
import { describeForShelve, observeRestoration } from './reads';

/**
 * Throttling, EC2's own fault, or no AWS answer at all (a killed invocation): worth repeating as
 * it was. Anything else is a refusal of something in the request.
 */
const isTransientFailure = (error: unknown): boolean =>
  !(error instanceof WarmbootError) || error instanceof ThrottledError || isTransient(error.cause);

/**
 * The application service of the shelving function: loads records, observes EC2, asks the pure
 * saga what to do, writes the decision (conditionally) and then applies it through the adapters,
 * grouping actions into as few EC2 calls as the API allows. Handlers, the scenario and the
 * benchmark all drive this one class.
 */
export interface ShelvingDeps {
  readonly ec2: ShelvingEc2;
  readonly store: ShelfStore;
  readonly facts: FactPublisher;
  readonly clock: Clock;
  readonly settings: ShelvingSettings;
  /** Called for every fact published (metrics); optional. */
  readonly onFact?: (fact: ShelvingFact) => void;
  /** Called for every call still throttled after the SDK's retries (metrics); optional. */
  readonly onThrottle?: () => void;
}

/** The records an operator request names: by record id and by instance id (shelved or replacement). */
export interface NamedRecords {
  readonly recordIds?: readonly string[] | undefined;
  readonly instanceIds?: readonly string[] | undefined;
}

export interface RecordProgress {
  readonly recordId: string;
  readonly step: Step;
  readonly reason: string;
  /** When the saga wants to look again (null: only on request). */
  readonly recheckAt?: number | null;
  readonly error?: RecordError;
}

/** The answer of 'Delete Shelved Record', per volume and snapshot once it acted. */
export interface DeletionResult {
  readonly recordId: string;
  readonly ok: boolean;
  readonly confirmationRequired?: true;
  readonly willDelete?: { readonly volumeIds: readonly string[]; readonly snapshotIds: readonly string[] };
  /** The token a confirmed request sends as `confirm`, and until when (ISO 8601) it is good. */
  readonly confirm?: string;
  readonly confirmBefore?: string;
  readonly deleted?: { readonly volumes: readonly ItemResult[]; readonly snapshots: readonly ItemResult[] };
  readonly error?: RecordError;
}

const willDelete = (plan: DeletionPlan) => ({ volumeIds: plan.volumeIds, snapshotIds: plan.snapshotIds });
const planText = (plan: DeletionPlan): string =>
  `volumes [${plan.volumeIds.join(', ')}] and snapshots [${plan.snapshotIds.join(', ')}]`;

/** A new confirmation token: 128 random bits (domain/shelve.ts CONFIRMATION_TOKEN_PATTERN). */
const newConfirmationToken = (): string => randomBytes(16).toString('hex');

export interface RoundSummary {
  readonly records: readonly RecordProgress[];
  readonly throttled: number;
  /** Records that got EC2 actions in this round (they may have more to do right away). */
  readonly acted: number;
}

/** Instances a Shelve request describes in full (with their details) at a time. */
const SHELVE_PART = 50;

/** Rounds one invocation runs back to back while its records keep getting actions. */
export const MAX_ROUNDS_PER_INVOCATION = 12;
/** A record due again within this long is waited for inside the invocation. */
export const SHORT_WAIT_MS = 10_000;

/** Steps that attach volumes (the fast path's root swap, and data volumes before the stop). */
const ATTACH_STEPS: ReadonlySet<Step> = new Set(['unshelve.stop-replacement', 'unshelve.swap-root']);
/** A round hands out the AttachVolume calls the pacer admits within this long; the rest wait a round. */
export const ATTACH_HORIZON_MS = 3_000;

/** EventBridge retries a delivery for up to 24 hours (maximum event age). */
const RETRY_HORIZON_MS = 24 * 3_600_000;

/**
 * When a request was sent, for ordering it against others: its event time, unless no delivery of
 * a request sent then can still arrive (older than EventBridge's retries: a console test event or
 * a replay) or the time is in the future; such a request was sent when handled.
 */
const requestSentAt = (eventTime: number | undefined, now: number): number =>
  eventTime !== undefined &&
  Number.isFinite(eventTime) &&
  eventTime <= now &&
  now - eventTime <= RETRY_HORIZON_MS
    ? eventTime
    : now;

/** Root swaps first (nearest to running), then data-before-stop, then the rest; earliest launched first. */
const byAttachPriority = (a: ShelfRecord, b: ShelfRecord): number => {
  const rank = (record: ShelfRecord): number =>
    record.step === 'unshelve.swap-root' ? 0 : record.step === 'unshelve.stop-replacement' ? 1 : 2;
  return (
    rank(a) - rank(b) ||
    (a.unshelve?.requestedAt ?? 0) - (b.unshelve?.requestedAt ?? 0) ||
    (a.unshelve?.batch?.issuedAt ?? 0) - (b.unshelve?.batch?.issuedAt ?? 0) ||
    (a.unshelve?.batch?.index ?? 0) - (b.unshelve?.batch?.index ?? 0) ||
    a.recordId.localeCompare(b.recordId)
  );
};

/** Retry delay after a failed launch (not a capacity shortage). */
const LAUNCH_RETRY_MS = 30_000;

const errorOf = (error: unknown): RecordError =>
  error instanceof WarmbootError
    ? { code: error.code, message: error.message }
    : { code: 'InternalError', message: errorMessage(error) };

const failedItem = (id: string, error: RecordError): { id: string; ok: false; error: RecordError } => ({
  id,
  ok: false,
  error,
});

const changes = (decision: Decision): boolean => decision.to !== undefined || decision.set !== undefined;

/** Deep-ish equality for the few fields a decision sets (avoids writes that change nothing). */
const sameJson = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

export class ShelvingEngine {
  readonly #deps: ShelvingDeps;
  /** Records with actions still running in this process; a concurrent round leaves them alone. */
  readonly #inFlight = new Map<string, symbol>();
  #throttled = 0;

  constructor(deps: ShelvingDeps) {
    this.#deps = deps;
  }

  get settings(): ShelvingSettings {
    return this.#deps.settings;
  }

  /** How many calls were throttled past the SDK's retries since this engine was built. */
  get throttled(): number {
    return this.#throttled;
  }

  // ---------------------------------------------------------------- operator requests

  /**
   * 'Shelve Instances'. `requestId` (the EventBridge event id, which every retry and duplicate
   * delivery keeps) makes the request idempotent on its own, beyond the Powertools record: each
   * instance's answer is remembered under it (in the record's own transaction when a record is
   * created), and a later handling of the same request answers what the first one answered,
   * even after that record was unshelved or deleted. A new request (new event id) is a new
   * decision: it shelves the instance again if it is no longer in a live record. An instance (or
   * its record) of a tenant `caller` does not act for gets its own error, before anything else
   * is told about it.
   */
  async shelve(
    items: readonly ShelveRequestItem[],
    requestId?: string,
    sentAt?: number,
    caller: Caller = IN_PROCESS_CALLER,
  ): Promise<ShelveAnswer[]> {
    const { store, clock, settings } = this.#deps;
    const now = clock.now();
    const request: RequestIdentity | undefined =
      requestId === undefined
        ? undefined
        : { requestId, expiresAt: Math.floor(now / 1000) + settings.requestMemorySeconds };
    const answered = request ? await store.shelveAnswers(request.requestId, now) : new Map();
    const results: ShelveAnswer[] = [];
    const created: ShelfRecord[] = [];
    const remember = async (answer: ShelveAnswer): Promise<ShelveAnswer> =>
      request ? store.rememberShelveAnswer(request, answer, now) : answer;
    // A part at a time: reading an instance's details takes three DescribeInstanceAttribute calls,
    // so a handling that runs out of time has answered (and remembered) the parts before.
    let seen = await describeForShelve(this.#deps.ec2, []);
    for (const [position, item] of items.entries()) {
      if (position % SHELVE_PART === 0) {
        const part = items.slice(position, position + SHELVE_PART);
        seen = await describeForShelve(
          this.#deps.ec2,
          part
            .filter((candidate) => !answered.has(candidate.instanceId))
            .map((candidate) => candidate.instanceId),
        );
      }
      const { instances, volumes, details } = seen;
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
      const record: ShelfRecord = request
        ? { ...plan.record, shelvedBy: { requestId: request.requestId, sentAt: requestSentAt(sentAt, now) } }
        : plan.record;
      const outcome = await store.create(record, request);
      if (outcome.created) {
        created.push(record);
        results.push({ id: item.instanceId, ok: true, recordId: record.recordId, created: true });
      } else if ('remembered' in outcome) {
        results.push(outcome.remembered);
      } else {
        results.push(
          await remember({
            id: item.instanceId,
            ok: true,
            recordId: outcome.existingRecordId,
            created: false,
          }),
        );
      }
    }
    // A handling that died after creating records may have left them before their first round:
    // its retry finishes them (the reconcile would too, a schedule period later).
    const unfinished = await this.#unfinishedShelves(results, created);
    if (created.length + unfinished.length > 0) await this.advance([...created, ...unfinished]);
    return results;
  }

  /** Records this request created in an earlier handling that are still being shelved. */
  async #unfinishedShelves(
    results: readonly ShelveAnswer[],
    created: readonly ShelfRecord[],
  ): Promise<ShelfRecord[]> {
    const createdNow = new Set(created.map((record) => record.recordId));
    const earlier = results.flatMap((result) =>
      result.ok && result.created && !createdNow.has(result.recordId) ? [result.recordId] : [],
    );
    if (earlier.length === 0) return [];
    const records = await this.#deps.store.getMany(earlier);
    return records.filter((record) => phaseOf(record.step) === 'shelving');
  }

  /**
   * 'Offload Instances' and 'Unshelve Instances' as requested: the records named by id and by
   * instance id (Unshelve: all of `tenant` when it names none). `requestId` (the event id) makes
   * the request idempotent on its own, like Shelve: what the names resolved to is remembered
   * before any record moves, and each record's answer with its move, so a later handling of the
   * same event acts on the same records (not on a record of an instance shelved again since),
   * answers the records it already answered with that answer, and resumes the records a killed
   * handling moved but never advanced. A record of a tenant `caller` does not act for is refused
   * item by item (`NotAuthorizedForTenant`).
   */
  async offloadRequest(
    named: NamedRecords,
    requestId: string,
    sentAt?: number,
    caller: Caller = IN_PROCESS_CALLER,
  ): Promise<ItemResult[]> {
    const request = this.#requestIdentity(requestId);
    const resolution = await this.#resolve(named, undefined, request, sentAt);
    const protectedNow = await this.#terminationProtected(resolution.recordIds, caller);
    const results = await this.#move(
      resolution.recordIds,
      forCallersRecords(caller, (record) => requestOffload(record, protectedNow.has(record.instanceId))),
      request,
      { marksUnshelve: false, advance: true },
    );
    return [...resolution.missing, ...results];
  }

  /** The shelved instances of these records (the caller's) that have termination protection now. */
  async #terminationProtected(recordIds: readonly string[], caller: Caller): Promise<Set<string>> {
    const { ec2, store } = this.#deps;
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
  }

  /** 'Unshelve Instances'; like offloadRequest, only the records of the caller's tenants move. */
  async unshelveRequest(
    named: NamedRecords & { readonly tenant?: string | undefined },
    requestId: string,
    sentAt?: number,
    caller: Caller = IN_PROCESS_CALLER,
  ): Promise<ItemResult[]> {
    const request = this.#requestIdentity(requestId);
    const resolution = await this.#resolve(named, named.tenant, request, sentAt);
    const results = await this.#move(
      resolution.recordIds,
      forCallersRecords(caller, (record) => requestUnshelve(record, named.tenant)),
      request,
      { marksUnshelve: true, advance: true },
    );
    return [...resolution.missing, ...results];
  }

  /** `advance: false` only records the request; a driver (benchmark, scenario) then runs the rounds. */
  async offload(recordIds: readonly string[], options: { advance?: boolean } = {}) {
    return this.#move(recordIds, requestOffload, undefined, {
      marksUnshelve: false,
      advance: options.advance ?? true,
    });
  }

  async unshelve(
    recordIds: readonly string[],
    tenant: string | undefined,
    requestId: string,
    options: { advance?: boolean } = {},
  ) {
    return this.#move(
      recordIds,
      (record) => requestUnshelve(record, tenant),
      this.#requestIdentity(requestId),
      { marksUnshelve: true, advance: options.advance ?? true },
    );
  }

  /** Resolves instance ids (shelved or replacement) to record ids; unknown ones are per-item errors. */
  async recordIdsFor(instanceIds: readonly string[]): Promise<{ found: string[]; missing: ItemResult[] }> {
    const found: string[] = [];
    const missing: ItemResult[] = [];
    for (const instanceId of instanceIds) {
      const recordId = await this.#deps.store.recordIdForInstance(instanceId);
      if (recordId) found.push(recordId);
      else
        missing.push(failedItem(instanceId, { code: 'NotFound', message: `${instanceId} is not shelved` }));
    }
    return { found, missing };
  }

  async recordIdsOfTenant(tenant: string): Promise<string[]> {
    const records = await this.#deps.store.byTenant(tenant, this.#deps.settings.maxInstancesPerRequest);
    return records
      .filter((record) => ['shelved', 'offloaded', 'failed'].includes(record.step))
      .map((r) => r.recordId);
  }

  #requestIdentity(requestId: string): RequestIdentity {
    const { clock, settings } = this.#deps;
    return { requestId, expiresAt: Math.floor(clock.now() / 1000) + settings.requestMemorySeconds };
  }

  /**
   * The records a request acts on: remembered from its first handling, or resolved now (instance
   * ids through their links, a tenant alone to its resting records) and remembered before any
   * record moves. A handling killed before the remembering moved nothing, so resolving afresh is
   * what its first handling would have done — except that a record whose Shelve was sent after
   * this request (`sentAt`, the event's time) cannot be what the request meant: a retry that
   * arrives after the instance was shelved again must not unshelve or offload the new record.
   */
  async #resolve(
    named: NamedRecords,
    tenant: string | undefined,
    request: RequestIdentity,
    sentAt: number | undefined,
  ): Promise<RequestResolution> {
    const { store, clock } = this.#deps;
    const now = clock.now();
    const remembered = await store.resolution(request.requestId, now);
    if (remembered) return remembered;
    const resolved = await this.recordIdsFor(named.instanceIds ?? []);
    const byName = [...(named.recordIds ?? []), ...resolved.found];
    const candidates =
      byName.length === 0 && tenant !== undefined ? await this.recordIdsOfTenant(tenant) : byName;
    // A request sent now (no delivery of it can be a retry) cannot precede any record.
    const sent = requestSentAt(sentAt, now);
    const late = sent < now ? await this.#shelvedAfter(candidates, sent) : [];
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
  }

  /**
   * Records whose Shelve was sent after a request sent at `sentAt`. What counts is when the Shelve
   * was sent, not when it was handled: a Shelve sent first but delivered late is still what a later
   * request means. Both times are event times of one-second resolution, so only a later second is
   * certainly later; a record made outside a request counts from its creation.
   */
  async #shelvedAfter(recordIds: readonly string[], sentAt: number): Promise<ShelfRecord[]> {
    if (recordIds.length === 0) return [];
    const records = await this.#deps.store.getMany(recordIds);
    return records.filter((record) => (record.shelvedBy?.sentAt ?? record.shelvedAt) >= sentAt + 1_000);
  }

  async #move(
    recordIds: readonly string[],
    decide: (record: ShelfRecord) => RequestedMove,
    request: RequestIdentity | undefined,
    options: { readonly marksUnshelve: boolean; readonly advance: boolean },
  ): Promise<MoveAnswer[]> {
    const { store, clock } = this.#deps;
    const now = clock.now();
    const answered = request
      ? await store.moveAnswers(request.requestId, now)
      : new Map<string, MoveAnswer>();
    const records = new Map((await store.getMany(recordIds)).map((record) => [record.recordId, record]));
    const remember = async (answer: MoveAnswer): Promise<MoveAnswer> =>
      request ? store.rememberMoveAnswer(request, answer, now) : answer;
    const results: MoveAnswer[] = [];
    const moved: ShelfRecord[] = [];
    const resumed: ShelfRecord[] = [];
    for (const recordId of new Set(recordIds)) {
      const record = records.get(recordId);
      const before = answered.get(recordId);
      if (before) {
        results.push(before);
        if (before.ok && record && request && this.#startedBy(record, request.requestId, options)) {
          resumed.push(record);
        }
        continue;
      }
      if (!record) {
        results.push(
          await remember(failedItem(recordId, { code: 'NotFound', message: `no shelve record ${recordId}` })),
        );
        continue;
      }
      const move = decide(record);
      if (!move.ok) {
        results.push(await remember(failedItem(recordId, move.error)));
        continue;
      }
      if (move.unchanged) {
        results.push(await remember({ id: recordId, ok: true, step: record.step }));
        continue;
      }
      const next: ShelfRecord = {
        ...record,
        step: move.to,
        version: record.version + 1,
        stepSince: now,
        nextDueAt: now,
        error: undefined,
        ...(options.marksUnshelve && request
          ? {
              unshelve: {
                requestId: request.requestId,
                requestedAt: now,
                attempt: (record.unshelve?.attempt ?? 0) + 1,
              },
            }
          : {}),
      };
      const answer: MoveAnswer = { id: recordId, ok: true, step: next.step };
      if (await store.update(record, next, request ? { remember: { request, answer, now } } : {})) {
        moved.push(next);
        results.push(answer);
        continue;
      }
      // An overlapping delivery of the same request may have moved it first: its answer stands.
      const overlapping = request
        ? (await store.moveAnswers(request.requestId, now)).get(recordId)
        : undefined;
      results.push(
        overlapping ??
          failedItem(recordId, {
            code: 'Conflict',
            message: `record ${recordId} changed concurrently; retry`,
          }),
      );
    }
    const toAdvance = [...moved, ...resumed];
    if (toAdvance.length > 0 && options.advance) await this.advance(toAdvance);
    return results;
  }

  /** A record this request moved in an earlier handling that has not come to rest since. */
  #startedBy(record: ShelfRecord, requestId: string, options: { readonly marksUnshelve: boolean }): boolean {
    return options.marksUnshelve
      ? phaseOf(record.step) === 'unshelving' && record.unshelve?.requestId === requestId
      : record.step === 'offload.terminate';
  }

  /**
   * 'Delete Shelved Record' (an administrative request), in two steps (security review C3, M3).
   * Without `confirm`: works out the plan (the record's retained volumes still tagged with it and
   * available, and the safety snapshots it recorded), stores it under a new random token that
   * expires after CONFIRMATION_TTL_MS, and answers both; nothing is deleted. With `confirm`: the
   * stored plan of that token and record, unexpired and made when the record was as it is now,
   * or nothing (`ConfirmationInvalid`). The record then moves to `deleting` (a conditional write:
   * an Unshelve or Offload that moved it meanwhile wins, and nothing is deleted), exactly the
   * stored volumes and snapshots are deleted (each re-described and checked against the record
   * right before), then the record. A retry with the token of a deletion under way finishes it.
   */
  async deleteRecord(recordId: string, confirm: string | undefined): Promise<DeletionResult> {
    const { store, ec2, clock, settings } = this.#deps;
    if (!settings.allowDataDeletion) {
      return {
        recordId,
        ok: false,
        error: {
          code: 'DeletionNotEnabled',
          message:
            'this deployment keeps shelved data: deploying with allowShelvedDataDeletion lets a confirmed Delete Shelved Record delete it',
        },
      };
    }
    const record = await store.get(recordId);
    if (!record)
      return { recordId, ok: false, error: { code: 'NotFound', message: `no shelve record ${recordId}` } };
    const underWay = deletionUnderWay(record);
    if (underWay) {
      if (confirm !== undefined && confirm === record.deletion?.confirmation)
        return this.#finishDeletion(record);
      return {
        recordId,
        ok: false,
        willDelete: willDelete(underWay),
        error: {
          code: 'DeletionUnderWay',
          message: `record ${recordId} is being deleted (${planText(underWay)}); the reconcile finishes it, or send the confirm token that started it again`,
        },
      };
    }
    if (confirm === undefined) {
      const volumes = new Map(
        (await ec2.describeVolumes(record.volumes.map((volume) => volume.volumeId))).map((volume) => [
          volume.volumeId,
          volume,
        ]),
      );
      const plan = planDeletion(record, volumes);
      if (!plan.ok) return { recordId, ok: false, error: plan.error };
      const confirmation = issueConfirmation(record, plan.plan, newConfirmationToken(), clock.now());
      await store.rememberConfirmation(confirmation);
      return {
        recordId,
        ok: false,
        confirmationRequired: true,
        willDelete: willDelete(plan.plan),
        confirm: confirmation.token,
        confirmBefore: new Date(confirmation.expiresAt).toISOString(),
        error: {
          code: 'ConfirmationRequired',
          message: `deleting record ${recordId} deletes ${planText(plan.plan)}; send confirm: "${confirmation.token}" within ${CONFIRMATION_TTL_MS / 60_000} minutes to delete exactly these`,
        },
      };
    }
    const confirmed = confirmedPlan(record, await store.confirmation(recordId, confirm), clock.now());
    if (!confirmed.ok) return { recordId, ok: false, error: confirmed.error };
    const deleting = startDeletion(record, confirmed.plan, confirm, clock.now());
    if (!(await store.update(record, deleting))) {
      const now = await store.get(recordId);
      return {
        recordId,
        ok: false,
        error: {
          code: 'Conflict',
          message: `record ${recordId} changed while the delete was checked (now ${now?.step ?? 'gone'}); nothing was deleted`,
        },
      };
    }
    return this.#finishDeletion(deleting);
  }

  /**
   * Deletes what a `deleting` record lists, then the record; if a volume cannot be deleted the
   * record goes back to rest, saying which. Safe to run twice at once (the request and the
   * reconcile): deletes of what is gone are no-ops and only one record write wins.
   */
  async #finishDeletion(record: ShelfRecord): Promise<DeletionResult> {
    const { store, ec2, clock } = this.#deps;
    const deletion = record.deletion;
    if (!deletion) throw new Error(`record ${record.recordId} is ${record.step}, not deleting`);
    const volumeResults: ItemResult[] = [];
    for (const volumeId of deletion.volumeIds) {
      try {
        await ec2.deleteShelvedVolume(volumeId, record.recordId);
        volumeResults.push({ id: volumeId, ok: true });
      } catch (error) {
        volumeResults.push(failedItem(volumeId, errorOf(error)));
      }
    }
    const failures = volumeResults.flatMap((result) => (result.ok ? [] : [result]));
    const retained = new Set(record.volumes.map((volume) => volume.volumeId));
    // The safety snapshots go only once every volume is gone: a record that keeps a volume keeps
    // its slow path too (an Unshelve into another AZ, or after that volume is lost, needs them).
    const snapshotResults: ItemResult[] = [];
    for (const snapshotId of deletion.snapshotIds) {
      if (failures.length > 0) {
        snapshotResults.push(
          failedItem(snapshotId, {
            code: 'Kept',
            message: `kept: the record still holds ${failures.map((failure) => failure.id).join(', ')}`,
          }),
        );
        continue;
      }
      try {
        await ec2.deleteShelvedSnapshot(snapshotId, record.recordId, retained);
        snapshotResults.push({ id: snapshotId, ok: true });
      } catch (error) {
        snapshotResults.push(failedItem(snapshotId, errorOf(error)));
      }
    }
    const deleted = { volumes: volumeResults, snapshots: snapshotResults };
    // The record goes only when every volume it owned is gone, so no volume is ever orphaned. A
    // snapshot that failed to delete is reported per item; it keeps its shelved tag.
    if (failures.length === 0) {
      const removed = (await store.remove(record)) || (await store.get(record.recordId)) === undefined;
      return { recordId: record.recordId, ok: removed, deleted };
    }
    const undone = undoDeletion(record, failures, clock.now());
    await store.update(record, undone);
    return {
      recordId: record.recordId,
      ok: false,
      deleted,
      ...(undone.error ? { error: undone.error } : {}),
    };
  }

  // ---------------------------------------------------------------- events and reconcile

  /** An EC2 state change: advance the record the instance belongs to, if any. */
  async onInstanceState(instanceId: string): Promise<RoundSummary> {
    const recordId = await this.#deps.store.recordIdForInstance(instanceId);
    if (!recordId) return { records: [], throttled: 0, acted: 0 };
    const record = await this.#deps.store.get(recordId);
    if (!record) return { records: [], throttled: 0, acted: 0 };
    return this.advance([record]);
  }

  /** The schedule: every record whose time has come (lost events, offload timers, retries). */
  async reconcile(): Promise<RoundSummary> {
    const due = await this.#deps.store.due(this.#deps.clock.now(), this.#deps.settings.reconcileBatch);
    const summary = await this.advance(due.filter((record) => record.step !== 'deleting'));
    const deletions: RecordProgress[] = [];
    for (const record of due.filter((candidate) => candidate.step === 'deleting')) {
      // A deletion whose handling died: finish it, or put the record back to rest.
      const result = await this.#finishDeletion(record).catch(
        (error: unknown): DeletionResult => ({ recordId: record.recordId, ok: false, error: errorOf(error) }),
      );
      deletions.push({
        recordId: record.recordId,
        step: 'deleting',
        reason: result.ok ? 'deleted' : 'deletion incomplete',
        ...(result.error ? { error: result.error } : {}),
      });
    }
    return { ...summary, records: [...summary.records, ...deletions] };
  }

  /**
   * Rounds back to back (each waiting for its actions) while the records keep getting actions:
   * calls whose effect is visible at once (tags, DeleteOnTermination, attach) chain within one
   * invocation; a record that waits for an EC2 transition resumes on its state-change event.
   */
  async advance(records: readonly ShelfRecord[]): Promise<RoundSummary> {
    let summary = await this.round(records);
    const progress = new Map(summary.records.map((entry) => [entry.recordId, entry]));
    let throttled = summary.throttled;
    for (let pass = 1; pass < MAX_ROUNDS_PER_INVOCATION; pass++) {
      if (summary.acted === 0) {
        // Volume attach and detach finish in seconds and send no event: wait for them here.
        const now = this.#deps.clock.now();
        const soonest = Math.min(
          ...summary.records.map((entry) => entry.recheckAt ?? Number.POSITIVE_INFINITY),
        );
        if (!(soonest <= now + SHORT_WAIT_MS)) break;
        await this.#deps.clock.sleep(Math.max(0, soonest - now));
      }
      const fresh = await this.#deps.store.getMany(records.map((record) => record.recordId));
      summary = await this.round(fresh);
      throttled += summary.throttled;
      for (const entry of summary.records) progress.set(entry.recordId, entry);
    }
    return { records: [...progress.values()], throttled, acted: summary.acted };
  }

  async load(recordIds: readonly string[]): Promise<ShelfRecord[]> {
    return this.#deps.store.getMany(recordIds);
  }

  // ---------------------------------------------------------------- the round

  /**
   * One pass over `records`: observe, decide, write, act; returns once the actions are done. The
   * records stay in-flight until their own calls finish and a concurrent round skips them.
   */
  async round(records: readonly ShelfRecord[]): Promise<RoundSummary> {
    const active = records.filter((record) => !this.#inFlight.has(record.recordId));
    if (active.length === 0) return { records: [], throttled: 0, acted: 0 };
    // A record is in-flight from the moment a round picks it up: a round that starts while this
    // one still observes must not decide the same record from the same EC2 state and repeat
    // its calls (an attach repeated costs a token and answers VolumeInUse).
    const claim = Symbol('round');
    for (const record of active) this.#inFlight.set(record.recordId, claim);
    // Only this round's own claim is released: a record finished here may already belong to a later round.
    const release = (recordId: string) => {
      if (this.#inFlight.get(recordId) === claim) this.#inFlight.delete(recordId);
    };
    let work: { record: ShelfRecord; actions: readonly Action[] }[] = [];
    try {
      const throttledBefore = this.#throttled;
      const decided = await this.#decide(active);
      work = decided.work;
      const acting = new Set(work.map((item) => item.record.recordId));
      for (const record of active) if (!acting.has(record.recordId)) release(record.recordId);
      if (work.length > 0) {
        // A record leaves in-flight as soon as its own calls are done, not when the whole round
        // is: one paced call (an attach waiting its turn) must not hold back the records it
        // shares a round with.
        const started = work;
        await this.#execute(started, decided.progress, release).finally(() => {
          for (const item of started) release(item.record.recordId);
        });
      }
      return {
        records: [...decided.progress.values()],
        throttled: this.#throttled - throttledBefore,
        acted: work.length,
      };
    } catch (error) {
      if (work.length === 0) for (const record of active) release(record.recordId);
      throw error;
    }
  }

  /** Observes `active`, asks the saga and writes each decision; returns the actions to take. */
  async #decide(active: readonly ShelfRecord[]): Promise<{
    work: { record: ShelfRecord; actions: readonly Action[] }[];
    progress: Map<string, RecordProgress>;
  }> {
    const { clock, settings } = this.#deps;
    const observations = await this.#observe(active);
    const now = clock.now();
    const progress = new Map<string, RecordProgress>();
    const work: { record: ShelfRecord; actions: readonly Action[] }[] = [];
    // AttachVolume is the bucket a bulk unshelve waits on: hand out what it admits soon to the
    // records closest to running (the root swap, then the earliest launched), instead of
    // queueing every attach far ahead and making every instance wait for the whole drain.
    const swapping = active.some((record) => ATTACH_STEPS.has(record.step));
    let attachSlots = swapping ? this.#deps.ec2.attachSlots?.(ATTACH_HORIZON_MS) : undefined;
    const ordered = attachSlots === undefined ? active : [...active].sort(byAttachPriority);

    for (const initial of ordered) {
      let record = initial;
      const observed = observations.get(record.recordId) ?? { volumes: new Map(), snapshots: [] };
      const observation: Observation =
        attachSlots === undefined ? observed : { ...observed, attachSlots: Math.max(0, attachSlots) };
      // Pure transitions chain within one round (e.g. stopped → snapshot → shelved); actions end it.
      for (let hop = 0; hop < 6; hop++) {
        const decision = nextStep(record, observation, now, settings);
        if (attachSlots !== undefined) {
          attachSlots -= decision.actions.filter((action) => action.kind === 'attach').length;
        }
        let current = record;
        if (changes(decision) && !this.#noop(record, decision)) {
          const written = await this.#write(record, decision, now);
          if (!written) {
            progress.set(record.recordId, {
              recordId: record.recordId,
              step: record.step,
              reason: 'changed concurrently',
            });
            break;
          }
          current = written;
        }
        record = current;
        progress.set(record.recordId, {
          recordId: record.recordId,
          step: record.step,
          reason: decision.reason,
          recheckAt: decision.recheckAt,
          ...(record.error ? { error: record.error } : {}),
        });
        if (decision.actions.length > 0) {
          work.push({ record, actions: decision.actions });
          break;
        }
        if (decision.to === undefined) break;
      }
    }

    return { work, progress };
  }

  #noop(record: ShelfRecord, decision: Decision): boolean {
    if (decision.to !== undefined && decision.to !== record.step) return false;
    const set = decision.set ?? {};
    return Object.entries(set).every(([key, value]) => sameJson(record[key as keyof ShelfRecord], value));
  }

  async #write(
    record: ShelfRecord,
    decision: Decision,
    now: number,
    options: UpdateOptions = {},
  ): Promise<ShelfRecord | undefined> {
    const { store, settings } = this.#deps;
    const step = decision.to ?? record.step;
    const next: ShelfRecord = {
      ...record,
      ...decision.set,
      step,
      version: record.version + 1,
      stepSince: step === record.step ? record.stepSince : now,
      nextDueAt: decision.recheckAt,
    };
    const replacement = next.unshelve?.replacementInstanceId;
    const finished = step === 'unshelved' && ownedVolumeIds(next).length === 0;
    const ok = await store.update(record, next, {
      ...(replacement && replacement !== record.unshelve?.replacementInstanceId
        ? { linkInstanceId: replacement }
        : {}),
      // An unshelved record no longer holds its original instance: it may be shelved again.
      ...(step === 'unshelved' ? { unlinkInstanceId: record.instanceId } : {}),
      ...(finished ? { expiresAt: Math.floor(now / 1000) + settings.finishedRecordTtlSeconds } : {}),
      ...options,
    });
    if (!ok) return undefined;
    if (decision.facts?.length) await this.#publish(decision.facts);
    return next;
  }

  async #publish(facts: readonly ShelvingFact[]): Promise<void> {
    const published: Fact[] = facts.map((fact) => ({
      detailType: fact.detailType,
      detail: fact.detail as unknown as Record<string, unknown>,
    }));
    await this.#deps.facts.publish(published);
    for (const fact of facts) this.#deps.onFact?.(fact);
  }

  // ---------------------------------------------------------------- observe

  async #observe(records: readonly ShelfRecord[]): Promise<Map<string, Observation>> {
    const { ec2 } = this.#deps;
    const instanceIds = new Set<string>();
    for (const record of records) {
      instanceIds.add(record.instanceId);
      if (record.unshelve?.replacementInstanceId) instanceIds.add(record.unshelve.replacementInstanceId);
    }
    const instances = new Map((await ec2.describeInstances([...instanceIds])).map((i) => [i.instanceId, i]));

    const batchIds = records.flatMap((record) =>
      record.step === 'unshelve.launch' && record.unshelve?.batch && !record.unshelve.replacementInstanceId
        ? [record.unshelve.batch.batchId]
        : [],
    );
    const slowIds = records.flatMap((record) =>
      record.step === 'unshelve.launch-from-snapshots' && !record.unshelve?.replacementInstanceId
        ? [record.recordId]
        : [],
    );
    const byBatch = new Map<string, ObservedInstance>();
    if (batchIds.length > 0) {
      for (const instance of await ec2.describeInstancesByTag(REPLACEMENT_BATCH_TAG, batchIds)) {
        const batchId = instance.tags[REPLACEMENT_BATCH_TAG];
        if (batchId && instance.amiLaunchIndex !== undefined)
          byBatch.set(`${batchId}#${instance.amiLaunchIndex}`, instance);
      }
    }
    const bySlowRecord = new Map<string, ObservedInstance>();
    if (slowIds.length > 0) {
      for (const instance of await ec2.describeInstancesByTag(REPLACEMENT_FOR_TAG, slowIds)) {
        const recordId = instance.tags[REPLACEMENT_FOR_TAG];
        // A replacement on its way out belongs to an earlier attempt, or ends this one (saga).
        if (
          !recordId ||
          instance.tags[REPLACEMENT_BATCH_TAG] ||
          instance.state === 'terminated' ||
          instance.state === 'shutting-down'
        )
          continue;
        const known = bySlowRecord.get(recordId);
        if (!known || instance.instanceId < known.instanceId) bySlowRecord.set(recordId, instance);
      }
    }

    const replacementOf = (record: ShelfRecord): ObservedInstance | undefined => {
      const known = record.unshelve?.replacementInstanceId;
      if (known) return instances.get(known);
      const batch = record.unshelve?.batch;
      if (record.step === 'unshelve.launch' && batch) return byBatch.get(`${batch.batchId}#${batch.index}`);
      if (record.step === 'unshelve.launch-from-snapshots') return bySlowRecord.get(record.recordId);
      return undefined;
    };

    const volumeIds = new Set<string>();
    for (const record of records) {
      for (const volume of record.volumes) volumeIds.add(volume.volumeId);
      if (record.unshelve?.freshRootVolumeId) volumeIds.add(record.unshelve.freshRootVolumeId);
      for (const device of replacementOf(record)?.blockDevices ?? []) volumeIds.add(device.volumeId);
    }
    const volumes = new Map((await ec2.describeVolumes([...volumeIds])).map((v) => [v.volumeId, v]));

    const snapshotRecords = records
      .filter((record) => record.step === 'shelve.snapshot' || record.step === 'unshelve.choose')
      .map((record) => record.recordId);
    const snapshots =
      snapshotRecords.length > 0
        ? await ec2.describeShelvedSnapshots(snapshotRecords)
        : new Map<string, ObservedSnapshot[]>();

    // AZ states and subnets only for records that may have to leave their AZ: two describes a round.
    const movable = records.filter((record) => mayNeedOtherZone(record, this.#deps.settings));
    const placement =
      movable.length > 0
        ? await ec2.describePlacement(
            movable.flatMap((record) => (record.config.vpcId ? [record.config.vpcId] : [])),
          )
        : undefined;

    const restoring = await observeRestoration(ec2, records, replacementOf);
    const observations = new Map<string, Observation>();
    for (const record of records) {
      const replacement = replacementOf(record);
      const own = new Map<string, ObservedVolume>();
      for (const id of [
        ...record.volumes.map((volume) => volume.volumeId),
        ...(record.unshelve?.freshRootVolumeId ? [record.unshelve.freshRootVolumeId] : []),
        ...(replacement?.blockDevices.map((device) => device.volumeId) ?? []),
      ]) {
        const volume = volumes.get(id);
        if (volume) own.set(id, volume);
      }
      const instance = instances.get(record.instanceId);
      observations.set(record.recordId, {
        ...(instance ? { instance } : {}),
        ...(replacement ? { replacement } : {}),
        volumes: own,
        snapshots: snapshots.get(record.recordId) ?? [],
        ...(placement && movable.includes(record) ? { placement } : {}),
        ...restoring(record),
      });
    }
    return observations;
  }

  // ---------------------------------------------------------------- act

  async #execute(
    work: readonly { record: ShelfRecord; actions: readonly Action[] }[],
    progress: Map<string, RecordProgress>,
    release: (recordId: string) => void,
  ): Promise<void> {
    const { ec2, settings } = this.#deps;
    const fail = (recordIds: readonly string[], error: unknown) => {
      if (error instanceof ThrottledError) {
        this.#throttled += 1;
        this.#deps.onThrottle?.();
      }
      for (const recordId of recordIds) {
        const before = progress.get(recordId);
        if (before) progress.set(recordId, { ...before, error: errorOf(error) });
      }
    };
    const outstanding = new Map<string, number>();
    /** Counts `recordIds` as waiting on the call until it settles; the last one releases them. */
    const track = (recordIds: readonly string[], start: () => Promise<void>): Promise<void> => {
      for (const recordId of recordIds) outstanding.set(recordId, (outstanding.get(recordId) ?? 0) + 1);
      return start().finally(() => {
        for (const recordId of recordIds) {
          const left = (outstanding.get(recordId) ?? 1) - 1;
          outstanding.set(recordId, left);
          if (left === 0) release(recordId);
        }
      });
    };
    const attempt = (recordIds: readonly string[], call: () => Promise<unknown>): Promise<void> =>
      track(recordIds, async () => {
        try {
          await call();
        } catch (error) {
          fail(recordIds, error);
        }
      });

    const calls: Promise<void>[] = [];
    const multi = new Map<
      'stop' | 'stop-force' | 'start' | 'terminate',
      { instanceId: string; recordId: string }[]
    >();
    const launches: ShelfRecord[] = [];
    const slowLaunches: ShelfRecord[] = [];
    // A record that attaches data volumes and stops in one decision: the stop goes after the
    // attach calls returned (AttachVolume needs the instance running or stopped, not stopping).
    const attachesBeforeStop: Promise<void>[] = [];
    const stopsAfterAttach: { instanceId: string; recordId: string }[] = [];
    for (const { record, actions } of work) {
      const attachThenStop =
        actions.some((action) => action.kind === 'attach') &&
        actions.some((action) => action.kind === 'stop');
      for (const action of actions) {
        const recordIds = [record.recordId];
        if (attachThenStop && action.kind === 'stop') {
          stopsAfterAttach.push({ instanceId: action.instanceId, recordId: record.recordId });
          continue;
        }
        switch (action.kind) {
          case 'stop':
          case 'start':
          case 'terminate': {
            const key = action.kind === 'stop' && action.force ? 'stop-force' : action.kind;
            const list = multi.get(key) ?? [];
            list.push({ instanceId: action.instanceId, recordId: record.recordId });
            multi.set(key, list);
            break;
          }
          case 'launch':
            launches.push(record);
            break;
          case 'launch-from-snapshots':
            slowLaunches.push(record);
            break;
          case 'set-delete-on-termination':
            calls.push(
              attempt(recordIds, () => ec2.setDeleteOnTermination(action.instanceId, action.devices)),
            );
            break;
          case 'tag':
            calls.push(attempt(recordIds, () => ec2.createTags(action.resourceIds, action.tags)));
            break;
          case 'untag':
            calls.push(attempt(recordIds, () => ec2.deleteTags(action.resourceIds, action.keys)));
            break;
          case 'snapshot':
            calls.push(attempt(recordIds, () => ec2.createSnapshots(action.instanceId, action.recordId)));
            break;
          case 'attach': {
            const call = attempt(recordIds, async () => {
              try {
                await ec2.attachVolume(action.volumeId, action.instanceId, action.device);
              } catch (error) {
                // EC2 cannot use the volume's KMS key for this role: every later attach would be
                // refused the same way, so the record fails instead of retrying each round (R4).
                if (error instanceof EncryptionKeyError) {
                  const at = this.#deps.clock.now();
                  const what = `retained volume ${action.volumeId} could not be attached to ${action.instanceId} (${error.message})`;
                  await this.#write(record, encryptionKeyUnusable(record, what), at);
                }
                throw error;
              }
            });
            if (attachThenStop) attachesBeforeStop.push(call);
            calls.push(call);
            break;
          }
          case 'detach':
            calls.push(attempt(recordIds, () => ec2.detachVolume(action.volumeId, action.instanceId)));
            break;
          case 'set-user-data':
            calls.push(attempt(recordIds, () => ec2.setUserData(action.instanceId, action.userData)));
            break;
          case 'set-protection':
            calls.push(
              attempt(recordIds, () => ec2.setProtection(action.instanceId, action.attribute, action.value)),
            );
            break;
          case 'associate-address':
            calls.push(
              attempt(recordIds, () => ec2.associateAddress(action.allocationId, action.instanceId)),
            );
            break;
          case 'delete-replacement-root':
            calls.push(
              attempt(recordIds, () =>
                ec2.deleteReplacementRoot(
                  action.volumeId,
                  action.recordId,
                  new Set(record.volumes.map((volume) => volume.volumeId)),
                ),
              ),
            );
            break;
        }
      }
    }
    const powerCall = (kind: 'stop' | 'stop-force' | 'start' | 'terminate', ids: readonly string[]) => {
      switch (kind) {
        case 'stop':
          return ec2.stopInstances(ids, false);
        case 'stop-force':
          return ec2.stopInstances(ids, true);
        case 'start':
          return ec2.startInstances(ids);
        case 'terminate':
          return ec2.terminateInstances(ids);
      }
    };
    for (const [kind, targets] of multi) {
      for (const part of chunk(targets, settings.maxBatch)) {
        const ids = part.map((target) => target.instanceId);
        const recordIds = part.map((target) => target.recordId);
        calls.push(
          track(recordIds, async () => {
            try {
              await powerCall(kind, ids);
            } catch (error) {
              // These calls are all-or-nothing: one instance EC2 or IAM refuses (termination or
              // stop protection, a one-time Spot instance, a lost management tag) fails the whole
              // call (API_TerminateInstances, API_StopInstances). Retrying the batch would fail it
              // every round, so a refusal that is not throttling or EC2's own fault is answered
              // one instance at a time: only the refused record keeps the error (finding R6).
              if (part.length === 1 || isTransientFailure(error)) {
                fail(recordIds, error);
                return;
              }
              await Promise.all(
                part.map((target) =>
                  powerCall(kind, [target.instanceId]).catch((single: unknown) =>
                    fail([target.recordId], single),
                  ),
                ),
              );
            }
          }),
        );
      }
    }
    if (stopsAfterAttach.length > 0) {
      // `attempt` never rejects, so this waits for every attach to settle either way.
      const attached = Promise.all(attachesBeforeStop);
      for (const part of chunk(stopsAfterAttach, settings.maxBatch)) {
        const ids = part.map((target) => target.instanceId);
        calls.push(
          attempt(
            part.map((target) => target.recordId),
            async () => {
              await attached;
              await ec2.stopInstances(ids, true);
            },
          ),
        );
      }
    }
    // Each batch releases its records when it settles, not when every batch of the round has:
    // with private IPs kept every replacement is a launch of its own, paced at 2 per second.
    if (launches.length > 0) calls.push(this.#launchFast(launches, progress, fail, track));
    for (const record of slowLaunches)
      calls.push(track([record.recordId], () => this.#launchSlow(record, fail)));
    await Promise.all(calls);
  }

  async #launchFast(
    records: readonly ShelfRecord[],
    progress: Map<string, RecordProgress>,
    fail: (recordIds: readonly string[], error: unknown) => void,
    track: (recordIds: readonly string[], start: () => Promise<void>) => Promise<void>,
  ): Promise<void> {
    const { ec2, clock, settings } = this.#deps;
    const now = clock.now();
    // Batches already written but not visible: re-issue with the same ClientToken after a grace period.
    const reissue = new Map<string, ShelfRecord[]>();
    const fresh: ShelfRecord[] = [];
    for (const record of records) {
      const batch = record.unshelve?.batch;
      if (!batch) fresh.push(record);
      else if (now - batch.issuedAt >= LAUNCH_REISSUE_MS)
        reissue.set(batch.batchId, [...(reissue.get(batch.batchId) ?? []), record]);
    }
    const hostIds = [
      ...new Set(
        fresh.flatMap((record) =>
          record.config.tenancy === 'host' && record.config.hostId ? [record.config.hostId] : [],
        ),
      ),
    ];
    const typeOfHost = new Map(
      fresh.map((record) => [record.config.hostId ?? '', record.config.instanceType]),
    );
    let hostRoom = new Map<string, number>();
    if (hostIds.length > 0) {
      try {
        hostRoom = await ec2.describeHostRoom(hostIds, (hostId) => typeOfHost.get(hostId) ?? '');
      } catch (error) {
        fail(
          fresh.map((record) => record.recordId),
          error,
        );
        return;
      }
    }
    const plan = planLaunchBatches(fresh, hostRoom, settings.maxBatch, settings.keepPrivateIp);
    const byId = new Map(records.map((record) => [record.recordId, record]));
    const launches: Promise<void>[] = [];

    for (const waiting of plan.waiting) {
      const record = byId.get(waiting.recordId);
      if (!record) continue;
      await this.#write(
        record,
        {
          set: {
            unshelve: {
              ...(record.unshelve ?? { requestId: 'reconcile', requestedAt: now, attempt: 0 }),
              waitingForHostSince: record.unshelve?.waitingForHostSince ?? now,
              reason: waiting.reason,
            },
          },
          actions: [],
          recheckAt: now + HOST_WAIT_RETRY_MS,
          reason: waiting.reason,
        },
        now,
      );
      progress.set(record.recordId, { recordId: record.recordId, step: record.step, reason: waiting.reason });
    }

    for (const batch of plan.batches) {
      launches.push(
        track(batch.recordIds, async () => {
          const members: (ShelfRecord | undefined)[] = [];
          for (const [index, recordId] of batch.recordIds.entries()) {
            const record = byId.get(recordId);
            if (!record) {
              members.push(undefined);
              continue;
            }
            const written = await this.#write(
              record,
              {
                set: {
                  unshelve: {
                    ...(record.unshelve ?? { requestId: 'reconcile', requestedAt: now, attempt: 0 }),
                    batch: {
                      batchId: batch.batchId,
                      size: batch.recordIds.length,
                      index,
                      issuedAt: now,
                      ...(batch.request.placement.hostId ? { hostId: batch.request.placement.hostId } : {}),
                      ...(batch.request.placement.affinity
                        ? { affinity: batch.request.placement.affinity }
                        : {}),
                    },
                  },
                },
                actions: [],
                recheckAt: now + LAUNCH_REISSUE_MS,
                reason: 'launching replacement',
              },
              now,
            );
            members.push(written);
          }
          await this.#runBatch(batch.request, members, fail);
        }),
      );
    }
    for (const members of reissue.values()) {
      const first = members[0];
      const batch = first?.unshelve?.batch;
      if (!first || !batch) continue;
      const ordered: (ShelfRecord | undefined)[] = Array.from({ length: batch.size }, (_, index) =>
        members.find((member) => member.unshelve?.batch?.index === index),
      );
      launches.push(
        track(
          members.map((member) => member.recordId),
          () => this.#runBatch(fastLaunchRequest(first, batch, settings.keepPrivateIp), ordered, fail),
        ),
      );
    }
    await Promise.all(launches);
  }

  /** One RunInstances for a batch, then map replacements back by launch index. */
  async #runBatch(
    request: ReturnType<typeof fastLaunchRequest>,
    members: readonly (ShelfRecord | undefined)[],
    fail: (recordIds: readonly string[], error: unknown) => void,
  ): Promise<void> {
    const { ec2, clock } = this.#deps;
    const claimed = members.filter((member): member is ShelfRecord => member !== undefined);
    let launched: { instanceId: string; launchIndex: number }[];
    try {
      launched = await ec2.runInstances(request);
    } catch (error) {
      fail(
        claimed.map((record) => record.recordId),
        error,
      );
      // A timeout or server error may have launched the batch: the records keep it, and its
      // ClientToken, and the batch is re-issued as it is after LAUNCH_REISSUE_MS (written before
      // the call), which returns what this call launched instead of launching it again.
      if (mayHaveTakenEffect(error)) return;
      if (error instanceof WarmbootError && error.code === 'NotFound') {
        const at = clock.now();
        await Promise.all(
          claimed.map((record) => this.#write(record, fastLaunchRefused(record, errorOf(error)), at)),
        );
        return;
      }
      if (isAddressInUse(error)) {
        const at = clock.now();
        await Promise.all(claimed.map((record) => this.#write(record, privateIpInUse(record, at), at)));
        return;
      }
      const capacity = error instanceof WarmbootError && error.code === 'InsufficientCapacity';
      await Promise.all(
        claimed.map((record) => this.#retryLaunch(record, clock.now(), capacity, errorOf(error).message)),
      );
      return;
    }
    const now = clock.now();
    const orphans: string[] = [];
    for (const { instanceId, launchIndex } of launched) {
      const record = members[launchIndex];
      if (!record) {
        orphans.push(instanceId);
        continue;
      }
      const written = await this.#write(
        record,
        {
          to: 'unshelve.stop-replacement',
          set: {
            unshelve: {
              ...(record.unshelve ?? { requestId: 'reconcile', requestedAt: now, attempt: 0 }),
              replacementInstanceId: instanceId,
            },
          },
          actions: [],
          recheckAt: now,
          reason: `replacement ${instanceId} launched`,
        },
        now,
      );
      if (!written) orphans.push(instanceId);
    }
    const launchedIndexes = new Set(launched.map((entry) => entry.launchIndex));
    const shortfall = claimed.filter((record) => !launchedIndexes.has(record.unshelve?.batch?.index ?? -1));
    await Promise.all(
      shortfall.map((record) => this.#retryLaunch(record, now, true, 'not enough capacity in the batch')),
    );
    // Replacements no record claims (a member lost a race after the batch was planned) go back
    // at once, once proven unused: see #unclaimedReplacements.
    if (orphans.length > 0) {
      try {
        const unused = await this.#unclaimedReplacements(orphans);
        if (unused.length > 0) await ec2.terminateInstances(unused);
      } catch (error) {
        fail([], error);
      }
    }
  }

  /**
   * Of the instances a batch launch returned that no member of this call claims, those nothing
   * else claims either. A re-issued batch gets back, under its ClientToken, every instance the
   * first call launched (EC2 idempotency), including one an earlier member took and has since
   * unshelved onto its retained root: terminating that one would have EC2 delete the retained
   * volumes (security review C4). So an instance that any record links to, that carries a
   * record's `warmboot:replacement-for` tag, or that holds a `warmboot:shelved` volume is kept.
   */
  async #unclaimedReplacements(instanceIds: readonly string[]): Promise<string[]> {
    const { ec2, store } = this.#deps;
    const observed = await ec2.describeInstances(instanceIds);
    const attached = observed.flatMap((instance) => instance.blockDevices.map((device) => device.volumeId));
    const volumes = attached.length > 0 ? await ec2.describeVolumes(attached) : [];
    const holdingRetained = new Set(
      volumes.flatMap((volume) =>
        volume.tags[SHELVED_TAG] !== undefined && volume.attachment ? [volume.attachment.instanceId] : [],
      ),
    );
    const unused: string[] = [];
    for (const instance of observed) {
      if (holdingRetained.has(instance.instanceId)) continue;
      if (instance.tags[REPLACEMENT_FOR_TAG] !== undefined) continue;
      if (instance.state === 'shutting-down' || instance.state === 'terminated') continue;
      if ((await store.recordIdForInstance(instance.instanceId)) !== undefined) continue;
      unused.push(instance.instanceId);
    }
    return unused;
  }

  async #retryLaunch(record: ShelfRecord, now: number, capacity: boolean, reason: string): Promise<void> {
    const unshelve = record.unshelve ?? { requestId: 'reconcile', requestedAt: now, attempt: 0 };
    const hostBound = record.config.tenancy === 'host' && record.config.affinity === 'host';
    await this.#write(
      record,
      {
        set: {
          unshelve: {
            ...unshelve,
            batch: undefined,
            attempt: unshelve.attempt + 1,
            reason,
            ...(capacity && hostBound ? { waitingForHostSince: unshelve.waitingForHostSince ?? now } : {}),
            ...(capacity && !hostBound
              ? { hostFull: true, capacityRefusedSince: unshelve.capacityRefusedSince ?? now }
              : {}),
          },
        },
        actions: [],
        recheckAt: now + (capacity ? HOST_WAIT_RETRY_MS : LAUNCH_RETRY_MS),
        reason,
      },
      now,
    );
  }

  async #launchSlow(
    record: ShelfRecord,
    fail: (recordIds: readonly string[], error: unknown) => void,
  ): Promise<void> {
    const { ec2, clock } = this.#deps;
    const now = clock.now();
    const issuedAt = record.unshelve?.slowLaunchIssuedAt;
    if (issuedAt !== undefined && now - issuedAt < LAUNCH_REISSUE_MS) return;
    const written = await this.#write(
      record,
      {
        set: {
          unshelve: {
            ...(record.unshelve ?? { requestId: 'reconcile', requestedAt: now, attempt: 0 }),
            slowLaunchIssuedAt: now,
          },
        },
        actions: [],
        recheckAt: now + LAUNCH_REISSUE_MS,
        reason: 'launching from snapshots',
      },
      now,
    );
    if (!written) return;
    let answered = false;
    try {
      const [launched] = await ec2.runInstances(
        slowLaunchRequest(written, this.#deps.settings.keepPrivateIp),
      );
      answered = true;
      if (!launched) return;
      const at = clock.now();
      await this.#write(
        written,
        {
          set: {
            unshelve: {
              ...(written.unshelve ?? { requestId: 'reconcile', requestedAt: at, attempt: 0 }),
              replacementInstanceId: launched.instanceId,
            },
          },
          actions: [],
          recheckAt: at,
          reason: `replacement ${launched.instanceId} restoring from snapshots`,
        },
        at,
      );
    } catch (error) {
      fail([record.recordId], error);
      if (error instanceof WarmbootError && error.code === 'NotFound') {
        // A snapshot or the image is gone: re-issuing the same launch can never succeed.
        const at = clock.now();
        await this.#write(written, slowLaunchRefused(written, errorOf(error), at), at);
        return;
      }
      // A timeout or server error may have launched the replacement: the record keeps its
      // ClientToken and slowLaunchIssuedAt, so the launch is re-issued with the same token after
      // LAUNCH_REISSUE_MS and returns that replacement instead of launching a second one.
      if (mayHaveTakenEffect(error)) return;
      if (isAddressInUse(error)) {
        const at = clock.now();
        await this.#write(written, privateIpInUse(written, at), at);
        return;
      }
      if (error instanceof WarmbootError && error.code === 'InsufficientCapacity') {
        // Nothing was launched: try again at the retry time written here, or elsewhere once the
        // AZ has refused long enough (otherAzAfterSeconds).
        await this.#retrySlowLaunch(written, errorOf(error).message, HOST_WAIT_RETRY_MS, (unshelve, at) => ({
          capacityRefusedSince: unshelve.capacityRefusedSince ?? at,
        }));
        return;
      }
      // RunInstances answered and only recording its replacement failed: the replacement is found
      // by its warmboot:replacement-for tag next round.
      if (answered) return;
      // Any other refusal launched nothing, and a refusal tied to the token itself (EC2 answering
      // a terminated launch's token with an error instead of the instance, a parameter mismatch)
      // would come back for the same token: the next launch is a new attempt with a new token.
      await this.#retrySlowLaunch(written, errorOf(error).message, LAUNCH_RETRY_MS, (unshelve) => ({
        attempt: unshelve.attempt + 1,
      }));
    }
  }

  /** A slow-path launch that launched nothing: forget it was issued and look again after `waitMs`. */
  async #retrySlowLaunch(
    record: ShelfRecord,
    reason: string,
    waitMs: number,
    change: (unshelve: UnshelveState, at: number) => Partial<UnshelveState>,
  ): Promise<void> {
    const at = this.#deps.clock.now();
    const unshelve = record.unshelve ?? { requestId: 'reconcile', requestedAt: at, attempt: 0 };
    await this.#write(
      record,
      {
        set: { unshelve: { ...unshelve, ...change(unshelve, at), slowLaunchIssuedAt: undefined, reason } },
        actions: [],
        recheckAt: at + waitMs,
        reason,
      },
      at,
    );
  }
}
