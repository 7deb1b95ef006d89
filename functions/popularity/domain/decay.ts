/**
 * Forward decay (Cormode, Shkapenyuk, Srivastava, Xu: "Forward Decay: A Practical Time Decay
 * Model for Streaming Systems", ICDE 2009) with exponential decay g(t) = 2^(t / h).
 *
 * A launch at time t adds g(t - L) to a counter, where L is a landmark; the decayed score at
 * `now` is Σ g(t_i - L) / g(now - L) = Σ 2^(-(now - t_i) / h). The stored value never changes
 * after it is written, so every write is a commutative DynamoDB `ADD`: duplicate-free,
 * reordered or late launches give exactly the same value. To keep numbers bounded the landmark
 * moves: time is cut into eras of ERA_HALF_LIVES half-lives and era k has landmark E_k = k · era
 * length, so a stored weight is at most 2^ERA_HALF_LIVES. A launch from era k-2 or older weighs
 * at most 2^-ERA_HALF_LIVES of a launch now, so only the current and the previous era are read.
 */
export const ERA_HALF_LIVES = 20;

export interface DecayParameters {
  readonly halfLifeMs: number;
}

export const decayParameters = (halfLifeHours: number): DecayParameters => ({
  halfLifeMs: halfLifeHours * 3_600_000,
});

export const eraLengthMs = (decay: DecayParameters): number => decay.halfLifeMs * ERA_HALF_LIVES;

/** The era a time falls in (eras start at the Unix epoch). */
export const eraOf = (at: number, decay: DecayParameters): number => Math.floor(at / eraLengthMs(decay));

const eraStart = (era: number, decay: DecayParameters): number => era * eraLengthMs(decay);

/** What one launch at `at` adds to the counter of its own era: 2^((at - E_k) / h), in [1, 2^20). */
export const launchWeight = (at: number, decay: DecayParameters): number =>
  2 ** ((at - eraStart(eraOf(at, decay), decay)) / decay.halfLifeMs);

/** The stored value of era `era` expressed as decayed launches at `now`. */
export const decayedValue = (value: number, era: number, now: number, decay: DecayParameters): number =>
  value * 2 ** ((eraStart(era, decay) - now) / decay.halfLifeMs);

/** The eras worth reading at `now`: the current one and the one before. */
export const liveEras = (now: number, decay: DecayParameters): readonly [number, number] => {
  const current = eraOf(now, decay);
  return [current - 1, current];
};

/**
 * When a counter item of `era` stops mattering: once era + 2 starts, everything in it weighs
 * less than 2^-20 of a launch now. A day of slack keeps late events of that era readable.
 */
export const eraExpiresAt = (era: number, decay: DecayParameters): number =>
  eraStart(era + 2, decay) + 24 * 3_600_000;

/** Decayed score of one image from its per-era values (any eras; stale ones contribute ~0). */
export const scoreFromEras = (
  values: readonly { readonly era: number; readonly value: number }[],
  now: number,
  decay: DecayParameters,
): number => values.reduce((sum, { era, value }) => sum + decayedValue(value, era, now, decay), 0);
