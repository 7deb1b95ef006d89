import type { ItemError, ItemResult } from '../../shared/results';
import { type INSTANCE_STATES, isGoneState } from '../../shared/schemas/aws-events';
import type { ShelvingFact } from './actions';

/**
 * The shelving domain's own vocabulary: what a shelve record holds and what the saga observed in
 * EC2 (what it asks the adapters to take is in actions.ts). No SDK types here; adapters translate.
 */

export type Tenancy = 'default' | 'dedicated' | 'host';
/** Dedicated Host affinity: `host` = must come back on the recorded host; `default` = any host in the AZ. */
export type HostAffinity = 'host' | 'default';
/**
 * How an unshelve brought the instance back: `start` (it was only stopped), `in-place` (a
 * replacement whose root EC2 swapped for the retained one while it ran), `fast` (a replacement
 * stopped, its root swapped by detach and attach, started again), `slow` (from the snapshots).
 */
export type UnshelvePath = 'start' | 'in-place' | 'fast' | 'slow';

/** Everything RunInstances needs to bring an instance back as it was. */
export interface LaunchConfig {
  readonly imageId: string;
  readonly instanceType: string;
  readonly availabilityZone: string;
  readonly subnetId: string;
  /** The subnet's VPC: another AZ's subnet for the slow path must be in it (security groups are per VPC). */
  readonly vpcId?: string;
  readonly securityGroupIds: readonly string[];
  readonly iamInstanceProfileArn?: string;
  readonly keyName?: string;
  readonly rootDeviceName: string;
  readonly ebsOptimized?: boolean;
  readonly tenancy: Tenancy;
  readonly hostId?: string;
  readonly affinity?: HostAffinity;
  /** `windows` for Windows instances (DescribeInstances `Platform`); absent for Linux. */
  readonly platform?: 'windows';
  /** The instance's metadata options when shelved; the replacement keeps them, with IMDSv2 required. */
  readonly metadata?: InstanceMetadataOptions;
  /** Its primary private IPv4 address: asked for again in the recorded subnet (setting keepPrivateIp). */
  readonly privateIpAddress?: string;
  /** Its user data, base64 as DescribeInstanceAttribute answers it. */
  readonly userData?: string;
  /** Termination and stop protection when shelved: set again on the replacement once it is ready. */
  readonly disableApiTermination?: boolean;
  readonly disableApiStop?: boolean;
  readonly placementGroup?: PlacementGroupRef;
  /** Burstable (T) types only: the CPU credit option. */
  readonly cpuCredits?: CpuCredits;
  /** The Elastic IP associated with its primary private address: associated again once it is ready. */
  readonly elasticIp?: ElasticIp;
}

export type CpuCredits = 'standard' | 'unlimited';

export interface PlacementGroupRef {
  readonly groupName: string;
  readonly partitionNumber?: number;
  /** A cluster group lives in one AZ: a move to another AZ leaves it (DescribePlacementGroups). */
  readonly strategy?: 'cluster' | 'spread' | 'partition';
}

export interface ElasticIp {
  readonly allocationId: string;
  readonly publicIp: string;
}

/**
 * What DescribeInstances does not show of an instance being shelved (DescribeInstanceAttribute,
 * DescribeAddresses, DescribeInstanceCreditSpecifications, DescribePlacementGroups).
 */
export interface InstanceDetails {
  readonly instanceId: string;
  readonly userData?: string;
  readonly disableApiTermination: boolean;
  readonly disableApiStop: boolean;
  readonly elasticIp?: ElasticIp;
  readonly cpuCredits?: CpuCredits;
  readonly placementGroupStrategy?: PlacementGroupRef['strategy'];
}

/** Something of the shelved instance its replacement could not keep, as Instance Unshelved states it. */
export interface NotKept {
  readonly attribute: 'instanceId' | 'privateIpAddress' | 'subnet' | 'elasticIp' | 'placementGroup';
  readonly was: string;
  readonly now?: string;
  readonly reason: string;
}

export interface InstanceMetadataOptions {
  readonly hopLimit: number;
  readonly endpoint: 'enabled' | 'disabled';
}

/** One EBS volume the record keeps, with what is needed to reattach or recreate it. */
export interface RetainedVolume {
  readonly volumeId: string;
  readonly deviceName: string;
  readonly root: boolean;
  readonly sizeGiB: number;
  readonly volumeType: string;
  readonly iops?: number;
  readonly throughput?: number;
  readonly encrypted?: boolean;
  /** DeleteOnTermination before shelving (restored after unshelve). */
  readonly deleteOnTermination: boolean;
  /** The safety snapshot the slow path restores from, once taken. */
  readonly snapshotId?: string;
}

export type ShelveStep = 'shelve.prepare' | 'shelve.stop' | 'shelve.snapshot';
export type UnshelveStep =
  | 'unshelve.start'
  | 'unshelve.choose'
  | 'unshelve.launch'
  | 'unshelve.replace-root'
  | 'unshelve.stop-replacement'
  | 'unshelve.swap-root'
  | 'unshelve.start-replacement'
  | 'unshelve.launch-from-snapshots'
  | 'unshelve.finalize';
export type Step =
  | ShelveStep
  | 'shelved'
  | 'offload.terminate'
  | 'offloaded'
  | UnshelveStep
  | 'unshelved'
  | 'failed'
  | 'deleting';

/** A grouped RunInstances call: records in one batch share a client token and a launch config. */
export interface LaunchBatch {
  /** Also the ClientToken and the `warmboot:replacement-batch` tag value. */
  readonly batchId: string;
  readonly size: number;
  /** This record's position in the call: the replacement with AmiLaunchIndex == index is ours. */
  readonly index: number;
  readonly hostId?: string;
  readonly affinity?: HostAffinity;
  /** When the call was (last) made; a batch with no replacement is re-issued only after a grace period. */
  readonly issuedAt: number;
  /**
   * How long the account budget was expected to hold the call back when it was claimed (the
   * round's other launches ahead of it): the grace period starts after it (reissueDueAt).
   */
  readonly queuedMs?: number;
}

export interface UnshelveState {
  readonly requestId: string;
  readonly requestedAt: number;
  readonly path?: UnshelvePath;
  /** Why the slow path was taken, or why the record waits. */
  readonly reason?: string;
  /** Why this unshelve swaps the root by stop, detach and attach rather than in place. */
  readonly inPlaceSkipped?: string;
  /** The pool member this unshelve took as its replacement (domain/pool-members.ts). */
  readonly poolMember?: TakenPoolMember;
  readonly attempt: number;
  readonly batch?: LaunchBatch;
  readonly replacementInstanceId?: string;
  readonly freshRootVolumeId?: string;
  /** When the slow-path RunInstances was (last) made. */
  readonly slowLaunchIssuedAt?: number;
  /** How long the account budget was expected to hold that call back (as LaunchBatch.queuedMs). */
  readonly slowLaunchQueuedMs?: number;
  /** Since when the recorded AZ has refused the replacement for lack of capacity. */
  readonly capacityRefusedSince?: number;
  /** The recorded AZ is unusable: the slow path restores into this subnet of another AZ instead. */
  readonly relocation?: Relocation;
  /** Why the slow path cannot restore this record (no usable safety snapshot): it stays in its AZ. */
  readonly slowPathUnavailable?: string;
  /** The recorded Dedicated Host was full and affinity allows another host. */
  readonly hostFull?: boolean;
  readonly waitingForHostSince?: number;
  readonly readyAt?: number;
  /** EC2 answered InvalidIPAddress.InUse for the recorded private IP: later attempts launch without it. */
  readonly privateIpInUse?: boolean;
  /** What the replacement could not keep (written with the Instance Unshelved fact). */
  readonly notKept?: readonly NotKept[];
}

/** A running pool member an unshelve took instead of launching, and the claim id it took it under. */
export interface TakenPoolMember {
  readonly pool: string;
  readonly instanceId: string;
  readonly claimId: string;
}

/**
 * A confirmed 'Delete Shelved Record' under way. The record holds `deleting` from before the first
 * DeleteVolume until it is removed, so no Unshelve or Offload can move it meanwhile; a handling
 * that dies in between is finished (or undone) by the reconcile.
 */
export interface DeletionState {
  readonly requestedAt: number;
  readonly volumeIds: readonly string[];
  readonly snapshotIds: readonly string[];
  /** The confirmation token that started it: a retry of that confirmed request finishes it. */
  readonly confirmation: string;
  /** Where the record rested before: it goes back there if a deletion fails. */
  readonly from: { readonly step: Step; readonly nextDueAt: number | null };
}

export interface Relocation {
  readonly subnetId: string;
  readonly availabilityZone: string;
  /** Why the recorded AZ could not be used. */
  readonly reason: string;
  /** AZs tried so far (the recorded one first): a later move never goes back to one of them. */
  readonly refusedZones: readonly string[];
}

/** An AZ as DescribeAvailabilityZones reports it. */
export type ZoneState = 'available' | 'information' | 'impaired' | 'unavailable' | 'constrained';

export interface ObservedSubnet {
  readonly subnetId: string;
  readonly vpcId: string;
  readonly availabilityZone: string;
  readonly availableIpAddressCount: number;
  readonly mapPublicIpOnLaunch: boolean;
}

/** Where a record could go instead of its recorded AZ, observed only when it may need to. */
export interface PlacementObservation {
  readonly zones: ReadonlyMap<string, ZoneState>;
  /** The subnets of the record's VPC that are `available`. */
  readonly subnets: readonly ObservedSubnet[];
}

export interface ShelfRecord {
  readonly recordId: string;
  readonly tenant: string;
  /** The instance that was shelved. */
  readonly instanceId: string;
  readonly config: LaunchConfig;
  /** User tags of the instance when shelved (restored on the replacement). */
  readonly tags: Readonly<Record<string, string>>;
  readonly volumes: readonly RetainedVolume[];
  readonly snapshotOnShelve: boolean;
  /** Seconds from shelved to offload: 0 = immediately, -1 = never automatically. */
  readonly offloadAfterSeconds: number;
  readonly shelvedAt: number;
  /**
   * The Shelve request that created the record: its event id and when it was sent (its event
   * time, one-second resolution, never later than the handling). Offload and Unshelve requests
   * sent before it was cannot mean this record. Absent for records created outside a request.
   */
  readonly shelvedBy?: { readonly requestId: string; readonly sentAt: number };
  /** When the offload is due; null = never automatically. */
  readonly offloadAt: number | null;
  readonly offloadedAt?: number;
  readonly step: Step;
  /** Bumped by every write; every write is conditional on (step, version). */
  readonly version: number;
  readonly stepSince: number;
  /** When the reconcile should look at this record again; null = only on request. */
  readonly nextDueAt: number | null;
  readonly unshelve?: UnshelveState;
  readonly deletion?: DeletionState;
  readonly error?: ItemError;
  /**
   * Facts written with a decision and not yet known to be published, and the nextDueAt the
   * decision set: a writer that dies between its write and its PutEvents leaves them here, and
   * the next round of the record publishes them (at least once) and restores nextDueAt.
   */
  readonly outbox?: { readonly facts: readonly ShelvingFact[]; readonly nextDueAt: number | null };
  /**
   * The EC2 calls the last acting decision claimed, written before they were made, so another
   * execution environment does not repeat them while they wait for a bucket token
   * (application/action-claims.ts).
   */
  readonly acting?: ActionClaim;
}

/** Calls claimed by one execution environment until a time (application/action-claims.ts). */
export interface ActionClaim {
  /** Each call as the decision's action, serialized. */
  readonly calls: readonly string[];
  /** The claiming execution environment (one id per process). */
  readonly by: string;
  readonly until: number;
}

/** An instance's state as EC2 reports it (DescribeInstances, the state-change event). */
export type InstanceStateName = (typeof INSTANCE_STATES)[number];

export interface ObservedBlockDevice {
  readonly deviceName: string;
  readonly volumeId: string;
  readonly deleteOnTermination: boolean;
}

export interface ObservedInstance {
  readonly instanceId: string;
  readonly state: InstanceStateName;
  readonly imageId: string;
  readonly instanceType: string;
  readonly availabilityZone: string;
  readonly subnetId?: string;
  readonly vpcId?: string;
  readonly securityGroupIds: readonly string[];
  readonly iamInstanceProfileArn?: string;
  readonly keyName?: string;
  readonly ebsOptimized?: boolean;
  readonly platform?: 'windows';
  readonly metadata?: InstanceMetadataOptions;
  readonly tenancy: Tenancy;
  readonly hostId?: string;
  readonly affinity?: HostAffinity;
  readonly rootDeviceName: string;
  readonly rootDeviceType: 'ebs' | 'instance-store';
  readonly blockDevices: readonly ObservedBlockDevice[];
  readonly tags: Readonly<Record<string, string>>;
  readonly amiLaunchIndex?: number;
  readonly privateIpAddress?: string;
  readonly placementGroupName?: string;
  readonly partitionNumber?: number;
  /** When it last entered `pending` (DescribeInstances LaunchTime: the launch, then every start). */
  readonly launchTime?: number;
  /** Why EC2 last changed its state on its own (StateReason), e.g. a KMS key it could not use. */
  readonly stateReason?: { readonly code: string; readonly message: string };
}

/** Shutting down or terminated: nothing started, stopped or attached on it can help any more. */
export const isGone = (instance: ObservedInstance): boolean => isGoneState(instance.state);

export type VolumeStateName = 'creating' | 'available' | 'in-use' | 'deleting' | 'deleted' | 'error';

export interface ObservedVolume {
  readonly volumeId: string;
  readonly state: VolumeStateName;
  readonly availabilityZone: string;
  readonly sizeGiB: number;
  readonly volumeType: string;
  readonly iops?: number;
  readonly throughput?: number;
  readonly encrypted?: boolean;
  /** The KMS key (ARN) an encrypted volume is encrypted with. */
  readonly kmsKeyId?: string;
  readonly attachment?: {
    readonly instanceId: string;
    readonly device: string;
    readonly state: 'attaching' | 'attached' | 'detaching' | 'detached' | 'busy';
  };
  readonly tags: Readonly<Record<string, string>>;
}

export interface ObservedSnapshot {
  readonly snapshotId: string;
  readonly volumeId: string;
  readonly state: 'pending' | 'completed' | 'error' | 'recoverable' | 'recovering';
  /** When EC2 started it (epoch ms): only one started after the shelve asked for it is its safety copy. */
  readonly startedAt: number;
}

/** What one reconcile round saw in EC2 for one record. Absent instance = not found (gone). */
export interface Observation {
  /** The shelved instance itself (absent once it is gone). */
  readonly instance?: ObservedInstance;
  /** The replacement launched for this record, if any is known or discoverable. */
  readonly replacement?: ObservedInstance;
  /** Every retained volume and the fresh root that still exists, by id. */
  readonly volumes: ReadonlyMap<string, ObservedVolume>;
  /** Safety snapshots tagged with this record. */
  readonly snapshots: readonly ObservedSnapshot[];
  /**
   * AttachVolume calls this record may make now without queueing long behind the client-side
   * token bucket (absent: no limit). The engine hands out the round's slots in priority order.
   */
  readonly attachSlots?: number;
  /** AZ states and the VPC's subnets, for a record that may have to leave its AZ. */
  readonly placement?: PlacementObservation;
  /** The replacement's attributes the saga restores, read only while it restores them. */
  readonly replacementAttributes?: ReplacementAttributes;
  /** The recorded Elastic IP as DescribeAddresses shows it now (null: released), while restoring it. */
  readonly elasticIp?: ObservedAddress | null;
  /** The replacement's latest replace-root-volume task (DescribeReplaceRootVolumeTasks), if any. */
  readonly rootReplacement?: ObservedRootReplacement;
}

/**
 * A replace-root-volume task as DescribeReplaceRootVolumeTasks shows it (API_ReplaceRootVolumeTask,
 * `taskState`): `failed` leaves the original root attached; `failed-detached` leaves the instance
 * with no root volume.
 */
export interface ObservedRootReplacement {
  readonly taskId: string;
  readonly instanceId: string;
  readonly state:
    | 'pending'
    | 'in-progress'
    | 'failing'
    | 'succeeded'
    | 'failed'
    | 'failing-detached'
    | 'failed-detached';
}

/** DescribeInstanceAttribute answers; an attribute not read is absent. */
export interface ReplacementAttributes {
  /** Base64; null when the instance has none. */
  readonly userData?: string | null;
  readonly disableApiTermination?: boolean;
  readonly disableApiStop?: boolean;
}

export type ReplacementAttribute = keyof ReplacementAttributes;

export interface ObservedAddress {
  readonly allocationId: string;
  readonly publicIp: string;
  /** The instance it is associated with, if any. */
  readonly instanceId?: string;
}

/** What a Shelve request answered for one instance: the record it created or found, or why not. */
export type ShelveAnswer = ItemResult<{ readonly recordId: string; readonly created: boolean }>;

/** What an Offload or Unshelve request answered for one record: the step it is at, or why not. */
export type MoveAnswer = ItemResult<{ readonly step: Step }>;

/**
 * What an Offload or Unshelve request's instance ids and tenant resolved to when it was first
 * handled: the records it acts on, and the instance ids that named no record (answered NotFound).
 * Every later handling of the same request acts on exactly these, whatever was shelved since.
 */
export interface RequestResolution {
  readonly recordIds: readonly string[];
  readonly missing: readonly ItemResult[];
}

/**
 * The identity a request's answers are remembered under (the EventBridge event id, which Lambda's
 * and EventBridge's retries keep), and until when (epoch seconds, the table's TTL).
 */
export interface RequestIdentity {
  readonly requestId: string;
  readonly expiresAt: number;
}

/**
 * The saga's phases: a record in one of them has work that comes due (the store indexes it).
 * `facts`: a resting record whose facts may not have gone out (`outbox`).
 */
export const SAGA_PHASES = ['shelving', 'offload', 'unshelving', 'deleting', 'facts'] as const;
export type SagaPhase = (typeof SAGA_PHASES)[number];

/** The phase the store files a record's due work under: its step's, or `facts` for an outbox. */
export const duePhaseOf = (record: ShelfRecord): SagaPhase | undefined =>
  phaseOf(record.step) ?? (record.outbox ? 'facts' : undefined);

/** The phase a step belongs to; undefined for a resting or finished step. */
export const phaseOf = (step: Step): SagaPhase | undefined => {
  if (step.startsWith('shelve.')) return 'shelving';
  if (step === 'shelved' || step === 'offload.terminate') return 'offload';
  if (step.startsWith('unshelve.')) return 'unshelving';
  if (step === 'deleting') return 'deleting';
  return undefined;
};
