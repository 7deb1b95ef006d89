import type { Logger } from '@aws-lambda-powertools/logger';
import type { FactPublisher } from '../../shared/adapters/facts';
import { errorMessage } from '../../shared/errors';
import type { ChangeMarkerStore, PopularityStore } from '../adapters/popularity-store';
import type { RecentRanking } from '../adapters/recent-ranking';
import { popularityChange } from '../domain/change';
import { type LaunchRecord, rankAmong } from '../domain/counters';
import { type PopularityScope, scopeKey, scopesOf } from '../domain/scope';
import { POPULARITY_CHANGED } from '../schemas';

/** Bound on the per-process gate; clearing it only costs a few extra conditional writes. */
const LOCAL_GATE_MAX = 10_000;

export interface RecordLaunchDependencies {
  readonly store: PopularityStore;
  /** The scopes' rankings, read at most once a minute per process (adapters/recent-ranking.ts). */
  readonly ranking: Pick<RecentRanking, 'topK' | 'update'>;
  readonly markers: ChangeMarkerStore;
  readonly facts: FactPublisher;
  readonly logger: Pick<Logger, 'warn'>;
  readonly topK: number;
  readonly scoreThreshold: number;
  readonly changedMinIntervalMs: number;
  /** Per execution environment: when this process may next ask for a change-marker slot. */
  readonly localGate: Map<string, number>;
}

/**
 * Counts a launch record exactly once, then nudges the cache planner when an image entered a
 * scope's top K or crossed the score threshold. The nudge is best effort: the planner also runs
 * on a schedule, so a lost nudge only delays a warm-up by one period, and a failed nudge never
 * fails (and so never retries) a launch that was already counted.
 */
export const recordLaunch = async (
  dependencies: RecordLaunchDependencies,
  record: LaunchRecord,
  now: number,
): Promise<{ recorded: boolean; announced: number }> => {
  const { recorded } = await dependencies.store.recordLaunch(record);
  if (!recorded) return { recorded, announced: 0 };
  let announced = 0;
  const images = [...new Set(record.images.map(({ image }) => image))];
  for (const scope of scopesOf(record)) {
    for (const image of images) {
      try {
        if (await announceIfChanged(dependencies, scope, image, now)) announced++;
      } catch (error) {
        dependencies.logger.warn('popularity nudge failed', {
          scope: scopeKey(scope),
          image,
          error: errorMessage(error),
        });
      }
    }
  }
  return { recorded, announced };
};

const announceIfChanged = async (
  dependencies: RecordLaunchDependencies,
  scope: PopularityScope,
  image: string,
  now: number,
): Promise<boolean> => {
  // A hot image is launched many times a second; without this local gate every launch would
  // try a conditional write on the same marker item and recreate the hot key sharding avoids.
  const gateKey = `${scopeKey(scope)}#${image}`;
  if ((dependencies.localGate.get(gateKey) ?? 0) > now) return false;
  if (dependencies.localGate.size >= LOCAL_GATE_MAX) dependencies.localGate.clear();
  dependencies.localGate.set(gateKey, now + dependencies.changedMinIntervalMs);
  const slot = await dependencies.markers.claim(scope, image, now, dependencies.changedMinIntervalMs);
  if (!slot) return false;
  // The ranking may be a minute old; this image's own score, the one that just changed, is not.
  const [top, score] = await Promise.all([
    dependencies.ranking.topK(scope, dependencies.topK, now),
    dependencies.store.score(scope, image, now),
  ]);
  dependencies.ranking.update(scope, image, score, now);
  const rank = rankAmong(top, image, score);
  const standing = { inTopK: rank < dependencies.topK, aboveThreshold: score >= dependencies.scoreThreshold };
  const reasons = popularityChange(slot.previous, standing);
  if (reasons.length > 0) {
    await dependencies.facts.publish([
      {
        detailType: POPULARITY_CHANGED,
        detail: {
          image,
          scope,
          score,
          rank: standing.inTopK ? rank + 1 : null,
          reasons,
          at: new Date(now).toISOString(),
        },
      },
    ]);
  }
  await dependencies.markers.save(scope, image, standing, now);
  return reasons.length > 0;
};
