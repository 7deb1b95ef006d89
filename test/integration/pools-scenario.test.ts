import { describe, expect } from 'vitest';
import { poolsSettings, runPoolsScenario } from '../../local/scenarios/pools';
import { scenarioTest } from './scenario';

describe('the pools sandbox scenario', () => {
  scenarioTest(
    'serves a slice of the Alibaba trace from a Linux and a Windows-like pool, mostly from ready members',
    { functions: ['pools', 'claim'], settings: poolsSettings() },
    async (cloud) => {
      const summary = await runPoolsScenario(cloud, { requests: 100 });

      expect(summary.requests).toBe(100);
      expect(summary.failed).toBe(0);
      expect(summary.served.hot + summary.served.warm + summary.served.cold).toBe(100);
      expect(Object.keys(summary.hitRatioByPool)).toEqual(['genai-linux', 'genai-windows']);
      // The Windows-like pool refills in ~25 min (its SSM agent registers 4-15 min after boot,
      // then 15 min of init) and starts at minSize 1, so it serves the first burst cold more often.
      expect(summary.hitRatioByPool['genai-linux']).toBeGreaterThan(0.8);
      expect(summary.hitRatio).toBeGreaterThan(0.65);
      for (const seconds of summary.timeToReadySeconds.warm) expect(seconds).toBeGreaterThanOrEqual(21.2);
      for (const seconds of summary.timeToReadySeconds.cold) expect(seconds).toBeGreaterThan(25.8 + 120);
      const windowsLevels = summary.levels.filter((level) => level.pool === 'genai-windows');
      expect(windowsLevels.some((level) => level.ready > 0)).toBe(true);
    },
  );
});
