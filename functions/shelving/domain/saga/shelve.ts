import { OPT_IN_TAG, OPTED_IN } from '../../../shared/tags';
import type { Action, Decision } from '../actions';
import { SHELVED_TAG } from '../tags';
import type { Observation, ObservedInstance, ObservedVolume, RetainedVolume, ShelfRecord } from '../types';
import { isGone } from '../types';
import {
  byState,
  deleteOnTerminationFixes,
  failed,
  POLL_MS,
  type StepDecision,
  volumeIds,
  wait,
} from './decisions';

/** The shelve steps (keep the volumes, stop, take the safety snapshots) and the offload. */

const shelvedGiB = (record: ShelfRecord): number =>
  record.volumes.reduce((total, volume) => total + volume.sizeGiB, 0);

/**
 * What keeps a record's volumes through a termination: tagged as the record's (`warmboot:shelved`
 * and `warmboot:shelving`), then kept on termination (DeleteOnTermination false). Tags first, in a
 * round of their own: ModifyInstanceAttribute is granted only on volumes opted in to shelving, so
 * changing an untagged one is denied (IAM conditions on `aws:ResourceTag/warmboot:shelving`).
 */
const keepVolumes = (record: ShelfRecord, instance: ObservedInstance, observation: Observation): Action[] => {
  const untagged = untaggedRetained(record, observation);
  if (untagged.length > 0) {
    return [
      {
        kind: 'tag',
        resourceIds: untagged,
        tags: { [SHELVED_TAG]: record.recordId, [OPT_IN_TAG.shelving]: OPTED_IN },
      },
    ];
  }
  const fixes = deleteOnTerminationFixes(record, instance, () => false);
  return fixes.length > 0
    ? [{ kind: 'set-delete-on-termination', instanceId: instance.instanceId, devices: fixes }]
    : [];
};

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

const claimedElsewhere = (record: ShelfRecord, observation: Observation): Decision | undefined => {
  const claimed = foreignClaim(record, observation);
  return claimed
    ? failed(record, {
        code: 'VolumeClaimed',
        message: `volume ${claimed.volumeId} belongs to shelve record ${claimed.tags[SHELVED_TAG]}`,
      })
    : undefined;
};

const goneWhileShelving = (record: ShelfRecord): Decision =>
  failed(record, {
    code: 'InstanceGone',
    message: `instance ${record.instanceId} disappeared while shelving`,
  });

export const prepare: StepDecision = (record, observation, now) => {
  const instance = observation.instance;
  if (!instance || isGone(instance)) return goneWhileShelving(record);
  const claimed = claimedElsewhere(record, observation);
  if (claimed) return claimed;
  const actions = keepVolumes(record, instance, observation);
  if (actions.length > 0) return { actions, recheckAt: now + POLL_MS, reason: 'keeping volumes' };
  return { to: 'shelve.stop', actions: [], recheckAt: now, reason: 'volumes kept' };
};

export const stopForShelve: StepDecision = (record, observation, now) =>
  byState(observation.instance, 'instance', now, {
    gone: () => goneWhileShelving(record),
    running: (instance) => ({
      actions: [{ kind: 'stop', instanceId: instance.instanceId, force: false }],
      recheckAt: now + POLL_MS,
      reason: 'stopping',
    }),
    stopped: () =>
      record.snapshotOnShelve
        ? { to: 'shelve.snapshot', actions: [], recheckAt: now, reason: 'stopped' }
        : shelvedDecision(record, now, record.volumes),
  });

const shelvedDecision = (record: ShelfRecord, now: number, volumes: readonly RetainedVolume[]): Decision => {
  // Termination protection refuses the offload's TerminateInstances, and warmboot never turns it
  // off: such an instance is offloaded only on request, once its owner turned it off (requests.ts).
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
export const snapshot: StepDecision = (record, observation, now) => {
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

/** Shelved: the offload is due at `offloadAt` (never, when null). */
export const shelved = (record: ShelfRecord, now: number): Decision =>
  record.offloadAt !== null && now >= record.offloadAt
    ? { to: 'offload.terminate', actions: [], recheckAt: now, reason: 'offload due' }
    : wait('shelved', record.offloadAt);

export const offload: StepDecision = (record, observation, now) => {
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
  const claimed = claimedElsewhere(record, observation);
  if (claimed) return claimed;
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
