import type { ShelvingDependencies } from '../dependencies';
import { mayNeedOtherZone } from '../domain/relocation';
import { REPLACEMENT_BATCH_TAG, REPLACEMENT_FOR_TAG } from '../domain/tags';
import {
  isGone,
  type Observation,
  type ObservedInstance,
  type ObservedSnapshot,
  type ObservedVolume,
  type ShelfRecord,
} from '../domain/types';
import { observeRestoration } from './reads';

/** Replacements a launch made that no record has linked yet, found by their launch tags. */
const unlinkedReplacements = async (deps: ShelvingDependencies, records: readonly ShelfRecord[]) => {
  const { ec2 } = deps;
  const batchIds = records.flatMap((record) =>
    record.step === 'unshelve.launch' && record.unshelve?.batch && !record.unshelve.replacementInstanceId
      ? [record.unshelve.batch.batchId]
      : [],
  );
  const slowIds = records.flatMap((record) =>
    record.step === 'unshelve.launch-from-snapshots' && !record.unshelve?.replacementInstanceId
      ? [record.recordId]
      : [],
  );
  const byBatch = new Map<string, ObservedInstance>();
  if (batchIds.length > 0) {
    for (const instance of await ec2.describeInstancesByTag(REPLACEMENT_BATCH_TAG, batchIds)) {
      const batchId = instance.tags[REPLACEMENT_BATCH_TAG];
      if (batchId && instance.amiLaunchIndex !== undefined)
        byBatch.set(`${batchId}#${instance.amiLaunchIndex}`, instance);
    }
  }
  const bySlowRecord = new Map<string, ObservedInstance>();
  if (slowIds.length > 0) {
    for (const instance of await ec2.describeInstancesByTag(REPLACEMENT_FOR_TAG, slowIds)) {
      const recordId = instance.tags[REPLACEMENT_FOR_TAG];
      // A replacement on its way out belongs to an earlier attempt, or ends this one (saga).
      if (!recordId || instance.tags[REPLACEMENT_BATCH_TAG] || isGone(instance)) continue;
      const known = bySlowRecord.get(recordId);
      if (!known || instance.instanceId < known.instanceId) bySlowRecord.set(recordId, instance);
    }
  }
  return { byBatch, bySlowRecord };
};

/**
 * One batched snapshot of what EC2 shows for `records`: their instances and replacements (linked,
 * or found by launch tag after a crash), volumes, safety snapshots where a step needs them, AZ
 * states and subnets where a record may have to leave its AZ, and what a restoring replacement
 * has of its original's details. A handful of describes a round, however many records.
 */
export const observe = async (
  deps: ShelvingDependencies,
  records: readonly ShelfRecord[],
): Promise<Map<string, Observation>> => {
  const { ec2 } = deps;
  const instanceIds = new Set<string>();
  for (const record of records) {
    instanceIds.add(record.instanceId);
    if (record.unshelve?.replacementInstanceId) instanceIds.add(record.unshelve.replacementInstanceId);
  }
  const instances = new Map((await ec2.describeInstances([...instanceIds])).map((i) => [i.instanceId, i]));
  const { byBatch, bySlowRecord } = await unlinkedReplacements(deps, records);

  const replacementOf = (record: ShelfRecord): ObservedInstance | undefined => {
    const known = record.unshelve?.replacementInstanceId;
    if (known) return instances.get(known);
    const batch = record.unshelve?.batch;
    if (record.step === 'unshelve.launch' && batch) return byBatch.get(`${batch.batchId}#${batch.index}`);
    if (record.step === 'unshelve.launch-from-snapshots') return bySlowRecord.get(record.recordId);
    return undefined;
  };

  const volumeIds = new Set<string>();
  for (const record of records) {
    for (const volume of record.volumes) volumeIds.add(volume.volumeId);
    if (record.unshelve?.freshRootVolumeId) volumeIds.add(record.unshelve.freshRootVolumeId);
    for (const device of replacementOf(record)?.blockDevices ?? []) volumeIds.add(device.volumeId);
  }
  const volumes = new Map((await ec2.describeVolumes([...volumeIds])).map((v) => [v.volumeId, v]));

  const snapshotRecords = records
    .filter((record) => record.step === 'shelve.snapshot' || record.step === 'unshelve.choose')
    .map((record) => record.recordId);
  const snapshots =
    snapshotRecords.length > 0
      ? await ec2.describeShelvedSnapshots(snapshotRecords)
      : new Map<string, ObservedSnapshot[]>();

  // AZ states and subnets only for records that may have to leave their AZ: two describes a round.
  const movable = records.filter((record) => mayNeedOtherZone(record, deps.settings));
  const placement =
    movable.length > 0
      ? await ec2.describePlacement(
          movable.flatMap((record) => (record.config.vpcId ? [record.config.vpcId] : [])),
        )
      : undefined;

  const restoring = await observeRestoration(ec2, records, replacementOf);
  const replacingRoot = records.flatMap((record) => {
    const replacement = record.step === 'unshelve.replace-root' ? replacementOf(record) : undefined;
    return replacement ? [replacement.instanceId] : [];
  });
  const rootReplacements = new Map(
    replacingRoot.length > 0
      ? (await ec2.describeRootReplacements(replacingRoot)).map((task) => [task.instanceId, task])
      : [],
  );
  const observations = new Map<string, Observation>();
  for (const record of records) {
    const replacement = replacementOf(record);
    const own = new Map<string, ObservedVolume>();
    for (const id of [
      ...record.volumes.map((volume) => volume.volumeId),
      ...(record.unshelve?.freshRootVolumeId ? [record.unshelve.freshRootVolumeId] : []),
      ...(replacement?.blockDevices.map((device) => device.volumeId) ?? []),
    ]) {
      const volume = volumes.get(id);
      if (volume) own.set(id, volume);
    }
    const instance = instances.get(record.instanceId);
    observations.set(record.recordId, {
      ...(instance ? { instance } : {}),
      ...(replacement ? { replacement } : {}),
      volumes: own,
      snapshots: snapshots.get(record.recordId) ?? [],
      ...(placement && movable.includes(record) ? { placement } : {}),
      ...restoring(record),
      ...(replacement && rootReplacements.has(replacement.instanceId)
        ? { rootReplacement: rootReplacements.get(replacement.instanceId) }
        : {}),
    });
  }
  return observations;
};
