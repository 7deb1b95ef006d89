import type { ShelvingSettings } from '../config';
import type { Decision } from './actions';
import { nextAttempt, type SagaRule, withUnshelve } from './saga/decisions';
import type { Observation, ObservedSubnet, PlacementObservation, ShelfRecord } from './types';

/**
 * Whether an unshelve leaves the AZ it launches in, and where to (docs/shelving.md, "Another AZ"):
 * the slow path restores from the safety snapshots into another AZ of the record's VPC when the
 * recorded one is unusable.
 */

/** Where the record launches now: the recorded placement, or the AZ the slow path moved it to. */
const currentPlacement = (record: ShelfRecord): { availabilityZone: string; subnetId: string } =>
  record.unshelve?.relocation ?? record.config;

const UNUSABLE_ZONE_STATES = new Set(['impaired', 'unavailable']);

/** Why the AZ the record launches in cannot be used now, if it cannot (docs/shelving.md, "Another AZ"). */
export const unusableZoneReason: SagaRule<string | undefined> = (record, observation, now, settings) => {
  const placement = observation.placement;
  if (!placement) return undefined;
  const { availabilityZone, subnetId } = currentPlacement(record);
  const state = placement.zones.get(availabilityZone);
  if (state !== undefined && UNUSABLE_ZONE_STATES.has(state)) return `${availabilityZone} is ${state}`;
  if (!placement.subnets.some((subnet) => subnet.subnetId === subnetId)) return `subnet ${subnetId} is gone`;
  const since = record.unshelve?.capacityRefusedSince;
  if (since !== undefined && now - since >= settings.otherAzAfterSeconds * 1000) {
    return `${availabilityZone} has had no ${record.config.instanceType} capacity for ${Math.round((now - since) / 1000)} s`;
  }
  return undefined;
};

/**
 * The subnet of another usable AZ in the record's VPC to restore into: one like the recorded
 * subnet (public IPs on launch or not), then the one with the most free addresses.
 */
const otherSubnet = (
  record: ShelfRecord,
  placement: PlacementObservation,
  refusedZones: readonly string[],
): ObservedSubnet | undefined => {
  const recorded = placement.subnets.find((subnet) => subnet.subnetId === record.config.subnetId);
  const alike = (subnet: ObservedSubnet) =>
    recorded === undefined || subnet.mapPublicIpOnLaunch === recorded.mapPublicIpOnLaunch ? 0 : 1;
  return placement.subnets
    .filter(
      (subnet) =>
        subnet.vpcId === record.config.vpcId &&
        !refusedZones.includes(subnet.availabilityZone) &&
        placement.zones.get(subnet.availabilityZone) === 'available' &&
        subnet.availableIpAddressCount > 0,
    )
    .sort(
      (a, b) =>
        alike(a) - alike(b) ||
        b.availableIpAddressCount - a.availableIpAddressCount ||
        a.subnetId.localeCompare(b.subnetId),
    )[0];
};

/** May this record leave its recorded AZ at all? */
const mayRelocate = (record: ShelfRecord, settings: ShelvingSettings): boolean =>
  settings.otherAzAfterSeconds >= 0 &&
  record.config.tenancy !== 'host' &&
  record.config.vpcId !== undefined &&
  record.unshelve?.slowPathUnavailable === undefined &&
  record.volumes.every((volume) => volume.snapshotId !== undefined);

/**
 * Why the slow path cannot restore this record, if it cannot: a volume has no safety snapshot,
 * a recorded snapshot no longer exists (deleted outside the saga, or failed), or a slow-path
 * launch was already refused for good. `observation.snapshots` is the record's tagged snapshots,
 * which the engine observes whenever a record chooses its path.
 */
export const slowPathUnavailable = (record: ShelfRecord, observation: Observation): string | undefined => {
  if (record.unshelve?.slowPathUnavailable !== undefined) return record.unshelve.slowPathUnavailable;
  const withoutSnapshot = record.volumes.filter((volume) => volume.snapshotId === undefined);
  if (withoutSnapshot.length > 0) {
    return `no safety snapshot of ${withoutSnapshot.map((volume) => volume.volumeId).join(', ')}`;
  }
  const usable = new Set(
    observation.snapshots.filter((seen) => seen.state !== 'error').map((seen) => seen.snapshotId),
  );
  const lost = record.volumes.filter((volume) => !usable.has(volume.snapshotId ?? ''));
  if (lost.length === 0) return undefined;
  return `the safety snapshot${lost.length > 1 ? 's' : ''} ${lost
    .map((volume) => `${volume.snapshotId} (of ${volume.volumeId})`)
    .join(', ')} no longer exist${lost.length > 1 ? '' : 's'}`;
};

/**
 * Whether a round must observe AZ states and subnets for this record: when it chooses its path,
 * or when a launch has failed and no replacement is known (not on every round of a bulk unshelve).
 */
export const mayNeedOtherZone = (record: ShelfRecord, settings: ShelvingSettings): boolean => {
  if (!mayRelocate(record, settings)) return false;
  if (record.step === 'unshelve.choose') return true;
  const launching = record.step === 'unshelve.launch' || record.step === 'unshelve.launch-from-snapshots';
  const unshelve = record.unshelve;
  return (
    launching &&
    unshelve?.replacementInstanceId === undefined &&
    (unshelve?.capacityRefusedSince !== undefined || (unshelve?.attempt ?? 0) > 0)
  );
};

/**
 * The recorded AZ (or the one the record already moved to) is unusable: the slow path restores
 * from the safety snapshots into another AZ, saying why. Undefined when the record stays (no
 * reason to move, moving not allowed, or no other AZ to go to: then it keeps waiting here).
 */
export const relocation: SagaRule<Decision | undefined> = (record, observation, now, settings) => {
  if (!mayRelocate(record, settings) || !observation.placement) return undefined;
  const why = unusableZoneReason(record, observation, now, settings);
  if (!why) return undefined;
  const from = currentPlacement(record).availabilityZone;
  const refusedZones = [...(record.unshelve?.relocation?.refusedZones ?? []), from];
  const target = otherSubnet(record, observation.placement, refusedZones);
  if (!target) return undefined;
  const reason = `slow path from safety snapshots into ${target.availabilityZone} (${target.subnetId}): ${why}`;
  // A new attempt: a new ClientToken for the new placement, and the old AZ's waits forgotten.
  const unshelve = withUnshelve(record, {
    path: 'slow',
    reason,
    attempt: nextAttempt(record),
    relocation: {
      subnetId: target.subnetId,
      availabilityZone: target.availabilityZone,
      reason: why,
      refusedZones,
    },
    batch: undefined,
    capacityRefusedSince: undefined,
    slowLaunchIssuedAt: undefined,
    slowLaunchQueuedMs: undefined,
  });
  return {
    to: 'unshelve.launch-from-snapshots',
    set: { unshelve },
    actions: [],
    recheckAt: now,
    reason,
  };
};
