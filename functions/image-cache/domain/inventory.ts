import type { HostImageEntry } from './model';

/**
 * When the recorded cache of a host stops being trusted. The record is written from command
 * results, so it drifts from the disk whenever a result is missed: a fetch that lands after its
 * entry was removed (a crash between SendCommand and recording it, a claim dropped as stale), a
 * removal whose entry was reverted, files deleted on the host by someone else. The reconcile
 * re-reads such hosts with the inventory document, whose report replaces the record.
 */

/** How a completed document changes the cache of the host it ran on. */
export type CommandEffect = 'adds' | 'removes';

/**
 * Whether a successful command's effect contradicts what is recorded for its image on that host:
 * the image arrived but the record holds no live entry for it (or a failed one), or it was
 * removed but the record still shows a copy cached before the removal was sent. Anything else is
 * consistent (a duplicate or late result of work already settled, a new fetch after a removal).
 */
export const resultContradictsRecord = (
  effect: CommandEffect,
  status: string,
  entry: HostImageEntry | undefined,
  sentAt: number,
): boolean => {
  if (status !== 'Success') return false;
  if (effect === 'adds') return entry === undefined || entry.state === 'failed';
  return entry?.state === 'cached' && entry.since <= sentAt;
};

/** What the inventory schedule reads of a host record. */
export interface InventoryHost {
  readonly instanceId: string;
  readonly status: 'joining' | 'running' | 'stopped';
  readonly inventoriedAt?: number;
  /** Set when a result contradicted the record: re-inventory at the next reconcile. */
  readonly inventoryDueAt?: number;
}

/**
 * This host's re-inventory interval: a stable share between half and all of `intervalMs` (FNV-1a
 * of the instance id), so hosts that joined in one burst report spread over the interval instead
 * of all in one reconcile, and keep that spread.
 */
export const inventoryIntervalOf = (instanceId: string, intervalMs: number): number => {
  let hash = 0x811c9dc5;
  for (let index = 0; index < instanceId.length; index += 1) {
    hash ^= instanceId.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return Math.floor(intervalMs * (0.5 + 0.5 * (hash / 2 ** 32)));
};

/**
 * Running, inventoried hosts (the others are initialized by the join path) whose record is
 * suspect or whose inventory is older than their interval; suspect ones first, then oldest
 * first, at most `limit` (the rest are due again at the next reconcile).
 */
export const hostsDueForInventory = <H extends InventoryHost>(
  hosts: readonly H[],
  options: { readonly now: number; readonly intervalMs: number; readonly limit: number },
): H[] => {
  const { now, intervalMs, limit } = options;
  const suspect = (host: H) => host.inventoryDueAt !== undefined && host.inventoryDueAt <= now;
  return hosts
    .filter((host) => host.status === 'running' && host.inventoriedAt !== undefined)
    .filter(
      (host) =>
        suspect(host) ||
        now - (host.inventoriedAt ?? now) >= inventoryIntervalOf(host.instanceId, intervalMs),
    )
    .sort(
      (a, b) =>
        Number(suspect(b)) - Number(suspect(a)) ||
        (a.inventoriedAt ?? 0) - (b.inventoriedAt ?? 0) ||
        a.instanceId.localeCompare(b.instanceId),
    )
    .slice(0, limit);
};
