import type { HostGroup } from '../config';
import type { CommandEffect } from './inventory';
import type { HostImageEntry, SourceHealth } from './model';
import {
  classifyFetchFailure,
  evictionEnded,
  type FetchFailure,
  fetchFailed,
  fetchSucceeded,
  nextSourceHealth,
} from './transitions';

/** An in-flight command older than this is checked with GetCommandInvocation by the reconcile. */
export const STALE_COMMAND_MS = 10 * 60_000;
/**
 * A claim that never got its command id (crash between claim and SendCommand) is dropped after
 * this, by the first reconcile past it, which then plans the pair again: the slowest way back
 * from a crash, up to one schedule period more than this.
 */
export const STALE_CLAIM_MS = 15 * 60_000;

/**
 * What the reconcile does with an in-flight entry: `look-up` asks SSM for the result of its
 * command (its status event may be lost), `drop-claim` drops a claim whose command id never
 * arrived (reverting an eviction to cached), `wait` leaves work that may still report.
 */
export const inFlightCheck = (entry: HostImageEntry, now: number): 'wait' | 'look-up' | 'drop-claim' => {
  if (entry.state !== 'fetching' && entry.state !== 'evicting') return 'wait';
  if (now - entry.since < STALE_COMMAND_MS) return 'wait';
  if (entry.commandId) return 'look-up';
  return now - entry.since >= STALE_CLAIM_MS ? 'drop-claim' : 'wait';
};

/** A fact a settled command publishes; the caller adds the group, host and image. */
export interface CacheFact {
  readonly detailType: 'Image Warmed' | 'Image Warm Failed' | 'Image Evicted';
  readonly extra: Readonly<Record<string, unknown>>;
}

export interface CommandResult {
  /** The entry that carries the command's id. */
  readonly entry: HostImageEntry;
  /** What the command's document does to the disk: `adds` (fetch, mount) or `removes`. */
  readonly effect: CommandEffect;
  readonly status: string;
  readonly responseCode?: number;
  /** The invocation's output, to sort a failure by its message when there is no exit code. */
  readonly error?: string;
  /** The bytes the host reported for a fetched image, if it reported a valid count. */
  readonly reportedBytes?: number;
  readonly source: SourceHealth;
  readonly group: Pick<HostGroup, 'retryBaseMs'>;
  readonly now: number;
  readonly random: () => number;
}

export interface CommandSettlement {
  readonly action: 'fetch' | 'evict';
  /** The entry's next state; undefined removes it. */
  readonly entry: HostImageEntry | undefined;
  /** The group's next source health, when this result changes it. */
  readonly source?: SourceHealth;
  readonly facts: readonly CacheFact[];
  /** A linked volume the host no longer uses: detach and delete it. */
  readonly releaseVolume?: string;
}

/**
 * The terminal result of a fetch or eviction, applied to the entry that carries its command:
 * the entry's next state, the source health (any success closes the circuit, an unreachable
 * source widens it), the fact to publish and the linked volume to release. Undefined when the
 * entry is not in the state the command started (already settled).
 */
export const settleCommandResult = (result: CommandResult): CommandSettlement | undefined => {
  const { entry, status, source, group, now, random } = result;
  const ok = status === 'Success';
  if (result.effect === 'adds') {
    if (entry.state !== 'fetching') return undefined;
    if (ok) {
      const bytes = result.reportedBytes;
      return {
        action: 'fetch',
        entry: fetchSucceeded(entry, bytes !== undefined ? { bytes } : {}, now),
        ...(source.consecutiveFailures > 0
          ? { source: nextSourceHealth(source, 'ok', group, now, random) }
          : {}),
        facts: [{ detailType: 'Image Warmed', extra: { bytes: bytes ?? entry.bytes } }],
      };
    }
    const failure: FetchFailure = classifyFetchFailure(status, result.responseCode, result.error);
    return {
      action: 'fetch',
      entry: fetchFailed(entry, failure, group, now, random),
      ...(failure === 'source-unreachable'
        ? { source: nextSourceHealth(source, 'source-unreachable', group, now, random) }
        : {}),
      facts: [{ detailType: 'Image Warm Failed', extra: { reason: failure } }],
      ...(entry.volumeId ? { releaseVolume: entry.volumeId } : {}),
    };
  }
  if (entry.state !== 'evicting') return undefined;
  return {
    action: 'evict',
    entry: evictionEnded(entry, ok, now),
    facts: ok ? [{ detailType: 'Image Evicted', extra: {} }] : [],
    ...(ok && entry.volumeId ? { releaseVolume: entry.volumeId } : {}),
  };
};
