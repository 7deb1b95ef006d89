import { ConditionFailedError } from '../../shared/errors';
import type { DeletionConfirmation } from '../domain/requests';
import { duePhaseOf, type MoveAnswer, type ShelfRecord, type ShelveAnswer } from '../domain/types';
import { rememberedAnswers, rememberedResolutions } from './memory-ledger';
import type { ShelfStore } from './store';

/** In-memory implementation with the same conditional semantics (unit tests, benchmarks). */
export const memoryShelfStore = (): ShelfStore & { readonly records: ReadonlyMap<string, ShelfRecord> } => {
  const records = new Map<string, ShelfRecord>();
  const instances = new Map<string, string>();
  const answers = rememberedAnswers<ShelveAnswer>();
  const moves = rememberedAnswers<MoveAnswer>();
  const resolutions = rememberedResolutions();
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
      return resolutions.find(requestId, now);
    },
    async rememberResolution(request, resolution, now) {
      return resolutions.first(request, resolution, now);
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
        .filter((record) => duePhaseOf(record) && record.nextDueAt !== null && record.nextDueAt <= now)
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
