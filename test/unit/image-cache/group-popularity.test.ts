import { describe, expect, it } from 'vitest';
import { groupPopularity } from '../../../functions/image-cache/adapters/popularity';
import { MemoryPopularityStore } from '../../../functions/popularity/adapters/memory-popularity-store';
import { decayParameters } from '../../../functions/popularity/domain/decay';

const decay = decayParameters(24);
const start = Date.UTC(2026, 0, 5, 8);

const launchedIn = async (store: MemoryPopularityStore, image: string, at: number, eventId: string) =>
  store.recordLaunch({ eventId, at, images: [{ image, count: 1 }], hostGroup: 'gpu' });

describe("the planner's view of a group's popularity", () => {
  it('serves the plans launches ask for from a ranking read within the minute, and reads it again for the others', async () => {
    const store = new MemoryPopularityStore({ decay, shards: 8 });
    const reads: number[] = [];
    const popularity = groupPopularity(
      {
        topK: (scope, k, now, options) => {
          reads.push(now);
          return store.topK(scope, k, now, options);
        },
      },
      decay,
    );
    await launchedIn(store, 'ami-a', start, 'e1');

    // The schedule's plan reads the group's ranking...
    expect((await popularity.topImages('gpu', 10, start)).map((entry) => entry.imageId)).toEqual(['ami-a']);
    await launchedIn(store, 'ami-b', start + 1_000, 'e2');
    // ...the plan a launch asks for 30 s later uses it (its own image is planned regardless)...
    const demand = await popularity.topImages('gpu', 10, start + 30_000, { recent: true });
    expect(demand.map((entry) => entry.imageId)).toEqual(['ami-a']);
    expect(reads).toEqual([start]);
    // ...and the next scheduled (or nudged) plan reads it again.
    const scheduled = await popularity.topImages('gpu', 10, start + 31_000);
    expect(scheduled.map((entry) => entry.imageId)).toEqual(['ami-b', 'ami-a']);
    expect(reads).toEqual([start, start + 31_000]);
  });
});
