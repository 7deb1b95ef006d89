import { type DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { callAws } from '../../shared/aws-errors';
import { ConflictError } from '../../shared/errors';

/**
 * How many `Image Launched` launches one caller may report per hour (security review H4: forged
 * popularity would steer the cache and spend the FSR budget). One item per caller and hour in the
 * popularity table, `QUOTA#<caller>#<hour>` / `QUOTA`, expiring after two hours.
 */
export interface LaunchQuota {
  /** Adds `count` to the caller's hour if it stays within `limit`; false (nothing added) if not. */
  consume(caller: string, hour: number, count: number, limit: number): Promise<boolean>;
}

const HOUR_MS = 3_600_000;

export class DynamoLaunchQuota implements LaunchQuota {
  constructor(private readonly options: { readonly client: DynamoDBClient; readonly tableName: string }) {}

  async consume(caller: string, hour: number, count: number, limit: number): Promise<boolean> {
    if (count > limit) return false;
    try {
      await callAws('UpdateItem', () =>
        this.options.client.send(
          new UpdateItemCommand({
            TableName: this.options.tableName,
            Key: { pk: { S: `QUOTA#${caller}#${hour}` }, sk: { S: 'QUOTA' } },
            UpdateExpression: 'ADD #used :count SET expiresAt = :expiresAt',
            ConditionExpression: 'attribute_not_exists(#used) OR #used <= :room',
            ExpressionAttributeNames: { '#used': 'used' },
            ExpressionAttributeValues: {
              ':count': { N: String(count) },
              ':room': { N: String(limit - count) },
              ':expiresAt': { N: String(Math.floor(((hour + 2) * HOUR_MS) / 1000)) },
            },
          }),
        ),
      );
      return true;
    } catch (error) {
      // callAws reports the failed condition (the hour is full) as a ConflictError.
      if (error instanceof ConflictError) return false;
      throw error;
    }
  }
}

/** The same, in memory (tests). */
export class MemoryLaunchQuota implements LaunchQuota {
  readonly #used = new Map<string, number>();

  async consume(caller: string, hour: number, count: number, limit: number): Promise<boolean> {
    const key = `${caller}#${hour}`;
    const used = this.#used.get(key) ?? 0;
    if (used + count > limit) return false;
    this.#used.set(key, used + count);
    return true;
  }
}

/** The hour (since the epoch) `now` falls in. */
export const hourOf = (now: number): number => Math.floor(now / HOUR_MS);
