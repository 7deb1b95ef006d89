import type { Fact } from '../../shared/adapters/facts';
import { errorMessage } from '../../shared/errors';
import type { HostGroup } from '../config';
import type { ImageCacheDependencies } from '../dependencies';
import { DOCUMENT_EFFECTS, DOCUMENT_NAMES } from '../documents';
import { type CacheFact, settleCommandResult } from '../domain/command-results';
import { resultContradictsRecord } from '../domain/inventory';
import type { HostImageEntry } from '../domain/model';
import { isTerminalStatus, type ReportedImage, reconcileInventory } from '../domain/transitions';
import { inventoryReportSchema, reportedBytesSchema } from '../schemas';
import { releaseVolume } from './fetch-strategies';
import { GroupRecords, withoutVersion } from './host-records';
import { hostGroupNamed, type PlanSummary, plan } from './plan';
import { publishWarmList } from './warm-list';

/** What a command record tells about the command whose result is settled. */
export interface SettledCommand {
  readonly commandId: string;
  readonly document: string;
  readonly imageId?: string;
  readonly sentAt?: number;
}

/**
 * One SSM invocation changed status. Non-terminal statuses are ignored; a terminal one moves
 * the entry that carries this command id (a duplicate or late event finds no such entry and
 * changes nothing), then the group is planned again (space or fetch window freed).
 */
export const onCommandStatus = async (
  deps: ImageCacheDependencies,
  detail: {
    commandId: string;
    instanceId: string;
    status: string;
    /** The event's `document-name`: which document ran, even when no command record says so. */
    document?: string;
  },
): Promise<{ outcome: string; plan?: PlanSummary }> => {
  if (!isTerminalStatus(detail.status)) return { outcome: `ignored ${detail.status}` };
  const command = await deps.store.getCommand(detail.commandId);
  if (!command) {
    // Sent, then the sender died before recording it (or its record expired): the host may
    // hold or lack an image the record does not know about. Re-read it at the next reconcile.
    if (detail.document === undefined || DOCUMENT_EFFECTS[detail.document] === undefined)
      return { outcome: 'unknown command (the reconcile will catch up)' };
    const host = await deps.hosts.host(detail.instanceId);
    const group = deps.groups.find((candidate) => candidate.name === host?.hostGroup);
    if (!group) return { outcome: 'unknown command on a host of no configured group' };
    await new GroupRecords(deps, group).markInventoryDue(detail.instanceId, deps.clock.now());
    return { outcome: `unknown ${detail.document} command: ${detail.instanceId} is re-inventoried` };
  }
  const group = hostGroupNamed(deps, command.hostGroup);
  if (command.orphanVolumeId !== undefined) {
    if (detail.status !== 'Success') return { outcome: `orphan unmount ${detail.status}` };
    await releaseLinkedVolume(deps, {
      volumeId: command.orphanVolumeId,
      instanceId: detail.instanceId,
      hostGroup: group.name,
    });
    return { outcome: `released orphan volume ${command.orphanVolumeId}` };
  }
  if (command.document === DOCUMENT_NAMES.inventory) {
    // Only a report that changed the record (or made the host plannable) moves the plan; the
    // periodic re-inventories of unchanged hosts cost no group read.
    const settled = await settleInventory(deps, group, command, detail.instanceId, detail.status);
    return {
      outcome: settled.outcome,
      ...(settled.changed ? { plan: await plan(deps, group.name) } : {}),
    };
  }
  const outcome = await settleInvocation(deps, group, command, detail.instanceId, detail.status);
  return { outcome, plan: await plan(deps, group.name) };
};

/**
 * An inventory report replaces the host's recorded cache (host-scoped reads: this runs for
 * every host once per inventory interval). Entries that changed after the inventory was sent
 * are newer than the report and kept; the host's suspect mark is cleared if the inventory was
 * sent after it.
 */
export const settleInventory = async (
  deps: ImageCacheDependencies,
  group: HostGroup,
  command: { commandId: string; sentAt?: number },
  instanceId: string,
  status: string,
): Promise<{ outcome: string; changed: boolean }> => {
  if (status !== 'Success') return { outcome: `inventory ${status}`, changed: false };
  const records = new GroupRecords(deps, group);
  const now = deps.clock.now();
  const invocation = await deps.commands.invocation(command.commandId, instanceId);
  const { host, entries: recorded } = await deps.store.loadHost(group.name, instanceId);
  const sentAt = command.sentAt ?? now;
  const reported = await withOwnVolumes(
    deps,
    group,
    instanceId,
    inventoryReportSchema.parse(invocation.result ?? {}),
  );
  const merged = reconcileInventory(recorded, reported, now, sentAt);
  let changed = host !== undefined && host.inventoriedAt === undefined;
  for (const entry of merged.entries) {
    const before = recorded.find((candidate) => candidate.imageId === entry.imageId);
    if (before && sameEntry(before, entry)) continue;
    changed = true;
    await records.writeEntry(instanceId, entry.imageId, entry, before?.version ?? 'absent');
  }
  for (const imageId of merged.vanished) {
    const before = recorded.find((candidate) => candidate.imageId === imageId);
    if (!before) continue;
    changed = true;
    await records.writeEntry(instanceId, imageId, undefined, before.version);
  }
  await records.updateHost(instanceId, (current) => {
    const { inventoryDueAt, inventoryCommandId, inventorySentAt: _sentAt, ...rest } = withoutVersion(current);
    const stillDue = inventoryDueAt !== undefined && inventoryDueAt > sentAt;
    const stillWaiting = inventoryCommandId !== undefined && inventoryCommandId !== command.commandId;
    return {
      ...rest,
      inventoriedAt: now,
      ...(stillDue ? { inventoryDueAt } : {}),
      ...(stillWaiting ? { inventoryCommandId, inventorySentAt: current.inventorySentAt ?? now } : {}),
    };
  });
  if (changed) await publishWarmList(deps, group, instanceId);
  return {
    outcome: `inventory: ${merged.added.length} added, ${merged.vanished.length} vanished`,
    changed,
  };
};

/**
 * The terminal result of a fetch, eviction (or inventory) on one host, applied to the entry
 * that carries its command (settleCommandResult decides what changes).
 */
export const settleInvocation = async (
  deps: ImageCacheDependencies,
  group: HostGroup,
  command: SettledCommand,
  instanceId: string,
  status: string,
): Promise<string> => {
  if (command.document === DOCUMENT_NAMES.inventory)
    return (await settleInventory(deps, group, command, instanceId, status)).outcome;
  const records = new GroupRecords(deps, group);
  const now = deps.clock.now();
  const invocation = await deps.commands.invocation(command.commandId, instanceId);
  const state = await deps.store.loadGroup(group.name);

  const entry = state.entries.find(
    (candidate) =>
      candidate.instanceId === instanceId &&
      candidate.imageId === command.imageId &&
      candidate.commandId === command.commandId,
  );
  if (!entry) {
    // A duplicate or late result of settled work, or work the record lost track of (its entry
    // was dropped or moved while the command ran): in the second case the disk and the record
    // disagree, and only the host can say which images it holds.
    const effect = DOCUMENT_EFFECTS[command.document];
    const recorded = state.entries.find(
      (candidate) => candidate.instanceId === instanceId && candidate.imageId === command.imageId,
    );
    if (effect && resultContradictsRecord(effect, status, recorded, command.sentAt ?? now)) {
      await records.markInventoryDue(instanceId, now);
      return 'result contradicts the record: host re-inventoried';
    }
    return 'already settled';
  }
  const reportedBytes = reportedBytesSchema.safeParse(invocation.result?.bytes).data;
  const settlement = settleCommandResult({
    entry,
    effect: DOCUMENT_EFFECTS[command.document] === 'adds' ? 'adds' : 'removes',
    status,
    ...(invocation.responseCode !== undefined ? { responseCode: invocation.responseCode } : {}),
    ...(invocation.error !== undefined ? { error: invocation.error } : {}),
    ...(reportedBytes !== undefined ? { reportedBytes } : {}),
    source: state.source,
    group,
    now,
    random: deps.random,
  });
  if (!settlement) return 'already settled';
  await records.writeEntry(instanceId, entry.imageId, settlement.entry, entry.version);
  if (settlement.source) await records.writeSource(settlement.source, state.source.version);
  if (settlement.releaseVolume)
    await releaseLinkedVolume(deps, {
      volumeId: settlement.releaseVolume,
      instanceId,
      hostGroup: group.name,
    });
  await deps.facts.publish(settlement.facts.map((fact) => factOf(fact, group, instanceId, entry)));
  await publishWarmList(deps, group, instanceId);
  return `${settlement.action} ${status}`;
};

/**
 * A host's report of a linked volume is believed only for one of the group's cache volumes
 * attached to that host (security review M4): anything else is dropped from the report, so a
 * host cannot make warmboot record, detach or delete a volume that is not its cache's.
 */
const withOwnVolumes = async (
  deps: ImageCacheDependencies,
  group: HostGroup,
  instanceId: string,
  reported: readonly ReportedImage[],
): Promise<ReportedImage[]> => {
  if (!reported.some((image) => image.volumeId !== undefined)) return [...reported];
  const own = new Set(
    (await deps.volumes.cacheVolumes(group.name))
      .filter((volume) => volume.attachedTo === instanceId)
      .map((volume) => volume.volumeId),
  );
  return reported.filter((image) => {
    if (image.volumeId === undefined || own.has(image.volumeId)) return true;
    deps.logger.warn('host reported a volume that is not its cache volume; ignored', {
      hostGroup: group.name,
      instanceId,
      imageId: image.imageId,
      volumeId: image.volumeId,
    });
    return false;
  });
};

/** A linked volume of a group's host (`instanceId` empty: attached to none). */
export interface LinkedVolume {
  readonly volumeId: string;
  readonly instanceId: string;
  readonly hostGroup: string;
}

export const releaseLinkedVolume = async (
  deps: ImageCacheDependencies,
  volume: LinkedVolume,
): Promise<void> => {
  const { volumeId, instanceId, hostGroup } = volume;
  try {
    await releaseVolume(deps.volumes, deps.clock, volumeId, instanceId, hostGroup);
  } catch (error) {
    // The volume stays tagged and managed; the next reconcile or an operator removes it.
    deps.logger.warn('linked volume not released', { volumeId, instanceId, error: errorMessage(error) });
  }
};

const sameEntry = (a: HostImageEntry, b: HostImageEntry): boolean =>
  a.state === b.state && a.bytes === b.bytes && a.since === b.since && a.volumeId === b.volumeId;

const factOf = (fact: CacheFact, group: HostGroup, instanceId: string, entry: HostImageEntry): Fact => ({
  detailType: fact.detailType,
  detail: {
    hostGroup: group.name,
    instanceId,
    imageId: entry.imageId,
    via: entry.via ?? 'download',
    ...(entry.note ? { note: entry.note } : {}),
    ...fact.extra,
  },
  resources: [instanceId],
});
