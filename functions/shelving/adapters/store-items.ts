import { DependencyError } from '../../shared/errors';
import { TTL_ATTRIBUTE } from '../../shared/tables';
import {
  duePhaseOf,
  type MoveAnswer,
  type RequestIdentity,
  type ShelfRecord,
  type ShelveAnswer,
} from '../domain/types';
import type { UpdateOptions } from './store';

/** The shelves table's keys and items (adapters/store.ts describes the layout). */

export const recordKey = (recordId: string) => ({ pk: `SHELF#${recordId}`, sk: 'RECORD' });
export const instanceKey = (instanceId: string) => ({ pk: `INSTANCE#${instanceId}`, sk: 'SHELF' });
export const requestPk = (requestId: string) => `REQUEST#${requestId}`;
export const ANSWER_PREFIX = 'SHELVE#';
export const MOVE_PREFIX = 'MOVE#';
const RESOLVED_SK = 'RESOLVED';
export const answerKey = (requestId: string, instanceId: string) => ({
  pk: requestPk(requestId),
  sk: `${ANSWER_PREFIX}${instanceId}`,
});
export const moveKey = (requestId: string, recordId: string) => ({
  pk: requestPk(requestId),
  sk: `${MOVE_PREFIX}${recordId}`,
});
export const resolvedKey = (requestId: string) => ({ pk: requestPk(requestId), sk: RESOLVED_SK });
export const confirmationKey = (recordId: string, token: string) => ({
  pk: recordKey(recordId).pk,
  sk: `CONFIRM#${token}`,
});
/** DynamoDB deletes expired items lazily: an expired answer is treated as gone. */
export const unexpired = (expiresAt: unknown, now: number): boolean =>
  typeof expiresAt === 'number' && expiresAt > Math.floor(now / 1000);
export const answerItem = (request: RequestIdentity, answer: ShelveAnswer): Record<string, unknown> => ({
  ...answerKey(request.requestId, answer.id),
  answer,
  [TTL_ATTRIBUTE]: request.expiresAt,
});
export const moveAnswerItem = (request: RequestIdentity, answer: MoveAnswer): Record<string, unknown> => ({
  ...moveKey(request.requestId, answer.id),
  answer,
  [TTL_ATTRIBUTE]: request.expiresAt,
});
/** Put condition of an answer: none remembered yet (an expired one counts as none). */
export const answerAbsent = (now: number) => ({
  ConditionExpression: 'attribute_not_exists(pk) OR #expiresAt <= :now',
  ExpressionAttributeNames: { '#expiresAt': TTL_ATTRIBUTE },
  ExpressionAttributeValues: { ':now': Math.floor(now / 1000) },
});
export const dueKey = (at: number, recordId: string): string =>
  `${String(Math.max(0, Math.floor(at))).padStart(15, '0')}#${recordId}`;

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null;

/**
 * The record an item holds, checked for the fields every reader relies on (id, step, version)
 * rather than cast: an item this code did not write fails here, naming itself.
 */
export const recordOf = (item: Record<string, unknown> | undefined): ShelfRecord | undefined => {
  const record = item?.record;
  if (record === undefined) return undefined;
  if (
    !isObject(record) ||
    typeof record.recordId !== 'string' ||
    typeof record.step !== 'string' ||
    typeof record.version !== 'number'
  )
    throw new DependencyError(`shelves item ${String(item?.pk)}/${String(item?.sk)} holds no shelve record`);
  return record as unknown as ShelfRecord;
};

/** A remembered per-item answer (Shelve or Offload/Unshelve): an id and whether it went ahead. */
export const answerOf = <T extends { readonly id: string }>(value: unknown): T | undefined =>
  isObject(value) && typeof value.id === 'string' && typeof value.ok === 'boolean' ? (value as T) : undefined;

export const recordItem = (record: ShelfRecord, expiresAt?: number): Record<string, unknown> => {
  const phase = duePhaseOf(record);
  return {
    ...recordKey(record.recordId),
    gsi1pk: `TENANT#${record.tenant}`,
    gsi1sk: `SHELF#${record.recordId}`,
    ...(phase && record.nextDueAt !== null
      ? { gsi2pk: `SAGA#${phase}`, gsi2sk: dueKey(record.nextDueAt, record.recordId) }
      : {}),
    step: record.step,
    version: record.version,
    record,
    ...(expiresAt !== undefined ? { [TTL_ATTRIBUTE]: expiresAt } : {}),
  };
};

/** The items an update writes with the record, in one transaction (links, a remembered answer). */
export const linkItems = (tableName: string, next: ShelfRecord, options: UpdateOptions) => [
  ...(options.linkInstanceId
    ? [
        {
          Put: {
            TableName: tableName,
            Item: { ...instanceKey(options.linkInstanceId), recordId: next.recordId },
            ConditionExpression: 'attribute_not_exists(pk) OR recordId = :recordId',
            ExpressionAttributeValues: { ':recordId': next.recordId },
          },
        },
      ]
    : []),
  ...(options.unlinkInstanceId
    ? [
        {
          Delete: {
            TableName: tableName,
            Key: instanceKey(options.unlinkInstanceId),
            ConditionExpression: 'attribute_not_exists(pk) OR recordId = :recordId',
            ExpressionAttributeValues: { ':recordId': next.recordId },
          },
        },
      ]
    : []),
  ...(options.remember
    ? [
        {
          Put: {
            TableName: tableName,
            Item: moveAnswerItem(options.remember.request, options.remember.answer),
            ...answerAbsent(options.remember.now),
          },
        },
      ]
    : []),
];
