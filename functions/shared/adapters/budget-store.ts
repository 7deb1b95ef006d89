import { type DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { conditionalWriteOrFound } from '../aws-errors';
import { TTL_ATTRIBUTE } from '../tables';

/** What a conditional change of a bucket found: done, or the bucket's fullAt as it stands (undefined: no item). */
export type BucketChange =
  | { readonly done: true }
  | { readonly done: false; readonly fullAt: number | undefined };

/**
 * The account budget's store: one item per bucket and pool (`<pool>#<bucket>`) holding the
 * bucket's `fullAt` (account-budget.ts, `levelAt`) that every execution environment of every
 * function reserves on. Both changes are conditional single-item updates: a reservation on a
 * bucket in use is an atomic addition, so environments calling together never lose it to one
 * another; only restarting a full bucket can find that someone restarted it first.
 */
export interface BudgetStore {
  /** Sets fullAt to `fullAt` if the bucket is full at `now` (its fullAt is before `now`) or has none. */
  restart(key: string, fullAt: number, now: number): Promise<BucketChange>;
  /** Adds `byMs` to fullAt if it is within [`now`, `atMost`]; done with the new fullAt. */
  extend(
    key: string,
    byMs: number,
    now: number,
    atMost: number,
  ): Promise<{ readonly done: true; readonly fullAt: number } | Extract<BucketChange, { done: false }>>;
}

/**
 * An item untouched for a day expires (TTL): a bucket nobody used for that long has long been
 * full again, which is what a missing item reads as.
 */
const IDLE_EXPIRY_SECONDS = 24 * 3600;

const expiresAt = (fullAt: number): number => Math.ceil(fullAt / 1000) + IDLE_EXPIRY_SECONDS;

/** A refused item's fullAt: the error carries DynamoDB's typed form, not the document client's. */
const fullAtFound = (found: Readonly<Record<string, unknown>> | undefined): number | undefined => {
  const fullAt = (found?.fullAt as { N?: string } | undefined)?.N;
  return fullAt === undefined ? undefined : Number(fullAt);
};

export const dynamoBudgetStore = (documents: DynamoDBDocumentClient, tableName: string): BudgetStore => ({
  async restart(key, fullAt, now) {
    const change = await conditionalWriteOrFound('UpdateItem', () =>
      documents.send(
        new UpdateCommand({
          TableName: tableName,
          Key: { pk: key },
          UpdateExpression: 'SET fullAt = :fullAt, #ttl = :ttl',
          // An item without fullAt is a level the first design stored (tokens, version): it is
          // taken as full, as a missing item is, rather than refusing every call until its TTL.
          ConditionExpression: 'attribute_not_exists(fullAt) OR fullAt < :now',
          ExpressionAttributeNames: { '#ttl': TTL_ATTRIBUTE },
          ExpressionAttributeValues: { ':fullAt': fullAt, ':now': now, ':ttl': expiresAt(fullAt) },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      ),
    );
    return change.written ? { done: true } : { done: false, fullAt: fullAtFound(change.found) };
  },
  async extend(key, byMs, now, atMost) {
    const change = await conditionalWriteOrFound('UpdateItem', () =>
      documents.send(
        new UpdateCommand({
          TableName: tableName,
          Key: { pk: key },
          // An atomic addition: environments reserving together each get their own span.
          UpdateExpression: 'ADD fullAt :by SET #ttl = :ttl',
          ConditionExpression: 'fullAt BETWEEN :now AND :atMost',
          ExpressionAttributeNames: { '#ttl': TTL_ATTRIBUTE },
          ExpressionAttributeValues: {
            ':by': byMs,
            ':now': now,
            ':atMost': atMost,
            ':ttl': expiresAt(atMost + byMs),
          },
          ReturnValues: 'UPDATED_NEW',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      ),
    );
    return change.written
      ? { done: true, fullAt: Number(change.answer.Attributes?.fullAt) }
      : { done: false, fullAt: fullAtFound(change.found) };
  },
});

/**
 * The same store in memory, with DynamoDB's conditional semantics: the benchmarks pace a baseline
 * client with it, and the unit tests check the budget against it (the DynamoDB store is checked on
 * DynamoDB Local).
 */
export const memoryBudgetStore = (): BudgetStore => {
  const buckets = new Map<string, number>();
  return {
    async restart(key, fullAt, now) {
      const stored = buckets.get(key);
      if (stored !== undefined && stored >= now) return { done: false, fullAt: stored };
      buckets.set(key, fullAt);
      return { done: true };
    },
    async extend(key, byMs, now, atMost) {
      const stored = buckets.get(key);
      if (stored === undefined || stored < now || stored > atMost) return { done: false, fullAt: stored };
      buckets.set(key, stored + byMs);
      return { done: true, fullAt: stored + byMs };
    },
  };
};
