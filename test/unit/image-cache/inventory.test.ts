import { describe, expect, it } from 'vitest';
import {
  hostsDueForInventory,
  inventoryIntervalOf,
  resultContradictsRecord,
} from '../../../functions/image-cache/domain/inventory';
import type { HostImageEntry } from '../../../functions/image-cache/domain/model';
import { reconcileInventory } from '../../../functions/image-cache/domain/transitions';

const HOUR = 3_600_000;
const NOW = Date.parse('2026-01-10T12:00:00Z');

const entry = (state: HostImageEntry['state'], since = NOW - HOUR): HostImageEntry => ({
  imageId: 'a',
  state,
  bytes: 1,
  since,
  attempts: 0,
});

describe('resultContradictsRecord', () => {
  it('flags an image that arrived with no live entry, and a removal under a copy recorded before it', () => {
    expect(resultContradictsRecord('adds', 'Success', undefined, NOW)).toBe(true);
    expect(resultContradictsRecord('adds', 'Success', entry('failed'), NOW)).toBe(true);
    expect(resultContradictsRecord('removes', 'Success', entry('cached'), NOW)).toBe(true);
  });

  it('accepts duplicates, late results of settled work, new work after a removal, and failures', () => {
    expect(resultContradictsRecord('adds', 'Success', entry('cached'), NOW)).toBe(false);
    expect(resultContradictsRecord('adds', 'Success', entry('fetching'), NOW)).toBe(false);
    expect(resultContradictsRecord('adds', 'Success', entry('evicting'), NOW)).toBe(false);
    expect(resultContradictsRecord('removes', 'Success', undefined, NOW)).toBe(false);
    expect(resultContradictsRecord('removes', 'Success', entry('cached', NOW + 1), NOW)).toBe(false);
    expect(resultContradictsRecord('removes', 'Success', entry('fetching'), NOW)).toBe(false);
    expect(resultContradictsRecord('adds', 'Failed', undefined, NOW)).toBe(false);
  });
});

describe('inventory schedule', () => {
  const ids = Array.from({ length: 200 }, (_, index) => `i-${index.toString(16).padStart(17, '0')}`);

  it('gives each host a stable interval between half and all of the bound, spread across hosts', () => {
    const intervals = ids.map((id) => inventoryIntervalOf(id, HOUR));
    expect(intervals.every((ms) => ms >= HOUR / 2 && ms < HOUR)).toBe(true);
    expect(ids.map((id) => inventoryIntervalOf(id, HOUR))).toEqual(intervals);
    // Hosts that joined together do not all come due in the same 5-minute reconcile.
    const slots = new Set(intervals.map((ms) => Math.floor(ms / (5 * 60_000))));
    expect(slots.size).toBeGreaterThanOrEqual(5);
  });

  it('picks suspect hosts first, then the oldest inventories, never joining or uninventoried hosts, at most the limit', () => {
    const hosts = [
      { instanceId: 'i-fresh', status: 'running' as const, inventoriedAt: NOW - 60_000 },
      { instanceId: 'i-old', status: 'running' as const, inventoriedAt: NOW - 3 * HOUR },
      { instanceId: 'i-older', status: 'running' as const, inventoriedAt: NOW - 4 * HOUR },
      {
        instanceId: 'i-suspect',
        status: 'running' as const,
        inventoriedAt: NOW - 60_000,
        inventoryDueAt: NOW - 1,
      },
      { instanceId: 'i-later', status: 'running' as const, inventoriedAt: NOW, inventoryDueAt: NOW + 1 },
      { instanceId: 'i-stopped', status: 'stopped' as const, inventoriedAt: NOW - 4 * HOUR },
      { instanceId: 'i-joining', status: 'joining' as const },
    ];
    const due = (limit: number) =>
      hostsDueForInventory(hosts, { now: NOW, intervalMs: HOUR, limit }).map((host) => host.instanceId);
    expect(due(10)).toEqual(['i-suspect', 'i-older', 'i-old']);
    expect(due(2)).toEqual(['i-suspect', 'i-older']);
  });
});

describe('reconcileInventory', () => {
  it('keeps a cached entry that is newer than the report instead of calling it vanished', () => {
    const sentAt = NOW - 60_000;
    const merged = reconcileInventory(
      [
        { ...entry('cached', sentAt + 1), imageId: 'landed-after' },
        { ...entry('cached', sentAt - 1), imageId: 'gone' },
      ],
      [],
      NOW,
      sentAt,
    );
    expect(merged.vanished).toEqual(['gone']);
    expect(merged.entries.map((kept) => kept.imageId)).toEqual(['landed-after']);
  });
});
