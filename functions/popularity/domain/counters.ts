import { type DecayParameters, eraExpiresAt, eraOf, launchWeight, scoreFromEras } from './decay';
import { type PopularityScope, scopeKey, scopesOf } from './scope';
import { shardOf } from './shard';

/** One delivered event's launches: the unit that is counted exactly once. */
export interface LaunchRecord {
  /** EventBridge event id: the dedupe key. */
  readonly eventId: string;
  /** When the launch happened, epoch ms (the event's `time`). */
  readonly at: number;
  readonly images: readonly { readonly image: string; readonly count: number }[];
  readonly availabilityZone?: string | undefined;
  readonly hostGroup?: string | undefined;
}

export interface CounterSettings {
  readonly decay: DecayParameters;
  readonly shards: number;
}

/** One `ADD` to one sharded counter item. */
export interface CounterIncrement {
  readonly scope: PopularityScope;
  readonly image: string;
  readonly shard: number;
  readonly era: number;
  /** Forward-decayed weight to add (count · 2^((t − E_era)/h)). */
  readonly value: number;
  /** Exact number of launches to add. */
  readonly launches: number;
  /** TTL of the counter item (epoch ms): when its era stops mattering. */
  readonly expiresAt: number;
}

/**
 * The counter writes one launch record makes. One increment per (scope, image): several
 * containers of one image in a task become one `ADD`, because a DynamoDB transaction may
 * touch an item only once.
 */
export const counterIncrements = (record: LaunchRecord, settings: CounterSettings): CounterIncrement[] => {
  const era = eraOf(record.at, settings.decay);
  const weight = launchWeight(record.at, settings.decay);
  const shard = shardOf(record.eventId, settings.shards);
  const perImage = new Map<string, number>();
  for (const { image, count } of record.images) perImage.set(image, (perImage.get(image) ?? 0) + count);
  return scopesOf(record).flatMap((scope) =>
    [...perImage].map(([image, launches]) => ({
      scope,
      image,
      shard,
      era,
      value: launches * weight,
      launches,
      expiresAt: eraExpiresAt(era, settings.decay),
    })),
  );
};

/** A stored counter item as read back (one shard of one era of one image in one scope). */
export interface CounterValue {
  readonly image: string;
  readonly era: number;
  readonly value: number;
  readonly launches: number;
}

/** An image and its decayed launches now: a launch now counts 1, one half-life ago 0.5. */
export interface ScoredImage {
  readonly image: string;
  readonly score: number;
}

export interface RankedImage extends ScoredImage {
  /** Exact launches in the live eras (the last 20 to 40 half-lives). */
  readonly launches: number;
}

/**
 * Sums shards and eras per image and ranks by decayed score (ties by image id, so the order
 * is deterministic). Every image decays at the same rate, so ranking by score now is
 * ranking by stored value once eras are scaled to a common landmark.
 */
export const rankImages = (
  counters: readonly CounterValue[],
  now: number,
  decay: DecayParameters,
  limit = Number.POSITIVE_INFINITY,
): RankedImage[] => {
  const byImage = new Map<string, { score: number; launches: number }>();
  for (const counter of counters) {
    const entry = byImage.get(counter.image) ?? { score: 0, launches: 0 };
    entry.score += scoreFromEras([counter], now, decay);
    entry.launches += counter.launches;
    byImage.set(counter.image, entry);
  }
  return [...byImage]
    .map(([image, { score, launches }]) => ({ image, score, launches }))
    .sort((a, b) => b.score - a.score || (a.image < b.image ? -1 : a.image > b.image ? 1 : 0))
    .slice(0, limit);
};

/**
 * The position (0 first) an image with `score` takes among the other images of a ranking, in
 * rankImages' order (ties by image id): the image's own entry, if the ranking has one, is
 * ignored, so a ranking read before its latest launches still places it by its fresh score.
 */
export const rankAmong = (ranked: readonly ScoredImage[], image: string, score: number): number =>
  ranked.filter(
    (entry) =>
      entry.image !== image && (entry.score > score || (entry.score === score && entry.image < image)),
  ).length;

/** Key of a counter for logs and the in-memory store. */
export const counterKey = (scope: PopularityScope, image: string, shard: number, era: number): string =>
  `${scopeKey(scope)}#${image}#${shard}#${era}`;
