import { type DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { conditionalWrite } from '../../shared/aws-errors';

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
    // False: the condition failed, the hour is full.
    return conditionalWrite('UpdateItem', () =>
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
  }
}

/** The hour (since the epoch) `now` falls in. */
export const hourOf = (now: number): number => Math.floor(now / HOUR_MS);
