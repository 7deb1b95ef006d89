import type { ItemError } from '../../../shared/results';
import type { Action, Decision } from '../actions';
import { userDataAction } from '../fidelity';
import { relocation } from '../relocation';
import { isGone, type Observation, type ObservedInstance, type ShelfRecord } from '../types';
import {
  ATTACHMENT_POLL_MS,
  awaitRunning,
  byState,
  failed,
  forceStop,
  launchRetryNotDue,
  POLL_MS,
  reissueDueAt,
  rootOf,
  type StepDecision,
  volumeIds,
  wait,
  withUnshelve,
} from './decisions';
import {
  dataAttachmentsWhileRunning,
  poolHandOver,
  relaunch,
  replacementKilledByKey,
  replacementTagging,
} from './replacement';
import { replacementReady } from './unshelve';
import { swapFor } from './unshelve-in-place';

/**
 * The fast path: a replacement launches in the recorded AZ; unless its root is replaced in place
 * (unshelve-in-place.ts) it stops, takes the retained volumes in place of its fresh root (the
 * swap), and starts with them.
 */

/**
 * EC2 refused the fast-path launch for good (the recorded image, subnet, security group or host
 * is gone): no retry can succeed, so the record fails, keeping its volumes, until the operator
 * fixes the cause and sends Unshelve again.
 */
export const fastLaunchRefused = (record: ShelfRecord, error: ItemError): Decision =>
  failed(record, {
    code: 'LaunchRefused',
    message: `the recorded configuration no longer launches (${error.code}: ${error.message}); the retained volumes are kept, send Unshelve again once it is fixed`,
  });

export const launch: StepDecision = (record, observation, now, settings) => {
  const replacement = observation.replacement;
  if (replacement && isGone(replacement)) {
    // Re-issuing the batch's ClientToken would only return this instance again, terminated, for
    // at least 24 h (Run_Instance_Idempotency): a new attempt, so a new batch and token.
    return (
      replacementKilledByKey(record, observation) ??
      relaunch(record, now, `replacement ${replacement.instanceId} terminated before the swap`)
    );
  }
  if (replacement) {
    // In place wherever EC2 and the record allow it: one call instead of a stop, a detach, an
    // attach and a start (issue 19); otherwise the swap on the stopped replacement, saying why.
    const swap = swapFor(record, settings);
    return {
      to: swap.to,
      set: {
        unshelve: withUnshelve(record, { replacementInstanceId: replacement.instanceId, ...swap.patch }),
      },
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
  if (batch !== undefined && now < reissueDueAt(batch)) {
    return wait('waiting for the launched replacement to appear', reissueDueAt(batch));
  }
  const notDue = batch === undefined ? launchRetryNotDue(record, now) : undefined;
  if (notDue) return notDue;
  return {
    actions: [{ kind: 'launch', recordId: record.recordId }],
    recheckAt: now + POLL_MS,
    reason: 'launching replacement',
  };
};

export const stopReplacement: StepDecision = (record, observation, now, settings) => {
  const tagged = (replacement: ObservedInstance): Action[] => {
    const tagging = replacementTagging(record, replacement, observation);
    return tagging ? [tagging] : [];
  };
  const replacement = observation.replacement;
  const handOver = replacement && poolHandOver(record, replacement, now);
  if (handOver) return handOver;
  return byState(replacement, 'replacement', now, {
    gone: () =>
      replacementKilledByKey(record, observation) ??
      relaunch(record, now, 'replacement disappeared before the swap'),
    moving: (replacement) => ({
      actions: tagged(replacement),
      recheckAt: now + POLL_MS,
      reason: `replacement is ${replacement.state}`,
    }),
    running: (replacement) => {
      const actions = tagged(replacement);
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
          return {
            actions: [...actions, ...data, forceStop(replacement)],
            recheckAt: now + POLL_MS,
            reason: 'attaching data volumes to the running replacement, then stopping it',
          };
        }
      }
      return {
        actions: [...actions, forceStop(replacement)],
        recheckAt: now + POLL_MS,
        reason: 'stopping replacement',
      };
    },
    stopped: (replacement) => ({
      to: 'unshelve.swap-root',
      actions: tagged(replacement),
      recheckAt: now,
      reason: 'replacement stopped',
    }),
  });
};

export const swapRoot: StepDecision = (record, observation, now) =>
  byState(observation.replacement, 'replacement', now, {
    gone: () => relaunch(record, now, 'replacement disappeared during the swap'),
    running: (replacement) => ({
      actions: [forceStop(replacement)],
      recheckAt: now + POLL_MS,
      reason: 'replacement was started during the swap; stopping it again',
    }),
    stopped: (replacement) => swapOnto(record, replacement, observation, now),
  });

/** The retained volumes go onto the stopped replacement, the root in place of its fresh one. */
const swapOnto = (
  record: ShelfRecord,
  replacement: ObservedInstance,
  observation: Observation,
  now: number,
): Decision => {
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
    // Only a fresh root its own describe shows attached here is detached. The instance's devices
    // are read before the volumes (observe.ts), and the account budget may hold the volumes'
    // describe for seconds: the instance may still list a root whose detach has finished since.
    // Detaching it again answers IncorrectState and spends a token of the bucket a bulk swap
    // waits on (measured: 125 such calls in 375 at N = 500).
    const fresh = observation.volumes.get(atRoot.volumeId);
    const attachedHere =
      fresh?.attachment?.instanceId === replacement.instanceId && fresh.attachment.state === 'attached';
    if (fresh && !attachedHere) pending = true;
    else actions.push({ kind: 'detach', volumeId: atRoot.volumeId, instanceId: replacement.instanceId });
  }
  for (const volume of record.volumes) {
    const seen = observation.volumes.get(volume.volumeId);
    if (!seen) return backToPathChoice(record, `retained volume ${volume.volumeId} is gone`, now);
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
const backToPathChoice = (record: ShelfRecord, reason: string, now: number): Decision => ({
  to: 'unshelve.choose',
  set: { unshelve: withUnshelve(record, { reason }) },
  actions: [],
  recheckAt: now,
  reason,
});

export const startReplacement: StepDecision = (record, observation, now, settings) =>
  awaitRunning(record, observation.replacement, observation, now, {
    noun: 'replacement',
    subject: (replacement) => `replacement ${replacement.instanceId} with the retained volumes`,
    starting: 'starting replacement',
    beforeStart: (replacement) => {
      const userData = userDataAction(record, replacement, observation);
      return userData
        ? {
            actions: [userData],
            recheckAt: now + ATTACHMENT_POLL_MS,
            reason: 'setting user data before the start',
          }
        : undefined;
    },
    gone: () => relaunch(record, now, 'replacement disappeared before it started'),
    running: (replacement) =>
      replacementReady(
        record,
        replacement,
        observation,
        now,
        settings,
        { path: 'fast', reason: record.unshelve?.inPlaceSkipped },
        'replacement running with its volumes',
      ),
  });
