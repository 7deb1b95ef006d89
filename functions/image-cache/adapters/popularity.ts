import type { PopularityReader } from '../../popularity/adapters/popularity-store';
import { RANKING_MAX_AGE_MS, RecentRanking } from '../../popularity/adapters/recent-ranking';
import type { DecayParameters } from '../../popularity/domain/decay';
import type { ImageScore } from '../domain/model';

/** What the planner reads from popularity: the top images of a host group's scope. */
export interface GroupPopularity {
  /**
   * The top `k` images of the group at `now`; `recent`: a ranking this process read within the
   * last minute will do (a plan a launch asked for, one per cold launch), else it is read now.
   */
  topImages(
    hostGroup: string,
    k: number,
    now: number,
    options?: { readonly recent?: boolean },
  ): Promise<ImageScore[]>;
}

/**
 * The planner's view of popularity: decayed scores in the host group's scope. Reading a ranking
 * reads every counter of the scope, so a group whose launches are mostly cold (each asks for a
 * plan) would otherwise read its whole scope on every launch (docs/popularity.md).
 */
export const groupPopularity = (
  reader: Pick<PopularityReader, 'topK'>,
  decay: DecayParameters,
): GroupPopularity => {
  const ranking = new RecentRanking(reader, decay, RANKING_MAX_AGE_MS);
  return {
    async topImages(hostGroup, k, now, options = {}) {
      const ranked = await ranking.topK({ kind: 'hostGroup', hostGroup }, k, now, { fresh: !options.recent });
      return ranked.map((item) => ({ imageId: item.image, score: item.score }));
    },
  };
};
