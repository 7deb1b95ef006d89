import { describe, expect } from 'vitest';
import { runPopularityScenario } from '../../local/scenarios/popularity';
import { scenarioTest } from './scenario';

describe('popularity sandbox scenario', () => {
  scenarioTest(
    'replays a slice of the Alibaba trace: ranked scores, FSR decisions within budget',
    {
      functions: ['popularity', 'fastRestore'],
      settings: {
        POPULARITY_SETTINGS: JSON.stringify({ halfLifeHours: 6 }),
        FAST_RESTORE_SETTINGS: JSON.stringify({ maxPairs: 3, maxUsdPerHour: 2.25, topPerAz: 1, minScore: 2 }),
      },
    },
    async (cloud) => {
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
  );
});
