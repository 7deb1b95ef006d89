import { type DynamoDBDocumentClient, paginateQuery, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import * as z from 'zod';
import { callAws } from '../../shared/aws-errors';
import { DependencyError } from '../../shared/errors';
import type { AdvisedWeight, AdvisedWeightAddition } from '../domain/recent-advice';

/**
 * Placement's memory of its own advice, in the `imageCache` table (the image cache owns the
 * table; these items sit in their own partition, so the planner's group Query never reads them):
 *
 * | item | pk | sk | notes |
 * |---|---|---|---|
 * | advised weight | `PL#<group>` | `ERA#<era, 12 digits>#<instance>` | instanceId, era, value (forward-decayed, `ADD`); TTL two eras + 1 day |
 */
export interface RecentAdviceStore {
  /** The weights of a group's hosts in `eras` (inclusive range, oldest first). */
  weights(group: string, eras: readonly [number, number]): Promise<AdvisedWeight[]>;
  /** Adds each addition to its host's weight of its era (a commutative `ADD`, never a conflict). */
  add(group: string, additions: readonly AdvisedWeightAddition[]): Promise<void>;
}

const partitionKey = (group: string) => `PL#${group}`;
const eraKey = (era: number) => `ERA#${String(era).padStart(12, '0')}#`;

const weightItem = z.object({ instanceId: z.string(), era: z.number(), value: z.number() });

export class DynamoRecentAdviceStore implements RecentAdviceStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async weights(group: string, [from, to]: readonly [number, number]): Promise<AdvisedWeight[]> {
    const items: Record<string, unknown>[] = [];
    const pages = paginateQuery(
      { client: this.client },
      {
        TableName: this.tableName,
        // `~` sorts after every character of an instance id: the range holds all of era `to`.
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
        ExpressionAttributeValues: {
          ':pk': partitionKey(group),
          ':from': eraKey(from),
          ':to': `${eraKey(to)}~`,
        },
        ConsistentRead: true,
      },
    );
    await callAws('Query', async () => {
      for await (const page of pages) items.push(...(page.Items ?? []));
    });
    return items.map((item) => {
      const parsed = weightItem.safeParse(item);
      if (!parsed.success)
        throw new DependencyError(`imageCache item ${String(item.pk)} ${String(item.sk)} is malformed`);
      return parsed.data;
    });
  }

  async add(group: string, additions: readonly AdvisedWeightAddition[]): Promise<void> {
    await Promise.all(
      additions.map((addition) =>
        callAws('UpdateItem', () =>
          this.client.send(
            new UpdateCommand({
              TableName: this.tableName,
              Key: { pk: partitionKey(group), sk: `${eraKey(addition.era)}${addition.instanceId}` },
              UpdateExpression:
                'ADD #value :value SET instanceId = :instance, era = :era, expiresAt = :expiresAt',
              ExpressionAttributeNames: { '#value': 'value' },
              ExpressionAttributeValues: {
                ':value': addition.value,
                ':instance': addition.instanceId,
                ':era': addition.era,
                ':expiresAt': Math.floor(addition.expiresAt / 1000),
              },
            }),
          ),
        ),
      ),
    );
  }
}

/** The same store in memory: for unit tests and the cache benchmark, which runs the placement function. */
export class MemoryRecentAdviceStore implements RecentAdviceStore {
  /** Keyed by group, then `<era>#<instance>`. */
  readonly #groups = new Map<string, Map<string, AdvisedWeight>>();

  async weights(group: string, [from, to]: readonly [number, number]): Promise<AdvisedWeight[]> {
    return [...(this.#groups.get(group)?.values() ?? [])]
      .filter((weight) => weight.era >= from && weight.era <= to)
      .map((weight) => ({ ...weight }));
  }

  async add(group: string, additions: readonly AdvisedWeightAddition[]): Promise<void> {
    let items = this.#groups.get(group);
    if (!items) {
      items = new Map();
      this.#groups.set(group, items);
    }
    for (const { instanceId, era, value } of additions) {
      const key = `${era}#${instanceId}`;
      items.set(key, { instanceId, era, value: (items.get(key)?.value ?? 0) + value });
    }
  }
}
