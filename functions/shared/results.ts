import { errorMessage, WarmbootError } from './errors.js';

/** Why one item of a batch failed: a stable code (a WarmbootError's) and a message. */
export interface ItemError {
  readonly code: string;
  readonly message: string;
}

/**
 * One item's outcome in a batch answer: every batch request answers one of these per item, so
 * one bad item never hides the others (CONTRIBUTING, "Batch work returns a result per item").
 */
export type ItemResult<T extends object = object> =
  | ({ readonly id: string; readonly ok: true } & T)
  | ({ readonly id: string; readonly ok: false; readonly error: ItemError } & Partial<T>);

/** The error an item result carries: a WarmbootError's code, `InternalError` for anything else. */
export const itemErrorOf = (error: unknown): ItemError =>
  error instanceof WarmbootError
    ? { code: error.code, message: error.message }
    : { code: 'InternalError', message: errorMessage(error) };

/** A failed item; `extra` carries fields the batch's answer has on every item (e.g. the action). */
export const failedItem = <T extends object = object>(
  id: string,
  error: ItemError,
  extra?: Partial<T>,
): ItemResult<T> => ({ ...(extra ?? {}), id, ok: false, error }) as ItemResult<T>;
