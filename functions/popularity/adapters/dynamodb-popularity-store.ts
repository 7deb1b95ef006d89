import {
  type AttributeValue,
  type DynamoDBClient,
  QueryCommand,
  type QueryCommandInput,
  type TransactWriteItem,
  TransactWriteItemsCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import type { BaseClients } from '../../shared/aws-clients';
import { callAws, conditionalWrite } from '../../shared/aws-errors';
import { ConditionFailedError, TransactionConflictError } from '../../shared/errors';
import { collectPages } from '../../shared/pagination';
import { retrying } from '../../shared/retry';
import type { Runtime } from '../../shared/runtime';
import type { PopularityConfig } from '../config';
import type { PopularityStanding } from '../domain/change';
import { type CounterSettings, type CounterValue, counterIncrements, rankImages } from '../domain/counters';
import { decayParameters, liveEras } from '../domain/decay';
import { type PopularityScope, scopeKey } from '../domain/scope';
import type { ChangeMarkerStore, LaunchRecord, PopularityStore, TopKOptions } from './popularity-store';

/**
 * Item layout in the popularity table (see docs/popularity.md):
 *
 * | item | pk | sk | gsi1pk | gsi1sk |
 * |---|---|---|---|---|
 * | counter | `POP#<scope>#<image>#<shard>` | `ERA#<era, 8 digits>` | `TOP#<scope>#ERA#<era>#<shard>` | `<image>` |
 * | dedupe marker | `EVENT#<dedupe key>` | `EVENT` | | |
 * | change marker | `NUDGE#<scope>#<image>` | `NUDGE` | | |
 *
 * Counters are written with `ADD` only, so concurrent, reordered and late writes commute.
 * Numbers go to DynamoDB as decimal strings with 9 fixed decimals: DynamoDB adds decimals
 * exactly (38 digits), so the stored sum does not depend on the order of the additions.
 */
export interface DynamoPopularityStoreOptions {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  readonly settings: CounterSettings;
  /** How long an event id is remembered, ms. */
  readonly dedupeTtlMs: number;
  /** Waits between attempts when concurrent transactions on a hot counter conflict. */
  readonly sleep: (ms: number) => Promise<void>;
  readonly random: () => number;
}

/** A transaction that lost to a concurrent one on the same hot counter is tried again this often. */
const CONFLICT_ATTEMPTS = 6;
const MARKER_SK = 'EVENT';
const NUDGE_SK = 'NUDGE';

/** Counter attributes, always through names: `value` is a DynamoDB reserved word. */
const COUNTER_NAMES = { '#value': 'value', '#launches': 'launches', '#image': 'image', '#era': 'era' };
const COUNTER_PROJECTION = '#image, #era, #value, #launches';

const s = (value: string): AttributeValue => ({ S: value });
const n = (value: number): AttributeValue => ({
  N: Number.isInteger(value) ? String(value) : value.toFixed(9),
});
const eraSortKey = (era: number): string => `ERA#${String(era).padStart(8, '0')}`;
const epochSeconds = (ms: number): number => Math.floor(ms / 1000);

const counterPartitionKey = (scope: PopularityScope, image: string, shard: number): string =>
  `POP#${scopeKey(scope)}#${image}#${shard}`;
const topPartitionKey = (scope: PopularityScope, era: number, shard: number): string =>
  `TOP#${scopeKey(scope)}#ERA#${era}#${shard}`;

export class DynamoPopularityStore implements PopularityStore {
  constructor(private readonly options: DynamoPopularityStoreOptions) {}

  async recordLaunch(record: LaunchRecord): Promise<{ recorded: boolean }> {
    const { tableName, settings, dedupeTtlMs } = this.options;
    const marker: TransactWriteItem = {
      Put: {
        TableName: tableName,
        Item: {
          pk: s(`EVENT#${record.eventId}`),
          sk: s(MARKER_SK),
          at: n(record.at),
          expiresAt: n(epochSeconds(record.at + dedupeTtlMs)),
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      },
    };
    const counters: TransactWriteItem[] = counterIncrements(record, settings).map((increment) => ({
      Update: {
        TableName: tableName,
        Key: {
          pk: s(counterPartitionKey(increment.scope, increment.image, increment.shard)),
          sk: s(eraSortKey(increment.era)),
        },
        UpdateExpression:
          'ADD #value :value, #launches :launches SET gsi1pk = :top, gsi1sk = :image, #image = :image, #era = :era, expiresAt = :expiresAt',
        ExpressionAttributeNames: COUNTER_NAMES,
        ExpressionAttributeValues: {
          ':value': n(increment.value),
          ':launches': n(increment.launches),
          ':top': s(topPartitionKey(increment.scope, increment.era, increment.shard)),
          ':image': s(increment.image),
          ':era': n(increment.era),
          ':expiresAt': n(epochSeconds(increment.expiresAt)),
        },
      },
    }));
    const command = new TransactWriteItemsCommand({ TransactItems: [marker, ...counters] });
    // Concurrent transactions on one counter item cancel each other (TransactionConflict);
    // nothing was written, so trying again is safe, and the marker keeps it exact. Only the
    // dedupe marker carries a condition: when it fails, this event was counted before.
    const recorded = await retrying(
      () => conditionalWrite('TransactWriteItems', () => this.options.client.send(command)),
      {
        sleep: this.options.sleep,
        random: this.options.random,
        attempts: CONFLICT_ATTEMPTS,
        retryable: (error) => error instanceof TransactionConflictError,
        baseMs: 25,
        capMs: 1_000,
      },
    );
    return { recorded };
  }

  async topK(scope: PopularityScope, k: number, now: number, options: TopKOptions = {}) {
    const { settings } = this.options;
    const queries = liveEras(now, settings.decay).flatMap((era) =>
      Array.from({ length: settings.shards }, (_, shard) =>
        this.#queryAll({
          IndexName: 'gsi1',
          KeyConditionExpression: 'gsi1pk = :top',
          ExpressionAttributeValues: { ':top': s(topPartitionKey(scope, era, shard)) },
          ProjectionExpression: COUNTER_PROJECTION,
          ExpressionAttributeNames: COUNTER_NAMES,
        }),
      ),
    );
    const counters = (await Promise.all(queries))
      .flat()
      .filter((counter) => options.where?.(counter.image) ?? true);
    return rankImages(counters, now, settings.decay, k);
  }

  async score(scope: PopularityScope, image: string, now: number) {
    return (await this.#ranked(scope, image, now))?.score ?? 0;
  }

  async launches(scope: PopularityScope, image: string, now: number) {
    return (await this.#ranked(scope, image, now))?.launches ?? 0;
  }

  async #ranked(scope: PopularityScope, image: string, now: number) {
    const { settings } = this.options;
    const [previous, current] = liveEras(now, settings.decay);
    const queries = Array.from({ length: settings.shards }, (_, shard) =>
      this.#queryAll({
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
        ExpressionAttributeValues: {
          ':pk': s(counterPartitionKey(scope, image, shard)),
          ':from': s(eraSortKey(previous)),
          ':to': s(eraSortKey(current)),
        },
        ProjectionExpression: COUNTER_PROJECTION,
        ExpressionAttributeNames: COUNTER_NAMES,
      }),
    );
    return rankImages((await Promise.all(queries)).flat(), now, settings.decay)[0];
  }

  #queryAll(input: Omit<QueryCommandInput, 'TableName'>): Promise<CounterValue[]> {
    return collectPages<CounterValue, Record<string, AttributeValue>>(async (startKey) => {
      const page = await callAws('Query', () =>
        this.options.client.send(
          new QueryCommand({ ...input, TableName: this.options.tableName, ExclusiveStartKey: startKey }),
        ),
      );
      return { items: (page.Items ?? []).map(counterOf), nextToken: page.LastEvaluatedKey };
    });
  }
}

/** A counter item as the ranking reads it. */
const counterOf = (item: Record<string, AttributeValue>): CounterValue => ({
  image: item.image?.S ?? '',
  era: Number(item.era?.N ?? 0),
  value: Number(item.value?.N ?? 0),
  launches: Number(item.launches?.N ?? 0),
});

/**
 * The popularity store over the runtime's DynamoDB client, with popularity's own settings (same
 * half-life, same shard count): the popularity function writes through it, and the cache planner
 * and fast restore read through it.
 */
export const popularityStoreFor = (
  runtime: Runtime<BaseClients>,
  config: PopularityConfig,
): DynamoPopularityStore =>
  new DynamoPopularityStore({
    client: runtime.clients.dynamodb,
    tableName: config.tables.popularity,
    settings: { decay: decayParameters(config.settings.halfLifeHours), shards: config.settings.shards },
    dedupeTtlMs: config.settings.dedupeTtlHours * 3_600_000,
    sleep: (ms) => runtime.clock.sleep(ms),
    random: runtime.random,
  });

export interface DynamoChangeMarkersOptions {
  readonly client: DynamoDBClient;
  readonly tableName: string;
}

export class DynamoChangeMarkers implements ChangeMarkerStore {
  constructor(private readonly options: DynamoChangeMarkersOptions) {}

  async claim(scope: PopularityScope, image: string, now: number, intervalMs: number) {
    try {
      const output = await callAws('UpdateItem', () =>
        this.options.client.send(
          new UpdateItemCommand({
            TableName: this.options.tableName,
            Key: this.#key(scope, image),
            UpdateExpression: 'SET nextCheckAt = :next, expiresAt = :expiresAt',
            ConditionExpression: 'attribute_not_exists(pk) OR nextCheckAt <= :now',
            ExpressionAttributeValues: {
              ':next': n(now + intervalMs),
              ':now': n(now),
              // Kept a week past the slot so the last announced standing survives quiet spells.
              ':expiresAt': n(epochSeconds(now + intervalMs + 7 * 86_400_000)),
            },
            ReturnValues: 'ALL_OLD',
          }),
        ),
      );
      const old = output.Attributes;
      const previous: PopularityStanding | undefined =
        old?.inTopK !== undefined
          ? { inTopK: old.inTopK.BOOL === true, aboveThreshold: old.aboveThreshold?.BOOL === true }
          : undefined;
      return { previous };
    } catch (error) {
      // Another caller holds the slot until a later time.
      if (error instanceof ConditionFailedError) return undefined;
      throw error;
    }
  }

  async save(scope: PopularityScope, image: string, standing: PopularityStanding) {
    await callAws('UpdateItem', () =>
      this.options.client.send(
        new UpdateItemCommand({
          TableName: this.options.tableName,
          Key: this.#key(scope, image),
          UpdateExpression: 'SET inTopK = :inTopK, aboveThreshold = :above',
          ExpressionAttributeValues: {
            ':inTopK': { BOOL: standing.inTopK },
            ':above': { BOOL: standing.aboveThreshold },
          },
        }),
      ),
    );
  }

  #key(scope: PopularityScope, image: string): Record<string, AttributeValue> {
    return { pk: s(`NUDGE#${scopeKey(scope)}#${image}`), sk: s(NUDGE_SK) };
  }
}
