import type { PopularityReader } from '../../popularity/adapters/popularity-store';
import type { ImageScore } from '../domain/model';

/** What the planner reads from popularity: the top images of a host group's scope. */
export interface GroupPopularity {
  topImages(hostGroup: string, k: number, now: number): Promise<ImageScore[]>;
}

/** The planner's view of popularity: decayed scores in the host group's scope. */
export const groupPopularity = (reader: Pick<PopularityReader, 'topK'>): GroupPopularity => ({
  async topImages(hostGroup, k, now) {
    const ranked = await reader.topK({ kind: 'hostGroup', hostGroup }, k, now);
    return ranked.map((item) => ({ imageId: item.image, score: item.score }));
  },
});
