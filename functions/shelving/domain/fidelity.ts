import type { ItemError } from '../../shared/results';
import { OPT_IN_TAG, OPTED_IN } from '../../shared/tags';
import type { ShelvingSettings } from '../config';
import type { Action } from './actions';
import type {
  InstanceDetails,
  LaunchConfig,
  NotKept,
  Observation,
  ObservedInstance,
  PlacementGroupRef,
  ReplacementAttribute,
  ShelfRecord,
} from './types';

/**
 * "Unshelve brings the instance back as it was" (finding W2), as pure decisions: what a shelve
 * records beyond the launch configuration, what a launch asks for, what is set on the replacement
 * once it is ready, and what could not be kept. Kept: the private IPv4 address (in the recorded
 * subnet), the Elastic IP, user data, termination and stop protection, the placement group, the
 * CPU credit option and the tags. Never kept: the instance id; on a move to another AZ the subnet
 * and private address (and a cluster placement group, which lives in one AZ).
 */

/** The recorded attributes of an instance being shelved (DescribeInstances plus its details). */
export const keptAttributes = (
  instance: ObservedInstance,
  details: InstanceDetails | undefined,
): Partial<LaunchConfig> => ({
  ...(instance.privateIpAddress ? { privateIpAddress: instance.privateIpAddress } : {}),
  ...(instance.placementGroupName
    ? {
        placementGroup: {
          groupName: instance.placementGroupName,
          ...(instance.partitionNumber !== undefined ? { partitionNumber: instance.partitionNumber } : {}),
          ...(details?.placementGroupStrategy ? { strategy: details.placementGroupStrategy } : {}),
        },
      }
    : {}),
  ...(details?.userData ? { userData: details.userData } : {}),
  ...(details?.disableApiTermination ? { disableApiTermination: true } : {}),
  ...(details?.disableApiStop ? { disableApiStop: true } : {}),
  ...(details?.cpuCredits ? { cpuCredits: details.cpuCredits } : {}),
  ...(details?.elasticIp ? { elasticIp: details.elasticIp } : {}),
});

/**
 * Shelving stops a running instance, and stop protection (DisableApiStop) refuses that. warmboot
 * never turns a protection off on the owner's behalf, so such an instance is refused, named.
 * Termination protection does not stop a shelve (it only refuses the offload: requests.ts).
 */
export const stopProtectionRefusal = (
  instance: ObservedInstance,
  details: InstanceDetails | undefined,
): ItemError | undefined =>
  instance.state === 'running' && details?.disableApiStop
    ? {
        code: 'StopProtected',
        message: `instance ${instance.instanceId} has stop protection (DisableApiStop) and shelving stops it; warmboot never turns protection off: turn it off (it is set again on the replacement when unshelved) or stop the instance, then shelve`,
      }
    : undefined;

/**
 * The private address a launch asks for: the recorded one, when the replacement comes back in the
 * recorded subnet, the deployment keeps addresses, and EC2 has not answered that it is in use.
 */
export const launchPrivateIp = (record: ShelfRecord, keepPrivateIp: boolean): string | undefined =>
  keepPrivateIp && record.unshelve?.relocation === undefined && record.unshelve?.privateIpInUse !== true
    ? record.config.privateIpAddress
    : undefined;

/** The recorded placement group, unless the record moved to another AZ and the group is a cluster. */
export const launchPlacementGroup = (record: ShelfRecord): PlacementGroupRef | undefined => {
  const group = record.config.placementGroup;
  if (!group) return undefined;
  return record.unshelve?.relocation !== undefined && group.strategy === 'cluster' ? undefined : group;
};

const isFastStart = (record: ShelfRecord): boolean => record.step === 'unshelve.start-replacement';
const isSlowLaunch = (record: ShelfRecord): boolean => record.step === 'unshelve.launch-from-snapshots';

/**
 * What the engine reads of a record's replacement this round: its user data while the fast-path
 * replacement is stopped before its start, its protection and the Elastic IP once it runs.
 */
export const attributesToRead = (
  record: ShelfRecord,
  replacement: ObservedInstance | undefined,
): { readonly attributes: readonly ReplacementAttribute[]; readonly elasticIp: boolean } => {
  const { config } = record;
  if (!replacement || !(isFastStart(record) || isSlowLaunch(record)))
    return { attributes: [], elasticIp: false };
  if (replacement.state === 'stopped' && isFastStart(record) && config.userData)
    return { attributes: ['userData'], elasticIp: false };
  if (replacement.state !== 'running') return { attributes: [], elasticIp: false };
  return {
    attributes: [
      ...(config.disableApiTermination ? (['disableApiTermination'] as const) : []),
      ...(config.disableApiStop ? (['disableApiStop'] as const) : []),
    ],
    elasticIp: config.elasticIp !== undefined,
  };
};

/**
 * Fast path: the replacement launched without user data, so the image's fresh OS, which sees the
 * retained data volumes for a few seconds, never runs the owner's boot script. It is set while the
 * replacement is stopped (ModifyInstanceAttribute changes user data only then), before the start
 * that boots the retained root.
 */
export const userDataAction = (
  record: ShelfRecord,
  replacement: ObservedInstance,
  observation: Observation,
): Action | undefined => {
  const wanted = record.config.userData;
  if (!wanted || replacement.state !== 'stopped') return undefined;
  if (observation.replacementAttributes?.userData === wanted) return undefined;
  return { kind: 'set-user-data', instanceId: replacement.instanceId, userData: wanted };
};

export interface Restoration {
  /** Calls still needed (each sets an absolute value, so repeating one is harmless). */
  readonly actions: readonly Action[];
  /** Why the record waits without acting (the Elastic IP is still on the terminating original). */
  readonly waiting?: string;
  /** What the replacement does not keep, once nothing is left to do. */
  readonly notKept: readonly NotKept[];
}

const PROTECTIONS = ['disableApiTermination', 'disableApiStop'] as const;

/**
 * Once the replacement runs: termination and stop protection are set (not at launch: stop
 * protection would refuse the saga's own stop of the fast-path replacement), and the Elastic IP is
 * associated again, never taken from another resource (AllowReassociation false). Level-triggered
 * from what EC2 shows: an address another instance now holds, or one released, is reported as not
 * kept instead of retried.
 */
export const restoration = (
  record: ShelfRecord,
  replacement: ObservedInstance,
  observation: Observation,
  settings: Pick<ShelvingSettings, 'keepPrivateIp'>,
): Restoration => {
  const { config } = record;
  const actions: Action[] = [];
  for (const attribute of PROTECTIONS) {
    if (config[attribute] && observation.replacementAttributes?.[attribute] !== true)
      actions.push({ kind: 'set-protection', instanceId: replacement.instanceId, attribute, value: true });
  }
  const notKept: NotKept[] = [
    {
      attribute: 'instanceId',
      was: record.instanceId,
      now: replacement.instanceId,
      reason: 'a replacement instance carries the retained or restored volumes',
    },
  ];
  const address = config.elasticIp;
  if (address) {
    const seen = observation.elasticIp;
    const was = `${address.publicIp} (${address.allocationId})`;
    if (seen === undefined) return { actions, waiting: 'reading the Elastic IP', notKept };
    if (seen === null) {
      notKept.push({ attribute: 'elasticIp', was, reason: 'the address was released since the shelve' });
    } else if (seen.instanceId === undefined) {
      actions.push({
        kind: 'associate-address',
        allocationId: address.allocationId,
        instanceId: replacement.instanceId,
      });
    } else if (seen.instanceId === record.instanceId) {
      return {
        actions,
        waiting: `the Elastic IP is still on ${record.instanceId} while it terminates`,
        notKept,
      };
    } else if (seen.instanceId !== replacement.instanceId) {
      notKept.push({
        attribute: 'elasticIp',
        was,
        reason: `the address is associated with ${seen.instanceId} now; warmboot does not take it from there`,
      });
    }
  }
  notKept.push(...placementNotKept(record, replacement, settings));
  return { actions, notKept };
};

/** The private address, subnet and placement group the replacement came back without. */
const placementNotKept = (
  record: ShelfRecord,
  replacement: ObservedInstance,
  settings: Pick<ShelvingSettings, 'keepPrivateIp'>,
): NotKept[] => {
  const { config } = record;
  const moved = record.unshelve?.relocation;
  const notKept: NotKept[] = [];
  if (moved) {
    notKept.push({
      attribute: 'subnet',
      was: `${config.subnetId} (${config.availabilityZone})`,
      now: `${moved.subnetId} (${moved.availabilityZone})`,
      reason: `restored from the safety snapshots into another AZ: ${moved.reason}`,
    });
  }
  const address = config.privateIpAddress;
  if (address && replacement.privateIpAddress !== address) {
    notKept.push({
      attribute: 'privateIpAddress',
      was: address,
      ...(replacement.privateIpAddress ? { now: replacement.privateIpAddress } : {}),
      reason: moved
        ? 'a private address belongs to its subnet, and the replacement is in another AZ'
        : record.unshelve?.privateIpInUse
          ? 'the address was in use by another network interface when the replacement launched'
          : settings.keepPrivateIp
            ? 'EC2 assigned another address'
            : 'the deployment does not keep private addresses (keepPrivateIp off)',
    });
  }
  const group = config.placementGroup;
  if (group && replacement.placementGroupName !== group.groupName) {
    notKept.push({
      attribute: 'placementGroup',
      was: group.groupName,
      reason:
        moved && group.strategy === 'cluster'
          ? 'a cluster placement group lives in one AZ'
          : 'not in its group',
    });
  }
  return notKept;
};

/**
 * Burstable performance families (T2, T3, T3a, T4g): the only types with a CPU credit option, and
 * the only ones DescribeInstanceCreditSpecifications may name ("If you specify an instance ID that
 * is not valid, such as an instance that is not a burstable performance instance, an error is
 * returned").
 */
export const isBurstableType = (instanceType: string): boolean =>
  ['t2', 't3', 't3a', 't4g'].includes(instanceType.split('.')[0] ?? '');

/**
 * Whether a shelve reads an instance's details: only an instance it may shelve (opted in, EBS-backed,
 * running or stopped), which is also all that IAM lets it read them of.
 */
export const detailsWanted = (instance: ObservedInstance): boolean =>
  instance.tags[OPT_IN_TAG.shelving] === OPTED_IN &&
  instance.rootDeviceType === 'ebs' &&
  (instance.state === 'running' || instance.state === 'stopped');
