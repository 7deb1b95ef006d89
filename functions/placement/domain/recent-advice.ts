import {
  type DecayParameters,
  eraExpiresAt,
  eraOf,
  launchWeight,
  liveEras,
  scoreFromEras,
} from '../../popularity/domain/decay';
import type { Placement } from './advise';

/**
 * What placement remembers of its own advice: per host, the instances it advised there, decayed
 * with this half-life (forward decay, the popularity counters' scheme: every write is a
 * commutative `ADD`, so concurrent advice never conflicts). It stands in for the host's current
 * occupancy, which no `Advise Placement` caller is required to know: among equally good hosts the
 * one advised least recently-and-often goes first, so one warm host does not take every launch of
 * an image. 15 minutes: a few scheduling rounds; chosen without any trace (docs/benchmarks.md).
 */
export const ADVICE_DECAY: DecayParameters = { halfLifeMs: 15 * 60_000 };

/** One host's advised weight in one era (what the store keeps per host and era). */
export interface AdvisedWeight {
  readonly instanceId: string;
  readonly era: number;
  readonly value: number;
}

/** An addition to a host's advised weight, with the time its item stops mattering (TTL). */
export interface AdvisedWeightAddition extends AdvisedWeight {
  readonly expiresAt: number;
}

/** The eras whose weights still count at `now` (the current one and the one before). */
export const adviceErasAt = (now: number): readonly [number, number] => liveEras(now, ADVICE_DECAY);

/** Per host, the decayed number of instances advised there, as of `now`. */
export const recentlyAdvised = (weights: readonly AdvisedWeight[], now: number): Map<string, number> => {
  const byHost = new Map<string, AdvisedWeight[]>();
  for (const weight of weights)
    byHost.set(weight.instanceId, [...(byHost.get(weight.instanceId) ?? []), weight]);
  return new Map(
    [...byHost].map(([instanceId, list]) => [instanceId, scoreFromEras(list, now, ADVICE_DECAY)]),
  );
};

/** What recording an advice made at `now` adds, one addition per host it placed instances on. */
export const adviceAdditions = (placements: readonly Placement[], now: number): AdvisedWeightAddition[] => {
  const era = eraOf(now, ADVICE_DECAY);
  const weight = launchWeight(now, ADVICE_DECAY);
  return placements
    .filter((placement) => placement.count > 0)
    .map((placement) => ({
      instanceId: placement.instanceId,
      era,
      value: placement.count * weight,
      expiresAt: eraExpiresAt(era, ADVICE_DECAY),
    }));
};
