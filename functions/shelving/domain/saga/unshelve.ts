import type { ShelvingSettings } from '../../config';
import type { Action, Decision, ShelvingFact } from '../actions';
import { restoration } from '../fidelity';
import { relocation, slowPathUnavailable, unusableZoneReason } from '../relocation';
import { SHELVED_TAG } from '../tags';
import type {
  NotKept,
  Observation,
  ObservedInstance,
  Relocation,
  ShelfRecord,
  UnshelvePath,
  UnshelveState,
} from '../types';
import {
  ATTACHMENT_POLL_MS,
  awaitRunning,
  deleteOnTerminationFixes,
  failed,
  nextAttempt,
  type StepDecision,
  volumeIds,
  withUnshelve,
} from './decisions';

/**
 * Where every unshelve starts and ends: the start in place, the choice between the fast and the
 * slow path, the replacement that runs, and the clean-up after it. The paths themselves are in
 * unshelve-fast.ts and unshelve-slow.ts.
 */

const unshelvedFact = (
  record: ShelfRecord,
  instanceId: string,
  how: {
    readonly path: UnshelvePath;
    readonly reason?: string;
    readonly relocation?: Relocation;
    readonly pool?: string;
  },
  now: number,
  replacement?: { readonly privateIpAddress?: string; readonly notKept: readonly NotKept[] },
): ShelvingFact => ({
  detailType: 'Instance Unshelved',
  detail: {
    recordId: record.recordId,
    instanceId,
    tenant: record.tenant,
    path: how.path,
    timeToReadySeconds: Math.max(0, (now - (record.unshelve?.requestedAt ?? now)) / 1000),
    ...(how.reason ? { reason: how.reason } : {}),
    ...(how.relocation
      ? { availabilityZone: how.relocation.availabilityZone, subnetId: how.relocation.subnetId }
      : {}),
    ...(how.pool ? { pool: how.pool } : {}),
    ...(replacement?.privateIpAddress ? { privateIpAddress: replacement.privateIpAddress } : {}),
    ...(replacement ? { notKept: [...replacement.notKept] } : {}),
  },
});

/**
 * The replacement runs. What is set only after the launch (protection, the Elastic IP) is
 * restored first (domain/fidelity.ts); then the record is unshelved, and Instance Unshelved says
 * how it came back (`fact`: its path, why, where to) and what the replacement could not keep.
 * `unshelve` is the state to keep: the slow path's names the replacement it learned of.
 */
export const replacementReady = (
  record: ShelfRecord,
  replacement: ObservedInstance,
  observation: Observation,
  now: number,
  settings: ShelvingSettings,
  fact: {
    readonly path: UnshelvePath;
    readonly reason?: string;
    readonly relocation?: Relocation;
    readonly pool?: string;
  },
  reason: string,
  unshelve: UnshelveState = withUnshelve(record, {}),
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
    facts: [unshelvedFact(record, replacement.instanceId, fact, now, outcome)],
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
        attempt: nextAttempt(record),
        batch: undefined,
        slowLaunchIssuedAt: undefined,
        slowLaunchQueuedMs: undefined,
        reason,
      }),
    },
    actions: [],
    recheckAt: now,
    reason,
  };
};

export const startInPlace: StepDecision = (record, observation, now) =>
  awaitRunning(record, observation.instance, observation, now, {
    noun: 'instance',
    subject: (instance) => `instance ${instance.instanceId}`,
    starting: 'starting',
    gone: () => ({
      to: 'unshelve.choose',
      set: { offloadedAt: now },
      actions: [],
      recheckAt: now,
      reason: 'instance gone',
    }),
    running: (instance) => ({
      to: 'unshelve.finalize',
      set: { unshelve: withUnshelve(record, { path: 'start', readyAt: now }) },
      actions: [],
      recheckAt: now,
      reason: 'running',
      facts: [unshelvedFact(record, instance.instanceId, { path: 'start' }, now)],
    }),
  });

/**
 * Fast when every retained volume is there and detached in the recorded AZ; slow from the
 * snapshots otherwise, or when the AZ is unusable. Without usable snapshots the record stays on
 * the fast path in its AZ (waiting for it, saying why), or fails when its volumes are gone too.
 */
export const choosePath: StepDecision = (record, observation, now, settings) => {
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
 * After the instance is ready: delete the replacement's fresh root (the only DeleteVolume in the
 * saga, fenced by tags in the adapter), hand the retained volumes back to the instance (drop the
 * shelved tag) and restore their DeleteOnTermination flags.
 */
export const finalize: StepDecision = (record, observation, now, settings) => {
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

/**
 * The state a new Unshelve request starts the record's next attempt with. A failed fast or
 * in-place attempt may have left its replacement holding the retained volumes (a start EC2
 * refused for a KMS key, say): the new attempt keeps it, and its fresh root for finalize to
 * delete, so the path choice sees the volumes on the record's own replacement and the swap
 * continues with it. Forgetting it would count them as attached elsewhere, restore from the
 * snapshots and leave that replacement, with the volumes and the private address, to nobody.
 */
export const unshelveAttempt = (record: ShelfRecord, requestId: string, now: number): UnshelveState => {
  const previous = record.unshelve;
  const swapping = previous?.path === 'fast' || previous?.path === 'in-place';
  return {
    requestId,
    requestedAt: now,
    attempt: nextAttempt(record),
    ...(record.step === 'failed' && swapping && previous?.replacementInstanceId
      ? {
          replacementInstanceId: previous.replacementInstanceId,
          ...(previous.freshRootVolumeId ? { freshRootVolumeId: previous.freshRootVolumeId } : {}),
        }
      : {}),
  };
};

/** Retained volumes a finished record still owns (the slow path leaves them to the operator). */
export const ownedVolumeIds = (record: ShelfRecord): readonly string[] =>
  record.step === 'unshelved' && record.unshelve?.path !== 'slow' ? [] : volumeIds(record);
