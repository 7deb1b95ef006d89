import {
  BatchGetCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  paginateQuery,
  type QueryCommandInput,
  TransactWriteCommand,
} from '@aws-sdk/lib-dynamodb';
import { callAws, conditionalWrite } from '../../shared/aws-errors';
import { ConflictError } from '../../shared/errors';
import { TTL_ATTRIBUTE } from '../../shared/tables';
import type { DeletionConfirmation } from '../domain/requests';
import {
  type MoveAnswer,
  type RequestIdentity,
  type RequestResolution,
  SAGA_PHASES,
  type ShelfRecord,
  type ShelveAnswer,
} from '../domain/types';

import {
  ANSWER_PREFIX,
  answerAbsent,
  answerItem,
  answerKey,
  answerOf,
  confirmationKey,
  dueKey,
  instanceKey,
  linkItems,
  MOVE_PREFIX,
  moveAnswerItem,
  moveKey,
  recordItem,
  recordKey,
  recordOf,
  requestPk,
  resolvedKey,
  unexpired,
} from './store-items';

/**
 * The shelves table, behind a narrow interface with a DynamoDB and an in-memory implementation.
 *
 * Items (pk / sk):
 * - `SHELF#<recordId>` / `RECORD`: the record (attribute `record`), `step` and `version` on top
 *   for conditions; gsi1 = (`TENANT#<tenant>`, `SHELF#<recordId>`) for "all of tenant X";
 *   gsi2 = (`SAGA#<phase>`, `<nextDueAt, zero-padded ms>#<recordId>`) only while work is due,
 *   so the reconcile reads exactly the records whose time has come; TTL `expiresAt` once a
 *   record is finished and owns no volume.
 * - `INSTANCE#<instanceId>` / `SHELF`: which record an instance (shelved or replacement)
 *   belongs to. Created with the record in one transaction, conditional on not existing: an
 *   instance is in at most one live record, and a duplicate shelve request finds the first one.
 * - `REQUEST#<requestId>` / `SHELVE#<instanceId>`: what Shelve request `requestId` answered for
 *   the instance (attribute `answer`), TTL `expiresAt`. When the request created a record, this
 *   item is written in the record's own transaction, so a record never exists without the
 *   request that made it being recognizable. It outlives the instance link (which goes when the
 *   instance is unshelved) and the record itself (Delete Shelved Record), so a retry of the same
 *   event answers what the first handling answered instead of shelving the instance again.
 * - `REQUEST#<requestId>` / `RESOLVED`: what an Offload or Unshelve request's instance ids and
 *   tenant resolved to (attribute `resolution`: record ids, and the instance ids that named no
 *   record), TTL `expiresAt`. Written conditionally (first wins) before the request moves any
 *   record, so a retry acts on the same records even when an instance was shelved again since.
 * - `REQUEST#<requestId>` / `MOVE#<recordId>`: what that request answered for the record
 *   (attribute `answer`), TTL `expiresAt`; written in the record's own conditional write when the
 *   request moved it, conditionally (first wins) otherwise.
 * - `SHELF#<recordId>` / `CONFIRM#<token>`: a deletion plan the unconfirmed Delete Shelved Record
 *   issued (attribute `confirmation`: the exact volume and snapshot ids, the record's version, the
 *   expiry), TTL `expiresAt`. Keyed by record and token, so a token works for its record only.
 *
 * Every update is conditional on the (step, version) the caller read.
 */
export interface ShelfStore {
  get(recordId: string): Promise<ShelfRecord | undefined>;
  getMany(recordIds: readonly string[]): Promise<ShelfRecord[]>;
  recordIdForInstance(instanceId: string): Promise<string | undefined>;
  /**
   * Creates the record and claims its instance, and (given `request`) remembers in the same
   * transaction that this request created it. Answers the existing record id when the instance is
   * already claimed, or the remembered answer when this request was handled before.
   */
  create(record: ShelfRecord, request?: RequestIdentity): Promise<CreateOutcome>;
  /** What request `requestId` answered before, by instance id (answers expired at `now` excluded). */
  shelveAnswers(requestId: string, now: number): Promise<Map<string, ShelveAnswer>>;
  /**
   * Remembers an answer that created no record (found one, or refused). The first answer stays:
   * when one is already remembered for the instance, that one is returned instead.
   */
  rememberShelveAnswer(request: RequestIdentity, answer: ShelveAnswer, now: number): Promise<ShelveAnswer>;
  /** What Offload/Unshelve request `requestId` resolved to when first handled (expired excluded). */
  resolution(requestId: string, now: number): Promise<RequestResolution | undefined>;
  /** Remembers the resolution; the first one stays (an overlapping delivery's is returned instead). */
  rememberResolution(
    request: RequestIdentity,
    resolution: RequestResolution,
    now: number,
  ): Promise<RequestResolution>;
  /** What Offload/Unshelve request `requestId` answered before, by record id. */
  moveAnswers(requestId: string, now: number): Promise<Map<string, MoveAnswer>>;
  /** Remembers an answer that moved nothing; the first answer stays (and is returned). */
  rememberMoveAnswer(request: RequestIdentity, answer: MoveAnswer, now: number): Promise<MoveAnswer>;
  /** Writes `next` if the stored record still has `expected`'s step and version; false when it lost a race. */
  update(expected: ShelfRecord, next: ShelfRecord, options?: UpdateOptions): Promise<boolean>;
  byTenant(tenant: string, limit: number): Promise<ShelfRecord[]>;
  /** Records whose nextDueAt ≤ now, oldest first. */
  due(now: number, limit: number): Promise<ShelfRecord[]>;
  /** Deletes the record and its instance links (conditional on version). */
  remove(record: ShelfRecord): Promise<boolean>;
  /** Stores a deletion's confirmation under its record and token until it expires (a new token each time). */
  rememberConfirmation(confirmation: DeletionConfirmation): Promise<void>;
  /** The confirmation issued for `recordId` under `token`, expired or not (the domain judges). */
  confirmation(recordId: string, token: string): Promise<DeletionConfirmation | undefined>;
}

export type CreateOutcome =
  | { readonly created: true }
  | { readonly created: false; readonly existingRecordId: string }
  | { readonly created: false; readonly remembered: ShelveAnswer };

export interface UpdateOptions {
  /** Also link this instance to the record (a replacement). */
  readonly linkInstanceId?: string;
  /** Release the link of this instance (the record no longer holds it). */
  readonly unlinkInstanceId?: string;
  /** Epoch seconds after which DynamoDB may drop the record. */
  readonly expiresAt?: number;
  /** Remember, in the same write, that this request answered `answer` for the record (first wins). */
  readonly remember?: {
    readonly request: RequestIdentity;
    readonly answer: MoveAnswer;
    readonly now: number;
  };
}

export const dynamoShelfStore = (documents: DynamoDBDocumentClient, tableName: string): ShelfStore => {
  const readRemembered = async <T>(
    key: Record<string, unknown>,
    attribute: string,
    now: number,
  ): Promise<T | undefined> => {
    const answer = await callAws('GetItem', () =>
      documents.send(new GetCommand({ TableName: tableName, Key: key, ConsistentRead: true })),
    );
    return answer.Item?.[attribute] && unexpired(answer.Item[TTL_ATTRIBUTE], now)
      ? (answer.Item[attribute] as T)
      : undefined;
  };
  const readAnswer = (requestId: string, instanceId: string, now: number) =>
    readRemembered<ShelveAnswer>(answerKey(requestId, instanceId), 'answer', now);
  /** Unexpired answers of a request under one sort-key prefix, by answer id. */
  const answersUnder = async <T extends { readonly id: string }>(
    requestId: string,
    prefix: string,
    now: number,
  ): Promise<Map<string, T>> => {
    const answers = new Map<string, T>();
    const pages = paginateQuery(
      { client: documents },
      {
        TableName: tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :answers)',
        ExpressionAttributeValues: { ':pk': requestPk(requestId), ':answers': prefix },
        ConsistentRead: true,
      },
    );
    await callAws('Query', async () => {
      for await (const page of pages) {
        for (const item of page.Items ?? []) {
          const answer = unexpired(item[TTL_ATTRIBUTE], now) ? answerOf<T>(item.answer) : undefined;
          if (answer) answers.set(answer.id, answer);
        }
      }
    });
    return answers;
  };
  /** Puts `item` unless an unexpired one is there; false when one was (a first one wins). */
  const putFirst = (item: Record<string, unknown>, now: number): Promise<boolean> =>
    conditionalWrite('PutItem', () =>
      documents.send(new PutCommand({ TableName: tableName, Item: item, ...answerAbsent(now) })),
    );

  /** Records an index query finds, page after page, until `limit` of them are read. */
  const queryRecords = async (
    query: Pick<QueryCommandInput, 'IndexName' | 'KeyConditionExpression' | 'ExpressionAttributeValues'>,
    limit: number,
  ): Promise<ShelfRecord[]> => {
    const found: ShelfRecord[] = [];
    const pages = paginateQuery({ client: documents }, { TableName: tableName, ...query });
    await callAws('Query', async () => {
      for await (const page of pages) {
        for (const item of page.Items ?? []) {
          const record = recordOf(item);
          if (record) found.push(record);
        }
        if (found.length >= limit) break;
      }
    });
    return found.slice(0, limit);
  };

  return {
    async get(recordId) {
      const answer = await callAws('GetItem', () =>
        documents.send(
          new GetCommand({ TableName: tableName, Key: recordKey(recordId), ConsistentRead: true }),
        ),
      );
      return recordOf(answer.Item);
    },
    async getMany(recordIds) {
      const found: ShelfRecord[] = [];
      const unique = [...new Set(recordIds)];
      for (let start = 0; start < unique.length; start += 100) {
        let keys: Record<string, unknown>[] = unique.slice(start, start + 100).map(recordKey);
        while (keys.length > 0) {
          const request = keys;
          const answer = await callAws('BatchGetItem', () =>
            documents.send(
              new BatchGetCommand({ RequestItems: { [tableName]: { Keys: request, ConsistentRead: true } } }),
            ),
          );
          for (const item of answer.Responses?.[tableName] ?? []) {
            const record = recordOf(item);
            if (record) found.push(record);
          }
          keys = (answer.UnprocessedKeys?.[tableName]?.Keys as Record<string, unknown>[] | undefined) ?? [];
        }
      }
      return found;
    },
    async recordIdForInstance(instanceId) {
      const answer = await callAws('GetItem', () =>
        documents.send(
          new GetCommand({ TableName: tableName, Key: instanceKey(instanceId), ConsistentRead: true }),
        ),
      );
      return typeof answer.Item?.recordId === 'string' ? answer.Item.recordId : undefined;
    },
    async create(record, request) {
      const answer: ShelveAnswer = {
        id: record.instanceId,
        ok: true,
        recordId: record.recordId,
        created: true,
      };
      try {
        await callAws('TransactWriteItems', () =>
          documents.send(
            new TransactWriteCommand({
              TransactItems: [
                {
                  Put: {
                    TableName: tableName,
                    Item: recordItem(record),
                    ConditionExpression: 'attribute_not_exists(pk)',
                  },
                },
                {
                  Put: {
                    TableName: tableName,
                    Item: { ...instanceKey(record.instanceId), recordId: record.recordId },
                    ConditionExpression: 'attribute_not_exists(pk)',
                  },
                },
                ...(request
                  ? [
                      {
                        Put: {
                          TableName: tableName,
                          Item: answerItem(request, answer),
                          ...answerAbsent(record.shelvedAt),
                        },
                      },
                    ]
                  : []),
              ],
            }),
          ),
        );
        return { created: true };
      } catch (error) {
        if (!(error instanceof ConflictError)) throw error;
        if (request) {
          const remembered = await readAnswer(request.requestId, record.instanceId, record.shelvedAt);
          if (remembered) return { created: false, remembered };
        }
        const existing = await this.recordIdForInstance(record.instanceId);
        if (existing) return { created: false, existingRecordId: existing };
        throw error;
      }
    },
    async shelveAnswers(requestId, now) {
      return answersUnder<ShelveAnswer>(requestId, ANSWER_PREFIX, now);
    },
    async rememberShelveAnswer(request, answer, now) {
      if (await putFirst(answerItem(request, answer), now)) return answer;
      // An overlapping delivery of the same request answered first: its answer is the request's.
      return (await readAnswer(request.requestId, answer.id, now)) ?? answer;
    },
    async resolution(requestId, now) {
      return readRemembered<RequestResolution>(resolvedKey(requestId), 'resolution', now);
    },
    async rememberResolution(request, resolution, now) {
      const item = { ...resolvedKey(request.requestId), resolution, [TTL_ATTRIBUTE]: request.expiresAt };
      if (await putFirst(item, now)) return resolution;
      return (await this.resolution(request.requestId, now)) ?? resolution;
    },
    async moveAnswers(requestId, now) {
      return answersUnder<MoveAnswer>(requestId, MOVE_PREFIX, now);
    },
    async rememberMoveAnswer(request, answer, now) {
      if (await putFirst(moveAnswerItem(request, answer), now)) return answer;
      return (
        (await readRemembered<MoveAnswer>(moveKey(request.requestId, answer.id), 'answer', now)) ?? answer
      );
    },
    async update(expected, next, options = {}) {
      const put = {
        TableName: tableName,
        Item: recordItem(next, options.expiresAt),
        ConditionExpression: '#step = :step AND #version = :version',
        ExpressionAttributeNames: { '#step': 'step', '#version': 'version' },
        ExpressionAttributeValues: { ':step': expected.step, ':version': expected.version },
      };
      const links = linkItems(tableName, next, options);
      if (links.length === 0) return conditionalWrite('PutItem', () => documents.send(new PutCommand(put)));
      return conditionalWrite('TransactWriteItems', () =>
        documents.send(new TransactWriteCommand({ TransactItems: [{ Put: put }, ...links] })),
      );
    },
    async rememberConfirmation(confirmation) {
      await callAws('PutItem', () =>
        documents.send(
          new PutCommand({
            TableName: tableName,
            Item: {
              ...confirmationKey(confirmation.recordId, confirmation.token),
              confirmation,
              [TTL_ATTRIBUTE]: Math.ceil(confirmation.expiresAt / 1000),
            },
            // A token is never issued twice: refuse to overwrite one.
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        ),
      );
    },
    async confirmation(recordId, token) {
      const answer = await callAws('GetItem', () =>
        documents.send(
          new GetCommand({
            TableName: tableName,
            Key: confirmationKey(recordId, token),
            ConsistentRead: true,
          }),
        ),
      );
      return answer.Item?.confirmation as DeletionConfirmation | undefined;
    },
    async byTenant(tenant, limit) {
      return queryRecords(
        {
          IndexName: 'gsi1',
          KeyConditionExpression: 'gsi1pk = :tenant',
          ExpressionAttributeValues: { ':tenant': `TENANT#${tenant}` },
        },
        limit,
      );
    },
    async due(now, limit) {
      const found: ShelfRecord[] = [];
      for (const phase of SAGA_PHASES) {
        found.push(
          ...(await queryRecords(
            {
              IndexName: 'gsi2',
              KeyConditionExpression: 'gsi2pk = :phase AND gsi2sk <= :due',
              ExpressionAttributeValues: { ':phase': `SAGA#${phase}`, ':due': dueKey(now, '~') },
            },
            limit,
          )),
        );
      }
      // The index is eventually consistent: read the records themselves before acting.
      const fresh = await this.getMany(found.slice(0, limit).map((record) => record.recordId));
      return fresh.filter((record) => record.nextDueAt !== null && record.nextDueAt <= now);
    },
    async remove(record) {
      // Only the links that still name this record go with it: once unshelved, its instance may
      // have been shelved again under a newer record, whose link must stay. A link that changes
      // between this read and the write cancels the transaction (false: the caller tries again).
      const candidates = [record.instanceId, record.unshelve?.replacementInstanceId].filter(
        (id): id is string => id !== undefined,
      );
      const owners = await Promise.all(candidates.map((instanceId) => this.recordIdForInstance(instanceId)));
      const linked = candidates.filter((_, index) => owners[index] === record.recordId);
      return conditionalWrite('TransactWriteItems', () =>
        documents.send(
          new TransactWriteCommand({
            TransactItems: [
              {
                Delete: {
                  TableName: tableName,
                  Key: recordKey(record.recordId),
                  ConditionExpression: '#version = :version',
                  ExpressionAttributeNames: { '#version': 'version' },
                  ExpressionAttributeValues: { ':version': record.version },
                },
              },
              ...linked.map((instanceId) => ({
                Delete: {
                  TableName: tableName,
                  Key: instanceKey(instanceId),
                  ConditionExpression: 'recordId = :recordId',
                  ExpressionAttributeValues: { ':recordId': record.recordId },
                },
              })),
            ],
          }),
        ),
      );
    },
  };
};
