import { type CurrentPair, type FsrState, type PairKey, pairId } from './plan';

/**
 * Joins what warmboot remembers (ownership, image, last wanted) with what EC2 says now
 * (DescribeFastSnapshotRestores is the truth for states). A remembered pair EC2 no longer lists
 * is disabled; a stored state that differs from EC2's is corrected, which heals lost events.
 */
export const reconcilePairs = (
  records: readonly (PairKey & {
    readonly managed: boolean;
    readonly imageId?: string | undefined;
    readonly state?: FsrState | undefined;
    readonly lastWantedAt?: number | undefined;
    readonly enabledAt?: number | undefined;
  })[],
  described: readonly (PairKey & { readonly state: FsrState })[],
): { current: CurrentPair[]; corrections: (PairKey & { state: FsrState })[] } => {
  const seen = new Map(described.map((pair) => [pairId(pair), pair]));
  const remembered = new Map(records.map((record) => [pairId(record), record]));
  const current: CurrentPair[] = [];
  const corrections: (PairKey & { state: FsrState })[] = [];
  for (const [id, record] of remembered) {
    const state = seen.get(id)?.state ?? 'disabled';
    const key = { snapshotId: record.snapshotId, availabilityZone: record.availabilityZone };
    if (record.state !== state) corrections.push({ ...key, state });
    current.push({
      ...key,
      state,
      managed: record.managed,
      imageId: record.imageId,
      lastWantedAt: record.lastWantedAt,
      enabledAt: record.enabledAt,
    });
  }
  for (const [id, pair] of seen) {
    if (!remembered.has(id)) current.push({ ...pair, managed: false });
  }
  return { current, corrections };
};
