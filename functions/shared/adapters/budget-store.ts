import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { BucketLevel } from '../account-budget';
import { callAws, conditionalWrite } from '../aws-errors';
import { TTL_ATTRIBUTE } from '../tables';

/** A bucket's level as read, with the version a write must still find. */
export interface StoredLevel {
  readonly level: BucketLevel;
  readonly version: number;
}

/**
 * The account budget's store: one item per bucket and pool (`<pool>#<bucket>`) holding the level
 * every execution environment of every function leases from.
 */
export interface BudgetStore {
  /** The bucket's level (strongly consistent), or undefined for a bucket nobody used yet. */
  read(key: string): Promise<StoredLevel | undefined>;
  /**
   * Stores `level` if the item is still at `expected` (undefined: still absent). False when
   * another environment wrote first: the caller reads again.
   */
  write(key: string, level: BucketLevel, expected: number | undefined): Promise<boolean>;
}

/**
 * An item untouched for a day expires (TTL): a bucket nobody used for that long has long been
 * full again, which is what a missing item reads as.
 */
const IDLE_EXPIRY_SECONDS = 24 * 3600;

export const dynamoBudgetStore = (documents: DynamoDBDocumentClient, tableName: string): BudgetStore => ({
  async read(key) {
    const answer = await callAws('GetItem', () =>
      documents.send(new GetCommand({ TableName: tableName, Key: { pk: key }, ConsistentRead: true })),
    );
    const item = answer.Item;
    if (!item) return undefined;
    return {
      level: { tokens: Number(item.tokens), refilledAt: Number(item.refilledAt) },
      version: Number(item.version),
    };
  },
  write(key, level, expected) {
    return conditionalWrite('PutItem', () =>
      documents.send(
        new PutCommand({
          TableName: tableName,
          Item: {
            pk: key,
            tokens: level.tokens,
            refilledAt: level.refilledAt,
            version: (expected ?? 0) + 1,
            [TTL_ATTRIBUTE]: Math.floor(level.refilledAt / 1000) + IDLE_EXPIRY_SECONDS,
          },
          ...(expected === undefined
            ? { ConditionExpression: 'attribute_not_exists(pk)' }
            : {
                ConditionExpression: 'version = :expected',
                ExpressionAttributeValues: { ':expected': expected },
              }),
        }),
      ),
    );
  },
});

/**
 * The same store in memory, with DynamoDB's conditional semantics: the benchmarks pace a baseline
 * client with it, and the unit tests check the budget against it (the DynamoDB store is checked on
 * DynamoDB Local).
 */
export const memoryBudgetStore = (): BudgetStore => {
  const items = new Map<string, StoredLevel>();
  return {
    async read(key) {
      return items.get(key);
    },
    async write(key, level, expected) {
      if (items.get(key)?.version !== expected) return false;
      items.set(key, { level, version: (expected ?? 0) + 1 });
      return true;
    },
  };
};
