import { isEncryptionKeyStateReason } from '../../shared/aws-errors';
import type { ShelvingSettings } from '../config';
import { restoration, userDataAction } from './fidelity';
import { MANAGED_TAG, REPLACEMENT_FOR_TAG, SHELVED_TAG } from './tags';
import type {
  Action,
  Decision,
  NotKept,
  Observation,
  ObservedInstance,
  ObservedSubnet,
  ObservedVolume,
  PlacementObservation,
  RecordError,
  Relocation,
  RetainedVolume,
  ShelfRecord,
  ShelvingFact,
  UnshelvePath,
  UnshelveState,
} from './types';

/**
 * The shelve / offload / unshelve saga as one pure, level-triggered function: from the record
 * (what warmboot decided so far) and a fresh observation of EC2 (what is true now), the next
 * thing to do. Nothing here remembers that a call was made: every action is derived from what
 * EC2 shows, so a call repeated after a crash, a duplicate event or a lost one is either skipped
 * (EC2 already shows its effect) or harmless (EC2 treats it as a no-op). docs/shelving.md lists
 * each step with its idempotency argument.
 */

/** Waiting on EC2 with no event expected sooner: look again after this long. */
export const POLL_MS = 30_000;
/** Volume attach / detach complete within seconds and send no event: look again this soon. */
export const ATTACHMENT_POLL_MS = 3_000;
/** Back-off while the recorded Dedicated Host is full and affinity says wait. */
export const HOST_WAIT_RETRY_MS = 60_000;
/** A launch with no visible replacement is re-issued (same ClientToken) only after this long. */
export const LAUNCH_REISSUE_MS = 60_000;

const wait = (reason: string, recheckAt: number | null): Decision => ({ actions: [], recheckAt, reason });

const failed = (record: ShelfRecord, error: RecordError): Decision => ({
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

const rootOf = (record: ShelfRecord): RetainedVolume => {
  const root = record.volumes.find((volume) => volume.root);
  // planShelve refuses instances without an EBS root, so every record has one.
  if (!root) throw new Error(`record ${record.recordId} has no root volume`);
  return root;
};

const volumeIds = (record: ShelfRecord): string[] => record.volumes.map((volume) => volume.volumeId);

const shelvedGiB = (record: ShelfRecord): number =>
  record.volumes.reduce((total, volume) => total + volume.sizeGiB, 0);

/**
 * What keeps a record's volumes through a termination: tagged as the record's (`warmboot:shelved`
 * and `warmboot:managed`), then kept on termination (DeleteOnTermination false). Tags first, in a
 * round of their own: ModifyInstanceAttribute is granted only on managed volumes, so changing an
 * untagged one is denied (IAM conditions on `aws:ResourceTag/warmboot:managed`).
 */
const keepVolumes = (record: ShelfRecord, instance: ObservedInstance, observation: Observation): Action[] => {
  const untagged = untaggedRetained(record, observation);
  if (untagged.length > 0) {
    return [
      { kind: 'tag', resourceIds: untagged, tags: { [SHELVED_TAG]: record.recordId, [MANAGED_TAG]: 'true' } },
    ];
  }
  const fixes = deleteOnTerminationFixes(record, instance, () => false);
  return fixes.length > 0
    ? [{ kind: 'set-delete-on-termination', instanceId: instance.instanceId, devices: fixes }]
    : [];
};

/** Volumes whose DeleteOnTermination on `instance` differs from `wanted(volume)`. */
const deleteOnTerminationFixes = (
  record: ShelfRecord,
  instance: ObservedInstance,
  wanted: (volume: RetainedVolume) => boolean,
): { deviceName: string; deleteOnTermination: boolean }[] =>
  record.volumes.flatMap((volume) => {
    const device = instance.blockDevices.find((candidate) => candidate.volumeId === volume.volumeId);
    if (!device || device.deleteOnTermination === wanted(volume)) return [];
    return [{ deviceName: device.deviceName, deleteOnTermination: wanted(volume) }];
  });

const untaggedRetained = (record: ShelfRecord, observation: Observation): string[] =>
  record.volumes
    .filter((volume) => {
      const seen = observation.volumes.get(volume.volumeId);
      return seen !== undefined && seen.tags[SHELVED_TAG] !== record.recordId;
    })
    .map((volume) => volume.volumeId);

/** A retained volume claimed by another record breaks the one-owner invariant: stop, never guess. */
const foreignClaim = (record: ShelfRecord, observation: Observation): ObservedVolume | undefined =>
  record.volumes
    .map((volume) => observation.volumes.get(volume.volumeId))
    .find(
      (seen) =>
        seen !== undefined &&
        seen.tags[SHELVED_TAG] !== undefined &&
        seen.tags[SHELVED_TAG] !== record.recordId,
    );

const unshelvedFact = (
  record: ShelfRecord,
  instanceId: string,
  path: UnshelvePath,
  now: number,
  reason?: string,
  relocation?: Relocation,
  replacement?: { readonly privateIpAddress?: string; readonly notKept: readonly NotKept[] },
): ShelvingFact => ({
  detailType: 'Instance Unshelved',
  detail: {
    recordId: record.recordId,
    instanceId,
    tenant: record.tenant,
    path,
    timeToReadySeconds: Math.max(0, (now - (record.unshelve?.requestedAt ?? now)) / 1000),
    ...(reason ? { reason } : {}),
    ...(relocation ? { availabilityZone: relocation.availabilityZone, subnetId: relocation.subnetId } : {}),
    ...(replacement?.privateIpAddress ? { privateIpAddress: replacement.privateIpAddress } : {}),
    ...(replacement ? { notKept: [...replacement.notKept] } : {}),
  },
});

/**
 * The replacement runs. What is set only after the launch (protection, the Elastic IP) is
 * restored first (domain/fidelity.ts); then the record is unshelved, and Instance Unshelved says
 * what the replacement could not keep.
 */
const replacementReady = (
  record: ShelfRecord,
  replacement: ObservedInstance,
  observation: Observation,
  now: number,
  settings: ShelvingSettings,
  unshelve: UnshelveState,
  fact: (outcome: { privateIpAddress?: string; notKept: readonly NotKept[] }) => ShelvingFact,
  reason: string,
): Decision => {
  const restore = restoration(record, replacement, observation, settings);
  if (restore.actions.length > 0 || restore.waiting !== undefined) {
    return {
      // The slow path learns its replacement here; nothing else changes while restoring.
      ...(unshelve.replacementInstanceId === record.unshelve?.replacementInstanceId
        ? {}
        : { set: { unshelve } }),
      actions: restore.actions,
      recheckAt: now + ATTACHMENT_POLL_MS,
      reason: restore.waiting ?? 'setting protection and the Elastic IP on the replacement',
    };
  }
  const outcome = {
    ...(replacement.privateIpAddress ? { privateIpAddress: replacement.privateIpAddress } : {}),
    notKept: restore.notKept,
  };
  return {
    to: 'unshelve.finalize',
    set: { unshelve: { ...unshelve, readyAt: now, notKept: [...restore.notKept] } },
    actions: [],
    recheckAt: now,
    reason,
    facts: [fact(outcome)],
  };
};

/**
 * EC2 answered `InvalidIPAddress.InUse` for the recorded private address (another interface took
 * it since the shelve): a new attempt (a new ClientToken: the parameters change) without it, at
 * once; Instance Unshelved says so.
 */
export const privateIpInUse = (record: ShelfRecord, now: number): Decision => {
  const reason = `private address ${record.config.privateIpAddress} is in use; launching with a new one`;
  return {
    set: {
      unshelve: withUnshelve(record, {
        privateIpInUse: true,
        attempt: (record.unshelve?.attempt ?? 0) + 1,
        batch: undefined,
        slowLaunchIssuedAt: undefined,
        reason,
      }),
    },
    actions: [],
    recheckAt: now,
    reason,
  };
};

/** Where the record launches now: the recorded placement, or the AZ the slow path moved it to. */
const currentPlacement = (record: ShelfRecord): { availabilityZone: string; subnetId: string } =>
  record.unshelve?.relocation ?? record.config;

const UNUSABLE_ZONE_STATES = new Set(['impaired', 'unavailable']);

/** Why the AZ the record launches in cannot be used now, if it cannot (docs/shelving.md, "Another AZ"). */
export const unusableZoneReason = (
  record: ShelfRecord,
  observation: Observation,
  now: number,
  settings: ShelvingSettings,
): string | undefined => {
  const placement = observation.placement;
  if (!placement) return undefined;
  const { availabilityZone, subnetId } = currentPlacement(record);
  const state = placement.zones.get(availabilityZone);
  if (state !== undefined && UNUSABLE_ZONE_STATES.has(state)) return `${availabilityZone} is ${state}`;
  if (!placement.subnets.some((subnet) => subnet.subnetId === subnetId)) return `subnet ${subnetId} is gone`;
  const since = record.unshelve?.capacityRefusedSince;
  if (since !== undefined && now - since >= settings.otherAzAfterSeconds * 1000) {
    return `${availabilityZone} has had no ${record.config.instanceType} capacity for ${Math.round((now - since) / 1000)} s`;
  }
  return undefined;
};

/**
 * The subnet of another usable AZ in the record's VPC to restore into: one like the recorded
 * subnet (public IPs on launch or not), then the one with the most free addresses.
 */
export const otherSubnet = (
  record: ShelfRecord,
  placement: PlacementObservation,
  refusedZones: readonly string[],
): ObservedSubnet | undefined => {
  const recorded = placement.subnets.find((subnet) => subnet.subnetId === record.config.subnetId);
  const alike = (subnet: ObservedSubnet) =>
    recorded === undefined || subnet.mapPublicIpOnLaunch === recorded.mapPublicIpOnLaunch ? 0 : 1;
  return placement.subnets
    .filter(
      (subnet) =>
        subnet.vpcId === record.config.vpcId &&
        !refusedZones.includes(subnet.availabilityZone) &&
        placement.zones.get(subnet.availabilityZone) === 'available' &&
        subnet.availableIpAddressCount > 0,
    )
    .sort(
      (a, b) =>
        alike(a) - alike(b) ||
        b.availableIpAddressCount - a.availableIpAddressCount ||
        a.subnetId.localeCompare(b.subnetId),
    )[0];
};

/** May this record leave its recorded AZ at all? */
export const mayRelocate = (record: ShelfRecord, settings: ShelvingSettings): boolean =>
  settings.otherAzAfterSeconds >= 0 &&
  record.config.tenancy !== 'host' &&
  record.config.vpcId !== undefined &&
  record.unshelve?.slowPathUnavailable === undefined &&
  record.volumes.every((volume) => volume.snapshotId !== undefined);

/**
 * Why the slow path cannot restore this record, if it cannot: a volume has no safety snapshot,
 * a recorded snapshot no longer exists (deleted outside the saga, or failed), or a slow-path
 * launch was already refused for good. `observation.snapshots` is the record's tagged snapshots,
 * which the engine observes whenever a record chooses its path.
 */
const slowPathUnavailable = (record: ShelfRecord, observation: Observation): string | undefined => {
  if (record.unshelve?.slowPathUnavailable !== undefined) return record.unshelve.slowPathUnavailable;
  const withoutSnapshot = record.volumes.filter((volume) => volume.snapshotId === undefined);
  if (withoutSnapshot.length > 0) {
    return `no safety snapshot of ${withoutSnapshot.map((volume) => volume.volumeId).join(', ')}`;
  }
  const usable = new Set(
    observation.snapshots.filter((seen) => seen.state !== 'error').map((seen) => seen.snapshotId),
  );
  const lost = record.volumes.filter((volume) => !usable.has(volume.snapshotId ?? ''));
  if (lost.length === 0) return undefined;
  return `the safety snapshot${lost.length > 1 ? 's' : ''} ${lost
    .map((volume) => `${volume.snapshotId} (of ${volume.volumeId})`)
    .join(', ')} no longer exist${lost.length > 1 ? '' : 's'}`;
};

/**
 * Whether a round must observe AZ states and subnets for this record: when it chooses its path,
 * or when a launch has failed and no replacement is known (not on every round of a bulk unshelve).
 */
export const mayNeedOtherZone = (record: ShelfRecord, settings: ShelvingSettings): boolean => {
  if (!mayRelocate(record, settings)) return false;
  if (record.step === 'unshelve.choose') return true;
  const launching = record.step === 'unshelve.launch' || record.step === 'unshelve.launch-from-snapshots';
  const unshelve = record.unshelve;
  return (
    launching &&
    unshelve?.replacementInstanceId === undefined &&
    (unshelve?.capacityRefusedSince !== undefined || (unshelve?.attempt ?? 0) > 0)
  );
};

/**
 * The recorded AZ (or the one the record already moved to) is unusable: the slow path restores
 * from the safety snapshots into another AZ, saying why. Undefined when the record stays (no
 * reason to move, moving not allowed, or no other AZ to go to: then it keeps waiting here).
 */
const relocation = (
  record: ShelfRecord,
  observation: Observation,
  now: number,
  settings: ShelvingSettings,
): Decision | undefined => {
  if (!mayRelocate(record, settings) || !observation.placement) return undefined;
  const why = unusableZoneReason(record, observation, now, settings);
  if (!why) return undefined;
  const from = currentPlacement(record).availabilityZone;
  const refusedZones = [...(record.unshelve?.relocation?.refusedZones ?? []), from];
  const target = otherSubnet(record, observation.placement, refusedZones);
  if (!target) return undefined;
  const reason = `slow path from safety snapshots into ${target.availabilityZone} (${target.subnetId}): ${why}`;
  // A new attempt: a new ClientToken for the new placement, and the old AZ's waits forgotten.
  const unshelve = withUnshelve(record, {
    path: 'slow',
    reason,
    attempt: (record.unshelve?.attempt ?? 0) + 1,
    relocation: {
      subnetId: target.subnetId,
      availabilityZone: target.availabilityZone,
      reason: why,
      refusedZones,
    },
    batch: undefined,
    capacityRefusedSince: undefined,
    slowLaunchIssuedAt: undefined,
  });
  return {
    to: 'unshelve.launch-from-snapshots',
    set: { unshelve },
    actions: [],
    recheckAt: now,
    reason,
  };
};

const withUnshelve = (record: ShelfRecord, patch: Partial<UnshelveState>): UnshelveState => ({
  requestId: record.unshelve?.requestId ?? 'reconcile',
  requestedAt: record.unshelve?.requestedAt ?? record.stepSince,
  attempt: record.unshelve?.attempt ?? 0,
  ...record.unshelve,
  ...patch,
});

export const nextStep = (
  record: ShelfRecord,
  observation: Observation,
  now: number,
  settings: ShelvingSettings,
): Decision => {
  switch (record.step) {
    case 'shelve.prepare':
      return prepare(record, observation, now);
    case 'shelve.stop':
      return stopForShelve(record, observation, now);
    case 'shelve.snapshot':
      return snapshot(record, observation, now);
    case 'shelved':
      return record.offloadAt !== null && now >= record.offloadAt
        ? { to: 'offload.terminate', actions: [], recheckAt: now, reason: 'offload due' }
        : wait('shelved', record.offloadAt);
    case 'offload.terminate':
      return offload(record, observation, now);
    case 'offloaded':
      return wait('offloaded', null);
    case 'unshelve.start':
      return startInPlace(record, observation, now);
    case 'unshelve.choose':
      return choosePath(record, observation, now, settings);
    case 'unshelve.launch':
      return launch(record, observation, now, settings);
    case 'unshelve.stop-replacement':
      return stopReplacement(record, observation, now, settings);
    case 'unshelve.swap-root':
      return swapRoot(record, observation, now);
    case 'unshelve.start-replacement':
      return startReplacement(record, observation, now, settings);
    case 'unshelve.launch-from-snapshots':
      return launchFromSnapshots(record, observation, now, settings);
    case 'unshelve.finalize':
      return finalize(record, observation, now, settings);
    case 'unshelved':
    case 'failed':
      return wait(record.step, null);
    case 'deleting':
      // The engine's deletion finishes it; the saga only keeps its reconcile time.
      return wait('deleting', record.nextDueAt);
  }
};

const prepare = (record: ShelfRecord, observation: Observation, now: number): Decision => {
  const instance = observation.instance;
  if (!instance || instance.state === 'terminated' || instance.state === 'shutting-down') {
    return failed(record, {
      code: 'InstanceGone',
      message: `instance ${record.instanceId} disappeared while shelving`,
    });
  }
  const claimed = foreignClaim(record, observation);
  if (claimed) {
    return failed(record, {
      code: 'VolumeClaimed',
      message: `volume ${claimed.volumeId} belongs to shelve record ${claimed.tags[SHELVED_TAG]}`,
    });
  }
  const actions = keepVolumes(record, instance, observation);
  if (actions.length > 0) return { actions, recheckAt: now + POLL_MS, reason: 'keeping volumes' };
  return { to: 'shelve.stop', actions: [], recheckAt: now, reason: 'volumes kept' };
};

const stopForShelve = (record: ShelfRecord, observation: Observation, now: number): Decision => {
  const instance = observation.instance;
  if (!instance || instance.state === 'terminated' || instance.state === 'shutting-down') {
    return failed(record, {
      code: 'InstanceGone',
      message: `instance ${record.instanceId} disappeared while shelving`,
    });
  }
  switch (instance.state) {
    case 'running':
      return {
        actions: [{ kind: 'stop', instanceId: instance.instanceId, force: false }],
        recheckAt: now + POLL_MS,
        reason: 'stopping',
      };
    case 'pending':
    case 'stopping':
      return wait(`instance is ${instance.state}`, now + POLL_MS);
    case 'stopped':
      return record.snapshotOnShelve
        ? { to: 'shelve.snapshot', actions: [], recheckAt: now, reason: 'stopped' }
        : shelvedDecision(record, now, record.volumes);
  }
};

const shelvedDecision = (record: ShelfRecord, now: number, volumes: readonly RetainedVolume[]): Decision => {
  // Termination protection refuses the offload's TerminateInstances, and warmboot never turns it
  // off: such an instance is offloaded only on request, once its owner turned it off (shelve.ts).
  const protectedFromOffload = record.config.disableApiTermination === true;
  const offloadAt =
    record.offloadAfterSeconds < 0 || protectedFromOffload ? null : now + record.offloadAfterSeconds * 1000;
  return {
    to: 'shelved',
    set: { volumes, offloadAt },
    actions: [],
    recheckAt: offloadAt,
    reason: protectedFromOffload ? 'shelved; termination protection: offloaded only on request' : 'shelved',
    facts: [
      {
        detailType: 'Instance Shelved',
        detail: {
          recordId: record.recordId,
          instanceId: record.instanceId,
          tenant: record.tenant,
          volumeIds: volumeIds(record),
          shelvedVolumeGiB: shelvedGiB(record),
        },
      },
    ],
  };
};

/**
 * How far EC2's StartTime may lag the function's clock: a snapshot started this much before the
 * snapshot step began is still taken as the step's own (else a lagging clock would make every
 * round take the snapshots again).
 */
const SNAPSHOT_CLOCK_SKEW_MS = 60_000;

/**
 * The safety snapshots: the ones CreateSnapshots started for this record in this step. A snapshot
 * tagged with the (predictable) record id but started before the step began is not one of them
 * (security review L5: a pre-planted, stale copy would otherwise be restored by the slow path).
 */
const snapshot = (record: ShelfRecord, observation: Observation, now: number): Decision => {
  const usable = observation.snapshots.filter(
    (candidate) =>
      candidate.state !== 'error' && candidate.startedAt >= record.stepSince - SNAPSHOT_CLOCK_SKEW_MS,
  );
  const byVolume = new Map(usable.map((candidate) => [candidate.volumeId, candidate.snapshotId]));
  const missing = record.volumes.filter((volume) => !byVolume.has(volume.volumeId));
  if (missing.length === record.volumes.length) {
    return {
      actions: [{ kind: 'snapshot', instanceId: record.instanceId, recordId: record.recordId }],
      recheckAt: now + POLL_MS,
      reason: 'taking safety snapshots',
    };
  }
  if (missing.length > 0) {
    // CreateSnapshots covers every volume in one call; a partial set means a volume was attached
    // after the call, which shelve does not allow. Record what exists and say so.
    return failed(record, {
      code: 'SnapshotIncomplete',
      message: `no safety snapshot for ${missing.map((volume) => volume.volumeId).join(', ')}`,
    });
  }
  const volumes = record.volumes.map((volume) => {
    const snapshotId = byVolume.get(volume.volumeId);
    return snapshotId ? { ...volume, snapshotId } : volume;
  });
  return shelvedDecision(record, now, volumes);
};

const offload = (record: ShelfRecord, observation: Observation, now: number): Decision => {
  const instance = observation.instance;
  if (!instance || instance.state === 'terminated') {
    const kept = volumeIds(record).filter((id) => observation.volumes.has(id));
    return {
      to: 'offloaded',
      set: { offloadedAt: now },
      actions: [],
      recheckAt: null,
      reason: `offloaded, ${kept.length} of ${record.volumes.length} volumes kept`,
      facts: [
        {
          detailType: 'Instance Offloaded',
          detail: {
            recordId: record.recordId,
            instanceId: record.instanceId,
            tenant: record.tenant,
            volumeIds: kept,
          },
        },
      ],
    };
  }
  if (instance.state === 'shutting-down') return wait('terminating', now + POLL_MS);
  if (instance.state !== 'stopped') {
    return failed(record, {
      code: 'IncorrectState',
      message: `instance ${instance.instanceId} is ${instance.state}: it was started outside warmboot after shelving; unshelve or shelve it again`,
    });
  }
  const claimed = foreignClaim(record, observation);
  if (claimed) {
    return failed(record, {
      code: 'VolumeClaimed',
      message: `volume ${claimed.volumeId} belongs to shelve record ${claimed.tags[SHELVED_TAG]}`,
    });
  }
  // A volume attached after shelving is no retained volume: terminating would delete it with the
  // instance (security review L6). warmboot never changes a volume it does not own: it stops.
  const recorded = new Set(volumeIds(record));
  const unrecorded = instance.blockDevices.filter(
    (device) => device.deleteOnTermination && !recorded.has(device.volumeId),
  );
  if (unrecorded.length > 0) {
    return failed(record, {
      code: 'UnrecordedVolume',
      message: `${unrecorded.map((device) => `${device.volumeId} (${device.deviceName})`).join(', ')} attached to ${instance.instanceId} after shelving would be deleted by the terminate; nothing was terminated: unshelve it, or detach the volume and shelve again`,
    });
  }
  // Terminate only once EC2 itself shows every retained volume kept on termination and tagged:
  // if anything reset DeleteOnTermination since shelving, fix it first and look again.
  const securing = keepVolumes(record, instance, observation);
  if (securing.length > 0) {
    return { actions: securing, recheckAt: now + POLL_MS, reason: 're-securing volumes before terminate' };
  }
  return {
    actions: [{ kind: 'terminate', instanceId: instance.instanceId }],
    recheckAt: now + POLL_MS,
    reason: 'terminating',
  };
};

const startInPlace = (record: ShelfRecord, observation: Observation, now: number): Decision => {
  const instance = observation.instance;
  if (!instance || instance.state === 'terminated' || instance.state === 'shutting-down') {
    return {
      to: 'unshelve.choose',
      set: { offloadedAt: now },
      actions: [],
      recheckAt: now,
      reason: 'instance gone',
    };
  }
  switch (instance.state) {
    case 'stopped':
      if (endedByEncryptionKey(instance, record.stepSince)) {
        return encryptionKeyUnusable(
          record,
          `instance ${instance.instanceId} did not start (${stateReasonOf(instance)})`,
          observation.volumes,
        );
      }
      return {
        actions: [{ kind: 'start', instanceId: instance.instanceId }],
        recheckAt: now + POLL_MS,
        reason: 'starting',
      };
    case 'pending':
    case 'stopping':
      return wait(`instance is ${instance.state}`, now + POLL_MS);
    case 'running':
      return {
        to: 'unshelve.finalize',
        set: { unshelve: withUnshelve(record, { path: 'start', readyAt: now }) },
        actions: [],
        recheckAt: now,
        reason: 'running',
        facts: [unshelvedFact(record, instance.instanceId, 'start', now)],
      };
  }
};

/**
 * Fast when every retained volume is there and detached in the recorded AZ; slow from the
 * snapshots otherwise, or when the AZ is unusable. Without usable snapshots the record stays on
 * the fast path in its AZ (waiting for it, saying why), or fails when its volumes are gone too.
 */
const choosePath = (
  record: ShelfRecord,
  observation: Observation,
  now: number,
  settings: ShelvingSettings,
): Decision => {
  const problems = record.volumes.flatMap((volume) => {
    const seen = observation.volumes.get(volume.volumeId);
    if (!seen || seen.state === 'deleting' || seen.state === 'deleted' || seen.state === 'error') {
      return [`${volume.volumeId} is gone`];
    }
    if (seen.availabilityZone !== record.config.availabilityZone) {
      return [`${volume.volumeId} is in ${seen.availabilityZone}, not ${record.config.availabilityZone}`];
    }
    if (seen.state === 'in-use' && seen.attachment?.instanceId !== record.unshelve?.replacementInstanceId) {
      return [`${volume.volumeId} is attached to ${seen.attachment?.instanceId}`];
    }
    return [];
  });
  const noSlowPath = slowPathUnavailable(record, observation);
  // Remembered on the record, so the launch step never moves it to another AZ either.
  const deciding: ShelfRecord =
    noSlowPath === undefined
      ? record
      : { ...record, unshelve: withUnshelve(record, { slowPathUnavailable: noSlowPath }) };
  const move = relocation(deciding, observation, now, settings);
  if (move) return move;
  if (problems.length === 0) {
    const zoneProblem =
      noSlowPath === undefined ? undefined : unusableZoneReason(record, observation, now, settings);
    const reason = zoneProblem
      ? `fast path: reattaching retained volumes once ${record.config.availabilityZone} can launch (${zoneProblem}; ${noSlowPath})`
      : 'fast path: reattaching retained volumes';
    return {
      to: 'unshelve.launch',
      set: { unshelve: withUnshelve(deciding, { path: 'fast', ...(zoneProblem ? { reason } : {}) }) },
      actions: [],
      recheckAt: now,
      reason,
    };
  }
  if (noSlowPath !== undefined) {
    return failed(record, {
      code: 'NoWayBack',
      message: `cannot unshelve: ${problems.join('; ')}; and ${noSlowPath}`,
    });
  }
  const reason = `slow path from safety snapshots: ${problems.join('; ')}`;
  return {
    to: 'unshelve.launch-from-snapshots',
    set: { unshelve: withUnshelve(record, { path: 'slow', reason }) },
    actions: [],
    recheckAt: now,
    reason,
  };
};

/**
 * EC2 ended a launch or start because it could not use the KMS key of an encrypted volume for
 * warmboot's role: the state reason says so (`Client.InternalError`, `Client.InvalidKMSKey.*`), and
 * for a start, the instance entered `pending` since `since` (its LaunchTime), so this was a start of
 * this step, not an older one. Nothing warmboot retries can succeed until the key is usable.
 */
const endedByEncryptionKey = (instance: ObservedInstance, since?: number): boolean =>
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
const stateReasonOf = (instance: ObservedInstance): string =>
  instance.stateReason ? `${instance.stateReason.code}: ${instance.stateReason.message}` : instance.state;

/**
 * EC2 refused the fast-path launch for good (the recorded image, subnet, security group or host
 * is gone): no retry can succeed, so the record fails, keeping its volumes, until the operator
 * fixes the cause and sends Unshelve again.
 */
export const fastLaunchRefused = (record: ShelfRecord, error: RecordError): Decision =>
  failed(record, {
    code: 'LaunchRefused',
    message: `the recorded configuration no longer launches (${error.code}: ${error.message}); the retained volumes are kept, send Unshelve again once it is fixed`,
  });

/**
 * EC2 refused the slow-path launch for good (a snapshot or the image is gone): back to path
 * selection with the slow path ruled out, which takes the fast path if the retained volumes are
 * still there and otherwise fails the record, saying both. A new attempt, so a new ClientToken.
 */
export const slowLaunchRefused = (record: ShelfRecord, error: RecordError, now: number): Decision => {
  const why = `the slow-path launch was refused (${error.code}: ${error.message})`;
  return {
    to: 'unshelve.choose',
    set: {
      unshelve: withUnshelve(record, {
        path: undefined,
        reason: why,
        slowPathUnavailable: why,
        attempt: (record.unshelve?.attempt ?? 0) + 1,
        relocation: undefined,
        slowLaunchIssuedAt: undefined,
        capacityRefusedSince: undefined,
        replacementInstanceId: undefined,
      }),
    },
    actions: [],
    recheckAt: now,
    reason: why,
  };
};

/**
 * A refused launch (no capacity, a full host, an error) wrote when to try again: until then the
 * record waits, instead of every round of the invocation spending a RunInstances token on an AZ
 * that just said no.
 */
const launchRetryNotDue = (record: ShelfRecord, now: number): Decision | undefined =>
  record.nextDueAt !== null && now < record.nextDueAt
    ? wait(
        `${record.unshelve?.reason ?? 'launch refused'}; trying again in ${Math.ceil((record.nextDueAt - now) / 1000)} s`,
        record.nextDueAt,
      )
    : undefined;

/** The fast-path replacement EC2 terminated at launch because it could not use a volume's key. */
const replacementKilledByKey = (record: ShelfRecord, observation: Observation): Decision | undefined => {
  const replacement = observation.replacement;
  if (!replacement || !endedByEncryptionKey(replacement)) return undefined;
  return encryptionKeyUnusable(
    record,
    `replacement ${replacement.instanceId} terminated at launch (${stateReasonOf(replacement)})`,
    observation.volumes,
  );
};

const launch = (
  record: ShelfRecord,
  observation: Observation,
  now: number,
  settings: ShelvingSettings,
): Decision => {
  const replacement = observation.replacement;
  if (replacement && (replacement.state === 'terminated' || replacement.state === 'shutting-down')) {
    const keyFailure = replacementKilledByKey(record, observation);
    if (keyFailure) return keyFailure;
    // Re-issuing the batch's ClientToken would only return this instance again, terminated, for
    // at least 24 h (Run_Instance_Idempotency): a new attempt, so a new batch and token.
    return relaunch(record, now, `replacement ${replacement.instanceId} terminated before the swap`);
  }
  if (replacement) {
    return {
      to: 'unshelve.stop-replacement',
      set: { unshelve: withUnshelve(record, { replacementInstanceId: replacement.instanceId }) },
      actions: [],
      recheckAt: now,
      reason: `replacement ${replacement.instanceId} launched`,
    };
  }
  // Only between launches: a RunInstances still outstanding may yet bring a replacement here.
  if (record.unshelve?.batch === undefined) {
    const move = relocation(record, observation, now, settings);
    if (move) return move;
  }
  const waitingSince = record.unshelve?.waitingForHostSince;
  if (waitingSince !== undefined) {
    if (now - waitingSince > settings.hostWaitSeconds * 1000) {
      return failed(record, {
        code: 'HostFull',
        message: `Dedicated Host ${record.config.hostId} stayed full for ${settings.hostWaitSeconds} s and affinity is host`,
      });
    }
  }
  const batch = record.unshelve?.batch;
  if (batch !== undefined && now - batch.issuedAt < LAUNCH_REISSUE_MS) {
    return wait('waiting for the launched replacement to appear', batch.issuedAt + LAUNCH_REISSUE_MS);
  }
  const notDue = batch === undefined ? launchRetryNotDue(record, now) : undefined;
  if (notDue) return notDue;
  return {
    actions: [{ kind: 'launch', recordId: record.recordId }],
    recheckAt: now + POLL_MS,
    reason: 'launching replacement',
  };
};

/** The volume at the replacement's root device that is not a retained one: its fresh root. */
const freshRootOf = (record: ShelfRecord, replacement: ObservedInstance): string | undefined => {
  const retained = new Set(volumeIds(record));
  const atRoot = replacement.blockDevices.find(
    (device) => device.deviceName === record.config.rootDeviceName,
  );
  return atRoot && !retained.has(atRoot.volumeId) ? atRoot.volumeId : undefined;
};

/**
 * The replacement gets the recorded tags (so it keeps its owner and name) plus
 * `warmboot:replacement-for`; its fresh root gets the same, which the deletion fence requires.
 */
const replacementTagging = (
  record: ShelfRecord,
  replacement: ObservedInstance,
  observation: Observation,
): Action | undefined => {
  const wanted: Record<string, string> = { ...record.tags, [REPLACEMENT_FOR_TAG]: record.recordId };
  const missing = (tags: Readonly<Record<string, string>>) =>
    Object.entries(wanted).some(([key, value]) => tags[key] !== value);
  const resources: string[] = [];
  if (missing(replacement.tags)) resources.push(replacement.instanceId);
  const freshRoot = freshRootOf(record, replacement);
  const freshSeen = freshRoot ? observation.volumes.get(freshRoot) : undefined;
  if (freshRoot && freshSeen && missing(freshSeen.tags)) resources.push(freshRoot);
  return resources.length > 0 ? { kind: 'tag', resourceIds: resources, tags: wanted } : undefined;
};

/**
 * Data volumes that can go onto the running replacement now (AttachVolume works on a running
 * instance; only the root needs it stopped). Anything unusual (a volume gone, attached
 * elsewhere or at another device, a device taken) is left for the swap, which decides it with
 * the replacement stopped.
 */
const dataAttachmentsWhileRunning = (
  record: ShelfRecord,
  replacement: ObservedInstance,
  observation: Observation,
): Action[] => {
  const attach: Action[] = [];
  for (const volume of record.volumes) {
    if (volume.root) continue;
    const seen = observation.volumes.get(volume.volumeId);
    if (!seen) continue;
    if (seen.attachment && seen.attachment.state !== 'detached') continue;
    if (seen.state !== 'available') continue;
    if (replacement.blockDevices.some((device) => device.deviceName === volume.deviceName)) continue;
    attach.push({
      kind: 'attach',
      volumeId: volume.volumeId,
      instanceId: replacement.instanceId,
      device: volume.deviceName,
    });
  }
  return attach;
};

const stopReplacement = (
  record: ShelfRecord,
  observation: Observation,
  now: number,
  settings: ShelvingSettings,
): Decision => {
  const replacement = observation.replacement;
  if (replacement && (replacement.state === 'terminated' || replacement.state === 'shutting-down')) {
    const keyFailure = replacementKilledByKey(record, observation);
    if (keyFailure) return keyFailure;
  }
  if (!replacement || replacement.state === 'terminated' || replacement.state === 'shutting-down') {
    return relaunch(record, now, 'replacement disappeared before the swap');
  }
  const tagging = replacementTagging(record, replacement, observation);
  const actions: Action[] = tagging ? [tagging] : [];
  switch (replacement.state) {
    case 'pending':
    case 'stopping':
      return { actions, recheckAt: now + POLL_MS, reason: `replacement is ${replacement.state}` };
    case 'running': {
      // Data volumes go on while the replacement runs, so their AttachVolume calls overlap the
      // stop instead of queueing behind it. The engine issues the stop once the attach calls
      // returned (an attachment still `attaching` completes on a stopped instance too, and the
      // swap waits for `attached` before the start); should the stop win the race, the attach
      // fails harmlessly and the swap attaches the volume instead.
      // When the AttachVolume bucket has no room now, stopping at once is worth more: the data
      // volumes then go on during the swap and the stop is never held up by the attach queue.
      // Never on Windows: its fresh OS brings new disks online and may write to the retained
      // data before the forced stop (finding W4); they go on during the swap instead.
      if (settings.attachDataVolumesWhileRunning && record.config.platform !== 'windows') {
        const data = dataAttachmentsWhileRunning(record, replacement, observation);
        const room = data.length <= (observation.attachSlots ?? Number.POSITIVE_INFINITY);
        if (data.length > 0 && room) {
          actions.push(...data, { kind: 'stop', instanceId: replacement.instanceId, force: true });
          return {
            actions,
            recheckAt: now + POLL_MS,
            reason: 'attaching data volumes to the running replacement, then stopping it',
          };
        }
      }
      // Force: the replacement's fresh OS holds nothing worth a clean shutdown and its root is discarded.
      actions.push({ kind: 'stop', instanceId: replacement.instanceId, force: true });
      return { actions, recheckAt: now + POLL_MS, reason: 'stopping replacement' };
    }
    case 'stopped':
      return { to: 'unshelve.swap-root', actions, recheckAt: now, reason: 'replacement stopped' };
  }
};

const relaunch = (record: ShelfRecord, now: number, reason: string): Decision => ({
  to: 'unshelve.launch',
  set: {
    unshelve: {
      ...withUnshelve(record, { attempt: (record.unshelve?.attempt ?? 0) + 1 }),
      batch: undefined,
      replacementInstanceId: undefined,
      freshRootVolumeId: undefined,
    },
  },
  actions: [],
  recheckAt: now,
  reason,
});

const swapRoot = (record: ShelfRecord, observation: Observation, now: number): Decision => {
  const replacement = observation.replacement;
  if (!replacement || replacement.state === 'terminated' || replacement.state === 'shutting-down') {
    return relaunch(record, now, 'replacement disappeared during the swap');
  }
  if (replacement.state !== 'stopped') {
    if (replacement.state === 'running') {
      return {
        actions: [{ kind: 'stop', instanceId: replacement.instanceId, force: true }],
        recheckAt: now + POLL_MS,
        reason: 'replacement was started during the swap; stopping it again',
      };
    }
    return wait(`replacement is ${replacement.state}`, now + POLL_MS);
  }
  const retainedIds = new Set(volumeIds(record));
  const root = rootOf(record);
  const rootDevice = record.config.rootDeviceName;
  const tagging = replacementTagging(record, replacement, observation);
  if (tagging) {
    return {
      actions: [tagging],
      recheckAt: now + ATTACHMENT_POLL_MS,
      reason: 'tagging replacement before the swap',
    };
  }
  const actions: Action[] = [];
  const attaches: Action[] = [];
  let freshRootVolumeId = record.unshelve?.freshRootVolumeId;
  let pending = false;

  const atRoot = replacement.blockDevices.find((device) => device.deviceName === rootDevice);
  if (atRoot && !retainedIds.has(atRoot.volumeId)) {
    freshRootVolumeId = atRoot.volumeId;
    const fresh = observation.volumes.get(atRoot.volumeId);
    if (fresh?.attachment?.state === 'detaching') pending = true;
    else actions.push({ kind: 'detach', volumeId: atRoot.volumeId, instanceId: replacement.instanceId });
  }
  for (const volume of record.volumes) {
    const seen = observation.volumes.get(volume.volumeId);
    if (!seen) return relaunchOrFail(record, `retained volume ${volume.volumeId} is gone`, now);
    const attachment = seen.attachment;
    if (attachment && attachment.instanceId !== replacement.instanceId && attachment.state !== 'detached') {
      return failed(record, {
        code: 'VolumeInUse',
        message: `retained volume ${volume.volumeId} is attached to ${attachment.instanceId}; warmboot never detaches a retained volume from an instance it did not launch for this record`,
      });
    }
    if (attachment?.instanceId === replacement.instanceId && attachment.state !== 'detached') {
      if (attachment.device !== volume.deviceName) {
        return failed(record, {
          code: 'WrongDevice',
          message: `retained volume ${volume.volumeId} is attached at ${attachment.device}, recorded ${volume.deviceName}`,
        });
      }
      if (attachment.state !== 'attached') pending = true;
      continue;
    }
    if (seen.state !== 'available') {
      pending = true;
      continue;
    }
    const occupant = replacement.blockDevices.find((device) => device.deviceName === volume.deviceName);
    if (volume.root && occupant) continue; // the fresh root is being detached first
    if (occupant && !retainedIds.has(occupant.volumeId)) {
      return failed(record, {
        code: 'DeviceTaken',
        message: `device ${volume.deviceName} of replacement ${replacement.instanceId} holds ${occupant.volumeId}`,
      });
    }
    const attach: Action = {
      kind: 'attach',
      volumeId: volume.volumeId,
      instanceId: replacement.instanceId,
      device: volume.deviceName,
    };
    // The root first: it is the last thing between the replacement and its start.
    if (volume.root) attaches.unshift(attach);
    else attaches.push(attach);
  }
  const slots = observation.attachSlots ?? Number.POSITIVE_INFINITY;
  actions.push(...attaches.slice(0, Math.max(0, slots)));
  if (attaches.length > slots) pending = true;
  const set =
    freshRootVolumeId !== record.unshelve?.freshRootVolumeId
      ? { unshelve: withUnshelve(record, freshRootVolumeId ? { freshRootVolumeId } : {}) }
      : undefined;
  if (actions.length === 0 && !pending) {
    const rootSeen = observation.volumes.get(root.volumeId);
    if (
      rootSeen?.attachment?.instanceId === replacement.instanceId &&
      rootSeen.attachment.state === 'attached'
    ) {
      return {
        to: 'unshelve.start-replacement',
        ...(set ? { set } : {}),
        actions: [],
        recheckAt: now,
        reason: 'retained volumes attached',
      };
    }
  }
  return {
    ...(set ? { set } : {}),
    actions,
    recheckAt: now + ATTACHMENT_POLL_MS,
    reason: actions.length > 0 ? 'swapping root and attaching volumes' : 'waiting for attachments',
  };
};

/** A retained volume vanished mid-swap: go back to path selection, which takes the slow path. */
const relaunchOrFail = (record: ShelfRecord, reason: string, now: number): Decision => ({
  to: 'unshelve.choose',
  set: { unshelve: withUnshelve(record, { reason }) },
  actions: [],
  recheckAt: now,
  reason,
});

const startReplacement = (
  record: ShelfRecord,
  observation: Observation,
  now: number,
  settings: ShelvingSettings,
): Decision => {
  const replacement = observation.replacement;
  if (!replacement || replacement.state === 'terminated' || replacement.state === 'shutting-down') {
    return relaunch(record, now, 'replacement disappeared before it started');
  }
  switch (replacement.state) {
    case 'stopped':
      // A start EC2 ended for the key would be re-issued every round for ever (finding R4).
      if (endedByEncryptionKey(replacement, record.stepSince)) {
        return encryptionKeyUnusable(
          record,
          `replacement ${replacement.instanceId} with the retained volumes did not start (${stateReasonOf(replacement)})`,
          observation.volumes,
        );
      }
      {
        const userData = userDataAction(record, replacement, observation);
        if (userData)
          return {
            actions: [userData],
            recheckAt: now + ATTACHMENT_POLL_MS,
            reason: 'setting user data before the start',
          };
      }
      return {
        actions: [{ kind: 'start', instanceId: replacement.instanceId }],
        recheckAt: now + POLL_MS,
        reason: 'starting replacement',
      };
    case 'pending':
    case 'stopping':
      return wait(`replacement is ${replacement.state}`, now + POLL_MS);
    case 'running':
      return replacementReady(
        record,
        replacement,
        observation,
        now,
        settings,
        withUnshelve(record, {}),
        (outcome) =>
          unshelvedFact(record, replacement.instanceId, 'fast', now, undefined, undefined, outcome),
        'replacement running with its volumes',
      );
  }
};

/**
 * The slow-path replacement terminated on its own (capacity, a key it cannot use, someone
 * terminated it). Its ClientToken stays bound to it for at least 24 h after termination
 * (Run_Instance_Idempotency), so re-issuing it would only return the terminated instance: a
 * new attempt, so a new token, after a pause so a cause that kills every replacement does not
 * launch one a round.
 */
const relaunchFromSnapshots = (record: ShelfRecord, now: number, reason: string): Decision => ({
  set: {
    unshelve: withUnshelve(record, {
      attempt: (record.unshelve?.attempt ?? 0) + 1,
      reason,
      replacementInstanceId: undefined,
      slowLaunchIssuedAt: undefined,
    }),
  },
  actions: [],
  recheckAt: now + HOST_WAIT_RETRY_MS,
  reason,
});

const launchFromSnapshots = (
  record: ShelfRecord,
  observation: Observation,
  now: number,
  settings: ShelvingSettings,
): Decision => {
  const replacement = observation.replacement;
  const issuedAt = record.unshelve?.slowLaunchIssuedAt;
  const known = record.unshelve?.replacementInstanceId;
  const terminated = replacement?.state === 'terminated' || replacement?.state === 'shutting-down';
  // A replacement RunInstances answered with that EC2 no longer describes was terminated over
  // an hour ago (terminated instances stay describable about that long).
  const gone =
    !replacement && known !== undefined && (issuedAt === undefined || now - issuedAt >= LAUNCH_REISSUE_MS);
  if (replacement && terminated && endedByEncryptionKey(replacement)) {
    return encryptionKeyUnusable(
      record,
      `slow-path replacement ${replacement.instanceId} terminated at launch (${stateReasonOf(replacement)})`,
      observation.volumes,
    );
  }
  if (terminated || gone) {
    return relaunchFromSnapshots(
      record,
      now,
      `replacement ${replacement?.instanceId ?? known} ${terminated ? 'terminated' : 'is gone'} before it was ready`,
    );
  }
  if (!replacement) {
    if (issuedAt === undefined) {
      const move = relocation(record, observation, now, settings);
      if (move) return move;
      const notDue = launchRetryNotDue(record, now);
      if (notDue) return notDue;
    } else if (now - issuedAt < LAUNCH_REISSUE_MS) {
      // The launch may still bring a replacement (RunInstances is eventually consistent); it is
      // re-issued with the same ClientToken only after this, so no round spins on it meanwhile.
      return wait('waiting for the slow-path replacement to appear', issuedAt + LAUNCH_REISSUE_MS);
    }
    return {
      actions: [{ kind: 'launch-from-snapshots', recordId: record.recordId }],
      recheckAt: now + POLL_MS,
      reason: 'launching from safety snapshots',
    };
  }
  const unshelve = withUnshelve(record, { replacementInstanceId: replacement.instanceId });
  if (replacement.state !== 'running') {
    const set =
      record.unshelve?.replacementInstanceId !== replacement.instanceId ? { set: { unshelve } } : {};
    return { ...set, actions: [], recheckAt: now + POLL_MS, reason: `replacement is ${replacement.state}` };
  }
  return replacementReady(
    record,
    replacement,
    observation,
    now,
    settings,
    unshelve,
    (outcome) =>
      unshelvedFact(
        record,
        replacement.instanceId,
        'slow',
        now,
        record.unshelve?.reason,
        record.unshelve?.relocation,
        outcome,
      ),
    'restored from snapshots',
  );
};

/**
 * After the instance is ready: delete the replacement's fresh root (the only DeleteVolume in the
 * saga, fenced by tags in the adapter), hand the retained volumes back to the instance (drop the
 * shelved tag) and restore their DeleteOnTermination flags.
 */
const finalize = (
  record: ShelfRecord,
  observation: Observation,
  now: number,
  settings: ShelvingSettings,
): Decision => {
  const path = record.unshelve?.path ?? 'start';
  const instance = path === 'start' ? observation.instance : observation.replacement;
  const actions: Action[] = [];
  const freshRoot = record.unshelve?.freshRootVolumeId;
  let pending = false;
  if (path === 'fast' && freshRoot) {
    const seen = observation.volumes.get(freshRoot);
    if (seen?.state === 'available') {
      actions.push({ kind: 'delete-replacement-root', volumeId: freshRoot, recordId: record.recordId });
    } else if (seen && seen.state !== 'deleting') {
      pending = true;
    }
  }
  if (path !== 'slow') {
    const stillTagged = record.volumes
      .filter((volume) => observation.volumes.get(volume.volumeId)?.tags[SHELVED_TAG] === record.recordId)
      .map((volume) => volume.volumeId);
    if (stillTagged.length > 0)
      actions.push({ kind: 'untag', resourceIds: stillTagged, keys: [SHELVED_TAG] });
    if (settings.restoreDeleteOnTermination && instance && instance.state !== 'terminated') {
      const fixes = deleteOnTerminationFixes(record, instance, (volume) => volume.deleteOnTermination);
      if (fixes.length > 0) {
        actions.push({ kind: 'set-delete-on-termination', instanceId: instance.instanceId, devices: fixes });
      }
    }
  }
  if (actions.length > 0 || pending) {
    return { actions, recheckAt: now + ATTACHMENT_POLL_MS, reason: 'cleaning up after unshelve' };
  }
  return { to: 'unshelved', actions: [], recheckAt: null, reason: 'unshelved' };
};

/** Retained volumes a finished record still owns (the slow path leaves them to the operator). */
export const ownedVolumeIds = (record: ShelfRecord): readonly string[] =>
  record.step === 'unshelved' && record.unshelve?.path !== 'slow' ? [] : volumeIds(record);
