import { isEncryptionKeyStateReason } from '../../../shared/aws-errors';
import type { ItemError } from '../../../shared/results';
import type { ShelvingSettings } from '../../config';
import type { Action, Decision } from '../actions';
import {
  isGone,
  type LaunchBatch,
  type Observation,
  type ObservedInstance,
  type ObservedVolume,
  type RetainedVolume,
  type ShelfRecord,
  type UnshelveState,
} from '../types';

/**
 * What every phase of the saga builds its decisions from: waiting, failing, the record's unshelve
 * state, and the one switch over an instance's state.
 */

/** Waiting on EC2 with no event expected sooner: look again after this long. */
export const POLL_MS = 30_000;
/** Volume attach / detach complete within seconds and send no event: look again this soon. */
export const ATTACHMENT_POLL_MS = 3_000;
/** Back-off while the recorded Dedicated Host is full and affinity says wait. */
export const HOST_WAIT_RETRY_MS = 60_000;
/** A launch with no visible replacement is re-issued (same ClientToken) only after this long. */
export const LAUNCH_REISSUE_MS = 60_000;

/**
 * When a batch with no visible replacement is re-issued: LAUNCH_REISSUE_MS after the call could
 * have gone out. A bulk unshelve claims a round's launches at once and the account budget lets
 * them out at RunInstances' 2 a second; counted from the claim, the grace ran out for calls still
 * queued, and a round in another execution environment called RunInstances again for them (68
 * extra calls, a third of a minute of the bucket, for 250 launches at N = 500).
 */
export const reissueDueAt = (batch: LaunchBatch): number =>
  batch.issuedAt + (batch.queuedMs ?? 0) + LAUNCH_REISSUE_MS;

/** The same for the slow path's launch, made at `slowLaunchIssuedAt` (undefined: none made). */
export const slowReissueDueAt = (unshelve: UnshelveState | undefined): number | undefined =>
  unshelve?.slowLaunchIssuedAt === undefined
    ? undefined
    : unshelve.slowLaunchIssuedAt + (unshelve.slowLaunchQueuedMs ?? 0) + LAUNCH_REISSUE_MS;

/** A rule of the saga: from the record, what EC2 shows of it now, the time and the settings, a `T`. */
export type SagaRule<T> = (
  record: ShelfRecord,
  observation: Observation,
  now: number,
  settings: ShelvingSettings,
) => T;

/** What one step decides. */
export type StepDecision = SagaRule<Decision>;

export const wait = (reason: string, recheckAt: number | null): Decision => ({
  actions: [],
  recheckAt,
  reason,
});

export const failed = (record: ShelfRecord, error: ItemError): Decision => ({
  to: 'failed',
  set: { error },
  actions: [],
  recheckAt: null,
  reason: error.message,
  facts: [
    {
      detailType: 'Shelve Failed',
      detail: {
        recordId: record.recordId,
        instanceId: record.instanceId,
        tenant: record.tenant,
        step: record.step,
        error,
      },
    },
  ],
});

export const rootOf = (record: ShelfRecord): RetainedVolume => {
  const root = record.volumes.find((volume) => volume.root);
  // planShelve refuses instances without an EBS root, so every record has one.
  if (!root) throw new Error(`record ${record.recordId} has no root volume`);
  return root;
};

export const volumeIds = (record: ShelfRecord): string[] => record.volumes.map((volume) => volume.volumeId);

export const withUnshelve = (record: ShelfRecord, patch: Partial<UnshelveState>): UnshelveState => ({
  requestId: record.unshelve?.requestId ?? 'reconcile',
  requestedAt: record.unshelve?.requestedAt ?? record.stepSince,
  attempt: record.unshelve?.attempt ?? 0,
  ...record.unshelve,
  ...patch,
});

/** The attempt after the record's current one: a new ClientToken for its next launch. */
export const nextAttempt = (record: ShelfRecord): number => (record.unshelve?.attempt ?? 0) + 1;

/** Volumes whose DeleteOnTermination on `instance` differs from `wanted(volume)`. */
export const deleteOnTerminationFixes = (
  record: ShelfRecord,
  instance: ObservedInstance,
  wanted: (volume: RetainedVolume) => boolean,
): { deviceName: string; deleteOnTermination: boolean }[] =>
  record.volumes.flatMap((volume) => {
    const device = instance.blockDevices.find((candidate) => candidate.volumeId === volume.volumeId);
    if (!device || device.deleteOnTermination === wanted(volume)) return [];
    return [{ deviceName: device.deviceName, deleteOnTermination: wanted(volume) }];
  });

/** What to do with an instance in each state the saga acts on. */
interface ByState {
  /** Absent (not found), shutting down or terminated. */
  readonly gone: () => Decision;
  readonly running: (instance: ObservedInstance) => Decision;
  readonly stopped: (instance: ObservedInstance) => Decision;
  /** Pending or stopping; when not given, the record waits for it to settle. */
  readonly moving?: (instance: ObservedInstance) => Decision;
}

/**
 * The saga's one switch over an instance's state: gone, on its way (pending or stopping: the
 * record waits, saying so), or settled (running or stopped: the step acts).
 */
export const byState = (
  instance: ObservedInstance | undefined,
  noun: string,
  now: number,
  on: ByState,
): Decision => {
  if (!instance || isGone(instance)) return on.gone();
  if (instance.state === 'running') return on.running(instance);
  if (instance.state === 'stopped') return on.stopped(instance);
  return on.moving?.(instance) ?? wait(`${noun} is ${instance.state}`, now + POLL_MS);
};

/** How a start step starts its instance, and what it does before and after. */
interface StartSteps {
  /** What the instance is to the record (`instance`, `replacement`), for the reasons. */
  readonly noun: string;
  /** The instance, as the record's error names it when a key refused its start. */
  readonly subject: (instance: ObservedInstance) => string;
  /** The reason while the start is under way. */
  readonly starting: string;
  /** What must be set on the stopped instance before its start, if anything. */
  readonly beforeStart?: (instance: ObservedInstance) => Decision | undefined;
  readonly gone: () => Decision;
  readonly running: (instance: ObservedInstance) => Decision;
}

/**
 * Starts a stopped instance and waits until it runs: the shelved instance in place, or the
 * replacement once its volumes are on. A start EC2 ended for a key it cannot use would be
 * re-issued every round for ever (finding R4): the record fails instead.
 */
export const awaitRunning = (
  record: ShelfRecord,
  instance: ObservedInstance | undefined,
  observation: Observation,
  now: number,
  steps: StartSteps,
): Decision =>
  byState(instance, steps.noun, now, {
    gone: steps.gone,
    running: steps.running,
    stopped: (stopped) => {
      if (endedByEncryptionKey(stopped, record.stepSince)) {
        return encryptionKeyUnusable(
          record,
          `${steps.subject(stopped)} did not start (${stateReasonOf(stopped)})`,
          observation.volumes,
        );
      }
      return (
        steps.beforeStart?.(stopped) ?? {
          actions: [{ kind: 'start', instanceId: stopped.instanceId }],
          recheckAt: now + POLL_MS,
          reason: steps.starting,
        }
      );
    },
  });

/** Force: the replacement's fresh OS holds nothing worth a clean shutdown and its root is discarded. */
export const forceStop = (replacement: ObservedInstance): Action => ({
  kind: 'stop',
  instanceId: replacement.instanceId,
  force: true,
});

/**
 * EC2 ended a launch or start because it could not use the KMS key of an encrypted volume for
 * warmboot's role: the state reason says so (`Client.InternalError`, `Client.InvalidKMSKey.*`), and
 * for a start, the instance entered `pending` since `since` (its LaunchTime), so this was a start of
 * this step, not an older one. Nothing warmboot retries can succeed until the key is usable.
 */
export const endedByEncryptionKey = (instance: ObservedInstance, since?: number): boolean =>
  instance.stateReason !== undefined &&
  isEncryptionKeyStateReason(instance.stateReason.code) &&
  (since === undefined || (instance.launchTime ?? since) >= since);

/**
 * The instance (or replacement) could not launch or start, or a retained volume could not be
 * attached, because EC2 could not use an EBS encryption key for warmboot's role (the key is not in
 * the deployment's `ebsKmsKeyArns`, or it is disabled or being deleted). Starting or launching
 * again every round would only fail the same way, so the record fails, naming the keys of its
 * encrypted volumes and keeping every volume, until the operator makes the key usable and sends
 * Unshelve again. Nothing is deleted.
 */
export const encryptionKeyUnusable = (
  record: ShelfRecord,
  what: string,
  volumes: ReadonlyMap<string, ObservedVolume> = new Map(),
): Decision => {
  const keys = record.volumes.flatMap((volume) => {
    const kmsKeyId = volumes.get(volume.volumeId)?.kmsKeyId;
    return kmsKeyId ? [`${volume.volumeId} (${kmsKeyId})`] : [];
  });
  return failed(record, {
    code: 'EncryptionKeyUnusable',
    message: `${what}: EC2 could not use an EBS encryption key for warmboot${
      keys.length > 0 ? `; encrypted volumes: ${keys.join(', ')}` : ''
    }. Add the key to ebsKmsKeyArns (or enable it) and send Unshelve again; the retained volumes are kept`,
  });
};

/** What a refused attach or an instance's state reason says, for the record's error. */
export const stateReasonOf = (instance: ObservedInstance): string =>
  instance.stateReason ? `${instance.stateReason.code}: ${instance.stateReason.message}` : instance.state;

/**
 * A refused launch (no capacity, a full host, an error) wrote when to try again: until then the
 * record waits, instead of every round of the invocation spending a RunInstances token on an AZ
 * that just said no.
 */
export const launchRetryNotDue = (record: ShelfRecord, now: number): Decision | undefined =>
  record.nextDueAt !== null && now < record.nextDueAt
    ? wait(
        `${record.unshelve?.reason ?? 'launch refused'}; trying again in ${Math.ceil((record.nextDueAt - now) / 1000)} s`,
        record.nextDueAt,
      )
    : undefined;
