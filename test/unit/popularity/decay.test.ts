import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decayParameters,
  ERA_HALF_LIVES,
  eraLengthMs,
  eraOf,
  launchWeight,
  liveEras,
  scoreFromEras,
} from '../../../functions/popularity/domain/decay';

const HOUR = 3_600_000;
const decay = decayParameters(24);
const start = Date.UTC(2026, 0, 5, 8);

/** Score of launches at `times`, each added to its own era's counter, read at `now`. */
const scoreOf = (times: readonly number[], now: number): number =>
  scoreFromEras(
    times.map((at) => ({ era: eraOf(at, decay), value: launchWeight(at, decay) })),
    now,
    decay,
  );

describe('forward decay', () => {
  it('counts a launch now as 1', () => {
    expect(scoreOf([start], start)).toBeCloseTo(1, 12);
  });

  it('halves a score every half-life', () => {
    const launches = [start, start + 3 * HOUR, start + 5 * HOUR];
    const now = start + 6 * HOUR;
    expect(scoreOf(launches, now + 24 * HOUR)).toBeCloseTo(scoreOf(launches, now) / 2, 12);
    expect(scoreOf(launches, now + 48 * HOUR)).toBeCloseTo(scoreOf(launches, now) / 4, 12);
  });

  it('follows the configured half-life', () => {
    const hourly = decayParameters(1);
    const value = [{ era: eraOf(start, hourly), value: launchWeight(start, hourly) }];
    expect(scoreFromEras(value, start + HOUR, hourly)).toBeCloseTo(0.5, 12);
  });

  it('gives the same score whatever order the launches arrive in', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 30 * 24 * HOUR }), { minLength: 1, maxLength: 50 }),
        (offsets) => {
          const times = offsets.map((offset) => start + offset);
          const now = start + 31 * 24 * HOUR;
          const reversed = [...times].reverse();
          expect(scoreOf(reversed, now)).toBeCloseTo(scoreOf(times, now), 9);
        },
      ),
    );
  });

  it('is continuous across an era boundary', () => {
    const boundary = (eraOf(start, decay) + 1) * eraLengthMs(decay);
    const justBefore = boundary - 1000;
    const justAfter = boundary + 1000;
    // Same score (up to two seconds of decay) for launches on either side of the boundary.
    expect(scoreOf([justBefore], boundary)).toBeCloseTo(scoreOf([justAfter], boundary), 4);
    expect(eraOf(justBefore, decay)).not.toBe(eraOf(justAfter, decay));
  });

  it('keeps stored weights below 2^20 (era length is 20 half-lives)', () => {
    const lastMoment = (eraOf(start, decay) + 1) * eraLengthMs(decay) - 1;
    expect(launchWeight(lastMoment, decay)).toBeLessThan(2 ** ERA_HALF_LIVES);
    expect(launchWeight(lastMoment + 1, decay)).toBe(1);
  });

  it('reads the current and the previous era only', () => {
    const current = eraOf(start, decay);
    expect(liveEras(start, decay)).toEqual([current - 1, current]);
  });
});
