import { describe, expect, it } from 'vitest';
import { runPopularityScenario } from '../../local/scenarios/popularity';
import { localCloudPerTest } from '../support/local-cloud';
import { SCENARIO_TIMEOUT_MS } from './scenario-timeout';

const startCloud = localCloudPerTest();

describe('popularity sandbox scenario', () => {
  it(
    'replays a slice of the Alibaba trace: ranked scores, FSR decisions within budget',
    async () => {
      const cloud = await startCloud({
        functions: ['popularity', 'fastRestore'],
        settings: {
          POPULARITY_SETTINGS: JSON.stringify({ halfLifeHours: 6 }),
          FAST_RESTORE_SETTINGS: JSON.stringify({
            maxPairs: 3,
            maxUsdPerHour: 2.25,
            topPerAz: 1,
            minScore: 2,
          }),
        },
      });
      const summary = await runPopularityScenario(cloud, { requests: 150 });

      expect(summary.requests).toBe(150);
      expect(summary.handlerErrors).toBe(0);
      const launches = summary.topImages.reduce((sum, entry) => sum + entry.launches, 0);
      expect(launches).toBeLessThanOrEqual(150);
      const scores = summary.topImages.map((entry) => entry.score);
      expect(scores).toEqual([...scores].sort((a, b) => b - a));
      expect(summary.fastRestoreDecisions.length).toBeGreaterThan(0);
      for (const decision of summary.fastRestoreDecisions)
        expect(decision.usdPerHour).toBeLessThanOrEqual(2.25);
      expect(summary.fastRestoreAtEnd.length).toBeLessThanOrEqual(3);
    },
    SCENARIO_TIMEOUT_MS,
  );
});
