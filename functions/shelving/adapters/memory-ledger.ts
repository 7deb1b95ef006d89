import type { RequestIdentity, RequestResolution } from '../domain/types';
import { unexpired } from './store-items';

/**
 * The in-memory request ledger of memoryShelfStore (adapters/memory-store.ts): what each request
 * answered and resolved, remembered until the request's `expiresAt`, the first value stored winning
 * (the `REQUEST#<requestId>` items of the shelves table, adapters/store.ts).
 */

/** Values remembered under a key until they expire; the first one stored stands. */
const rememberedUntilExpiry = <V>() => {
  const entries = new Map<string, { readonly value: V; readonly expiresAt: number }>();
  return {
    find(key: string, now: number): V | undefined {
      const entry = entries.get(key);
      return entry && unexpired(entry.expiresAt, now) ? structuredClone(entry.value) : undefined;
    },
    /** The unexpired values whose key starts with `prefix`. */
    startingWith(prefix: string, now: number): V[] {
      return [...entries]
        .filter(([key, { expiresAt }]) => key.startsWith(prefix) && unexpired(expiresAt, now))
        .map(([, { value }]) => structuredClone(value));
    },
    store(key: string, request: RequestIdentity, value: V): void {
      entries.set(key, { value: structuredClone(value), expiresAt: request.expiresAt });
    },
    /** Stores `value` unless one is remembered; returns the one that stands. */
    first(key: string, request: RequestIdentity, value: V, now: number): V {
      const remembered = this.find(key, now);
      if (remembered) return remembered;
      this.store(key, request, value);
      return value;
    },
  };
};

/** Answers remembered per request and item (a Shelve's by instance id, a move's by record id). */
export const rememberedAnswers = <A extends { readonly id: string }>() => {
  const remembered = rememberedUntilExpiry<A>();
  const key = (requestId: string, id: string) => `${requestId}#${id}`;
  return {
    find: (requestId: string, id: string, now: number): A | undefined =>
      remembered.find(key(requestId, id), now),
    all: (requestId: string, now: number): Map<string, A> =>
      new Map(remembered.startingWith(`${requestId}#`, now).map((answer) => [answer.id, answer])),
    store: (request: RequestIdentity, answer: A): void =>
      remembered.store(key(request.requestId, answer.id), request, answer),
    first: (request: RequestIdentity, answer: A, now: number): A =>
      remembered.first(key(request.requestId, answer.id), request, answer, now),
  };
};

/** What each Offload or Unshelve request resolved to, by request id. */
export const rememberedResolutions = () => {
  const remembered = rememberedUntilExpiry<RequestResolution>();
  return {
    find: (requestId: string, now: number): RequestResolution | undefined => remembered.find(requestId, now),
    first: (request: RequestIdentity, resolution: RequestResolution, now: number): RequestResolution =>
      remembered.first(request.requestId, request, resolution, now),
  };
};
