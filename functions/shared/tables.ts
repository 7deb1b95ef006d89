/**
 * The DynamoDB tables, defined once: the CDK data construct creates them from this and the
 * local cloud creates the same tables in DynamoDB Local. Every data table has a string
 * partition key `pk`, sort key `sk`, up to two generic GSIs and the TTL attribute `expiresAt`
 * (epoch seconds) for transient records.
 */
export interface TableSpec {
  /** Logical id, also the environment variable suffix (`<ID>_TABLE`). */
  readonly id: 'popularity' | 'imageCache' | 'pools' | 'shelves' | 'ec2Budget' | 'idempotency';
  readonly partitionKey: string;
  readonly sortKey?: string;
  readonly ttlAttribute: string;
  readonly indexes: readonly { name: string; partitionKey: string; sortKey: string }[];
  readonly purpose: string;
}

export const TTL_ATTRIBUTE = 'expiresAt';

const gsi1 = { name: 'gsi1', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' } as const;
const gsi2 = { name: 'gsi2', partitionKey: 'gsi2pk', sortKey: 'gsi2sk' } as const;

export const TABLES = {
  popularity: {
    id: 'popularity',
    partitionKey: 'pk',
    sortKey: 'sk',
    ttlAttribute: TTL_ATTRIBUTE,
    indexes: [gsi1],
    purpose:
      'sharded forward-decayed launch counters per image, image+AZ, image+host group; event-id dedupe markers',
  },
  imageCache: {
    id: 'imageCache',
    partitionKey: 'pk',
    sortKey: 'sk',
    ttlAttribute: TTL_ATTRIBUTE,
    indexes: [gsi1],
    purpose: 'host groups, pins, per-host inventory, warm/evict commands, fast-restore state',
  },
  pools: {
    id: 'pools',
    partitionKey: 'pk',
    sortKey: 'sk',
    ttlAttribute: TTL_ATTRIBUTE,
    indexes: [gsi1],
    purpose: 'pool specs, members and their lifecycle state, claims',
  },
  shelves: {
    id: 'shelves',
    partitionKey: 'pk',
    sortKey: 'sk',
    ttlAttribute: TTL_ATTRIBUTE,
    indexes: [gsi1, gsi2],
    purpose: 'shelve records, retained volumes, unshelve sagas',
  },
  ec2Budget: {
    id: 'ec2Budget',
    partitionKey: 'pk',
    ttlAttribute: TTL_ATTRIBUTE,
    indexes: [],
    purpose:
      "the account budget: one fullAt per EC2 throttling bucket, reserved on by every function's EC2 calls",
  },
  idempotency: {
    id: 'idempotency',
    partitionKey: 'id',
    ttlAttribute: 'expiration',
    indexes: [],
    purpose: 'Powertools idempotency records keyed by EventBridge event id',
  },
} as const satisfies Record<string, TableSpec>;

export type TableId = keyof typeof TABLES;

/** Environment variable that carries a table's name into a function. */
export const tableEnvVar = (id: TableId): string =>
  `${id.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}_TABLE`;
