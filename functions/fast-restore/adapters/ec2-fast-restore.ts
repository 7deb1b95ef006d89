import {
  DescribeAvailabilityZonesCommand,
  DescribeFastSnapshotRestoresCommand,
  DescribeImagesCommand,
  type DescribeImagesCommandOutput,
  DescribeSnapshotsCommand,
  DisableFastSnapshotRestoresCommand,
  type EC2Client,
  EnableFastSnapshotRestoresCommand,
} from '@aws-sdk/client-ec2';
import { callAws } from '../../shared/aws-errors';
import { NotFoundError, WarmbootError } from '../../shared/errors';
import { collectPages, collectPagesInChunks } from '../../shared/pagination';
import { type ItemError, itemErrorOf } from '../../shared/results';
import { type FsrState, isFsrState, type PairKey } from '../domain/plan';

export interface DescribedPair extends PairKey {
  readonly state: FsrState;
}

export type PairResult =
  | (PairKey & { readonly ok: true; readonly state: FsrState })
  | (PairKey & { readonly ok: false; readonly error: ItemError });

/** Exactly the EC2 calls fast restore makes. */
export interface FastRestoreEc2 {
  availabilityZones(): Promise<string[]>;
  /**
   * EBS snapshots of each AMI (root and data volumes) that this account may enable fast snapshot
   * restore for; AMIs EC2 does not know are absent.
   */
  snapshotsOfImages(imageIds: readonly string[]): Promise<ReadonlyMap<string, readonly string[]>>;
  describeFastSnapshotRestores(): Promise<DescribedPair[]>;
  enable(pairs: readonly PairKey[]): Promise<PairResult[]>;
  disable(pairs: readonly PairKey[]): Promise<PairResult[]>;
}

/** DescribeImages takes many ids; keep pages small enough to stay under the request limits. */
const IMAGES_PER_CALL = 100;
/** Snapshot ids per DescribeSnapshots filter, for the same reason. */
const SNAPSHOTS_PER_CALL = 100;

/**
 * Of `snapshotIds`, those this account owns or that were shared with it. Fast snapshot restore
 * can be enabled for no other (manage-fsr-enable): the snapshots behind AWS public and most
 * marketplace AMIs are their owners' and not shared, so enabling them would only spend the budget
 * on pairs EC2 refuses (finding W1). `RestorableByUserIds: self` lists exactly the usable ones,
 * and a filter (not SnapshotIds) leaves the others out instead of failing the call. Of those,
 * only snapshots of this account (`OwnerIds: self`) or of `allowedOwners` (security review H4):
 * IAM's `ec2:Owner` condition in infra/ is the second fence.
 */
const usableSnapshots = async (
  ec2: EC2Client,
  snapshotIds: readonly string[],
  allowedOwners: readonly string[],
): Promise<Set<string>> => {
  const snapshots = await collectPagesInChunks(snapshotIds, SNAPSHOTS_PER_CALL, async (chunk, nextToken) => {
    const page = await callAws('DescribeSnapshots', () =>
      ec2.send(
        new DescribeSnapshotsCommand({
          Filters: [{ Name: 'snapshot-id', Values: [...chunk] }],
          RestorableByUserIds: ['self'],
          OwnerIds: ['self', ...allowedOwners],
          NextToken: nextToken,
        }),
      ),
    );
    return { items: page.Snapshots ?? [], nextToken: page.NextToken };
  });
  return new Set(snapshots.flatMap((snapshot) => (snapshot.SnapshotId ? [snapshot.SnapshotId] : [])));
};

type FsrOutput = {
  Successful?: { SnapshotId?: string; AvailabilityZone?: string; State?: string }[];
  Unsuccessful?: {
    SnapshotId?: string;
    FastSnapshotRestoreStateErrors?: {
      AvailabilityZone?: string;
      Error?: { Code?: string; Message?: string };
    }[];
  }[];
};

/** What Enable/DisableFastSnapshotRestores take. */
type FsrInput = { SourceSnapshotIds: string[]; AvailabilityZones: string[] };

/** Enable/Disable take snapshots × AZs; one call per snapshot keeps the cross product exact. */
const perSnapshot = async (
  pairs: readonly PairKey[],
  operation: 'EnableFastSnapshotRestores' | 'DisableFastSnapshotRestores',
  send: (input: FsrInput) => Promise<FsrOutput>,
): Promise<PairResult[]> => {
  const zonesBySnapshot = new Map<string, string[]>();
  for (const pair of pairs)
    zonesBySnapshot.set(pair.snapshotId, [
      ...(zonesBySnapshot.get(pair.snapshotId) ?? []),
      pair.availabilityZone,
    ]);
  const results: PairResult[] = [];
  for (const [snapshotId, zones] of zonesBySnapshot) {
    let output: FsrOutput;
    try {
      output = await callAws(operation, () =>
        send({ SourceSnapshotIds: [snapshotId], AvailabilityZones: zones }),
      );
    } catch (error) {
      // One snapshot's failure (throttled, gone) is that snapshot's result; the others go on.
      if (!(error instanceof WarmbootError)) throw error;
      for (const availabilityZone of zones)
        results.push({ snapshotId, availabilityZone, ok: false, error: itemErrorOf(error) });
      continue;
    }
    for (const item of output.Successful ?? []) {
      if (!item.SnapshotId || !item.AvailabilityZone || !isFsrState(item.State)) continue;
      results.push({
        snapshotId: item.SnapshotId,
        availabilityZone: item.AvailabilityZone,
        ok: true,
        state: item.State,
      });
    }
    for (const item of output.Unsuccessful ?? []) {
      for (const zoneError of item.FastSnapshotRestoreStateErrors ?? []) {
        results.push({
          snapshotId: item.SnapshotId ?? snapshotId,
          availabilityZone: zoneError.AvailabilityZone ?? '',
          ok: false,
          error: { code: zoneError.Error?.Code ?? 'Unknown', message: zoneError.Error?.Message ?? '' },
        });
      }
    }
  }
  return results;
};

export const ec2FastRestore = (ec2: EC2Client, allowedOwners: readonly string[]): FastRestoreEc2 => ({
  async availabilityZones() {
    const output = await callAws('DescribeAvailabilityZones', () =>
      ec2.send(new DescribeAvailabilityZonesCommand({ Filters: [{ Name: 'state', Values: ['available'] }] })),
    );
    return (output.AvailabilityZones ?? []).flatMap((zone) => (zone.ZoneName ? [zone.ZoneName] : []));
  },

  async snapshotsOfImages(imageIds) {
    const snapshots = new Map<string, string[]>();
    for (let start = 0; start < imageIds.length; start += IMAGES_PER_CALL) {
      const chunk = imageIds.slice(start, start + IMAGES_PER_CALL);
      let output: DescribeImagesCommandOutput;
      try {
        // Filter by image-id rather than ImageIds: a deregistered AMI is then simply absent
        // instead of failing the whole call with InvalidAMIID.NotFound.
        output = await callAws('DescribeImages', () =>
          ec2.send(new DescribeImagesCommand({ Filters: [{ Name: 'image-id', Values: [...chunk] }] })),
        );
      } catch (error) {
        if (error instanceof NotFoundError) continue;
        throw error;
      }
      for (const image of output.Images ?? []) {
        if (!image.ImageId) continue;
        const ids = (image.BlockDeviceMappings ?? []).flatMap((mapping) =>
          mapping.Ebs?.SnapshotId ? [mapping.Ebs.SnapshotId] : [],
        );
        snapshots.set(image.ImageId, [...new Set(ids)]);
      }
    }
    const usable = await usableSnapshots(ec2, [...new Set([...snapshots.values()].flat())], allowedOwners);
    for (const [imageId, ids] of snapshots)
      snapshots.set(
        imageId,
        ids.filter((id) => usable.has(id)),
      );
    return snapshots;
  },

  async describeFastSnapshotRestores() {
    const described = await collectPages(async (nextToken) => {
      const page = await callAws('DescribeFastSnapshotRestores', () =>
        ec2.send(new DescribeFastSnapshotRestoresCommand({ MaxResults: 200, NextToken: nextToken })),
      );
      return { items: page.FastSnapshotRestores ?? [], nextToken: page.NextToken };
    });
    return described.flatMap((item) =>
      item.SnapshotId && item.AvailabilityZone && isFsrState(item.State)
        ? [{ snapshotId: item.SnapshotId, availabilityZone: item.AvailabilityZone, state: item.State }]
        : [],
    );
  },

  enable: (pairs) =>
    perSnapshot(pairs, 'EnableFastSnapshotRestores', (input) =>
      ec2.send(new EnableFastSnapshotRestoresCommand(input)),
    ),

  disable: (pairs) =>
    perSnapshot(pairs, 'DisableFastSnapshotRestores', (input) =>
      ec2.send(new DisableFastSnapshotRestoresCommand(input)),
    ),
});
