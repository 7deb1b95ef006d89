import type { ItemError } from '../../shared/results';
import { OPT_IN_TAG, OPTED_IN, RETIRED_MANAGED_TAG } from '../../shared/tags';
import type { ShelvingSettings } from '../config';
import { keptAttributes, stopProtectionRefusal } from './fidelity';
import { isAwsReservedTag, isWarmbootOwnedTag, SHELVED_TAG, TENANT_TAG } from './tags';
import type {
  InstanceDetails,
  ObservedInstance,
  ObservedVolume,
  RetainedVolume,
  ShelfRecord,
  Step,
} from './types';

/**
 * Shelve, offload and unshelve requests as pure decisions: given what EC2 and the table say,
 * either the record to write (or the step to move to) or a refusal with a clear code.
 */

export type Refusal = { readonly ok: false; readonly error: ItemError };
const refuse = (code: string, message: string): Refusal => ({ ok: false, error: { code, message } });

/** Record ids are derived from the instance id and the shelve time: readable and unique per shelve. */
export const RECORD_ID_PATTERN = /^sh-[0-9a-f]{8,17}-[0-9a-z]{1,12}$/;
const recordIdFor = (instanceId: string, now: number): string =>
  `sh-${instanceId.slice(2)}-${Math.floor(now / 1000).toString(36)}`;

export interface ShelveRequestItem {
  readonly instanceId: string;
  /** When given, the instance's tenant tag must say the same. */
  readonly tenant?: string;
  /** Overrides the setting for this request. */
  readonly offloadAfterSeconds?: number;
  readonly snapshot?: boolean;
}

/**
 * Checks an instance can be shelved and builds its record. Refuses: instances warmboot does not
 * may shelve (no `warmboot:shelving=true`), without a tenant tag, of another tenant than requested,
 * instance-store-backed ones (their root disk cannot be kept), instances not running or stopped,
 * running instances with stop protection (`StopProtected`), and volumes another shelve record
 * already owns. `details` (user data, protection, Elastic IP, credit option, placement strategy)
 * is recorded so the replacement comes back with them (domain/fidelity.ts).
 */
export const planShelve = (
  request: ShelveRequestItem,
  instance: ObservedInstance | undefined,
  volumes: ReadonlyMap<string, ObservedVolume>,
  settings: ShelvingSettings,
  now: number,
  details?: InstanceDetails,
): { readonly ok: true; readonly record: ShelfRecord } | Refusal => {
  if (!instance || instance.state === 'terminated') {
    return refuse('NotFound', `instance ${request.instanceId} does not exist`);
  }
  if (instance.tags[OPT_IN_TAG.shelving] !== OPTED_IN) {
    // The shared opt-in of earlier releases grants nothing now: say so, the operator re-tags.
    const retired =
      instance.tags[RETIRED_MANAGED_TAG] === undefined
        ? ''
        : ` (${RETIRED_MANAGED_TAG} no longer opts in; tag it ${OPT_IN_TAG.shelving}=${OPTED_IN})`;
    return refuse(
      'UnmanagedResource',
      `instance ${instance.instanceId} is not tagged ${OPT_IN_TAG.shelving}=${OPTED_IN}${retired}; operators can only shelve instances they opted in to shelving`,
    );
  }
  const tenant = instance.tags[TENANT_TAG];
  if (!tenant) {
    return refuse('MissingTenant', `instance ${instance.instanceId} has no ${TENANT_TAG} tag`);
  }
  if (request.tenant !== undefined && request.tenant !== tenant) {
    return refuse(
      'TenantMismatch',
      `instance ${instance.instanceId} belongs to tenant ${tenant}, not ${request.tenant}`,
    );
  }
  if (instance.rootDeviceType !== 'ebs') {
    return refuse(
      'InstanceStoreBacked',
      `instance ${instance.instanceId} is instance-store-backed: its root disk is lost when it stops, so it cannot be shelved`,
    );
  }
  if (instance.state !== 'running' && instance.state !== 'stopped') {
    return refuse(
      'IncorrectState',
      `instance ${instance.instanceId} is ${instance.state}; shelve needs a running or stopped instance`,
    );
  }
  if (instance.blockDevices.length === 0) {
    return refuse('NoVolumes', `instance ${instance.instanceId} has no EBS volumes to keep`);
  }
  const stopProtected = stopProtectionRefusal(instance, details);
  if (stopProtected) return { ok: false, error: stopProtected };
  const recordId = recordIdFor(instance.instanceId, now);
  const retained: RetainedVolume[] = [];
  for (const device of instance.blockDevices) {
    const volume = volumes.get(device.volumeId);
    if (!volume) {
      return refuse('NotFound', `volume ${device.volumeId} of ${instance.instanceId} is not describable`);
    }
    const owner = volume.tags[SHELVED_TAG];
    if (owner !== undefined && owner !== recordId) {
      return refuse('VolumeClaimed', `volume ${volume.volumeId} already belongs to shelve record ${owner}`);
    }
    retained.push({
      volumeId: volume.volumeId,
      deviceName: device.deviceName,
      root: device.deviceName === instance.rootDeviceName,
      sizeGiB: volume.sizeGiB,
      volumeType: volume.volumeType,
      ...(volume.iops !== undefined ? { iops: volume.iops } : {}),
      ...(volume.throughput !== undefined ? { throughput: volume.throughput } : {}),
      ...(volume.encrypted !== undefined ? { encrypted: volume.encrypted } : {}),
      deleteOnTermination: device.deleteOnTermination,
    });
  }
  if (!retained.some((volume) => volume.root)) {
    return refuse(
      'NoRootVolume',
      `instance ${instance.instanceId} has no EBS volume at its root device ${instance.rootDeviceName}`,
    );
  }
  if (!instance.subnetId) {
    return refuse('NoSubnet', `instance ${instance.instanceId} is not in a VPC subnet`);
  }
  const tags = Object.fromEntries(
    Object.entries(instance.tags).filter(([key]) => !isWarmbootOwnedTag(key) && !isAwsReservedTag(key)),
  );
  return {
    ok: true,
    record: {
      recordId,
      tenant,
      instanceId: instance.instanceId,
      config: {
        imageId: instance.imageId,
        instanceType: instance.instanceType,
        availabilityZone: instance.availabilityZone,
        subnetId: instance.subnetId,
        ...(instance.vpcId ? { vpcId: instance.vpcId } : {}),
        securityGroupIds: [...instance.securityGroupIds],
        ...(instance.iamInstanceProfileArn ? { iamInstanceProfileArn: instance.iamInstanceProfileArn } : {}),
        ...(instance.keyName ? { keyName: instance.keyName } : {}),
        ...(instance.ebsOptimized !== undefined ? { ebsOptimized: instance.ebsOptimized } : {}),
        rootDeviceName: instance.rootDeviceName,
        tenancy: instance.tenancy,
        ...(instance.hostId ? { hostId: instance.hostId } : {}),
        ...(instance.affinity ? { affinity: instance.affinity } : {}),
        ...(instance.platform ? { platform: instance.platform } : {}),
        ...(instance.metadata ? { metadata: instance.metadata } : {}),
        ...keptAttributes(instance, details),
      },
      tags,
      volumes: retained,
      snapshotOnShelve: request.snapshot ?? settings.snapshotOnShelve,
      offloadAfterSeconds: request.offloadAfterSeconds ?? settings.offloadAfterSeconds,
      shelvedAt: now,
      offloadAt: null,
      step: 'shelve.prepare',
      version: 1,
      stepSince: now,
      nextDueAt: now,
    },
  };
};

/** A move requested by an operator: the step to write, or why not. `unchanged` = already there. */
export type RequestedMove = { readonly ok: true; readonly to: Step; readonly unchanged: boolean } | Refusal;

/**
 * Offload on request: allowed once shelved; repeating it is harmless. An instance with termination
 * protection now (`terminationProtected`, read right before) is refused, named: the offload
 * terminates it and warmboot never turns protection off. Once its owner did, the offload goes
 * ahead, and the replacement gets the protection it had when shelved back.
 */
export const requestOffload = (record: ShelfRecord, terminationProtected = false): RequestedMove => {
  switch (record.step) {
    case 'shelved':
      if (terminationProtected)
        return refuse(
          'TerminationProtected',
          `instance ${record.instanceId} has termination protection (DisableApiTermination) and offloading terminates it; warmboot never turns protection off: turn it off and send Offload again (the replacement gets it back when unshelved)`,
        );
      return { ok: true, to: 'offload.terminate', unchanged: false };
    case 'offload.terminate':
    case 'offloaded':
      return { ok: true, to: record.step, unchanged: true };
    default:
      return refuse(
        'IncorrectState',
        `record ${record.recordId} is ${record.step}; only a shelved instance can be offloaded`,
      );
  }
};

/**
 * Unshelve on request: a stopped (not offloaded) instance is started; an offloaded one goes to
 * path selection. A record already unshelving answers with its current step (duplicate request).
 * The requester cannot take the instance to another tenant than the one recorded.
 */
export const requestUnshelve = (record: ShelfRecord, requestedTenant: string | undefined): RequestedMove => {
  if (requestedTenant !== undefined && requestedTenant !== record.tenant) {
    return refuse('TenantMismatch', `record ${record.recordId} belongs to tenant ${record.tenant}`);
  }
  if (record.step.startsWith('unshelve.') || record.step === 'unshelved') {
    return { ok: true, to: record.step, unchanged: true };
  }
  switch (record.step) {
    case 'shelved':
      return { ok: true, to: 'unshelve.start', unchanged: false };
    case 'offloaded':
      return { ok: true, to: 'unshelve.choose', unchanged: false };
    case 'failed':
      return {
        ok: true,
        to: record.offloadedAt !== undefined ? 'unshelve.choose' : 'unshelve.start',
        unchanged: false,
      };
    case 'deleting':
      return refuse('IncorrectState', `record ${record.recordId} is being deleted; it cannot be unshelved`);
    default:
      return refuse(
        'IncorrectState',
        `record ${record.recordId} is ${record.step}; wait until it is shelved or offloaded`,
      );
  }
};

/** What 'Delete Shelved Record' will delete: exactly these, never what a tag search finds later. */
export interface DeletionPlan {
  readonly recordId: string;
  readonly volumeIds: readonly string[];
  readonly snapshotIds: readonly string[];
}

/**
 * The plan of a deletion: the record's retained volumes that still carry its shelved tag and are
 * available, and the safety snapshots the record recorded (security review H6, L5: never a
 * snapshot found by tag, which anyone allowed to tag a snapshot could add).
 */
export const planDeletion = (
  record: ShelfRecord,
  existingVolumes: ReadonlyMap<string, ObservedVolume>,
): { readonly ok: true; readonly plan: DeletionPlan } | Refusal => {
  const deletable: Step[] = ['offloaded', 'failed', 'unshelved', 'shelved'];
  if (!deletable.includes(record.step)) {
    return refuse('IncorrectState', `record ${record.recordId} is ${record.step}; wait until it rests`);
  }
  const volumeIds: string[] = [];
  for (const retained of record.volumes) {
    const volume = existingVolumes.get(retained.volumeId);
    if (!volume) continue;
    if (volume.tags[SHELVED_TAG] !== record.recordId) continue;
    // Already going (an earlier attempt's DeleteVolume): nothing left to delete or to refuse.
    if (volume.state === 'deleting' || volume.state === 'deleted') continue;
    if (volume.state !== 'available') {
      return refuse(
        'VolumeInUse',
        `volume ${volume.volumeId} is ${volume.state}${volume.attachment ? ` on ${volume.attachment.instanceId}` : ''}; offload or unshelve first`,
      );
    }
    volumeIds.push(volume.volumeId);
  }
  const snapshotIds = [
    ...new Set(record.volumes.flatMap((retained) => (retained.snapshotId ? [retained.snapshotId] : []))),
  ];
  return { ok: true, plan: { recordId: record.recordId, volumeIds, snapshotIds } };
};

/** How long a deletion's confirmation token is good for (security review C3, M3). */
export const CONFIRMATION_TTL_MS = 15 * 60_000;
/** A confirmation token: 128 random bits, hex. */
export const CONFIRMATION_TOKEN_PATTERN = /^[0-9a-f]{32}$/;

/**
 * A server-issued confirmation of one deletion plan: the unconfirmed request stores it (by record
 * and token) and answers the token; only the confirmed request echoing it deletes, and it deletes
 * exactly `volumeIds` and `snapshotIds`.
 */
export interface DeletionConfirmation extends DeletionPlan {
  readonly token: string;
  /** The record's version when the plan was made: any change to the record since voids it. */
  readonly recordVersion: number;
  /** Epoch ms after which the token is refused. */
  readonly expiresAt: number;
}

export const issueConfirmation = (
  record: ShelfRecord,
  plan: DeletionPlan,
  token: string,
  now: number,
): DeletionConfirmation => ({
  ...plan,
  token,
  recordVersion: record.version,
  expiresAt: now + CONFIRMATION_TTL_MS,
});

/**
 * The plan a confirmed request may carry out: the stored confirmation of this record under the
 * token it sent, unexpired, made when the record was as it is now. Anything else is refused
 * (`ConfirmationInvalid`, naming `detail.confirm`) and deletes nothing.
 */
export const confirmedPlan = (
  record: ShelfRecord,
  confirmation: DeletionConfirmation | undefined,
  now: number,
): { readonly ok: true; readonly plan: DeletionPlan } | Refusal => {
  const invalid = (why: string) =>
    refuse(
      'ConfirmationInvalid',
      `detail.confirm: ${why}; send Delete Shelved Record without confirm for a new plan and token`,
    );
  if (!confirmation || confirmation.recordId !== record.recordId) {
    return invalid(`no confirmation with this token was issued for record ${record.recordId}`);
  }
  if (now >= confirmation.expiresAt) {
    return invalid(`the confirmation expired at ${new Date(confirmation.expiresAt).toISOString()}`);
  }
  if (confirmation.recordVersion !== record.version) {
    return invalid(
      `record ${record.recordId} changed since the confirmation was issued (now ${record.step})`,
    );
  }
  const { recordId, volumeIds, snapshotIds } = confirmation;
  return { ok: true, plan: { recordId, volumeIds, snapshotIds } };
};

/**
 * A deletion that dies between its calls is taken over by the reconcile after this long: longer
 * than one handling needs for a record's few DeleteVolume calls, paced.
 */
export const DELETION_TAKEOVER_MS = 5 * 60_000;

/** The record as a confirmed deletion writes it before it deletes anything. */
export const startDeletion = (
  record: ShelfRecord,
  plan: DeletionPlan,
  token: string,
  now: number,
): ShelfRecord => ({
  ...record,
  step: 'deleting',
  version: record.version + 1,
  stepSince: now,
  nextDueAt: now + DELETION_TAKEOVER_MS,
  deletion: {
    requestedAt: now,
    volumeIds: [...plan.volumeIds],
    snapshotIds: [...plan.snapshotIds],
    confirmation: token,
    from: { step: record.step, nextDueAt: record.nextDueAt },
  },
});

/** The plan a deletion under way carries out (a retry must send the token that started it). */
export const deletionUnderWay = (record: ShelfRecord): DeletionPlan | undefined =>
  record.step === 'deleting' && record.deletion
    ? {
        recordId: record.recordId,
        volumeIds: record.deletion.volumeIds,
        snapshotIds: record.deletion.snapshotIds,
      }
    : undefined;

/**
 * A volume could not be deleted: the record goes back to where it rested, saying which volumes
 * remain, so the operator can retry and an Unshelve still finds what is left.
 */
export const undoDeletion = (
  record: ShelfRecord,
  failures: readonly { readonly id: string; readonly error: ItemError }[],
  now: number,
): ShelfRecord => {
  const { deletion, ...rest } = record;
  const from = deletion?.from ?? { step: 'failed' as const, nextDueAt: null };
  return {
    ...rest,
    step: from.step,
    version: record.version + 1,
    stepSince: now,
    nextDueAt: from.nextDueAt,
    error: {
      code: 'DeletionIncomplete',
      message: `could not delete ${failures.map((failure) => `${failure.id} (${failure.error.code}: ${failure.error.message})`).join(', ')}; the record and its safety snapshots are kept, retry the delete`,
    },
  };
};

/** EventBridge retries a delivery for up to 24 hours (maximum event age). */
const RETRY_HORIZON_MS = 24 * 3_600_000;

/**
 * When a request was sent, for ordering it against others: its event time, unless no delivery of
 * a request sent then can still arrive (older than EventBridge's retries: a console test event or
 * a replay) or the time is in the future; such a request was sent when handled.
 */
export const requestSentAt = (eventTime: number | undefined, now: number): number =>
  eventTime !== undefined &&
  Number.isFinite(eventTime) &&
  eventTime <= now &&
  now - eventTime <= RETRY_HORIZON_MS
    ? eventTime
    : now;
