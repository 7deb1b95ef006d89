import type { ItemError } from '../../shared/results';
import type { Action } from '../domain/actions';
import type { ShelfRecord, Step } from '../domain/types';

/** Where a record stands after a round, as the event and schedule routes answer it. */
export interface RecordProgress {
  readonly recordId: string;
  readonly step: Step;
  readonly reason: string;
  /** When the saga wants to look again (null: only on request). */
  readonly recheckAt?: number | null;
  readonly error?: ItemError;
}

export interface RoundSummary {
  readonly records: readonly RecordProgress[];
  readonly throttled: number;
  /** Records that got EC2 actions in this round (they may have more to do right away). */
  readonly acted: number;
}

/** A record whose decision was written, with the actions it asks for. */
export interface Work {
  readonly record: ShelfRecord;
  readonly actions: readonly Action[];
}

/** Notes a failed call against the records it was for (their progress carries the error). */
export type FailCalls = (recordIds: readonly string[], error: unknown) => void;

/** Counts `recordIds` as waiting on the call `start` makes until it settles. */
export type TrackCall = (recordIds: readonly string[], start: () => Promise<void>) => Promise<void>;
