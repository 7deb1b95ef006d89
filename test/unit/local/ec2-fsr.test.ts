import { DescribeFastSnapshotRestoresCommand, DisableFastSnapshotRestoresCommand } from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { fastRestoreCreditLimits } from '../../../local/ec2/fsr';
import {
  type Cloud,
  createCloud,
  createVolume,
  enableFastRestore,
  rootSnapshotOf,
  ZONE_A,
  ZONE_B,
} from './ec2-harness';

const fsrEvents = (cloud: Cloud) =>
  cloud.events
    .filter((event) => event.detailType === 'EBS Fast Snapshot Restore State-change Notification')
    .map(({ at, detail }) => ({ at, detail }));

const restoreVolume = (cloud: Cloud, snapshotId: string, zone = ZONE_A) =>
  createVolume(cloud, { AvailabilityZone: zone, SnapshotId: snapshotId });

describe('fast snapshot restore', () => {
  it('credit buckets follow MAX(1, MIN(10, 1024/size)) and refill MIN(10, 1024/size) per hour', () => {
    expect(fastRestoreCreditLimits(8)).toEqual({ capacity: 10, refillPerHour: 10 });
    expect(fastRestoreCreditLimits(256)).toEqual({ capacity: 4, refillPerHour: 4 });
    expect(fastRestoreCreditLimits(2048)).toEqual({ capacity: 1, refillPerHour: 0.5 });
  });

  it('FSR goes enabling → optimizing (60 min per TiB) → enabled, with AWS-shaped events', async () => {
    const cloud = await createCloud({ latency: 'calibrated' });
    const imageId = cloud.ec2.registerImage({ name: 'half-tib', rootSizeGiB: 512 });
    const snapshotId = rootSnapshotOf(cloud, imageId);
    const before = cloud.elapsed();

    const answer = await enableFastRestore(cloud, [snapshotId]);
    await cloud.settle(2 * 60 * 60_000);

    expect(answer.Successful?.[0]).toMatchObject({
      SnapshotId: snapshotId,
      AvailabilityZone: ZONE_A,
      State: 'enabling',
    });
    const enabling = before + 300;
    const detail = (state: string, message: string) => ({
      'snapshot-id': snapshotId,
      state,
      zone: ZONE_A,
      message,
    });
    expect(fsrEvents(cloud)).toEqual([
      { at: enabling, detail: detail('enabling', 'Client.UserInitiated') },
      {
        at: enabling + 60_000,
        detail: detail('optimizing', 'Client.UserInitiated - Lifecycle state transition'),
      },
      {
        at: enabling + 60_000 + 30 * 60_000,
        detail: detail('enabled', 'Client.UserInitiated - Lifecycle state transition'),
      },
    ]);
    expect(cloud.events.at(-1)?.resources).toEqual([`arn:aws:ec2:us-east-1::snapshot/${snapshotId}`]);
  });

  it('fast-restored volumes use credits; without credits, or in another AZ, volumes load lazily', async () => {
    const cloud = await createCloud();
    const imageId = cloud.ec2.registerImage({ name: 'big', rootSizeGiB: 512 });
    const snapshotId = rootSnapshotOf(cloud, imageId);
    await enableFastRestore(cloud, [snapshotId]);
    await cloud.settle();

    // 1024 / 512 GiB = 2 credits.
    const volumes = [
      await restoreVolume(cloud, snapshotId),
      await restoreVolume(cloud, snapshotId),
      await restoreVolume(cloud, snapshotId),
      await restoreVolume(cloud, snapshotId, ZONE_B),
    ];

    expect(volumes.map((volume) => volume.FastRestored)).toEqual([true, true, false, false]);
    expect(cloud.ec2.fastRestores()[0]?.credits).toBe(0);
  });

  it('credits refill over time: one credit after 30 minutes at 2 per hour', async () => {
    const cloud = await createCloud();
    const snapshotId = rootSnapshotOf(cloud, cloud.ec2.registerImage({ name: 'big', rootSizeGiB: 512 }));
    await enableFastRestore(cloud, [snapshotId]);
    await cloud.settle();
    await restoreVolume(cloud, snapshotId);
    await restoreVolume(cloud, snapshotId);

    await cloud.clock.advanceBy(30 * 60_000);

    expect((await restoreVolume(cloud, snapshotId)).FastRestored).toBe(true);
  });

  it('disabling goes disabling → disabled and stops fast restores', async () => {
    const cloud = await createCloud();
    const snapshotId = rootSnapshotOf(cloud, cloud.imageId);
    await enableFastRestore(cloud, [snapshotId]);
    await cloud.settle();

    await cloud.run(() =>
      cloud.ec2Client.send(
        new DisableFastSnapshotRestoresCommand({
          SourceSnapshotIds: [snapshotId],
          AvailabilityZones: [ZONE_A],
        }),
      ),
    );
    await cloud.settle();

    const described = await cloud.run(() =>
      cloud.ec2Client.send(new DescribeFastSnapshotRestoresCommand({})),
    );
    expect(described.FastSnapshotRestores?.[0]?.State).toBe('disabled');
    expect(
      fsrEvents(cloud)
        .slice(-2)
        .map((event) => event.detail.state),
    ).toEqual(['disabling', 'disabled']);
    expect((await restoreVolume(cloud, snapshotId)).FastRestored).toBe(false);
  });

  it('an unknown snapshot is reported as unsuccessful, not as an error', async () => {
    const cloud = await createCloud();

    const answer = await enableFastRestore(cloud, ['snap-0123456789abcdef0']);

    expect(answer.Unsuccessful?.[0]?.FastSnapshotRestoreStateErrors?.[0]?.Error?.Code).toBe(
      'InvalidSnapshot.NotFound',
    );
  });
});
