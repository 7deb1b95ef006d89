import {
  CreateImageCommand,
  CreateSnapshotCommand,
  DeleteSnapshotCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { createCloud } from './ec2-harness';

describe('snapshots and images', () => {
  it('a snapshot goes pending → completed in time proportional to the volume size', async () => {
    const cloud = await createCloud({ latency: 'calibrated' });
    const reservation = await cloud.run(() =>
      cloud.ec2Client.send(new RunInstancesCommand({ ImageId: cloud.imageId, MinCount: 1, MaxCount: 1 })),
    );
    const volumeId = reservation.Instances?.[0]?.BlockDeviceMappings?.[0]?.Ebs?.VolumeId;
    const snapshot = await cloud.run(() =>
      cloud.ec2Client.send(new CreateSnapshotCommand({ VolumeId: volumeId })),
    );
    const describe = () =>
      cloud.run(() =>
        cloud.ec2Client.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshot.SnapshotId ?? ''] })),
      );

    // 20 s + 5 s per GiB for the 8 GiB root volume: 60 s.
    await cloud.clock.advanceBy(59_000);
    const pending = await describe();
    await cloud.clock.advanceBy(1_000);
    const completed = await describe();

    expect(pending.Snapshots?.[0]?.State).toBe('pending');
    expect(completed.Snapshots?.[0]).toMatchObject({ State: 'completed', VolumeSize: 8, VolumeId: volumeId });
  });

  it('CreateImage snapshots every volume and becomes available when they complete', async () => {
    const cloud = await createCloud();
    const reservation = await cloud.run(() =>
      cloud.ec2Client.send(
        new RunInstancesCommand({
          ImageId: cloud.imageId,
          MinCount: 1,
          MaxCount: 1,
          BlockDeviceMappings: [{ DeviceName: '/dev/sdf', Ebs: { VolumeSize: 30 } }],
        }),
      ),
    );
    await cloud.settle();

    const created = await cloud.run(() =>
      cloud.ec2Client.send(
        new CreateImageCommand({ InstanceId: reservation.Instances?.[0]?.InstanceId, Name: 'warm-1' }),
      ),
    );
    await cloud.settle();

    const images = await cloud.run(() =>
      cloud.ec2Client.send(
        new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: 'name', Values: ['warm-*'] }] }),
      ),
    );
    expect(images.Images?.map((image) => image.ImageId)).toEqual([created.ImageId]);
    expect(images.Images?.[0]).toMatchObject({
      State: 'available',
      RootDeviceName: '/dev/xvda',
      RootDeviceType: 'ebs',
    });
    expect(
      images.Images?.[0]?.BlockDeviceMappings?.map((mapping) => [
        mapping.DeviceName,
        mapping.Ebs?.VolumeSize,
      ]),
    ).toEqual([
      ['/dev/xvda', 8],
      ['/dev/sdf', 30],
    ]);
  });

  it('DeleteSnapshot removes a snapshot, refuses one a registered AMI uses (InvalidSnapshot.InUse)', async () => {
    const cloud = await createCloud();
    const reservation = await cloud.run(() =>
      cloud.ec2Client.send(new RunInstancesCommand({ ImageId: cloud.imageId, MinCount: 1, MaxCount: 1 })),
    );
    const volumeId = reservation.Instances?.[0]?.BlockDeviceMappings?.[0]?.Ebs?.VolumeId;
    const snapshot = await cloud.run(() =>
      cloud.ec2Client.send(new CreateSnapshotCommand({ VolumeId: volumeId })),
    );
    const deleteSnapshot = (snapshotId: string) =>
      cloud.run(() => cloud.ec2Client.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId })));
    const imageSnapshot = cloud.ec2.images()[0]?.blockDevices[0]?.snapshotId ?? '';

    await deleteSnapshot(snapshot.SnapshotId ?? '');

    await expect(
      cloud.run(() =>
        cloud.ec2Client.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshot.SnapshotId ?? ''] })),
      ),
    ).rejects.toMatchObject({ name: 'InvalidSnapshot.NotFound' });
    await expect(deleteSnapshot(snapshot.SnapshotId ?? '')).rejects.toMatchObject({
      name: 'InvalidSnapshot.NotFound',
    });
    await expect(deleteSnapshot(imageSnapshot)).rejects.toMatchObject({ name: 'InvalidSnapshot.InUse' });
  });

  it('an AMI name is unique (InvalidAMIName.Duplicate)', async () => {
    const cloud = await createCloud();

    expect(() => cloud.ec2.registerImage({ name: 'al2023', rootSizeGiB: 8 })).toThrow(
      expect.objectContaining({ name: 'InvalidAMIName.Duplicate' }),
    );
  });

  it('launching an unknown AMI fails with InvalidAMIID.NotFound', async () => {
    const cloud = await createCloud();

    const launch = cloud.run(() =>
      cloud.ec2Client.send(
        new RunInstancesCommand({ ImageId: 'ami-0123456789abcdef0', MinCount: 1, MaxCount: 1 }),
      ),
    );

    await expect(launch).rejects.toMatchObject({ name: 'InvalidAMIID.NotFound' });
  });

  it('a root volume smaller than the AMI snapshot is InvalidBlockDeviceMapping', async () => {
    const cloud = await createCloud();

    const launch = cloud.run(() =>
      cloud.ec2Client.send(
        new RunInstancesCommand({
          ImageId: cloud.imageId,
          MinCount: 1,
          MaxCount: 1,
          BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { VolumeSize: 4 } }],
        }),
      ),
    );

    await expect(launch).rejects.toMatchObject({ name: 'InvalidBlockDeviceMapping' });
  });
});
