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
  onlyManaged: 'warmboot only changes resources it manages',
} as const;

export type InvariantId = keyof typeof INVARIANTS;

export interface Violation {
  readonly invariant: InvariantId;
  /** What the violation is about: a volume, record, instance, image, host or request id. */
  readonly subject: string;
  readonly message: string;
}

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
  };
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
  const byEvent = new Map<string, RequestOutcome[]>();
  for (const outcome of outcomes)
    byEvent.set(outcome.eventId, [...(byEvent.get(outcome.eventId) ?? []), outcome]);
  const violations: Violation[] = [];
  for (const request of requests) {
    const seen = byEvent.get(request.eventId) ?? [];
    const answered = seen.some(
      (outcome) =>
        (outcome.outcome === 'succeeded' && isAnswer(outcome.result)) ||
        (outcome.outcome === 'dead-lettered' && (outcome.error ?? '').length > 0),
    );
    if (answered) continue;
    violations.push({
      invariant: 'requestAnswered',
      subject: `${request.detailType} ${request.eventId}`,
      message:
        seen.length === 0
          ? 'never delivered to a handler and not dead-lettered'
          : `no answer: ${seen.map((outcome) => `${outcome.outcome}${outcome.error ? ` (${outcome.error})` : ''}`).join(', ')}`,
    });
  }
  return violations;
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
