/**
 * The planner's view of a host group. Plain data, built by the handler from the imageCache table
 * (or by the benchmark from in-memory state); nothing here knows about DynamoDB or SSM.
 */

/** Where one image stands on one host. */
export type EntryState = 'fetching' | 'cached' | 'evicting' | 'failed';

export interface HostImageEntry {
  readonly imageId: string;
  readonly state: EntryState;
  /** Bytes the image occupies (or will occupy) in the host's cache budget. */
  readonly bytes: number;
  /** When the entry entered `state`, ms since epoch. */
  readonly since: number;
  /** Fetch attempts that failed on this host (reset when cached). */
  readonly attempts: number;
  /** `failed` only: no new attempt before this time. */
  readonly retryAt?: number;
  /** SSM command of the in-flight fetch/evict. */
  readonly commandId?: string;
  /** How the image is held: downloaded into the cache directory or linked as a volume. */
  readonly via?: 'download' | 'volume-link';
  readonly volumeId?: string;
  /** Why `auto` chose download (cloneable's reason), or the failure reason. */
  readonly note?: string;
}

export interface PlannerHost {
  readonly instanceId: string;
  readonly availabilityZone: string;
  readonly entries: readonly HostImageEntry[];
}

export interface ImageScore {
  readonly imageId: string;
  /** Decayed popularity in the host group's scope. */
  readonly score: number;
}

/** Consecutive "image source unreachable" failures of a group, with the time of the next probe. */
export interface SourceHealth {
  readonly consecutiveFailures: number;
  readonly retryAt?: number;
}

export const HEALTHY_SOURCE: SourceHealth = { consecutiveFailures: 0 };

/** Bytes an entry counts against the budget: everything on disk or arriving there. */
export const heldBytes = (entries: readonly HostImageEntry[]): number =>
  entries.reduce((sum, entry) => sum + (entry.state === 'failed' ? 0 : entry.bytes), 0);

/** Images a launch can use right now on this host. */
export const warmImageIds = (entries: readonly HostImageEntry[]): string[] =>
  entries.filter((entry) => entry.state === 'cached').map((entry) => entry.imageId);
