import { TAG as POOL_TAG } from '../../../pools/domain/tags';
import type { Action, Decision } from '../actions';
import { REPLACEMENT_FOR_TAG } from '../tags';
import type { Observation, ObservedInstance, ShelfRecord } from '../types';
import {
  ATTACHMENT_POLL_MS,
  encryptionKeyUnusable,
  endedByEncryptionKey,
  nextAttempt,
  stateReasonOf,
  volumeIds,
  withUnshelve,
} from './decisions';

/**
 * What both ways of swapping a replacement's root share (unshelve-in-place.ts while it runs,
 * unshelve-fast.ts while it is stopped): its tags, the data volumes that go on while it runs, a
 * new attempt when it is lost, and the hand-over of one taken from a pool.
 */

/** The fast-path replacement EC2 terminated at launch because it could not use a volume's key. */
export const replacementKilledByKey = (
  record: ShelfRecord,
  observation: Observation,
): Decision | undefined => {
  const replacement = observation.replacement;
  if (!replacement || !endedByEncryptionKey(replacement)) return undefined;
  return encryptionKeyUnusable(
    record,
    `replacement ${replacement.instanceId} terminated at launch (${stateReasonOf(replacement)})`,
    observation.volumes,
  );
};

/** A new attempt, so a new batch and ClientToken, forgetting the replacement of the last one. */
export const relaunch = (record: ShelfRecord, now: number, reason: string): Decision => ({
  to: 'unshelve.launch',
  set: {
    unshelve: {
      ...withUnshelve(record, { attempt: nextAttempt(record) }),
      batch: undefined,
      replacementInstanceId: undefined,
      freshRootVolumeId: undefined,
    },
  },
  actions: [],
  recheckAt: now,
  reason,
});

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
export const replacementTagging = (
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
export const dataAttachmentsWhileRunning = (
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

/**
 * Before anything of the record's goes onto a replacement taken from a pool, the pool hands it
 * over (as a claim does: pool tags off its volumes and itself, the member record ended): while it
 * carries them the pools reconcile may still retire it, and must never do so holding retained data.
 */
export const poolHandOver = (
  record: ShelfRecord,
  replacement: ObservedInstance,
  now: number,
): Decision | undefined => {
  const taken = record.unshelve?.poolMember;
  if (taken === undefined || taken.instanceId !== replacement.instanceId) return undefined;
  if (replacement.tags[POOL_TAG.pool] === undefined) return undefined;
  return {
    actions: [{ kind: 'hand-over-pool-member', recordId: record.recordId, ...taken }],
    recheckAt: now + ATTACHMENT_POLL_MS,
    reason: `pool ${taken.pool} hands member ${taken.instanceId} over`,
  };
};
