import type { ShelvingSettings } from '../../config';
import type { Action, Decision } from '../actions';
import type { Observation, ObservedInstance, ShelfRecord, Step, UnshelveState } from '../types';
import {
  ATTACHMENT_POLL_MS,
  byState,
  encryptionKeyUnusable,
  endedByEncryptionKey,
  failed,
  POLL_MS,
  rootOf,
  type StepDecision,
  stateReasonOf,
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

/**
 * The in-place path: the replacement keeps running, its data volumes go on, and one
 * CreateReplaceRootVolumeTask with `VolumeId` puts the retained root in place of its fresh one
 * (EC2 user guide, "Replace a root volume": the instance is rebooted, keeps its network
 * interfaces, addresses, non-root volumes and profile; `DeleteReplacedRootVolume` has EC2 delete
 * the fresh root). Three mutating calls a record instead of the stop, detach, attach, start and
 * DeleteVolume of the fast path.
 */

/**
 * How often a running replace-root-volume task is looked at. It sends no event and takes about
 * 20 s (a reboot onto the new root), so the invocation waits for it in-process
 * (application/rounds.ts); every poll is one DescribeReplaceRootVolumeTasks for all the records
 * replacing a root, so a short poll costs little and the instance is handed back sooner.
 */
const ROOT_REPLACEMENT_POLL_MS = 2_000;

/** Bare-metal sizes EC2 cannot replace the root of (user guide: only virtualized and Mac metal). */
const isUnsupportedMetal = (instanceType: string): boolean => {
  const [family = '', size = ''] = instanceType.split('.');
  return (size === 'metal' || size.startsWith('metal-')) && !family.startsWith('mac');
};

/**
 * Why this record cannot come back in place, or undefined when it can. Each reason is a rule of
 * EC2's or a promise warmboot made about the instance that only the stopped swap keeps.
 */
export const inPlaceSkipReason = (record: ShelfRecord, settings: ShelvingSettings): string | undefined => {
  if (!settings.replaceRootInPlace) return 'replacing the root in place is turned off (replaceRootInPlace)';
  if (record.config.userData !== undefined) {
    // ModifyInstanceAttribute UserData needs a stopped instance, and launching with it would run
    // the owner's boot script on the image's fresh OS with the retained data volumes attached.
    return 'its user data can only be restored on a stopped replacement';
  }
  if (record.config.platform === 'windows') {
    return 'Windows brings hot-plugged disks online, so its data volumes go on only while stopped (finding W4)';
  }
  const hasData = record.volumes.some((volume) => !volume.root);
  if (hasData && !settings.attachDataVolumesWhileRunning) {
    return 'data volumes may not go on a running replacement (attachDataVolumesWhileRunning is off)';
  }
  if (isUnsupportedMetal(record.config.instanceType)) {
    return `EC2 does not replace the root volume of ${record.config.instanceType} (bare metal)`;
  }
  return undefined;
};

/**
 * Where a fast-path record goes once its replacement exists: the in-place swap, or the swap on
 * the stopped replacement with the reason in-place was ruled out (kept for the whole unshelve).
 */
export const swapFor = (
  record: ShelfRecord,
  settings: ShelvingSettings,
): { readonly to: Step; readonly patch: Partial<UnshelveState> } => {
  const skipped = record.unshelve?.inPlaceSkipped ?? inPlaceSkipReason(record, settings);
  return skipped === undefined
    ? { to: 'unshelve.replace-root', patch: { path: 'in-place' } }
    : { to: 'unshelve.stop-replacement', patch: { path: 'fast', inPlaceSkipped: skipped } };
};

/** Abandon the in-place swap for the stopped one, which takes over from wherever EC2 left things. */
const fallBack = (record: ShelfRecord, now: number, why: string): Decision => ({
  to: 'unshelve.stop-replacement',
  set: { unshelve: withUnshelve(record, { path: 'fast', inPlaceSkipped: why }) },
  actions: [],
  recheckAt: now,
  reason: `swapping the root on the stopped replacement: ${why}`,
});

/** The ClientToken of this attempt's task: a retry after a crash gets the same task back. */
const replaceRootToken = (record: ShelfRecord): string =>
  `${record.recordId}-root-${record.unshelve?.attempt ?? 0}`;

const replaceWhileRunning = (
  record: ShelfRecord,
  replacement: ObservedInstance,
  observation: Observation,
  now: number,
  settings: ShelvingSettings,
): Decision => {
  const handOver = poolHandOver(record, replacement, now);
  if (handOver) return handOver;
  const root = rootOf(record);
  const rootDevice = record.config.rootDeviceName;
  const task = observation.rootReplacement;
  const atRoot = replacement.blockDevices.find((device) => device.deviceName === rootDevice);
  if (task?.state === 'succeeded' && atRoot?.volumeId === root.volumeId) {
    // The new root gets the flag it ends with before the hand-back, in one call at most: the
    // recorded one (the owner's instance had it), or false when restoreDeleteOnTermination is
    // off. AWS documents which flag the new root gets only for the launch-state and snapshot
    // forms of the task (it may carry the fresh root's over), so EC2's answer decides whether to
    // call. Turning it off first and back on in finalize cost two ModifyInstanceAttribute calls
    // an unshelve on a bucket of 50 refilled at 5 per second, and guarded against what no path
    // does: shelving terminates only a record's own instance at offload and a batch launch's
    // unclaimed replacements, never one a record links, tagged `warmboot:replacement-for` or
    // holding a `warmboot:shelved` volume (invariant runningInstancesKept, docs/invariants.md).
    const keep = settings.restoreDeleteOnTermination ? root.deleteOnTermination : false;
    if (atRoot.deleteOnTermination !== keep) {
      return {
        actions: [
          {
            kind: 'set-delete-on-termination',
            instanceId: replacement.instanceId,
            devices: [{ deviceName: rootDevice, deleteOnTermination: keep }],
          },
        ],
        recheckAt: now + ATTACHMENT_POLL_MS,
        reason: keep
          ? 'giving the retained root its recorded DeleteOnTermination'
          : 'keeping the retained root when the instance terminates',
      };
    }
    return replacementReady(
      record,
      replacement,
      observation,
      now,
      settings,
      { path: 'in-place', ...(record.unshelve?.poolMember ? { pool: record.unshelve.poolMember.pool } : {}) },
      'replacement running on the retained root',
    );
  }
  if (task?.state === 'failed' || task?.state === 'failed-detached') {
    return fallBack(record, now, `replace-root-volume task ${task.taskId} ${task.state}`);
  }
  if (task !== undefined && task.state !== 'succeeded') {
    return wait(`replace-root-volume task ${task.taskId} is ${task.state}`, now + ROOT_REPLACEMENT_POLL_MS);
  }
  const tagging = replacementTagging(record, replacement, observation);
  const data = dataAttachmentsWhileRunning(record, replacement, observation);
  const slots = observation.attachSlots ?? Number.POSITIVE_INFINITY;
  const actions: Action[] = [...(tagging ? [tagging] : []), ...data.slice(0, Math.max(0, slots))];
  if (actions.length > 0) {
    return {
      actions,
      recheckAt: now + ATTACHMENT_POLL_MS,
      reason: 'tagging the replacement and attaching data volumes',
    };
  }
  for (const volume of record.volumes) {
    const seen = observation.volumes.get(volume.volumeId);
    if (!seen) return fallBack(record, now, `retained volume ${volume.volumeId} is gone`);
    const attachment = seen.attachment;
    if (attachment && attachment.state !== 'detached' && attachment.instanceId !== replacement.instanceId) {
      return failed(record, {
        code: 'VolumeInUse',
        message: `retained volume ${volume.volumeId} is attached to ${attachment.instanceId}; warmboot never detaches a retained volume from an instance it did not launch for this record`,
      });
    }
    if (volume.root) continue;
    if (attachment?.instanceId !== replacement.instanceId || attachment.state !== 'attached') {
      // Attached elsewhere on the replacement, or a device taken: the stopped swap sorts it out.
      if (attachment?.state === 'attached' && attachment.device !== volume.deviceName) {
        return fallBack(record, now, `data volume ${volume.volumeId} is at ${attachment.device}`);
      }
      return wait('waiting for the data volumes to attach', now + ATTACHMENT_POLL_MS);
    }
  }
  const rootSeen = observation.volumes.get(root.volumeId);
  if (rootSeen?.state !== 'available') {
    return wait(
      `retained root ${root.volumeId} is ${rootSeen?.state ?? 'not visible'}`,
      now + ATTACHMENT_POLL_MS,
    );
  }
  const fresh = atRoot ? observation.volumes.get(atRoot.volumeId) : undefined;
  if (fresh?.encrypted === true && rootSeen.encrypted !== true) {
    // "If the original root volume is encrypted, the specified volume must also be encrypted."
    return fallBack(
      record,
      now,
      `the replacement's root is encrypted and retained root ${root.volumeId} is not`,
    );
  }
  return {
    actions: [
      {
        kind: 'replace-root',
        recordId: record.recordId,
        instanceId: replacement.instanceId,
        volumeId: root.volumeId,
        clientToken: replaceRootToken(record),
      },
    ],
    recheckAt: now + ATTACHMENT_POLL_MS,
    reason: 'replacing the root in place',
  };
};

export const replaceRoot: StepDecision = (record, observation, now, settings) =>
  byState(observation.replacement, 'replacement', now, {
    gone: () =>
      replacementKilledByKey(record, observation) ??
      relaunch(record, now, 'replacement disappeared before its root was replaced'),
    running: (replacement) => replaceWhileRunning(record, replacement, observation, now, settings),
    stopped: (replacement) =>
      startPoolMember(record, replacement, observation, now) ??
      // Stopped under the task (by someone else, or a task that failed and left it so): the
      // stopped swap handles a stopped replacement whatever root it has.
      fallBack(record, now, 'the replacement stopped before its root was replaced'),
  });

/**
 * A pool member taken stopped (the warm tier), or stopped again before its task began, is started
 * and then replaced in place like a running one: after the pool handed it over (its pool tags
 * off, it opted in to shelving, so the pool never touches it again and the role may start it) and
 * tagged as the record's replacement. Not the stopped swap: that would leave the member's own
 * root to delete, which shelving's deletion fence refuses (it was not launched as a replacement
 * root), where the in-place task has EC2 delete it. Undefined for anything else.
 */
const startPoolMember = (
  record: ShelfRecord,
  replacement: ObservedInstance,
  observation: Observation,
  now: number,
): Decision | undefined => {
  if (record.unshelve?.poolMember?.instanceId !== replacement.instanceId) return undefined;
  if (observation.rootReplacement !== undefined) return undefined;
  if (endedByEncryptionKey(replacement, record.stepSince)) {
    // Starting it again would fail the same way every round (finding R4).
    return encryptionKeyUnusable(
      record,
      `pool member ${replacement.instanceId} did not start (${stateReasonOf(replacement)})`,
      observation.volumes,
    );
  }
  const handOver = poolHandOver(record, replacement, now);
  if (handOver) return handOver;
  const tagging = replacementTagging(record, replacement, observation);
  return {
    actions: [...(tagging ? [tagging] : []), { kind: 'start', instanceId: replacement.instanceId }],
    recheckAt: now + POLL_MS,
    reason: `starting pool member ${replacement.instanceId} before its root is replaced`,
  };
};
