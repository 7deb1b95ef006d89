import { type DynamoDBDocumentClient, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { callAws, classifyAwsError, translateAwsError } from '../../shared/aws-errors';
import { ConflictError } from '../../shared/errors';
import type { FsrState, PairKey } from '../domain/plan';

/** What warmboot remembers about one snapshot-AZ pair (imageCache table). */
export interface FsrRecord extends PairKey {
  readonly imageId?: string;
  /** Set before warmboot's Enable call, so a crash right after it still leaves the pair ours. */
  readonly managed: boolean;
  readonly state?: FsrState;
  /** Time of the state, epoch ms: older state events never overwrite newer ones. */
  readonly stateAt?: number;
  readonly lastWantedAt?: number;
  /** When warmboot last claimed it to enable it, epoch ms: the start of its minimum hold. */
  readonly enabledAt?: number;
}

export interface FsrRecordStore {
  list(): Promise<FsrRecord[]>;
  /** Claims the pair for warmboot before enabling it; its minimum hold counts from `now`. */
  markManaged(pair: PairKey, imageId: string, now: number): Promise<void>;
  /** Applies a state seen at `at` unless a newer one is stored. `disabled` releases the claim. */
  recordState(pair: PairKey, state: FsrState, at: number): Promise<'applied' | 'stale'>;
  markWanted(pair: PairKey, now: number): Promise<void>;
  /** One planner at a time: a conditional lease, so two rounds never both spend the same budget. */
  acquirePlanLease(owner: string, now: number, ttlMs: number): Promise<boolean>;
  releasePlanLease(owner: string): Promise<void>;
}

/**
 * Item layout in the imageCache table:
 * | item | pk | sk | gsi1pk | gsi1sk |
 * |---|---|---|---|---|
 * | pair | `FSR#<snapshot>` | `<az>` | `FSR` | `<snapshot>#<az>` |
 * | plan lease | `FSR-PLAN` | `LEASE` | | |
 * The pair records stay few (bounded by the budget plus history), so one GSI key lists them all.
 */
export class DynamoFsrRecords implements FsrRecordStore {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async list(): Promise<FsrRecord[]> {
    const records: FsrRecord[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await callAws('Query', () =>
        this.documents.send(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: 'gsi1',
            KeyConditionExpression: 'gsi1pk = :fsr',
            ExpressionAttributeValues: { ':fsr': 'FSR' },
            ExclusiveStartKey: startKey,
          }),
        ),
      );
      for (const item of page.Items ?? []) {
        records.push({
          snapshotId: String(item.snapshotId),
          availabilityZone: String(item.availabilityZone),
          managed: item.managed === true,
          ...(typeof item.imageId === 'string' ? { imageId: item.imageId } : {}),
          ...(typeof item.state === 'string' ? { state: item.state as FsrState } : {}),
          ...(typeof item.stateAt === 'number' ? { stateAt: item.stateAt } : {}),
          ...(typeof item.lastWantedAt === 'number' ? { lastWantedAt: item.lastWantedAt } : {}),
          ...(typeof item.enabledAt === 'number' ? { enabledAt: item.enabledAt } : {}),
        });
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return records;
  }

  async markManaged(pair: PairKey, imageId: string, now: number): Promise<void> {
    await this.#update(
      pair,
      'SET managed = :true, imageId = :imageId, lastWantedAt = :now, enabledAt = :now',
      {
        ':true': true,
        ':imageId': imageId,
        ':now': now,
      },
    );
  }

  async recordState(pair: PairKey, state: FsrState, at: number): Promise<'applied' | 'stale'> {
    try {
      await this.#update(
        pair,
        `SET #state = :state, stateAt = :at${state === 'disabled' ? ', managed = :false' : ''}`,
        { ':state': state, ':at': at, ...(state === 'disabled' ? { ':false': false } : {}) },
        'attribute_not_exists(stateAt) OR stateAt <= :at',
      );
      return 'applied';
    } catch (error) {
      // callAws turned ConditionalCheckFailedException into a ConflictError: a newer state is stored.
      if (error instanceof ConflictError) return 'stale';
      throw error;
    }
  }

  async markWanted(pair: PairKey, now: number): Promise<void> {
    await this.#update(pair, 'SET lastWantedAt = :now', { ':now': now });
  }

  async acquirePlanLease(owner: string, now: number, ttlMs: number): Promise<boolean> {
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: 'FSR-PLAN', sk: 'LEASE' },
          UpdateExpression: 'SET #owner = :owner, leaseUntil = :until, expiresAt = :expiresAt',
          ConditionExpression: 'attribute_not_exists(pk) OR leaseUntil <= :now OR #owner = :owner',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: {
            ':owner': owner,
            ':until': now + ttlMs,
            ':now': now,
            ':expiresAt': Math.floor((now + ttlMs) / 1000) + 86_400,
          },
        }),
      );
      return true;
    } catch (error) {
      if (classifyAwsError(error) === 'conditional-check-failed') return false;
      throw translateAwsError('UpdateItem', error);
    }
  }

  async releasePlanLease(owner: string): Promise<void> {
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: 'FSR-PLAN', sk: 'LEASE' },
          UpdateExpression: 'SET leaseUntil = :zero',
          ConditionExpression: '#owner = :owner',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':owner': owner, ':zero': 0 },
        }),
      );
    } catch (error) {
      // Someone else holds it now (ours expired): theirs to release.
      if (classifyAwsError(error) !== 'conditional-check-failed')
        throw translateAwsError('UpdateItem', error);
    }
  }

  async #update(
    pair: PairKey,
    expression: string,
    values: Record<string, unknown>,
    condition?: string,
  ): Promise<void> {
    await callAws('UpdateItem', () =>
      this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: `FSR#${pair.snapshotId}`, sk: pair.availabilityZone },
          UpdateExpression: `${expression}, snapshotId = :snapshotId, availabilityZone = :az, gsi1pk = :fsr, gsi1sk = :gsi1sk`,
          ...(condition ? { ConditionExpression: condition } : {}),
          ...(expression.includes('#state') ? { ExpressionAttributeNames: { '#state': 'state' } } : {}),
          ExpressionAttributeValues: {
            ...values,
            ':snapshotId': pair.snapshotId,
            ':az': pair.availabilityZone,
            ':fsr': 'FSR',
            ':gsi1sk': `${pair.snapshotId}#${pair.availabilityZone}`,
          },
        }),
      ),
    );
  }
}
