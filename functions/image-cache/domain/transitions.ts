import { backoffDelayMs } from '../../shared/retry';
import type { HostGroup } from '../config';
import { EXIT_CODES } from '../documents';
import type { HostImageEntry, SourceHealth } from './model';

/** Why a fetch failed, sorted from the document's exit code (see documents.ts) and SSM status. */
export type FetchFailure =
  | 'source-unreachable'
  | 'disk-full'
  | 'verification-failed'
  | 'no-runtime'
  | 'not-linkable'
  | 'timed-out'
  | 'undeliverable'
  | 'other';

/** SSM invocation statuses that end an invocation (SSM API reference, CommandInvocation Status). */
export const TERMINAL_STATUSES = [
  'Success',
  'Failed',
  'TimedOut',
  'Cancelled',
  'Undeliverable',
  'Terminated',
];
export const isTerminalStatus = (status: string): boolean => TERMINAL_STATUSES.includes(status);

/**
 * Sorts a failed fetch by the script's exit code, or, when the agent reports none (ResponseCode
 * -1, or an agent that only returns text), by the message the script prints with it.
 */
export const classifyFetchFailure = (
  status: string,
  responseCode: number | undefined,
  message = '',
): FetchFailure => {
  if (status === 'TimedOut') return 'timed-out';
  if (status === 'Undeliverable' || status === 'Terminated') return 'undeliverable';
  if (responseCode === EXIT_CODES.sourceUnreachable || message.includes('image source unreachable'))
    return 'source-unreachable';
  if (responseCode === EXIT_CODES.diskFull || message.includes('disk full')) return 'disk-full';
  if (
    responseCode === EXIT_CODES.verificationFailed ||
    message.includes('checksum mismatch') ||
    message.includes('larger than its declared') ||
    message.includes("root filesystem's UUID or label")
  )
    return 'verification-failed';
  if (responseCode === EXIT_CODES.noRuntime || message.includes('no container runtime')) return 'no-runtime';
  if (responseCode === EXIT_CODES.deviceMissing || message.includes('did not appear as a block device'))
    return 'not-linkable';
  return 'other';
};

type RetryGroup = Pick<HostGroup, 'retryBaseMs'>;

/** Cap of every backoff: an outage of any length is probed at least every half hour. */
export const MAX_BACKOFF_MS = 30 * 60_000;

const nextAttemptAt = (attempt: number, group: RetryGroup, now: number, random: () => number): number =>
  now +
  Math.max(
    group.retryBaseMs,
    backoffDelayMs(attempt, random, { baseMs: group.retryBaseMs, capMs: MAX_BACKOFF_MS }),
  );

/** A fetch command was accepted by SSM for this host. */
export const fetchStarted = (
  previous: HostImageEntry | undefined,
  start: {
    imageId: string;
    bytes: number;
    commandId: string;
    via: 'download' | 'volume-link';
    note?: string;
  },
  now: number,
): HostImageEntry => ({
  imageId: start.imageId,
  state: 'fetching',
  bytes: start.bytes,
  since: now,
  attempts: previous?.state === 'failed' ? previous.attempts : 0,
  commandId: start.commandId,
  via: start.via,
  ...(start.note !== undefined ? { note: start.note } : {}),
});

/** The fetch succeeded: the image is cached; `bytes` is what the host reported. */
export const fetchSucceeded = (
  entry: HostImageEntry,
  result: { bytes?: number; volumeId?: string },
  now: number,
): HostImageEntry => ({
  ...entry,
  state: 'cached',
  bytes: result.bytes ?? entry.bytes,
  since: now,
  attempts: 0,
  ...(result.volumeId !== undefined ? { volumeId: result.volumeId } : {}),
  retryAt: undefined,
  commandId: undefined,
});

/**
 * The fetch failed. A source outage is not the host's fault: the entry is dropped (the planner
 * re-plans it once the source is healthy) and only the group's source health backs off. Any
 * other failure counts an attempt against the pair and waits an exponential backoff.
 */
export const fetchFailed = (
  entry: HostImageEntry,
  failure: FetchFailure,
  group: RetryGroup,
  now: number,
  random: () => number,
): HostImageEntry | undefined => {
  if (failure === 'source-unreachable') return undefined;
  const attempts = entry.attempts + 1;
  return {
    ...entry,
    state: 'failed',
    since: now,
    attempts,
    retryAt: nextAttemptAt(attempts, group, now, random),
    note: failure,
    commandId: undefined,
  };
};

/** Source health after a fetch outcome: any success closes the circuit, an outage widens it. */
export const nextSourceHealth = (
  health: SourceHealth,
  outcome: 'ok' | 'source-unreachable',
  group: RetryGroup,
  now: number,
  random: () => number,
): SourceHealth => {
  if (outcome === 'ok') return { consecutiveFailures: 0 };
  const consecutiveFailures = health.consecutiveFailures + 1;
  return { consecutiveFailures, retryAt: nextAttemptAt(consecutiveFailures, group, now, random) };
};

export const evictionStarted = (entry: HostImageEntry, commandId: string, now: number): HostImageEntry => ({
  ...entry,
  state: 'evicting',
  since: now,
  commandId,
});

/**
 * The eviction ended. Success removes the entry; a failure puts it back to cached (the content
 * is still there) so the next plan retries the eviction.
 */
export const evictionEnded = (entry: HostImageEntry, ok: boolean, now: number): HostImageEntry | undefined =>
  ok ? undefined : { ...entry, state: 'cached', since: now, commandId: undefined, note: 'eviction failed' };

/** One image the host reports holding (inventory document output). */
export interface ReportedImage {
  readonly imageId: string;
  readonly bytes: number;
  readonly via: 'download' | 'volume-link';
  readonly volumeId?: string;
}

/**
 * Merges what a host really holds into the recorded entries: reported images become cached
 * (keeping their original `since`), recorded cached images the host no longer holds are
 * dropped, in-flight and failed entries are kept (their commands still report). `takenAt` is
 * when the inventory was sent: an entry that became cached after it (a fetch that finished
 * while the report travelled) is newer than the report and is kept.
 */
export const reconcileInventory = (
  recorded: readonly HostImageEntry[],
  reported: readonly ReportedImage[],
  now: number,
  takenAt: number = now,
): { entries: HostImageEntry[]; added: string[]; vanished: string[] } => {
  const byId = new Map(recorded.map((entry) => [entry.imageId, entry]));
  const reportedIds = new Set(reported.map((image) => image.imageId));
  const entries: HostImageEntry[] = [];
  const added: string[] = [];
  const vanished: string[] = [];
  for (const image of reported) {
    const previous = byId.get(image.imageId);
    if (previous?.state === 'evicting') {
      entries.push(previous);
      continue;
    }
    if (previous?.state !== 'cached') added.push(image.imageId);
    entries.push({
      imageId: image.imageId,
      state: 'cached',
      bytes: image.bytes,
      since: previous?.state === 'cached' ? previous.since : now,
      attempts: 0,
      via: image.via,
      ...(image.volumeId !== undefined ? { volumeId: image.volumeId } : {}),
    });
  }
  for (const entry of recorded) {
    if (reportedIds.has(entry.imageId)) continue;
    if (entry.state === 'cached' && entry.since <= takenAt) vanished.push(entry.imageId);
    else if (entry.state !== 'evicting') entries.push(entry);
  }
  return { entries, added, vanished };
};
