import { describe, expect, it } from 'vitest';
import { NotFoundError } from '../../../functions/shared/errors';
import type { ShelvingEc2 } from '../../../functions/shelving/adapters/ec2';
import { unshelveInstances } from '../../../functions/shelving/application/requests';
import { SHELVED_TAG } from '../../../functions/shelving/domain/tags';
import { countingEc2, NOW, RECORD_ONLY, record, shelvingOnClock, volume } from './fakes';

/**
 * A launch EC2 refuses for good is not re-issued forever. A slow-path launch (a safety snapshot
 * deleted after the path was chosen) goes back to path choice with the slow path ruled out; a
 * fast-path launch (the recorded image gone) fails the record, which the operator can unshelve
 * again once the cause is fixed.
 */

const RECORD = record({
  step: 'unshelve.choose',
  offloadedAt: NOW - 3_600_000,
  nextDueAt: NOW,
  unshelve: { requestId: 'unshelve-event', requestedAt: NOW, attempt: 0 },
});

/**
 * EC2 where the snapshots are still listed and RunInstances refuses every launch with `refusal`;
 * the retained volumes are there (available, in the AZ) only with `volumesKept`.
 */
const refusingEc2 = (refusal: string, volumesKept = false) => {
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
            startedAt: NOW,
          })),
        ],
      ]),
    describeVolumes: async (ids) =>
      volumesKept
        ? ids.map((id) => volume(id, { state: 'available', tags: { [SHELVED_TAG]: RECORD.recordId } }))
        : [],
    runInstances: async (request) => {
      launches.push(request);
      throw new NotFoundError(`RunInstances failed: ${refusal}`);
    },
  };
  const ec2 = new Proxy(overrides as ShelvingEc2, {
    get: (target, property) =>
      property in target ? target[property as keyof ShelvingEc2] : Reflect.get(base, property),
  });
  return { ec2, launches };
};

/** The record's Unshelve handled, then ten minutes of scheduled reconciles. */
const unshelveForTenMinutes = async (ec2: ShelvingEc2) => {
  const setUp = shelvingOnClock(ec2);
  await setUp.store.create(RECORD);
  await setUp.rounds.advance([RECORD]);
  setUp.clock.at += 10 * 60_000;
  await setUp.rounds.reconcile();
  return setUp;
};

describe('a slow-path launch refused because a snapshot is gone', () => {
  it('fails the record once, saying why, instead of re-issuing the launch', async () => {
    const world = refusingEc2(
      `InvalidSnapshot.NotFound: The snapshot ID '${RECORD.volumes[0]?.snapshotId}' does not exist`,
    );
    const { store } = await unshelveForTenMinutes(world.ec2);

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

describe('a fast-path launch refused because the recorded image is gone', () => {
  it('fails the record with the refusal after one launch, and a new Unshelve tries again', async () => {
    const world = refusingEc2(
      "InvalidAMIID.NotFound: The image id '[ami-0123456789abcdef0]' does not exist",
      true,
    );
    const { deps, store } = await unshelveForTenMinutes(world.ec2);

    expect(world.launches).toHaveLength(1);
    const failed = store.records.get(RECORD.recordId);
    expect(failed).toMatchObject({ step: 'failed', error: { code: 'LaunchRefused' } });
    expect(failed?.error?.message).toContain('InvalidAMIID.NotFound');
    expect(failed?.error?.message).toContain('the retained volumes are kept');

    const again = await unshelveInstances(
      deps,
      RECORD_ONLY,
      { recordIds: [RECORD.recordId] },
      { requestId: 'unshelve-again' },
    );
    expect(again).toEqual([{ id: RECORD.recordId, ok: true, step: 'unshelve.choose' }]);
  });
});
