import { describe, expect, it } from 'vitest';
import { documentFor } from '../../../functions/image-cache/documents';
import {
  type CommandResult,
  inFlightCheck,
  STALE_CLAIM_MS,
  STALE_COMMAND_MS,
  settleCommandResult,
} from '../../../functions/image-cache/domain/command-results';
import { HOST_AGENT_DEADLINE_MS, nextAgentCheck } from '../../../functions/image-cache/domain/joining';
import type { HostImageEntry } from '../../../functions/image-cache/domain/model';

const NOW = 1_000_000_000;
const fetching: HostImageEntry = {
  imageId: 'a',
  state: 'fetching',
  bytes: 10,
  since: NOW - 5,
  attempts: 1,
  commandId: 'c',
  via: 'volume-link',
  volumeId: 'vol-0123456789abcdef0',
};
const evicting: HostImageEntry = { ...fetching, state: 'evicting' };

const result = (overrides: Partial<CommandResult>): CommandResult => ({
  entry: fetching,
  effect: 'adds',
  status: 'Success',
  source: { consecutiveFailures: 0 },
  group: { retryBaseMs: 60_000 },
  now: NOW,
  random: () => 0,
  ...overrides,
});

describe('settleCommandResult', () => {
  it('caches a fetched image with the bytes the host reported and announces it', () => {
    const settled = settleCommandResult(result({ reportedBytes: 42 }));

    expect(settled?.entry).toMatchObject({ state: 'cached', bytes: 42, attempts: 0, commandId: undefined });
    expect(settled?.facts).toEqual([{ detailType: 'Image Warmed', extra: { bytes: 42 } }]);
    expect(settled?.source).toBeUndefined();
    expect(settled?.releaseVolume).toBeUndefined();
  });

  it('closes the source circuit on the first success after an outage', () => {
    const settled = settleCommandResult(result({ source: { consecutiveFailures: 3, retryAt: NOW } }));

    expect(settled?.source).toEqual({ consecutiveFailures: 0 });
  });

  it('drops the entry, widens the source backoff and releases the volume when the source is unreachable', () => {
    const settled = settleCommandResult(result({ status: 'Failed', responseCode: 75 }));

    expect(settled?.entry).toBeUndefined();
    expect(settled?.source).toMatchObject({ consecutiveFailures: 1 });
    expect(settled?.releaseVolume).toBe(fetching.volumeId);
    expect(settled?.facts).toEqual([
      { detailType: 'Image Warm Failed', extra: { reason: 'source-unreachable' } },
    ]);
  });

  it('counts a host-side failure against the pair without touching the source health', () => {
    const settled = settleCommandResult(result({ status: 'Failed', responseCode: 28 }));

    expect(settled?.entry).toMatchObject({ state: 'failed', attempts: 2, note: 'disk-full' });
    expect(settled?.source).toBeUndefined();
  });

  it('removes an evicted entry, releases its volume, and reverts a failed eviction to cached', () => {
    const evicted = settleCommandResult(result({ entry: evicting, effect: 'removes' }));
    expect(evicted).toMatchObject({ action: 'evict', entry: undefined, releaseVolume: evicting.volumeId });
    expect(evicted?.facts).toEqual([{ detailType: 'Image Evicted', extra: {} }]);

    const kept = settleCommandResult(result({ entry: evicting, effect: 'removes', status: 'Failed' }));
    expect(kept?.entry).toMatchObject({ state: 'cached', note: 'eviction failed' });
    expect(kept?.facts).toEqual([]);
    expect(kept?.releaseVolume).toBeUndefined();
  });

  it('leaves an entry that is not in the state its command started alone', () => {
    expect(settleCommandResult(result({ entry: evicting, effect: 'adds' }))).toBeUndefined();
    expect(settleCommandResult(result({ entry: fetching, effect: 'removes' }))).toBeUndefined();
  });
});

describe('inFlightCheck', () => {
  it('waits for recent work, looks up a stale command and drops a claim that never got one', () => {
    expect(inFlightCheck({ ...fetching, since: NOW - 1_000 }, NOW)).toBe('wait');
    expect(inFlightCheck({ ...fetching, since: NOW - STALE_COMMAND_MS }, NOW)).toBe('look-up');
    const claim = { ...evicting, commandId: undefined };
    expect(inFlightCheck({ ...claim, since: NOW - STALE_COMMAND_MS }, NOW)).toBe('wait');
    expect(inFlightCheck({ ...claim, since: NOW - STALE_CLAIM_MS }, NOW)).toBe('drop-claim');
    expect(inFlightCheck({ ...fetching, state: 'cached', since: 0 }, NOW)).toBe('wait');
  });
});

describe('nextAgentCheck', () => {
  it('backs off from 15 s, then checks at the agent retry pace once past the deadline', () => {
    expect(nextAgentCheck(NOW, 0, NOW, () => 0)).toEqual({ initDueAt: NOW + 15_000, overdue: false });
    expect(nextAgentCheck(NOW, 10, NOW, () => 0.99).initDueAt).toBeLessThanOrEqual(NOW + 5 * 60_000);
    const late = NOW + HOST_AGENT_DEADLINE_MS + 1;
    expect(nextAgentCheck(NOW, 10, late, () => 0.5)).toEqual({
      initDueAt: late + 30 * 60_000,
      overdue: true,
    });
  });
});

describe('documentFor', () => {
  it('names the document of each action by how the image is held', () => {
    expect(documentFor('fetch', 'download')).toBe('Warmboot-ImageFetch');
    expect(documentFor('fetch', 'volume-link')).toBe('Warmboot-ImageMount');
    expect(documentFor('evict', 'download')).toBe('Warmboot-ImageRemove');
    expect(documentFor('evict', 'volume-link')).toBe('Warmboot-ImageUnmount');
  });
});
