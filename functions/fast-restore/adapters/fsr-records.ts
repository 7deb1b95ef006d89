import { type DynamoDBDocumentClient, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { callAws, conditionalWrite } from '../../shared/aws-errors';
import { collectPages } from '../../shared/pagination';
import { type FsrState, isFsrState, type PairKey } from '../domain/plan';

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

  list(): Promise<FsrRecord[]> {
    return collectPages<FsrRecord, Record<string, unknown>>(async (startKey) => {
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
      return { items: (page.Items ?? []).map(fsrRecordOf), nextToken: page.LastEvaluatedKey };
    });
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
    const applied = await this.#update(
      pair,
      `SET #state = :state, stateAt = :at${state === 'disabled' ? ', managed = :false' : ''}`,
      { ':state': state, ':at': at, ...(state === 'disabled' ? { ':false': false } : {}) },
      'attribute_not_exists(stateAt) OR stateAt <= :at',
    );
    // Not applied: a newer state is stored.
    return applied ? 'applied' : 'stale';
  }

  async markWanted(pair: PairKey, now: number): Promise<void> {
    await this.#update(pair, 'SET lastWantedAt = :now', { ':now': now });
  }

  acquirePlanLease(owner: string, now: number, ttlMs: number): Promise<boolean> {
    // False: another round holds the lease.
    return this.#updateLease(
      'SET #owner = :owner, leaseUntil = :until, expiresAt = :expiresAt',
      'attribute_not_exists(pk) OR leaseUntil <= :now OR #owner = :owner',
      {
        ':owner': owner,
        ':until': now + ttlMs,
        ':now': now,
        ':expiresAt': Math.floor((now + ttlMs) / 1000) + 86_400,
      },
    );
  }

  async releasePlanLease(owner: string): Promise<void> {
    // Not released: someone else holds it now (ours expired), theirs to release.
    await this.#updateLease('SET leaseUntil = :zero', '#owner = :owner', { ':owner': owner, ':zero': 0 });
  }

  #updateLease(expression: string, condition: string, values: Record<string, unknown>): Promise<boolean> {
    return conditionalWrite('UpdateItem', () =>
      this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: 'FSR-PLAN', sk: 'LEASE' },
          UpdateExpression: expression,
          ConditionExpression: condition,
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: values,
        }),
      ),
    );
  }

  /** Updates the pair's item; false when `condition` failed and nothing was written. */
  #update(
    pair: PairKey,
    expression: string,
    values: Record<string, unknown>,
    condition?: string,
  ): Promise<boolean> {
    return conditionalWrite('UpdateItem', () =>
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

/** A pair item read back; a field of the wrong type is absent, as if never written. */
const fsrRecordOf = (item: Record<string, unknown>): FsrRecord => ({
  snapshotId: String(item.snapshotId),
  availabilityZone: String(item.availabilityZone),
  managed: item.managed === true,
  ...(typeof item.imageId === 'string' ? { imageId: item.imageId } : {}),
  ...(typeof item.state === 'string' && isFsrState(item.state) ? { state: item.state } : {}),
  ...(typeof item.stateAt === 'number' ? { stateAt: item.stateAt } : {}),
  ...(typeof item.lastWantedAt === 'number' ? { lastWantedAt: item.lastWantedAt } : {}),
  ...(typeof item.enabledAt === 'number' ? { enabledAt: item.enabledAt } : {}),
});
