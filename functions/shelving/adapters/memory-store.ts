import { ConditionFailedError } from '../../shared/errors';
import type { DeletionConfirmation } from '../domain/requests';
import {
  type MoveAnswer,
  phaseOf,
  type RequestIdentity,
  type RequestResolution,
  type ShelfRecord,
  type ShelveAnswer,
} from '../domain/types';
import type { ShelfStore } from './store';
import { unexpired } from './store-items';

/** Answers remembered per request and item until they expire; the first answer stored wins. */
const rememberedAnswers = <A extends { readonly id: string }>() => {
  const entries = new Map<string, { readonly answer: A; readonly expiresAt: number }>();
  const key = (requestId: string, id: string) => `${requestId}#${id}`;
  return {
    find(requestId: string, id: string, now: number): A | undefined {
      const entry = entries.get(key(requestId, id));
      return entry && unexpired(entry.expiresAt, now) ? structuredClone(entry.answer) : undefined;
    },
    all(requestId: string, now: number): Map<string, A> {
      const found = new Map<string, A>();
      for (const [entryKey, { answer, expiresAt }] of entries) {
        if (entryKey.startsWith(`${requestId}#`) && unexpired(expiresAt, now))
          found.set(answer.id, structuredClone(answer));
      }
      return found;
    },
    store(request: RequestIdentity, answer: A): void {
      entries.set(key(request.requestId, answer.id), {
        answer: structuredClone(answer),
        expiresAt: request.expiresAt,
      });
    },
    /** Stores `answer` unless one is remembered; returns the one that stands. */
    first(request: RequestIdentity, answer: A, now: number): A {
      const remembered = this.find(request.requestId, answer.id, now);
      if (remembered) return remembered;
      this.store(request, answer);
      return answer;
    },
  };
};

/** In-memory implementation with the same conditional semantics (unit tests, benchmarks). */
export const memoryShelfStore = (): ShelfStore & { readonly records: ReadonlyMap<string, ShelfRecord> } => {
  const records = new Map<string, ShelfRecord>();
  const instances = new Map<string, string>();
  const answers = rememberedAnswers<ShelveAnswer>();
  const moves = rememberedAnswers<MoveAnswer>();
  const resolutions = new Map<
    string,
    { readonly resolution: RequestResolution; readonly expiresAt: number }
  >();
  const clone = (record: ShelfRecord): ShelfRecord => structuredClone(record);
  const confirmations = new Map<string, DeletionConfirmation>();
  const confirmationId = (recordId: string, token: string) => `${recordId}#${token}`;
  return {
    records,
    async rememberConfirmation(confirmation) {
      const id = confirmationId(confirmation.recordId, confirmation.token);
      if (confirmations.has(id)) throw new ConditionFailedError(`confirmation ${confirmation.token} exists`);
      confirmations.set(id, structuredClone(confirmation));
    },
    async confirmation(recordId, token) {
      const found = confirmations.get(confirmationId(recordId, token));
      return found ? structuredClone(found) : undefined;
    },
    async get(recordId) {
      const record = records.get(recordId);
      return record ? clone(record) : undefined;
    },
    async getMany(recordIds) {
      return [...new Set(recordIds)].flatMap((id) => {
        const record = records.get(id);
        return record ? [clone(record)] : [];
      });
    },
    async recordIdForInstance(instanceId) {
      return instances.get(instanceId);
    },
    async create(record, request) {
      const remembered = request && answers.find(request.requestId, record.instanceId, record.shelvedAt);
      if (remembered) return { created: false, remembered };
      const existing = instances.get(record.instanceId);
      if (existing) return { created: false, existingRecordId: existing };
      if (records.has(record.recordId)) return { created: false, existingRecordId: record.recordId };
      records.set(record.recordId, clone(record));
      instances.set(record.instanceId, record.recordId);
      if (request) {
        answers.store(request, { id: record.instanceId, ok: true, recordId: record.recordId, created: true });
      }
      return { created: true };
    },
    async shelveAnswers(requestId, now) {
      return answers.all(requestId, now);
    },
    async rememberShelveAnswer(request, answer, now) {
      return answers.first(request, answer, now);
    },
    async resolution(requestId, now) {
      const remembered = resolutions.get(requestId);
      return remembered && unexpired(remembered.expiresAt, now)
        ? structuredClone(remembered.resolution)
        : undefined;
    },
    async rememberResolution(request, resolution, now) {
      const remembered = await this.resolution(request.requestId, now);
      if (remembered) return remembered;
      resolutions.set(request.requestId, {
        resolution: structuredClone(resolution),
        expiresAt: request.expiresAt,
      });
      return resolution;
    },
    async moveAnswers(requestId, now) {
      return moves.all(requestId, now);
    },
    async rememberMoveAnswer(request, answer, now) {
      return moves.first(request, answer, now);
    },
    async update(expected, next, options = {}) {
      const current = records.get(expected.recordId);
      if (!current || current.step !== expected.step || current.version !== expected.version) return false;
      if (options.linkInstanceId) {
        const owner = instances.get(options.linkInstanceId);
        if (owner !== undefined && owner !== next.recordId) return false;
      }
      if (options.remember) {
        const { request, answer, now } = options.remember;
        if (moves.find(request.requestId, answer.id, now)) return false;
        moves.store(request, answer);
      }
      records.set(next.recordId, clone(next));
      if (options.linkInstanceId) instances.set(options.linkInstanceId, next.recordId);
      if (options.unlinkInstanceId && instances.get(options.unlinkInstanceId) === next.recordId) {
        instances.delete(options.unlinkInstanceId);
      }
      return true;
    },
    async byTenant(tenant, limit) {
      return [...records.values()]
        .filter((record) => record.tenant === tenant)
        .sort((a, b) => a.recordId.localeCompare(b.recordId))
        .slice(0, limit)
        .map(clone);
    },
    async due(now, limit) {
      return [...records.values()]
        .filter((record) => phaseOf(record.step) && record.nextDueAt !== null && record.nextDueAt <= now)
        .sort((a, b) => (a.nextDueAt ?? 0) - (b.nextDueAt ?? 0))
        .slice(0, limit)
        .map(clone);
    },
    async remove(record) {
      const current = records.get(record.recordId);
      if (!current || current.version !== record.version) return false;
      records.delete(record.recordId);
      for (const [instanceId, recordId] of instances)
        if (recordId === record.recordId) instances.delete(instanceId);
      return true;
    },
  };
};
