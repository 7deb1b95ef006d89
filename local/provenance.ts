import type { ItemWrite } from './call-journal';
import type { LocalCloud } from './cloud';
import {
  type CallFacts,
  type ManagementClaim,
  onlyManagedTouched,
  type PoolMemberVersion,
  poolClaims,
  runningInstancesKept,
  type ShelfFacts,
  type ShelfVersion,
  safetySnapshotsKept,
  shelvingClaims,
  type Violation,
} from './invariants';

/**
 * The call journal's writes read as the records they wrote (the item layouts of
 * functions/shelving/adapters/store.ts and functions/pools/adapters/store.ts), for the checkers
 * of local/invariants.ts that judge each destructive call against who managed what at that moment.
 * Writes made outside the deployed functions (a test seeding DynamoDB directly) are not seen.
 */

const SHELF_PREFIX = 'SHELF#';
const POOL_PREFIX = 'POOL#';
const MEMBER_PREFIX = 'MEMBER#';

/** Every version of every shelve record, in write order (item `SHELF#<id>` / `RECORD`). */
export const shelfHistory = (writes: readonly ItemWrite[], shelvesTable: string): ShelfVersion[] =>
  writes
    .filter(
      (write) => write.table === shelvesTable && write.sk === 'RECORD' && write.pk.startsWith(SHELF_PREFIX),
    )
    // The shelving store writes records whole (Put) and removes them (Delete); it never updates one.
    .filter((write) => write.kind !== 'update')
    .map((write) => {
      const record = write.kind === 'put' ? (write.item?.record as ShelfFacts | undefined) : undefined;
      return {
        seq: write.seq,
        recordId: write.pk.slice(SHELF_PREFIX.length),
        ...(record ? { record } : {}),
      };
    });

/** Every version of every pool member item, in write order (item `POOL#<pool>` / `MEMBER#<instance>`). */
export const poolMemberHistory = (writes: readonly ItemWrite[], poolsTable: string): PoolMemberVersion[] =>
  writes
    .filter(
      (write) =>
        write.table === poolsTable &&
        write.kind !== 'update' &&
        write.pk.startsWith(POOL_PREFIX) &&
        write.sk.startsWith(MEMBER_PREFIX),
    )
    .map((write) => ({
      seq: write.seq,
      pool: write.pk.slice(POOL_PREFIX.length),
      instanceId: write.sk.slice(MEMBER_PREFIX.length),
      ...(write.kind === 'put' ? { state: String(write.item?.state ?? '') } : {}),
    }));

/** What the call checkers read from one cloud's journal. */
export interface CallProvenance {
  readonly calls: readonly CallFacts[];
  readonly shelves: readonly ShelfVersion[];
  readonly claims: readonly ManagementClaim[];
}

export const callProvenance = (cloud: LocalCloud): CallProvenance => {
  const writes = cloud.calls.writes();
  const shelves = shelfHistory(writes, cloud.tables.shelves);
  return {
    calls: cloud.calls.calls(),
    shelves,
    claims: [...shelvingClaims(shelves), ...poolClaims(poolMemberHistory(writes, cloud.tables.pools))],
  };
};

/**
 * The invariants judged call by call (issue 14): no instance a shelve record runs as (or holding a
 * retained volume) terminated, safety snapshots kept until their record is confirmed deleted, and
 * no capability touching what another capability, or nothing, manages.
 */
export const callViolations = (provenance: CallProvenance): Violation[] => [
  ...runningInstancesKept(provenance.calls, provenance.shelves),
  ...safetySnapshotsKept(provenance.calls, provenance.shelves),
  ...onlyManagedTouched(provenance.calls, provenance.claims),
];
