import {
  DeleteSnapshotCommand,
  DeleteVolumeCommand,
  DescribeSnapshotsCommand,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { callAws } from '../../shared/aws-errors';
import { NotFoundError, UnmanagedResourceError } from '../../shared/errors';
import {
  replacementRootDeletionRefusal,
  shelvedSnapshotDeletionRefusal,
  shelvedVolumeDeletionRefusal,
} from '../domain/safety';
import type { ObservedVolume } from '../domain/types';
import type { ShelvingEc2 } from './ec2';
import { tagsOf } from './ec2-mapping';

/**
 * The only deletes shelving makes, each behind the data-safety fence (domain/safety.ts): the
 * volume or snapshot is re-described right before and refused (UnmanagedResourceError) unless it
 * is what the caller says; one already gone is success.
 */
export const fencedDeletions = (
  client: EC2Client,
  describeOneVolume: (volumeId: string) => Promise<ObservedVolume | undefined>,
): Pick<ShelvingEc2, 'deleteReplacementRoot' | 'deleteShelvedVolume' | 'deleteShelvedSnapshot'> => ({
  async deleteReplacementRoot(volumeId, recordId, retainedVolumeIds) {
    const volume = await describeOneVolume(volumeId);
    if (!volume) return;
    const refusal = replacementRootDeletionRefusal(volume, recordId, retainedVolumeIds);
    if (refusal) throw new UnmanagedResourceError(`refusing DeleteVolume: ${refusal}`);
    await callAws('DeleteVolume', () => client.send(new DeleteVolumeCommand({ VolumeId: volumeId })));
  },
  async deleteShelvedVolume(volumeId, recordId) {
    const volume = await describeOneVolume(volumeId);
    if (!volume) return;
    const refusal = shelvedVolumeDeletionRefusal(volume, recordId);
    if (refusal) throw new UnmanagedResourceError(`refusing DeleteVolume: ${refusal}`);
    await callAws('DeleteVolume', () => client.send(new DeleteVolumeCommand({ VolumeId: volumeId })));
  },
  async deleteShelvedSnapshot(snapshotId, recordId, retainedVolumeIds) {
    const page = await callAws('DescribeSnapshots', () =>
      client.send(
        new DescribeSnapshotsCommand({
          OwnerIds: ['self'],
          // A filter, not SnapshotIds: a snapshot already gone answers empty, not NotFound.
          Filters: [{ Name: 'snapshot-id', Values: [snapshotId] }],
        }),
      ),
    );
    const snapshot = page.Snapshots?.[0];
    if (!snapshot) return;
    const refusal = shelvedSnapshotDeletionRefusal(
      { snapshotId, volumeId: snapshot.VolumeId ?? '', tags: tagsOf(snapshot.Tags) },
      recordId,
      retainedVolumeIds,
    );
    if (refusal) throw new UnmanagedResourceError(`refusing DeleteSnapshot: ${refusal}`);
    try {
      await callAws('DeleteSnapshot', () =>
        client.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId })),
      );
    } catch (error) {
      // Already gone (a retried or concurrent deletion): the same outcome.
      if (!(error instanceof NotFoundError)) throw error;
    }
  },
});
