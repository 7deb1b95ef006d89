import type { VolumeType } from '@aws-sdk/client-ec2';
import type { VirtualClock } from '../clock';
import type { KmsKeys } from '../kms/keys';
import type { Ec2Latencies } from '../latency';
import type { TokenBucket } from '../token-bucket';
import type { ImageBootMode } from './compatibility';
import type { FastSnapshotRestoreStateName, InstanceStateName, SimulatorEvent } from './events';
import type { IdGenerator } from './ids';

/** The simulator's own records. Mutable inside local/ec2; the outside sees copies (views.ts). */

export type Tags = Map<string, string>;

export type RootDeviceType = 'ebs' | 'instance-store';
export type Platform = 'linux' | 'windows';

export interface InstanceRecord {
  readonly instanceId: string;
  readonly reservationId: string;
  /** The RunInstances ClientToken, if any; DescribeInstances reports it (Run_Instance_Idempotency). */
  readonly clientToken: string | undefined;
  readonly imageId: string;
  instanceType: string;
  readonly availabilityZone: string;
  readonly subnetId: string;
  /** The primary private IPv4 address (of the primary network interface); free again once terminated. */
  readonly privateIpAddress: string;
  /** The placement group it was launched into (placement-groups) and, in a partition group, its partition. */
  readonly placementGroupName: string | undefined;
  readonly partitionNumber: number | undefined;
  /** Burstable types only (T2, T3, T3a, T4g): the CPU credit option (burstable-performance-instances). */
  readonly cpuCredits: 'standard' | 'unlimited' | undefined;
  tenancy: 'default' | 'dedicated' | 'host';
  hostId: string | undefined;
  affinity: 'default' | 'host' | undefined;
  state: InstanceStateName;
  stateTransitionReason: string;
  /** LaunchTime: set at launch and again at every start (ec2-instance-lifecycle). */
  launchTime: number;
  readonly rootDeviceName: string;
  readonly rootDeviceType: RootDeviceType;
  readonly platform: Platform;
  readonly keyName: string | undefined;
  readonly securityGroupIds: readonly string[];
  readonly iamInstanceProfile: string | undefined;
  userData: string | undefined;
  readonly shutdownBehavior: 'stop' | 'terminate';
  /** Termination protection (`DisableApiTermination`): TerminateInstances refuses it. */
  disableApiTermination: boolean;
  /** Stop protection (`DisableApiStop`): StopInstances refuses it. */
  disableApiStop: boolean;
  /**
   * Instance metadata options (RunInstances `MetadataOptions`). Without them an instance gets
   * the AMI's and account's defaults, which for most AMIs still allow IMDSv1 (`optional`): the
   * simulator takes that lenient-for-the-instance, strict-for-the-caller default, so code must
   * ask for IMDSv2 to get it (configuring-instance-metadata-options).
   */
  readonly metadataOptions: {
    readonly httpTokens: 'optional' | 'required';
    readonly httpPutResponseHopLimit: number;
    readonly httpEndpoint: 'enabled' | 'disabled';
  };
  readonly hibernationConfigured: boolean;
  /** From the AMI at launch (compatibility.ts): what a resize must still be able to boot. */
  readonly bootMode?: ImageBootMode;
  readonly enaSupport?: boolean;
  /** RunInstances `InstanceMarketOptions`: a Spot instance and its request type (default one-time). */
  readonly spotInstanceType?: 'one-time' | 'persistent';
  /** The last stop was a hibernation: the next start resumes (measured latencies differ). */
  hibernated: boolean;
  /** When the OS finished booting in the current run; the SSM agent is online from then on. */
  osReadyAt: number | undefined;
  /** Bumped on every transition so a timer scheduled for an older transition does nothing. */
  generation: number;
  readonly tags: Tags;
  /**
   * Why the instance last changed state when EC2 did it on its own (API_StateReason): a launch or
   * start that could not use an encrypted volume's KMS key. Absent: the state change was asked for.
   */
  stateReason?: { readonly code: string; readonly message: string };
}

export type VolumeState = 'creating' | 'available' | 'in-use' | 'deleting';

export interface VolumeAttachmentRecord {
  readonly instanceId: string;
  readonly device: string;
  deleteOnTermination: boolean;
  state: 'attaching' | 'attached' | 'detaching';
  readonly attachTime: number;
}

export interface VolumeRecord {
  readonly volumeId: string;
  readonly size: number;
  readonly snapshotId: string | undefined;
  readonly availabilityZone: string;
  readonly volumeType: VolumeType;
  state: VolumeState;
  readonly createTime: number;
  /** Created from a snapshot with FSR enabled in its AZ while a credit was available. */
  readonly fastRestored: boolean;
  /** The ARN of the KMS key the volume is encrypted with; absent: not encrypted (ebs-encryption). */
  readonly kmsKeyId?: string;
  attachment: VolumeAttachmentRecord | undefined;
  generation: number;
  readonly tags: Tags;
}

export interface SnapshotRecord {
  readonly snapshotId: string;
  readonly volumeId: string;
  readonly volumeSize: number;
  /**
   * The account that owns it; absent: this account. A snapshot behind another account's AMI (an
   * AWS public AMI, a marketplace or shared AMI) is owned elsewhere and, unless its owner shared
   * it (`sharedWithAccount`), this account cannot describe it, restore volumes from it directly,
   * or enable fast snapshot restore for it.
   */
  readonly ownerId?: string;
  readonly sharedWithAccount?: boolean;
  /** The KMS key ARN of an encrypted snapshot (that of its volume); absent: not encrypted. */
  readonly kmsKeyId?: string;
  state: 'pending' | 'completed';
  readonly startTime: number;
  readonly description: string;
  readonly tags: Tags;
}

export interface ImageBlockDevice {
  readonly deviceName: string;
  readonly snapshotId: string;
  readonly volumeSize: number;
  readonly volumeType: VolumeType;
  readonly deleteOnTermination: boolean;
}

export interface ImageRecord {
  readonly imageId: string;
  readonly name: string;
  /** The account that owns the AMI; absent: this account. */
  readonly ownerId?: string;
  /**
   * DescribeImages `ImageOwnerAlias` of an AMI AWS publishes (`amazon`) or sells through AWS
   * Marketplace (`aws-marketplace`); IAM's `ec2:Owner` is this alias for such an AMI.
   */
  readonly ownerAlias?: 'amazon' | 'aws-marketplace' | 'aws-backup-vault';
  /** The processor architecture it was built for. */
  readonly architecture: 'x86_64' | 'arm64';
  /** RegisterImage `BootMode`; absent: the instance type's default, so any type runs it. */
  readonly bootMode?: ImageBootMode;
  /** RegisterImage `EnaSupport`; absent: enabled (current public AMIs all have the driver). */
  readonly enaSupport?: boolean;
  readonly public?: boolean;
  readonly description: string;
  state: 'pending' | 'available';
  readonly rootDeviceName: string;
  readonly rootDeviceType: RootDeviceType;
  readonly platform: Platform;
  /** For EBS-backed images the root device is among these; instance-store images have none. */
  readonly blockDevices: readonly ImageBlockDevice[];
  readonly creationDate: number;
  readonly tags: Tags;
}

export interface HostRecord {
  readonly hostId: string;
  readonly availabilityZone: string;
  /** A host supports one instance type, or every size of one family (dedicated-hosts-overview). */
  readonly instanceType: string | undefined;
  readonly instanceFamily: string;
  readonly totalVCpus: number;
  readonly autoPlacement: 'on' | 'off';
  state: 'available' | 'released';
  readonly allocationTime: number;
  readonly tags: Tags;
}

export interface FastRestoreRecord {
  readonly snapshotId: string;
  readonly availabilityZone: string;
  state: FastSnapshotRestoreStateName;
  stateTransitionReason: string;
  readonly times: Partial<Record<FastSnapshotRestoreStateName, number>>;
  /** Volume creation credits; exists while the state is enabled. */
  credits: TokenBucket | undefined;
  generation: number;
}

export interface SubnetRecord {
  readonly subnetId: string;
  readonly availabilityZone: string;
  /** A /20 of the default VPC's 172.31.0.0/16, as default subnets are (default-vpc). */
  readonly cidrBlock: string;
  /** Where the search for the next automatically assigned private address starts. */
  nextAddressOffset: number;
  /** Default subnets assign public IPv4 addresses on launch (default-vpc). */
  readonly mapPublicIpOnLaunch: boolean;
}

/** An Elastic IP address (elastic-ip-addresses-eip): allocated to the account until released. */
export interface AddressRecord {
  readonly allocationId: string;
  readonly publicIp: string;
  /** Present while the address is associated with an instance's primary private address. */
  association:
    | { readonly associationId: string; readonly instanceId: string; readonly privateIpAddress: string }
    | undefined;
  readonly tags: Tags;
}

/** A placement group (placement-groups, API_CreatePlacementGroup). */
export interface PlacementGroupRecord {
  readonly groupName: string;
  readonly groupId: string;
  readonly strategy: 'cluster' | 'spread' | 'partition';
  /** Partition groups only: how many partitions (1–7 per AZ). */
  readonly partitionCount: number | undefined;
  readonly tags: Tags;
}

/**
 * A RunInstances that completed with a ClientToken (Run_Instance_Idempotency). The instances are
 * the launched records themselves, so a repeat reports their current state even after they left
 * `instances` (terminated instances stop being describable after about an hour, the token does not).
 */
export interface ClientTokenRecord {
  /** Every request parameter but the token, canonically serialized: a repeat must match it. */
  readonly parameters: string;
  readonly reservationId: string;
  /** In launch-index order. */
  readonly instances: readonly InstanceRecord[];
}

/**
 * API_ReplaceRootVolumeTask `TaskState`. The page also lists `failing-detached`; the SDK's enum
 * (client-ec2 3.1169) has no such value, and the simulator never enters it.
 */
export type ReplaceRootVolumeTaskState =
  | 'pending'
  | 'in-progress'
  | 'failing'
  | 'succeeded'
  | 'failed'
  | 'failed-detached';

/** A root volume replacement task (replace-root-volume.ts). */
export interface ReplaceRootVolumeTaskRecord {
  readonly taskId: string;
  readonly instanceId: string;
  /** The volume that replaces the root (`VolumeId`). */
  readonly volumeId: string;
  readonly deleteReplacedRootVolume: boolean;
  state: ReplaceRootVolumeTaskState;
  readonly startTime: number;
  completeTime: number | undefined;
  readonly tags: Tags;
  /** Every request parameter but the token, canonically serialized: a repeat must match it. */
  readonly parameters: string;
}

/** DescribeAvailabilityZones `State` (API_AvailabilityZone). */
export type ZoneStateName = 'available' | 'information' | 'impaired' | 'unavailable' | 'constrained';

export type InstanceLifecycleChange =
  | { readonly kind: 'state'; readonly instanceId: string; readonly state: InstanceStateName }
  | { readonly kind: 'os-ready'; readonly instanceId: string };

/** Everything the operation modules share: dependencies and the resource tables. */
export interface Ec2Context {
  readonly clock: VirtualClock;
  readonly region: string;
  readonly accountId: string;
  readonly latency: Ec2Latencies;
  readonly ids: IdGenerator;
  readonly emit: (event: SimulatorEvent) => void;
  readonly notifyLifecycle: (change: InstanceLifecycleChange) => void;
  readonly instances: Map<string, InstanceRecord>;
  readonly volumes: Map<string, VolumeRecord>;
  /** instance id → ids of the volumes attached to it (an index over `volumes`). */
  readonly attachments: Map<string, Set<string>>;
  readonly snapshots: Map<string, SnapshotRecord>;
  readonly images: Map<string, ImageRecord>;
  readonly hosts: Map<string, HostRecord>;
  readonly fastRestores: Map<string, FastRestoreRecord>;
  readonly subnets: Map<string, SubnetRecord>;
  /** Elastic IP addresses of the account, by allocation id (addresses.ts). */
  readonly addresses: Map<string, AddressRecord>;
  /** Placement groups of the account, by name (placement-groups.ts). */
  readonly placementGroups: Map<string, PlacementGroupRecord>;
  readonly availabilityZones: readonly string[];
  /** AZs not `available` (setZoneState); absent means available. */
  readonly zoneStates: Map<string, ZoneStateName>;
  /** Instances of a type an AZ can still hold (setCapacity); absent means unlimited. */
  readonly capacity: Map<string, number>;
  /** Key pair names that exist (registerKeyPair); a launch naming another is refused. */
  readonly keyPairs: Set<string>;
  /** How many RunInstances were answered from an earlier launch's ClientToken (fault-suite counts). */
  readonly counters: { clientTokenReplays: number };
  /** The account's KMS keys, which encrypted volumes use on the caller's behalf (local/kms). */
  readonly kms: KmsKeys;
  /**
   * EBS encryption by default for the account in this Region (encryption-by-default): new volumes
   * are encrypted even when the request does not ask, with `defaultKmsKeyId` (a key id, ARN or
   * alias) or, when that is unset, the AWS managed key `alias/aws/ebs`.
   */
  readonly ebsEncryption: { byDefault: boolean; defaultKmsKeyId: string | undefined };
  /** RunInstances requests a fault made launch short (one instance): capacity ran out mid-call. */
  readonly shortLaunches: WeakSet<object>;
  /** Completed RunInstances by idempotency scope and ClientToken (clientTokenKey). */
  readonly clientTokens: Map<string, ClientTokenRecord>;
  /** Root volume replacement tasks by id, and by the ClientToken that created them. */
  readonly replaceRootVolumeTasks: Map<string, ReplaceRootVolumeTaskRecord>;
  readonly replaceRootVolumeTokens: Map<string, ReplaceRootVolumeTaskRecord>;
}

export const capacityKey = (availabilityZone: string, instanceType: string): string =>
  `${availabilityZone}|${instanceType}`;

/** Zonal idempotency keys a token by AZ, regional idempotency by the Region alone (`undefined`). */
export const clientTokenKey = (availabilityZone: string | undefined, clientToken: string): string =>
  `${availabilityZone ?? '(region)'}|${clientToken}`;

export const fastRestoreKey = (snapshotId: string, availabilityZone: string): string =>
  `${snapshotId}|${availabilityZone}`;
