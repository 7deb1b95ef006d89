/**
 * The invariants of docs/invariants.md as pure checks over what the local cloud can show: the
 * simulators' read models, DynamoDB records and the bus's invocation log. Every checker returns
 * the violations it found (empty = the invariant holds), each naming the invariant, the subject
 * and what is wrong, so a failing fault-injection run prints something a person can act on.
 *
 * The checkers take plain data, not a LocalCloud: the fault suite builds the data from a cloud,
 * and the unit tests build broken states by hand to prove each checker catches its violation.
 */

export const INVARIANTS = {
  retainedVolumeKept: 'no retained volume deleted',
  retainedVolumeOwned: 'every retained volume belongs to exactly one shelve record',
  noHalfSwap: 'no instance left half-swapped',
  recordAtRest: 'every shelve record comes to rest after reconcile',
  claimedOnce: 'no pool member claimed twice',
  popularityExact: 'popularity counts equal distinct launches',
  cacheConverges: 'caches converge to the plan',
  requestAnswered: 'every operator request ends in success or a reported error',
  handledOnce: 'handling the same event twice changes nothing the second time',
  withinBudget: 'fast snapshot restore stays within its budget',
  onlyManaged: 'a capability only changes resources it manages',
  runningInstanceKept: 'no instance terminated that a shelve record runs as or that holds a retained volume',
  safetySnapshotKept: 'safety snapshots stay until their record is confirmed deleted',
  onlyBoundCallers: 'the request bus admits a caller only with a source it is bound to',
  tenantIsolated: "a tenant's instances and records change only by requests of callers acting for it",
} as const;

export type InvariantId = keyof typeof INVARIANTS;

export interface Violation {
  readonly invariant: InvariantId;
  /** What the violation is about: a volume, record, instance, image, host or request id. */
  readonly subject: string;
  readonly message: string;
}

/** Items under their keys, each list in the items' order (Map.groupBy, which Node 20 lacks). */
const groupBy = <T>(items: Iterable<T>, keyOf: (item: T) => string): Map<string, T[]> => {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return groups;
};

export const describeViolation = (violation: Violation): string =>
  `[${INVARIANTS[violation.invariant]}] ${violation.subject}: ${violation.message}`;

// ---------------------------------------------------------------- read-model shapes

/** The parts of an EC2 instance the checkers read (a subset of the simulator's InstanceView). */
export interface InstanceFacts {
  readonly instanceId: string;
  readonly state: string;
  readonly rootDeviceName?: string;
  readonly tags: Readonly<Record<string, string>>;
}

/** The parts of an EBS volume the checkers read (a subset of the simulator's VolumeView). */
export interface VolumeFacts {
  readonly volumeId: string;
  readonly state: string;
  readonly attachment?: { readonly instanceId: string; readonly device: string } | undefined;
  readonly tags: Readonly<Record<string, string>>;
}

/** The parts of a shelve record the checkers read (a subset of shelving's ShelfRecord). */
export interface ShelfFacts {
  readonly recordId: string;
  readonly instanceId: string;
  readonly step: string;
  /** When the record was created (a later record of the same instance supersedes this one). */
  readonly shelvedAt?: number;
  /** The Shelve request (event id) that created the record. */
  readonly shelvedBy?: { readonly requestId?: string };
  /** Set once the shelved instance was terminated (offloaded, or found gone). */
  readonly offloadedAt?: number;
  readonly volumes: readonly {
    readonly volumeId: string;
    readonly deviceName: string;
    readonly root: boolean;
    readonly snapshotId?: string;
  }[];
  readonly unshelve?: {
    /** The Unshelve request (event id) that last moved the record. */
    readonly requestId?: string;
    readonly path?: string;
    readonly replacementInstanceId?: string;
    readonly freshRootVolumeId?: string;
    /** The pool member the unshelve took instead of launching (pools serve unshelve). */
    readonly poolMember?: { readonly pool: string; readonly instanceId: string };
    /** When the instance it unshelves to was running: from then on the record runs as it. */
    readonly readyAt?: number;
  };
  /** A confirmed 'Delete Shelved Record' under way (step `deleting`): what it deletes. */
  readonly deletion?: { readonly volumeIds: readonly string[]; readonly snapshotIds: readonly string[] };
}

export const SHELVED_TAG = 'warmboot:shelved';
export const REPLACEMENT_FOR_TAG = 'warmboot:replacement-for';
const LIVE_INSTANCE_STATES = new Set(['pending', 'running', 'stopping', 'stopped']);
const RESTING_STEPS = new Set(['shelved', 'offloaded', 'unshelved', 'failed']);

// ---------------------------------------------------------------- shelving

export interface ShelvingState {
  readonly records: readonly ShelfFacts[];
  readonly volumes: readonly VolumeFacts[];
  readonly instances: readonly InstanceFacts[];
  /**
   * Every volume that was ever retained (listed by a record or tagged `warmboot:shelved`) while
   * the run went on, with the record that retained it: sampled on every invocation and tick.
   */
  readonly everRetained: ReadonlyMap<string, string>;
  /** Records the operator deleted with a confirmed 'Delete Shelved Record'. */
  readonly deletedRecords: ReadonlySet<string>;
}

/** warmboot never deletes a volume holding a shelved instance's data unless the operator deleted the record. */
export const retainedVolumesKept = (state: ShelvingState): Violation[] => {
  // A volume being deleted is as good as gone: DeleteVolume cannot be taken back.
  const existing = new Set(
    state.volumes
      .filter((volume) => volume.state !== 'deleting' && volume.state !== 'deleted')
      .map((v) => v.volumeId),
  );
  const retained = new Map(state.everRetained);
  for (const record of state.records) {
    // The slow path restores from snapshots; the ids it lists afterwards are the restored volumes.
    for (const volume of record.volumes)
      if (!retained.has(volume.volumeId)) retained.set(volume.volumeId, record.recordId);
  }
  const violations: Violation[] = [];
  for (const [volumeId, recordId] of retained) {
    if (existing.has(volumeId) || state.deletedRecords.has(recordId)) continue;
    violations.push({
      invariant: 'retainedVolumeKept',
      subject: volumeId,
      message: `retained by ${recordId}, which the operator did not delete, and the volume is gone`,
    });
  }
  return violations;
};

/** Every volume tagged `warmboot:shelved=<R>` belongs to R, R exists, and no two live records list one volume. */
export const retainedVolumesOwned = (state: ShelvingState): Violation[] => {
  const records = new Map(state.records.map((record) => [record.recordId, record]));
  const violations: Violation[] = [];
  for (const volume of state.volumes) {
    const owner = volume.tags[SHELVED_TAG];
    if (owner === undefined) continue;
    const record = records.get(owner);
    if (!record) {
      violations.push({
        invariant: 'retainedVolumeOwned',
        subject: volume.volumeId,
        message: `tagged ${SHELVED_TAG}=${owner} but no such record exists (orphaned)`,
      });
    } else if (!record.volumes.some((kept) => kept.volumeId === volume.volumeId)) {
      violations.push({
        invariant: 'retainedVolumeOwned',
        subject: volume.volumeId,
        message: `tagged ${SHELVED_TAG}=${owner} but that record does not list it`,
      });
    }
  }
  const claimants = new Map<string, string[]>();
  for (const record of state.records) {
    if (record.step === 'unshelved') continue;
    for (const volume of record.volumes) {
      claimants.set(volume.volumeId, [...(claimants.get(volume.volumeId) ?? []), record.recordId]);
    }
  }
  for (const [volumeId, owners] of claimants) {
    if (owners.length > 1) {
      violations.push({
        invariant: 'retainedVolumeOwned',
        subject: volumeId,
        message: `listed by ${owners.length} live records: ${owners.join(', ')}`,
      });
    }
  }
  return violations;
};

/**
 * After reconciles with faults stopped: every record is at rest, an unshelved record runs as one
 * instance with all its retained volumes attached at their device names, an offloaded record's
 * volumes wait detached, and no replacement instance or fresh root is left over.
 */
export const noHalfSwap = (state: ShelvingState): Violation[] => {
  const instances = new Map(state.instances.map((instance) => [instance.instanceId, instance]));
  const volumes = new Map(state.volumes.map((volume) => [volume.volumeId, volume]));
  const records = new Map(state.records.map((record) => [record.recordId, record]));
  const violations: Violation[] = [];
  const report = (invariant: InvariantId, subject: string, message: string): void => {
    violations.push({ invariant, subject, message });
  };
  for (const record of state.records) {
    if (!RESTING_STEPS.has(record.step)) {
      report('recordAtRest', record.recordId, `still in step ${record.step} after the reconciles`);
      continue;
    }
    const runsAs = record.unshelve?.replacementInstanceId ?? record.instanceId;
    const superseded = state.records.some(
      (other) => other.instanceId === runsAs && (other.shelvedAt ?? 0) > (record.shelvedAt ?? 0),
    );
    if (record.step === 'unshelved' && !superseded) {
      const instance = instances.get(runsAs);
      if (instance?.state !== 'running') {
        report('noHalfSwap', record.recordId, `unshelved, but ${runsAs} is ${instance?.state ?? 'gone'}`);
      }
      if (record.unshelve?.path === 'slow') continue;
      for (const kept of record.volumes) {
        const volume = volumes.get(kept.volumeId);
        if (!volume) continue; // retainedVolumesKept reports it
        if (volume.attachment?.instanceId !== runsAs || volume.attachment.device !== kept.deviceName) {
          report(
            'noHalfSwap',
            record.recordId,
            `unshelved on ${runsAs}, but retained ${kept.root ? 'root ' : ''}${kept.volumeId} is ${
              volume.attachment
                ? `on ${volume.attachment.instanceId} at ${volume.attachment.device}`
                : 'unattached'
            } instead of at ${kept.deviceName}`,
          );
        }
      }
      const fresh = record.unshelve?.freshRootVolumeId;
      if (fresh !== undefined && record.unshelve?.replacementInstanceId !== undefined && volumes.has(fresh)) {
        const attached = volumes.get(fresh)?.attachment;
        report(
          'noHalfSwap',
          record.recordId,
          `the replacement's fresh root ${fresh} is left behind (${attached ? `on ${attached.instanceId}` : 'unattached'})`,
        );
      }
    } else if (record.step === 'offloaded') {
      for (const kept of record.volumes) {
        const attached = volumes.get(kept.volumeId)?.attachment;
        if (attached && instances.get(attached.instanceId)?.state !== 'terminated') {
          report(
            'noHalfSwap',
            record.recordId,
            `offloaded, but ${kept.volumeId} is attached to ${attached.instanceId}`,
          );
        }
      }
    }
  }
  for (const instance of state.instances) {
    const recordId = instance.tags[REPLACEMENT_FOR_TAG];
    if (recordId === undefined || !LIVE_INSTANCE_STATES.has(instance.state)) continue;
    const record = records.get(recordId);
    // Once unshelved, the replacement is simply the instance; the operator may delete the finished record.
    if (!record && state.deletedRecords.has(recordId)) continue;
    if (record?.unshelve?.replacementInstanceId !== instance.instanceId || record.step !== 'unshelved') {
      report(
        'noHalfSwap',
        instance.instanceId,
        `a ${instance.state} replacement for ${recordId}, which ${
          record
            ? `is ${record.step} with replacement ${record.unshelve?.replacementInstanceId ?? 'none'}`
            : 'does not exist'
        }: a leaked replacement`,
      );
    }
  }
  return violations;
};

// ---------------------------------------------------------------- pools and claims

export interface Assignment {
  readonly requestId: string;
  readonly instanceId: string;
}

/** A pool member goes to at most one request, and a request gets at most one server. */
export const claimedOnce = (assignments: readonly Assignment[]): Violation[] => {
  const byInstance = new Map<string, Set<string>>();
  const byRequest = new Map<string, Set<string>>();
  for (const { requestId, instanceId } of assignments) {
    byInstance.set(instanceId, (byInstance.get(instanceId) ?? new Set()).add(requestId));
    byRequest.set(requestId, (byRequest.get(requestId) ?? new Set()).add(instanceId));
  }
  const violations: Violation[] = [];
  for (const [instanceId, requests] of byInstance) {
    if (requests.size > 1) {
      violations.push({
        invariant: 'claimedOnce',
        subject: instanceId,
        message: `handed to ${requests.size} requests: ${[...requests].sort().join(', ')}`,
      });
    }
  }
  for (const [requestId, servers] of byRequest) {
    if (servers.size > 1) {
      violations.push({
        invariant: 'claimedOnce',
        subject: requestId,
        message: `got ${servers.size} servers: ${[...servers].sort().join(', ')}`,
      });
    }
  }
  return violations;
};

// ---------------------------------------------------------------- popularity

/**
 * Each image's stored launch count equals the number of distinct launches of it: never counted
 * twice, never silently lost. A launch whose event ended in the dead-letter queue may or may not
 * have been counted before its last delivery failed (the redrive's dedupe marker settles it), so
 * it widens the allowed range downwards by its count and nothing else does.
 */
export const popularityExact = (
  distinctLaunches: ReadonlyMap<string, number>,
  counted: ReadonlyMap<string, number>,
  deadLettered: ReadonlyMap<string, number> = new Map(),
): Violation[] => {
  const violations: Violation[] = [];
  for (const image of new Set([...distinctLaunches.keys(), ...counted.keys()])) {
    const expected = distinctLaunches.get(image) ?? 0;
    const lowest = expected - (deadLettered.get(image) ?? 0);
    const actual = counted.get(image) ?? 0;
    if (actual > expected || actual < lowest) {
      violations.push({
        invariant: 'popularityExact',
        subject: image,
        message:
          `counted ${actual} launches, but ${expected} distinct launches happened` +
          (lowest < expected ? ` (${expected - lowest} of them dead-lettered)` : ''),
      });
    }
  }
  return violations;
};

// ---------------------------------------------------------------- image caches

/** After reconciles with faults stopped, each host's cache holds exactly the planner's desired set. */
export const cachesConverge = (
  desired: ReadonlyMap<string, ReadonlySet<string>>,
  actual: ReadonlyMap<string, ReadonlySet<string>>,
): Violation[] => {
  const violations: Violation[] = [];
  for (const host of [...new Set([...desired.keys(), ...actual.keys()])].sort()) {
    const want = desired.get(host) ?? new Set<string>();
    const have = actual.get(host) ?? new Set<string>();
    const missing = [...want].filter((image) => !have.has(image)).sort();
    const extra = [...have].filter((image) => !want.has(image)).sort();
    if (missing.length > 0 || extra.length > 0) {
      violations.push({
        invariant: 'cacheConverges',
        subject: host,
        message: [
          missing.length > 0 ? `missing ${missing.join(', ')}` : '',
          extra.length > 0 ? `not planned but cached ${extra.join(', ')}` : '',
        ]
          .filter(Boolean)
          .join('; '),
      });
    }
  }
  return violations;
};

// ---------------------------------------------------------------- fast snapshot restore

/** A snapshot-AZ pair as the EC2 read model shows it. */
export interface FastRestorePairFacts {
  readonly snapshotId: string;
  readonly availabilityZone: string;
  readonly state: string;
}

const BILLED_FSR_STATES = new Set(['enabling', 'optimizing', 'enabled', 'disabling']);
const pairName = (pair: FastRestorePairFacts): string => `${pair.snapshotId}@${pair.availabilityZone}`;

/**
 * Sampled all through a run: the pairs warmboot pays for (every billed pair except the foreign
 * ones someone else enabled) never exceed the budget, and a foreign pair is never disabled.
 */
export const fastRestoreWithinBudget = (
  pairs: readonly FastRestorePairFacts[],
  foreign: ReadonlySet<string>,
  maxPairs: number,
  at: string,
): Violation[] => {
  const violations: Violation[] = [];
  const billed = pairs.filter((pair) => BILLED_FSR_STATES.has(pair.state) && !foreign.has(pairName(pair)));
  if (billed.length > maxPairs) {
    violations.push({
      invariant: 'withinBudget',
      subject: at,
      message: `${billed.length} pairs billed (${billed.map((pair) => `${pairName(pair)}:${pair.state}`).join(', ')}), budget ${maxPairs}`,
    });
  }
  for (const pair of pairs) {
    if (foreign.has(pairName(pair)) && !['enabling', 'optimizing', 'enabled'].includes(pair.state)) {
      violations.push({
        invariant: 'onlyManaged',
        subject: pairName(pair),
        message: `enabled by someone else, but ${pair.state} at ${at}`,
      });
    }
  }
  return violations;
};

// ---------------------------------------------------------------- operator requests

export interface OperatorRequest {
  /** The EventBridge event id of the request. */
  readonly eventId: string;
  readonly detailType: string;
  /** When it was put on the bus (virtual ms). */
  readonly sentAt: number;
}

/** What happened to one request delivery: the bus's invocation log and dead-letter queue. */
export interface RequestOutcome {
  readonly eventId: string;
  readonly outcome: 'succeeded' | 'failed' | 'crashed' | 'dead-lettered';
  /** The handler's answer (a DispatchResult) when it succeeded. */
  readonly result?: unknown;
  readonly error?: string;
}

const isAnswer = (result: unknown): boolean => {
  if (typeof result !== 'object' || result === null) return false;
  const status = (result as { status?: unknown }).status;
  if (status === 'handled') return true;
  if (status === 'rejected') {
    const error = (result as { error?: { code?: unknown; message?: unknown } }).error;
    return typeof error?.code === 'string' && typeof error.message === 'string';
  }
  return false;
};

/**
 * Every request ends either handled (its per-item results carry each item's success or error),
 * rejected with an error, or in the dead-letter queue with the error that put it there. A request
 * whose last delivery failed and that is neither retried nor dead-lettered was silently lost.
 */
export const requestsAnswered = (
  requests: readonly OperatorRequest[],
  outcomes: readonly RequestOutcome[],
): Violation[] => {
  const byEvent = groupBy(outcomes, (outcome) => outcome.eventId);
  return requests.flatMap((request) => {
    const seen = byEvent.get(request.eventId) ?? [];
    const answered = seen.some(
      (outcome) =>
        (outcome.outcome === 'succeeded' && isAnswer(outcome.result)) ||
        (outcome.outcome === 'dead-lettered' && (outcome.error ?? '').length > 0),
    );
    if (answered) return [];
    return [
      {
        invariant: 'requestAnswered' as const,
        subject: `${request.detailType} ${request.eventId}`,
        message:
          seen.length === 0
            ? 'never delivered to a handler and not dead-lettered'
            : `no answer: ${seen.map((outcome) => `${outcome.outcome}${outcome.error ? ` (${outcome.error})` : ''}`).join(', ')}`,
      },
    ];
  });
};

/** Every record an accepted request moved to a terminal step published the fact that says so. */
export const outcomesPublished = (
  records: readonly ShelfFacts[],
  facts: readonly { readonly detailType: string; readonly recordId?: string }[],
): Violation[] => {
  const published = new Set(facts.map((fact) => `${fact.detailType}|${fact.recordId ?? ''}`));
  const violations: Violation[] = [];
  for (const record of records) {
    const expected =
      record.step === 'unshelved'
        ? 'Instance Unshelved'
        : record.step === 'failed'
          ? 'Shelve Failed'
          : undefined;
    if (expected && !published.has(`${expected}|${record.recordId}`)) {
      violations.push({
        invariant: 'requestAnswered',
        subject: record.recordId,
        message: `is ${record.step} but no "${expected}" fact was published`,
      });
    }
  }
  return violations;
};

// ---------------------------------------------------------------- at-least-once delivery

/**
 * An event delivered (or retried) several times has the effect of one delivery: per subject (an
 * instance, a request id), no more effects (records created, servers launched) than distinct
 * events asked for.
 */
export const handledOnce = (
  requested: ReadonlyMap<string, number>,
  effects: ReadonlyMap<string, readonly string[]>,
  what: string,
): Violation[] =>
  [...effects]
    .filter(([subject, made]) => made.length > (requested.get(subject) ?? 0))
    .map(([subject, made]) => ({
      invariant: 'handledOnce' as const,
      subject,
      message: `${made.length} ${what} (${made.join(', ')}) for ${requested.get(subject) ?? 0} distinct request event(s)`,
    }));

/**
 * A request acts only on records it can mean: a record an Unshelve request (event id) moved was
 * shelved by a Shelve request sent no later than the Unshelve, or within the same second (event
 * times have one-second resolution: that is all warmboot can know of the order). Otherwise a retry,
 * or a late delivery, resolved the instance ids to the record of a Shelve sent after it.
 * `sentAt`: when each operator request of the run was put on the bus.
 */
export const unshelvedOnlyEarlierShelves = (
  records: readonly ShelfFacts[],
  sentAt: ReadonlyMap<string, number>,
): Violation[] =>
  records.flatMap((record) => {
    const unshelveId = record.unshelve?.requestId;
    const unshelveSent = unshelveId === undefined ? undefined : sentAt.get(unshelveId);
    if (unshelveSent === undefined) return [];
    const shelveId = record.shelvedBy?.requestId;
    const shelveSent = shelveId === undefined ? undefined : sentAt.get(shelveId);
    if (shelveSent !== undefined && Math.floor(shelveSent / 1000) <= Math.floor(unshelveSent / 1000))
      return [];
    return [
      {
        invariant: 'handledOnce' as const,
        subject: record.recordId,
        message:
          shelveSent === undefined
            ? `unshelved by request ${unshelveId}, but names no Shelve request of this run (shelvedBy: ${shelveId ?? 'none'})`
            : `unshelved by request ${unshelveId} sent at ${unshelveSent}, but shelved by request ${shelveId} sent at ${shelveSent}, a later second (its instance ids were resolved to a later Shelve's record)`,
      },
    ];
  });

// ---------------------------------------------------------------- calls as they happened

/**
 * The caller of a call made outside any invocation: a test, the sandbox or an operator acting as
 * the account's administrator (local/call-journal.ts `OUTSIDE`). Its calls are the customer's own.
 */
export const OUTSIDE_CALLER = 'outside';

/** A destructive EC2 call that took effect, as the call journal recorded it (a JournalCall). */
export interface CallFacts {
  /** Order among every call and every record write of the run. */
  readonly seq: number;
  /** Virtual time, ms. */
  readonly at: number;
  /** The function whose invocation made it, or OUTSIDE_CALLER. */
  readonly caller: string;
  readonly operation: string;
  /** The resource as EC2 showed it when the call arrived. */
  readonly resource: {
    readonly kind: string;
    readonly id: string;
    readonly state?: string;
    readonly tags: Readonly<Record<string, string>>;
    readonly createdBy?: string;
    readonly attachedVolumes?: readonly {
      readonly volumeId: string;
      readonly device: string;
      readonly deleteOnTermination: boolean;
      readonly tags: Readonly<Record<string, string>>;
    }[];
    readonly attachment?: { readonly instanceId: string; readonly device: string };
    readonly sourceVolumeId?: string;
    readonly liveVolumeIds?: readonly string[];
    readonly enabledBy?: string;
  };
}

/** A shelve record as one accepted write left it; no `record`: the write removed it. */
export interface ShelfVersion {
  readonly seq: number;
  readonly recordId: string;
  readonly record?: ShelfFacts;
}

/** A pool member item as one accepted write left it; no `state`: the write removed it. */
export interface PoolMemberVersion {
  readonly seq: number;
  readonly pool: string;
  readonly instanceId: string;
  readonly state?: string;
}

export type Capability = 'shelving' | 'pools' | 'image-cache' | 'fast-restore' | 'popularity';

/** The capability each function of the catalog belongs to. */
export const FUNCTION_CAPABILITY: Readonly<Record<string, Capability>> = {
  popularity: 'popularity',
  imageCache: 'image-cache',
  placement: 'image-cache',
  fastRestore: 'fast-restore',
  pools: 'pools',
  claim: 'pools',
  shelving: 'shelving',
};

/**
 * The capability tags (CONTRIBUTING, "Management tags") and the capability each one names. The
 * opt-ins (`warmboot:shelving`, …) are not among them: an opt-in lets a capability act on a
 * resource, but it manages one only once its records or these tags claim it.
 */
export const CAPABILITY_TAGS: Readonly<Record<string, Capability>> = {
  [SHELVED_TAG]: 'shelving',
  [REPLACEMENT_FOR_TAG]: 'shelving',
  'warmboot:replacement-root': 'shelving',
  'warmboot:replacement-batch': 'shelving',
  'warmboot:pool': 'pools',
  'warmboot:member-state': 'pools',
  'warmboot:claim': 'pools',
  'warmboot:host-group': 'image-cache',
  'warmboot:image': 'image-cache',
};

/** A capability's claim on a resource from its DynamoDB records, between two record writes. */
export interface ManagementClaim {
  readonly capability: Capability;
  readonly resourceId: string;
  /** The write that made the claim (seq); the claim holds for calls after it. */
  readonly from: number;
  /** The write that ended it (seq); absent: it still holds. */
  readonly until?: number;
  /** Which record makes it, for messages. */
  readonly by: string;
}

/** The calls a deployed function made (of one operation): the customer's own calls are not judged. */
const functionCalls = (calls: readonly CallFacts[], operation?: string): CallFacts[] =>
  calls.filter(
    (call) => call.caller !== OUTSIDE_CALLER && (operation === undefined || call.operation === operation),
  );

const callName = (call: CallFacts): string =>
  `${call.caller} ${call.operation} at ${new Date(call.at).toISOString()} (call ${call.seq})`;

/** Each record's versions in write order, and the version in force just before a call. */
const versionsByRecord = (history: readonly ShelfVersion[]): Map<string, ShelfVersion[]> =>
  groupBy(
    [...history].sort((a, b) => a.seq - b.seq),
    (version) => version.recordId,
  );
const before = <T extends { readonly seq: number }>(versions: readonly T[], seq: number): T[] =>
  versions.filter((version) => version.seq < seq);

/** Every live record just before `seq`. */
const recordsBefore = (byRecord: ReadonlyMap<string, readonly ShelfVersion[]>, seq: number): ShelfFacts[] =>
  [...byRecord.values()].flatMap((versions) => {
    const record = before(versions, seq).at(-1)?.record;
    return record ? [record] : [];
  });

/**
 * The instance a record runs as, if it names one: once its unshelve was ready, the instance it
 * unshelved to (the original on the start path); before, the original instance until it was
 * offloaded (or found gone). A later record of that same instance (it was shelved again) governs it.
 */
const runsAs = (record: ShelfFacts, live: readonly ShelfFacts[]): string | undefined => {
  let instanceId: string | undefined;
  if (record.unshelve?.readyAt !== undefined) {
    const path = record.unshelve.path ?? 'start';
    instanceId = path === 'start' ? record.instanceId : record.unshelve.replacementInstanceId;
  } else if (
    record.offloadedAt === undefined &&
    record.step !== 'offload.terminate' &&
    record.step !== 'offloaded'
  ) {
    instanceId = record.instanceId;
  }
  const superseded = live.some(
    (other) => other.instanceId === instanceId && (other.shelvedAt ?? 0) > (record.shelvedAt ?? 0),
  );
  return superseded ? undefined : instanceId;
};

/**
 * warmboot never terminates an instance that a shelve record runs as at the time of the call
 * (an unshelved record's instance, or the original instance of a record not offloaded), nor one
 * with a retained volume attached (tagged `warmboot:shelved`, or listed by a record not yet
 * unshelved) — except the offload itself: the record's own original instance, while the record is
 * in `offload.terminate`, with every retained volume on it kept on termination. Judged per call on
 * the call journal and the shelve records as they were just before it (security review C4).
 */
export const runningInstancesKept = (
  calls: readonly CallFacts[],
  history: readonly ShelfVersion[],
): Violation[] => {
  const byRecord = versionsByRecord(history);
  return functionCalls(calls, 'TerminateInstances').flatMap((call) => {
    const instanceId = call.resource.id;
    const live = recordsBefore(byRecord, call.seq);
    const terminated = (message: string): Violation => ({
      invariant: 'runningInstanceKept',
      subject: instanceId,
      message: `${callName(call)} terminated it ${message}`,
    });
    const runningAs = live
      .filter((record) => runsAs(record, live) === instanceId)
      .map((record) => terminated(`while ${record.recordId} (step ${record.step}) runs as it`));
    const retained = (call.resource.attachedVolumes ?? []).flatMap((volume) => {
      const recordId =
        volume.tags[SHELVED_TAG] ??
        live.find(
          (record) =>
            record.unshelve?.readyAt === undefined &&
            record.volumes.some((kept) => kept.volumeId === volume.volumeId),
        )?.recordId;
      if (recordId === undefined) return [];
      const record = live.find((candidate) => candidate.recordId === recordId);
      const offload =
        record?.instanceId === instanceId &&
        record.step === 'offload.terminate' &&
        !volume.deleteOnTermination;
      if (offload) return [];
      return [
        terminated(
          `with ${volume.volumeId}, retained by ${recordId} (${
            record ? `step ${record.step}` : 'no such record'
          }), attached at ${volume.device} (DeleteOnTermination ${volume.deleteOnTermination})`,
        ),
      ];
    });
    return [...runningAs, ...retained];
  });
};

/**
 * A safety snapshot is deleted only once its record is confirmed deleted (step `deleting`, which
 * only a confirmed 'Delete Shelved Record' enters, or already removed from it) and none of the
 * volumes the deletion removes is left; and only a snapshot taken from one of that record's own
 * volumes. A record owns a snapshot by its `warmboot:shelved` tag at the time of the call and by
 * listing it. Judged per DeleteSnapshot on the call journal and the records just before it.
 */
export const safetySnapshotsKept = (
  calls: readonly CallFacts[],
  history: readonly ShelfVersion[],
): Violation[] => {
  const byRecord = versionsByRecord(history);
  const violations: Violation[] = [];
  const lists = (record: ShelfFacts | undefined, snapshotId: string): boolean =>
    record !== undefined &&
    (record.volumes.some((volume) => volume.snapshotId === snapshotId) ||
      (record.deletion?.snapshotIds ?? []).includes(snapshotId));
  for (const call of functionCalls(calls, 'DeleteSnapshot')) {
    const snapshot = call.resource;
    const owners = new Set<string>();
    const tagged = snapshot.tags[SHELVED_TAG];
    if (tagged !== undefined) owners.add(tagged);
    for (const [recordId, versions] of byRecord)
      if (before(versions, call.seq).some((version) => lists(version.record, snapshot.id)))
        owners.add(recordId);
    for (const recordId of owners) {
      const report = (message: string): void => {
        violations.push({
          invariant: 'safetySnapshotKept',
          subject: snapshot.id,
          message: `${callName(call)} deleted the safety snapshot of ${recordId}, ${message}`,
        });
      };
      const versions = before(byRecord.get(recordId) ?? [], call.seq);
      const current = versions.at(-1);
      if (!current) {
        report('a record that never existed');
        continue;
      }
      const lastLive = current.record ?? versions.findLast((version) => version.record)?.record;
      if (lastLive?.step !== 'deleting') {
        report(
          current.record
            ? `which is ${current.record.step}, not confirmed deleted`
            : `which was removed from ${lastLive?.step ?? 'nothing'}, not by a confirmed deletion`,
        );
        continue;
      }
      if (current.record) {
        const live = new Set(snapshot.liveVolumeIds ?? []);
        const deleting = current.record.deletion?.volumeIds ?? current.record.volumes.map((v) => v.volumeId);
        const held = deleting.filter((volumeId) => live.has(volumeId));
        if (held.length > 0) report(`while the record still holds ${held.join(', ')}`);
      }
      const own = new Set(
        versions.flatMap((version) => [
          ...(version.record?.volumes ?? []).map((volume) => volume.volumeId),
          ...(version.record?.deletion?.volumeIds ?? []),
        ]),
      );
      if (snapshot.sourceVolumeId !== undefined && !own.has(snapshot.sourceVolumeId))
        report(`but it was taken from ${snapshot.sourceVolumeId}, never one of that record's volumes`);
    }
  }
  return violations;
};

/** What a shelve record makes shelving's, from each version until the next write of that record. */
export const shelvingClaims = (history: readonly ShelfVersion[]): ManagementClaim[] =>
  [...versionsByRecord(history).values()].flatMap((versions) =>
    versions.flatMap((version, index) => {
      const record = version.record;
      if (!record) return [];
      const until = versions[index + 1]?.seq;
      const named = [
        record.instanceId,
        record.unshelve?.replacementInstanceId,
        record.unshelve?.freshRootVolumeId,
        ...record.volumes.flatMap((volume) => [volume.volumeId, volume.snapshotId]),
        ...(record.deletion?.volumeIds ?? []),
        ...(record.deletion?.snapshotIds ?? []),
      ].filter((id): id is string => id !== undefined);
      return [...new Set(named)].map((resourceId) => ({
        capability: 'shelving' as const,
        resourceId,
        from: version.seq,
        ...(until !== undefined ? { until } : {}),
        by: `shelve record ${record.recordId} (${record.step})`,
      }));
    }),
  );

/** What a pool member item makes the pools', from each version until the next; a handed-over member is its requester's. */
export const poolClaims = (history: readonly PoolMemberVersion[]): ManagementClaim[] => {
  const byMember = groupBy(
    [...history].sort((a, b) => a.seq - b.seq),
    (version) => `${version.pool}|${version.instanceId}`,
  );
  return [...byMember.values()].flatMap((versions) =>
    versions.flatMap((version, index) => {
      if (version.state === undefined || version.state === 'handed-over') return [];
      const until = versions[index + 1]?.seq;
      return [
        {
          capability: 'pools' as const,
          resourceId: version.instanceId,
          from: version.seq,
          ...(until !== undefined ? { until } : {}),
          by: `member of pool ${version.pool} (${version.state})`,
        },
      ];
    }),
  );
};

/**
 * No capability stops, terminates, modifies, attaches, detaches or deletes a resource another
 * capability manages or that nothing manages. Each call is attributed to the function that made
 * it; who manages the resource comes from provenance at the time of the call: its capability tags,
 * the DynamoDB records that claim it (`shelvingClaims`, `poolClaims`) and, for a fast snapshot
 * restore pair, which function enabled it. Calls from outside any invocation are the customer's.
 */
export const onlyManagedTouched = (
  calls: readonly CallFacts[],
  claims: readonly ManagementClaim[],
): Violation[] => {
  const claimsOf = groupBy(claims, (claim) => claim.resourceId);
  const violations: Violation[] = [];
  for (const call of functionCalls(calls)) {
    const capability = FUNCTION_CAPABILITY[call.caller];
    const resource = call.resource;
    const owners = new Map<string, string[]>();
    const own = (owner: string, why: string): void => {
      owners.set(owner, [...(owners.get(owner) ?? []), why]);
    };
    for (const [key, value] of Object.entries(resource.tags)) {
      const tagged = CAPABILITY_TAGS[key];
      if (tagged) own(tagged, `tag ${key}=${value}`);
    }
    if (resource.enabledBy !== undefined) {
      const enabler = FUNCTION_CAPABILITY[resource.enabledBy];
      if (enabler) own(enabler, `enabled by ${resource.enabledBy}`);
    }
    for (const claim of claimsOf.get(resource.id) ?? [])
      if (claim.from < call.seq && (claim.until === undefined || call.seq < claim.until))
        own(claim.capability, claim.by);
    const others = [...owners].filter(([owner]) => owner !== capability);
    if (capability !== undefined && owners.has(capability) && others.length === 0) continue;
    const whose =
      owners.size === 0
        ? `which nothing manages (tags: ${JSON.stringify(resource.tags)}${
            resource.createdBy ? `; created by ${resource.createdBy}` : ''
          })`
        : `which ${others.map(([owner, why]) => `${owner} manages (${why.join('; ')})`).join(' and ')}`;
    violations.push({
      invariant: 'onlyManaged',
      subject: resource.id,
      message: `${callName(call)}, by capability ${capability ?? 'unknown'}, on a ${resource.kind} ${whose}`,
    });
  }
  return violations;
};
