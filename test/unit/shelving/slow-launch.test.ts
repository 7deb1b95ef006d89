import { describe, expect, it } from 'vitest';
import { NotFoundError } from '../../../functions/shared/errors';
import type { ShelvingEc2 } from '../../../functions/shelving/adapters/ec2';
import { countingEc2, engineOnClock, NOW, record } from './fakes';

/**
 * A slow-path launch EC2 refuses for good (a safety snapshot deleted after the path was chosen)
 * is not re-issued forever: the record goes back to path choice with the slow path ruled out.
 */

const RECORD = record({
  step: 'unshelve.choose',
  nextDueAt: NOW,
  unshelve: { requestId: 'unshelve-event', requestedAt: NOW, attempt: 0 },
});

/** EC2 where the retained volumes are gone, the snapshots are still listed, and RunInstances refuses them. */
const refusingEc2 = () => {
  const launches: unknown[] = [];
  const base = countingEc2();
  const overrides: Partial<ShelvingEc2> = {
    describeShelvedSnapshots: async () =>
      new Map([
        [
          RECORD.recordId,
          RECORD.volumes.map((volume) => ({
            snapshotId: volume.snapshotId ?? '',
            volumeId: volume.volumeId,
            state: 'completed' as const,
          })),
        ],
      ]),
    runInstances: async (request) => {
      launches.push(request);
      throw new NotFoundError(
        `RunInstances failed: InvalidSnapshot.NotFound: The snapshot ID '${RECORD.volumes[0]?.snapshotId}' does not exist`,
      );
    },
  };
  const ec2 = new Proxy(overrides as ShelvingEc2, {
    get: (target, property) =>
      property in target ? target[property as keyof ShelvingEc2] : Reflect.get(base, property),
  });
  return { ec2, launches };
};

describe('a slow-path launch refused because a snapshot is gone', () => {
  it('fails the record once, saying why, instead of re-issuing the launch', async () => {
    const world = refusingEc2();
    const { engine, store, clock } = engineOnClock(world.ec2);
    await store.create(RECORD);

    await engine.advance([RECORD]);
    clock.at += 10 * 60_000;
    await engine.reconcile();

    expect(world.launches).toHaveLength(1);
    expect(store.records.get(RECORD.recordId)).toMatchObject({
      step: 'failed',
      error: {
        code: 'NoWayBack',
        message: expect.stringContaining(
          'the slow-path launch was refused (NotFound: RunInstances failed: InvalidSnapshot.NotFound',
        ),
      },
    });
  });
});
