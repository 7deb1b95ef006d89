import { CreateVolumeCommand, DescribeSnapshotsCommand } from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { FSR_SNAPSHOTS_PER_REGION } from '../../../local/ec2/fsr';
import { createCloud, enableFastRestore, rootSnapshotOf, ZONE_A } from './ec2-harness';

/**
 * Snapshots belong to accounts. Behind another account's AMI is that account's snapshot, which
 * this account may not describe, restore directly or enable fast snapshot restore for unless it
 * was shared (EBS user guide, manage-fsr-enable and ebs-modifying-snapshot-permissions). And fast
 * snapshot restore is on for at most 5 snapshots per Region by default (EBS service quotas).
 */

/** A cloud holding an 8 GiB image of another account; the snapshot behind its root. */
const cloudWithImageOf = async (image: { name: string; ownerId: string; snapshotsShared?: boolean }) => {
  const cloud = await createCloud();
  return { cloud, snapshotId: rootSnapshotOf(cloud, cloud.ec2.registerImage({ ...image, rootSizeGiB: 8 })) };
};

describe('snapshot ownership', () => {
  it("hides another account's unshared snapshot and refuses to restore or fast-restore it", async () => {
    const { cloud, snapshotId } = await cloudWithImageOf({ name: 'amazon-public', ownerId: '137112412989' });

    const listed = await cloud.run(() =>
      cloud.ec2Client.send(new DescribeSnapshotsCommand({ RestorableByUserIds: ['self'] })),
    );
    const named = await cloud
      .run(() => cloud.ec2Client.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] })))
      .catch((error: unknown) => error);
    const restored = await cloud
      .run(() =>
        cloud.ec2Client.send(new CreateVolumeCommand({ SnapshotId: snapshotId, AvailabilityZone: ZONE_A })),
      )
      .catch((error: unknown) => error);
    const fsr = await enableFastRestore(cloud, [snapshotId]);

    expect(listed.Snapshots?.map((snapshot) => snapshot.SnapshotId)).not.toContain(snapshotId);
    expect(named).toMatchObject({ name: 'InvalidSnapshot.NotFound' });
    expect(restored).toMatchObject({ name: 'InvalidSnapshot.NotFound' });
    expect(fsr.Successful).toEqual([]);
    expect(fsr.Unsuccessful?.[0]?.FastSnapshotRestoreStateErrors?.[0]?.Error?.Code).toBe(
      'InvalidSnapshot.NotFound',
    );
  });

  it('lets the account use a snapshot shared with it, and reports its owner', async () => {
    const { cloud, snapshotId } = await cloudWithImageOf({
      name: 'partner',
      ownerId: '210987654321',
      snapshotsShared: true,
    });

    const listed = await cloud.run(() =>
      cloud.ec2Client.send(new DescribeSnapshotsCommand({ RestorableByUserIds: ['self'] })),
    );
    const owned = await cloud.run(() =>
      cloud.ec2Client.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] })),
    );
    const fsr = await enableFastRestore(cloud, [snapshotId]);

    expect(listed.Snapshots?.find((snapshot) => snapshot.SnapshotId === snapshotId)?.OwnerId).toBe(
      '210987654321',
    );
    expect(owned.Snapshots?.map((snapshot) => snapshot.SnapshotId)).not.toContain(snapshotId);
    expect(fsr.Successful?.map((item) => item.SnapshotId)).toEqual([snapshotId]);
  });

  it('enables fast snapshot restore for at most 5 snapshots per Region', async () => {
    const cloud = await createCloud();
    const snapshots = Array.from({ length: FSR_SNAPSHOTS_PER_REGION + 1 }, (_, index) =>
      rootSnapshotOf(cloud, cloud.ec2.registerImage({ name: `own-${index}`, rootSizeGiB: 8 })),
    );

    const answer = await enableFastRestore(cloud, snapshots);

    expect(answer.Successful).toHaveLength(5);
    expect(answer.Unsuccessful?.map((item) => item.SnapshotId)).toEqual([snapshots[5]]);
  });
});
