import type { PopularityReader } from '../../popularity/adapters/popularity-store';
import type { GroupPopularity } from '../service';

/** The planner's view of popularity: decayed scores in the host group's scope. */
export const groupPopularity = (reader: Pick<PopularityReader, 'topK'>): GroupPopularity => ({
  async topImages(hostGroup, k, now) {
    const ranked = await reader.topK({ kind: 'hostGroup', hostGroup }, k, now);
    return ranked.map((item) => ({ imageId: item.image, score: item.score }));
  },
});
