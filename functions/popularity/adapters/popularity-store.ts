import type { PopularityStanding } from '../domain/change';
import type { LaunchRecord, RankedImage } from '../domain/counters';
import type { PopularityScope } from '../domain/scope';

export type { LaunchRecord, RankedImage } from '../domain/counters';
export type { PopularityScope } from '../domain/scope';

export interface TopKOptions {
  /** Keep only images passing this test before taking K (fast restore asks for AMIs only). */
  readonly where?: (image: string) => boolean;
}

/**
 * What other capabilities read: the image-cache planner, placement, pools and fast restore.
 * `now` is passed in, so a reader on a virtual clock sees the scores of its own time.
 */
export interface PopularityReader {
  /** The K images with the highest decayed score in `scope` at `now`, highest first. */
  topK(scope: PopularityScope, k: number, now: number, options?: TopKOptions): Promise<RankedImage[]>;
  /** Decayed launches of `image` in `scope` at `now` (a launch now counts 1). */
  score(scope: PopularityScope, image: string, now: number): Promise<number>;
  /** Exact launches of `image` in `scope` within the live eras (the last 20 to 40 half-lives). */
  launches(scope: PopularityScope, image: string, now: number): Promise<number>;
}

export interface PopularityStore extends PopularityReader {
  /**
   * Counts one event's launches exactly once: `recorded: false` means this event id was
   * counted before (duplicate delivery or a retried invocation) and nothing changed.
   */
  recordLaunch(record: LaunchRecord): Promise<{ readonly recorded: boolean }>;
}

/**
 * Rate limit for `Popularity Changed`: a marker per scope and image that at most one caller
 * claims per interval, carrying the standing that was last announced.
 */
export interface ChangeMarkerStore {
  /** Claims the check slot; `undefined` when another caller holds it until a later time. */
  claim(
    scope: PopularityScope,
    image: string,
    now: number,
    intervalMs: number,
  ): Promise<{ readonly previous: PopularityStanding | undefined } | undefined>;
  save(scope: PopularityScope, image: string, standing: PopularityStanding, now: number): Promise<void>;
}
