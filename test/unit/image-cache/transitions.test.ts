import { describe, expect, it } from 'vitest';
import type { HostImageEntry } from '../../../functions/image-cache/domain/model';
import {
  classifyFetchFailure,
  fetchFailed,
  fetchSucceeded,
  nextSourceHealth,
  reconcileInventory,
} from '../../../functions/image-cache/domain/transitions';

const NOW = 1_000_000_000;
const group = { retryBaseMs: 60_000 };
const fetching: HostImageEntry = {
  imageId: 'a',
  state: 'fetching',
  bytes: 10,
  since: NOW - 5,
  attempts: 2,
  commandId: 'c',
};

describe('entry transitions', () => {
  it('counts an attempt and backs off at least retryBaseMs on a host-side failure', () => {
    const failed = fetchFailed(fetching, 'disk-full', group, NOW, () => 0);
    expect(failed).toEqual(
      expect.objectContaining({ state: 'failed', attempts: 3, retryAt: NOW + 60_000, note: 'disk-full' }),
    );
  });

  it('drops the entry instead of blaming the host when the image source is unreachable', () => {
    expect(fetchFailed(fetching, 'source-unreachable', group, NOW, () => 0.5)).toBeUndefined();
    const health = nextSourceHealth({ consecutiveFailures: 1 }, 'source-unreachable', group, NOW, () => 1);
    expect(health.consecutiveFailures).toBe(2);
    expect(health.retryAt).toBeGreaterThan(NOW);
    expect(nextSourceHealth(health, 'ok', group, NOW, () => 1)).toEqual({ consecutiveFailures: 0 });
  });

  it('sorts failures by exit code or by the message the script prints', () => {
    expect(classifyFetchFailure('Failed', 75)).toBe('source-unreachable');
    expect(classifyFetchFailure('Failed', 1, 'image source unreachable: x')).toBe('source-unreachable');
    expect(classifyFetchFailure('Failed', 28)).toBe('disk-full');
    expect(classifyFetchFailure('Failed', 65)).toBe('verification-failed');
    expect(classifyFetchFailure('TimedOut', undefined)).toBe('timed-out');
  });

  it('caches with the bytes the host reported and resets attempts', () => {
    expect(fetchSucceeded(fetching, { bytes: 12 }, NOW)).toEqual(
      expect.objectContaining({ state: 'cached', bytes: 12, attempts: 0, since: NOW, commandId: undefined }),
    );
  });

  it('merges an inventory: adds what the host holds, drops what vanished, keeps in-flight work', () => {
    const recorded: HostImageEntry[] = [
      { imageId: 'kept', state: 'cached', bytes: 1, since: 5, attempts: 0 },
      { imageId: 'gone', state: 'cached', bytes: 1, since: 5, attempts: 0 },
      { ...fetching, imageId: 'coming' },
    ];
    const merged = reconcileInventory(
      recorded,
      [
        { imageId: 'kept', bytes: 1, via: 'download' },
        { imageId: 'surprise', bytes: 3, via: 'download' },
      ],
      NOW,
    );
    expect(merged.added).toEqual(['surprise']);
    expect(merged.vanished).toEqual(['gone']);
    expect(merged.entries.map((entry) => [entry.imageId, entry.state, entry.since])).toEqual([
      ['kept', 'cached', 5],
      ['surprise', 'cached', NOW],
      ['coming', 'fetching', NOW - 5],
    ]);
  });
});
