import { errorMessage, NotFoundError } from '../../shared/errors';
import type { HostInfo } from '../adapters/ec2';
import type { GroupState, StoredEntry } from '../adapters/store';
import type { HostGroup } from '../config';
import type { ImageCacheDependencies } from '../dependencies';
import { DOCUMENT_NAMES } from '../documents';
import { inFlightCheck, STALE_CLAIM_MS, STALE_COMMAND_MS } from '../domain/command-results';
import { hostsDueForInventory } from '../domain/inventory';
import { MAX_INSTANCES_PER_COMMAND } from '../domain/planner';
import { evictionEnded, isTerminalStatus } from '../domain/transitions';
import { releaseLinkedVolume, settleInventory, settleInvocation } from './command-results';
import { GroupRecords, withoutVersion } from './host-records';
import { join } from './membership';
import { hostGroupNamed, type PlanSummary, plan } from './plan';

/**
 * A re-inventory whose status event has not arrived after this is looked up with
 * GetCommandInvocation (the document lists one directory: it takes seconds).
 */
const INVENTORY_SETTLE_AFTER_MS = 60_000;
/**
 * Re-inventories one reconcile sends per group at most (10 SendCommands of 50). With the default
 * one-hour interval that keeps every host of a group of up to ~4,500 within its bound;
 * beyond that the oldest go first and the bound stretches instead of the reconcile.
 */
const MAX_INVENTORIES_PER_RECONCILE = 500;

/**
 * The level-triggered reconcile: re-derives membership from DescribeInstances, settles
 * in-flight commands whose status event was lost (GetCommandInvocation), drops stale claims,
 * and plans. Converges within one schedule period whatever events were lost.
 */
export const reconcile = async (deps: ImageCacheDependencies, groupName: string): Promise<PlanSummary> => {
  const group = hostGroupNamed(deps, groupName);
  await new GroupReconcile(deps, group, deps.clock.now()).run();
  return plan(deps, group.name);
};

/** Items by instance id, the first of each id (what `find` would return), built once per reconcile. */
const firstById = <T extends { readonly instanceId: string }>(items: readonly T[]): Map<string, T> => {
  const byId = new Map<string, T>();
  for (const item of items) if (!byId.has(item.instanceId)) byId.set(item.instanceId, item);
  return byId;
};

/** One reconcile of one group, at `now`. */
class GroupReconcile {
  readonly #records: GroupRecords;

  constructor(
    private readonly deps: ImageCacheDependencies,
    private readonly group: HostGroup,
    private readonly now: number,
  ) {
    this.#records = new GroupRecords(deps, group);
  }

  async run(): Promise<void> {
    const { deps, group, now } = this;
    const actual = await deps.hosts.groupHosts(group.name);
    let state = await deps.store.loadGroup(group.name);
    const liveById = firstById(actual);
    for (const record of state.hosts) {
      const live = liveById.get(record.instanceId);
      if (!live) await deps.store.deleteHost(group.name, record.instanceId);
      else if (live.state === 'stopped' && record.status === 'running')
        await this.#records.putHost({ ...withoutVersion(record), status: 'stopped' }, record.version);
    }
    const recordById = firstById(state.hosts);
    for (const host of actual) {
      const record = recordById.get(host.instanceId);
      if (host.state !== 'running') continue;
      const waiting = record?.status === 'joining' && (record.initDueAt ?? 0) > now;
      if (!waiting && (record?.status !== 'running' || record.inventoriedAt === undefined))
        await join(deps, group, host, record).catch((error: unknown) =>
          deps.logger.warn('host not initialized', {
            instanceId: host.instanceId,
            error: errorMessage(error),
          }),
        );
    }
    state = await deps.store.loadGroup(group.name);
    await this.releaseOrphanVolumes(state, actual);
    for (const entry of state.entries) {
      const check = inFlightCheck(entry, now);
      if (check === 'look-up') await this.settleLost(entry);
      else if (check === 'drop-claim') {
        await this.#records.writeEntry(
          entry.instanceId,
          entry.imageId,
          entry.state === 'evicting' ? evictionEnded(entry, false, now) : undefined,
          entry.version,
        );
        // Whether its SendCommand ran before the crash is unknown: ask the host.
        await this.#records.markInventoryDue(entry.instanceId, now);
      }
    }
    await this.reinventory(actual);
  }

  /**
   * Re-reads the disks the record may no longer describe: hosts marked suspect (a command
   * result contradicted the record, a claim was dropped without knowing whether it ran) and
   * hosts whose last inventory is older than their share of `inventoryIntervalMs`. A pending
   * re-inventory whose event was lost is looked up first (and settled, or sent again).
   * Converges what no event reports: an image that landed after its entry was removed is
   * inventoried (then evicted by the plan if unwanted), a recorded image the host lost is
   * dropped (then fetched again if wanted).
   */
  private async reinventory(actual: readonly HostInfo[]): Promise<void> {
    const { deps, group, now } = this;
    const state = await deps.store.loadGroup(group.name);
    const running = new Set(actual.filter((host) => host.state === 'running').map((host) => host.instanceId));
    const waiting = new Set<string>();
    for (const host of state.hosts) {
      if (host.inventoryCommandId === undefined) continue;
      const age = now - (host.inventorySentAt ?? 0);
      if (age < INVENTORY_SETTLE_AFTER_MS) {
        waiting.add(host.instanceId);
        continue;
      }
      try {
        const invocation = await deps.commands.invocation(host.inventoryCommandId, host.instanceId);
        if (invocation.status === 'Success') {
          await settleInventory(
            deps,
            group,
            {
              commandId: host.inventoryCommandId,
              ...(host.inventorySentAt ? { sentAt: host.inventorySentAt } : {}),
            },
            host.instanceId,
            'Success',
          );
          waiting.add(host.instanceId);
        } else if (!isTerminalStatus(invocation.status) && age < STALE_COMMAND_MS)
          waiting.add(host.instanceId);
      } catch (error) {
        // NotFound: SSM never ran it; send another. Anything else: look again next time.
        if (!(error instanceof NotFoundError)) {
          waiting.add(host.instanceId);
          deps.logger.warn('inventory not looked up', {
            instanceId: host.instanceId,
            error: errorMessage(error),
          });
        }
      }
    }
    const due = hostsDueForInventory(
      state.hosts.filter((host) => running.has(host.instanceId) && !waiting.has(host.instanceId)),
      { now, intervalMs: group.inventoryIntervalMs, limit: MAX_INVENTORIES_PER_RECONCILE },
    );
    for (let start = 0; start < due.length; start += MAX_INSTANCES_PER_COMMAND)
      await this.sendInventory(
        due.slice(start, start + MAX_INSTANCES_PER_COMMAND).map((host) => host.instanceId),
      );
  }

  /**
   * One inventory command for a batch of hosts, recorded before the hosts point at it. A batch
   * SendCommand refused (one host deregistered its agent) is sent host by host, so one host
   * never holds the others back.
   */
  private async sendInventory(instanceIds: readonly string[]): Promise<void> {
    const { deps, group, now } = this;
    let commandId: string;
    try {
      commandId = await deps.commands.send(
        DOCUMENT_NAMES.inventory,
        instanceIds,
        { CacheDirectory: group.cacheDirectory },
        {
          maxConcurrency: String(MAX_INSTANCES_PER_COMMAND),
          maxErrors: '100%',
          comment: `warmboot inventory ${group.name}`,
        },
      );
    } catch (error) {
      if (instanceIds.length > 1) {
        for (const instanceId of instanceIds) await this.sendInventory([instanceId]);
        return;
      }
      deps.logger.warn('host not re-inventoried', { instanceIds, error: errorMessage(error) });
      return;
    }
    await deps.store.putCommand({
      commandId,
      hostGroup: group.name,
      document: DOCUMENT_NAMES.inventory,
      instanceIds: [...instanceIds],
      sentAt: now,
    });
    for (const instanceId of instanceIds)
      await this.#records.updateHost(instanceId, (current) => ({
        ...withoutVersion(current),
        inventoryCommandId: commandId,
        inventorySentAt: now,
      }));
  }

  /**
   * Linked volumes of this group that no entry needs any more (a crash between CreateVolume and
   * the entry write, a release that failed, an entry dropped with its host) are removed: an
   * unattached one is deleted, one attached to a running host of the group is unmounted first
   * (the unmount's success event releases it). Only volumes carrying the group's cache-volume
   * tags are listed, `releaseVolume` re-checks the management tag, and a volume younger than a
   * claim's lifetime is left alone (its fetch may still be recording it).
   */
  private async releaseOrphanVolumes(state: GroupState, actual: readonly HostInfo[]): Promise<void> {
    const { deps, group, now } = this;
    if (group.handler === 'download') return;
    const needed = new Set(
      state.entries
        .filter((entry) => entry.state !== 'failed' && entry.volumeId !== undefined)
        .map((entry) => entry.volumeId),
    );
    const volumes = await deps.volumes.cacheVolumes(group.name);
    for (const volume of volumes) {
      if (needed.has(volume.volumeId) || now - volume.createdAt < STALE_CLAIM_MS) continue;
      if (volume.state === 'available') {
        await releaseLinkedVolume(deps, { volumeId: volume.volumeId, instanceId: '', hostGroup: group.name });
        continue;
      }
      const host = actual.find((candidate) => candidate.instanceId === volume.attachedTo);
      if (host?.state !== 'running' || volume.state !== 'in-use') continue;
      try {
        const commandId = await deps.commands.send(
          DOCUMENT_NAMES.unmount,
          [host.instanceId],
          { ImageId: volume.imageId, CacheDirectory: group.cacheDirectory, VolumeId: volume.volumeId },
          { maxConcurrency: '1', maxErrors: '0', comment: `warmboot release orphan ${volume.volumeId}` },
        );
        await deps.store.putCommand({
          commandId,
          hostGroup: group.name,
          imageId: volume.imageId,
          document: DOCUMENT_NAMES.unmount,
          instanceIds: [host.instanceId],
          sentAt: now,
          orphanVolumeId: volume.volumeId,
        });
      } catch (error) {
        deps.logger.warn('orphan volume not unmounted', {
          volumeId: volume.volumeId,
          error: errorMessage(error),
        });
      }
    }
  }

  /** An in-flight entry whose status event never came: SSM is asked for its command's result. */
  private async settleLost(entry: StoredEntry): Promise<void> {
    const { deps, group } = this;
    const commandId = entry.commandId ?? '';
    const command = await deps.store.getCommand(commandId);
    try {
      const invocation = await deps.commands.invocation(commandId, entry.instanceId);
      if (!isTerminalStatus(invocation.status)) return;
      await settleInvocation(
        deps,
        group,
        command ?? {
          commandId,
          imageId: entry.imageId,
          document: entry.state === 'fetching' ? DOCUMENT_NAMES.fetch : DOCUMENT_NAMES.remove,
        },
        entry.instanceId,
        invocation.status,
      );
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
      // SSM no longer knows the command: what it did to the host is unknown, so ask the host.
      await this.#records.writeEntry(entry.instanceId, entry.imageId, undefined, entry.version);
      await this.#records.markInventoryDue(entry.instanceId, deps.clock.now());
    }
  }
}
