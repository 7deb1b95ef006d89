import type { ParsedEvent } from '../../shared/event-registry';
import type { FastSnapshotRestoreStateChangeDetail } from '../../shared/schemas/aws-events';
import type { FastRestoreDependencies } from '../dependencies';
import { type FastRestoreRound, runFastRestoreRound } from './rounds';

export interface StateRecorded {
  readonly status: 'state-recorded';
  readonly snapshotId: string;
  readonly availabilityZone: string;
  readonly state: string;
  /** False when a newer state of the pair was stored already. */
  readonly applied: boolean;
  readonly round?: FastRestoreRound;
}

/**
 * An EBS fast snapshot restore state change: the pair's state is remembered unless a newer one
 * is stored, and a pair that finished disabling frees budget, so the round runs again for the
 * enables it deferred.
 */
export const recordStateChange = async (
  dependencies: FastRestoreDependencies,
  event: ParsedEvent<FastSnapshotRestoreStateChangeDetail>,
): Promise<StateRecorded> => {
  const pair = { snapshotId: event.detail['snapshot-id'], availabilityZone: event.detail.zone };
  const applied = await dependencies.records.recordState(pair, event.detail.state, Date.parse(event.time));
  const recorded = {
    status: 'state-recorded',
    ...pair,
    state: event.detail.state,
    applied: applied === 'applied',
  } as const;
  // A pair finished disabling: budget is free, so deferred enables can go now.
  if (event.detail.state !== 'disabled' || applied !== 'applied') return recorded;
  const round = await runFastRestoreRound(dependencies, dependencies.clock.now(), { dryRun: false });
  return { ...recorded, round };
};
