import { describe, expect, it, vi } from 'vitest';
import { measurePlanner } from '../../../bench/planner-child';

describe('planner scenario', () => {
  it('builds the fleet it was asked for and times every stage', async () => {
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'true');
    const result = await measurePlanner({ hosts: 30, images: 120, groups: 3, seed: 1 });
    expect(result.largestGroup).toBe(10);
    expect(result.heldImages).toBeGreaterThan(0);
    expect(result.heldImages).toBeLessThanOrEqual(120);
    expect(result.entries).toBeGreaterThanOrEqual(30);
    for (const seconds of [result.reconcileAllS, result.planAllS, result.plannerS, result.adviseS])
      expect(seconds).toBeGreaterThanOrEqual(0);
    expect(result.peakRssMb).toBeGreaterThanOrEqual(result.setupRssMb * 0.5);
    vi.unstubAllEnvs();
  });
});
