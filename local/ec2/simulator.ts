import type { VirtualClock } from '../clock';
import type { FaultInjector } from '../faults';
import { KmsKeys } from '../kms/keys';
import { type Ec2Latencies, ec2Latencies, type LatencyMode } from '../latency';
import type { OperationDispatch } from '../sdk-bridge';
import {
  allocateAddress,
  associateAddress,
  describeAddresses,
  disassociateAddress,
  releaseAddress,
} from './addresses';
import {
  disableEbsEncryptionByDefault,
  enableEbsEncryptionByDefault,
  getEbsDefaultKmsKeyId,
  getEbsEncryptionByDefault,
  modifyEbsDefaultKmsKeyId,
  resetEbsDefaultKmsKeyId,
} from './encryption';
import { ec2Error } from './errors';
import type { SimulatorEvent } from './events';
import { describeFastSnapshotRestores, disableFastSnapshotRestores, enableFastSnapshotRestores } from './fsr';
import { allocateHosts, describeHosts, type HostSpec, newHost, releaseHosts } from './hosts';
import { IdGenerator, type Random, seededRandom } from './ids';
import {
  createImage,
  deregisterImage,
  describeImages,
  registerImage,
  type SeedImage,
  seedImage,
} from './images';
import { describeInstanceAttribute, describeInstanceCreditSpecifications } from './instance-attributes';
import {
  describeInstanceStatus,
  describeInstances,
  modifyInstanceAttribute,
  modifyInstancePlacement,
  runInstances,
  startInstances,
  stopInstances,
  terminateInstances,
} from './instances';
import { describeKeyPairs } from './key-pairs';
import { describeAvailabilityZones, describeSubnets, subnetCidrBlock } from './network';
import { createPlacementGroup, deletePlacementGroup, describePlacementGroups } from './placement-groups';
import { createReplaceRootVolumeTask, describeReplaceRootVolumeTasks } from './replace-root-volume';
import { createSnapshot, createSnapshots, deleteSnapshot, describeSnapshots } from './snapshots';
import {
  capacityKey,
  type Ec2Context,
  type FastRestoreRecord,
  type HostRecord,
  type ImageRecord,
  type InstanceLifecycleChange,
  type InstanceRecord,
  type SnapshotRecord,
  type VolumeRecord,
  type ZoneStateName,
} from './state';
import { createTags, deleteTags, describeTags } from './tags';
import { type ApiStats, Ec2Throttle } from './throttling';
import { attachVolume, createVolume, deleteVolume, describeVolumes, detachVolume } from './volumes';

export interface Ec2SimulatorOptions {
  readonly clock: VirtualClock;
  readonly region: string;
  readonly accountId: string;
  /** Receives every EventBridge event EC2 would send; the local bus adds the envelope. */
  readonly emit: (event: SimulatorEvent) => void;
  readonly faults: FaultInjector;
  /** Default 'calibrated' (measured latencies); 'zero' for fast unit tests. */
  readonly latency?: LatencyMode;
  /** Figures replacing the mode's (a benchmark sweeping an assumed latency, e.g. `replaceRootSwapMs`). */
  readonly latencyOverrides?: Partial<Ec2Latencies>;
  /** Source of ids; default a seeded PRNG so runs repeat exactly. */
  readonly random?: Random;
  /** The account's KMS keys (the local cloud shares them with its IAM); default a fresh set. */
  readonly kms?: KmsKeys;
}

type Handler = (ctx: Ec2Context, input: Record<string, unknown>) => Promise<Record<string, unknown>>;

/** How an operation the simulator ran ended: its output, or the error it refused the call with. */
export type CallOutcome = { readonly output: Record<string, unknown> } | { readonly error: unknown };

/**
 * Sees every operation as the simulator is about to run it (faults and throttling passed, state
 * not yet changed), and may return a callback that gets its outcome (local/call-journal.ts).
 */
export type CallObserver = (
  operation: string,
  input: Record<string, unknown>,
) => ((outcome: CallOutcome) => void) | undefined;

/**
 * The one place where the untyped dispatch meets the typed operations: the real SDK client has
 * already shaped `input` as the command's input type, and every output is an SDK output shape.
 */
const handler =
  <I, O extends object>(operation: (ctx: Ec2Context, input: I) => Promise<O>): Handler =>
  async (ctx, input) =>
    (await operation(ctx, input as I)) as Record<string, unknown>;

/**
 * A mutating call without a latency of its own: `mutatingApiMs` passes on the virtual clock
 * before the operation validates and commits (RunInstances and StartInstances take their
 * measured latencies themselves; the account's EBS encryption settings change at once).
 */
const mutating = <I, O extends object>(operation: (ctx: Ec2Context, input: I) => O | Promise<O>): Handler =>
  handler(async (ctx, input: I) => {
    await ctx.clock.sleep(ctx.latency.mutatingApiMs);
    return operation(ctx, input);
  });

const OPERATIONS: Readonly<Record<string, Handler>> = {
  RunInstances: handler(runInstances),
  StartInstances: handler(startInstances),
  StopInstances: mutating(stopInstances),
  TerminateInstances: mutating(terminateInstances),
  DescribeInstances: handler(describeInstances),
  DescribeInstanceStatus: handler(describeInstanceStatus),
  ModifyInstanceAttribute: mutating(modifyInstanceAttribute),
  ModifyInstancePlacement: mutating(modifyInstancePlacement),
  CreateTags: mutating(createTags),
  DeleteTags: mutating(deleteTags),
  DescribeTags: handler(describeTags),
  CreateVolume: mutating(createVolume),
  AttachVolume: mutating(attachVolume),
  DetachVolume: mutating(detachVolume),
  DeleteVolume: mutating(deleteVolume),
  DescribeVolumes: handler(describeVolumes),
  CreateReplaceRootVolumeTask: mutating(createReplaceRootVolumeTask),
  DescribeReplaceRootVolumeTasks: handler(describeReplaceRootVolumeTasks),
  CreateSnapshot: mutating(createSnapshot),
  CreateSnapshots: mutating(createSnapshots),
  DescribeSnapshots: handler(describeSnapshots),
  DeleteSnapshot: mutating(deleteSnapshot),
  CreateImage: mutating(createImage),
  RegisterImage: mutating(registerImage),
  DescribeImages: handler(describeImages),
  DeregisterImage: mutating(deregisterImage),
  EnableFastSnapshotRestores: mutating(enableFastSnapshotRestores),
  DisableFastSnapshotRestores: mutating(disableFastSnapshotRestores),
  DescribeFastSnapshotRestores: handler(describeFastSnapshotRestores),
  AllocateHosts: mutating(allocateHosts),
  DescribeHosts: handler(describeHosts),
  ReleaseHosts: mutating(releaseHosts),
  DescribeAvailabilityZones: handler(describeAvailabilityZones),
  DescribeSubnets: handler(describeSubnets),
  DescribeKeyPairs: handler(describeKeyPairs),
  DescribeInstanceAttribute: handler(describeInstanceAttribute),
  DescribeInstanceCreditSpecifications: handler(describeInstanceCreditSpecifications),
  AllocateAddress: mutating(allocateAddress),
  AssociateAddress: mutating(associateAddress),
  DisassociateAddress: mutating(disassociateAddress),
  ReleaseAddress: mutating(releaseAddress),
  DescribeAddresses: handler(describeAddresses),
  CreatePlacementGroup: mutating(createPlacementGroup),
  DescribePlacementGroups: handler(describePlacementGroups),
  DeletePlacementGroup: mutating(deletePlacementGroup),
  EnableEbsEncryptionByDefault: handler(enableEbsEncryptionByDefault),
  DisableEbsEncryptionByDefault: handler(disableEbsEncryptionByDefault),
  GetEbsEncryptionByDefault: handler(getEbsEncryptionByDefault),
  GetEbsDefaultKmsKeyId: handler(getEbsDefaultKmsKeyId),
  ModifyEbsDefaultKmsKeyId: handler(modifyEbsDefaultKmsKeyId),
  ResetEbsDefaultKmsKeyId: handler(resetEbsDefaultKmsKeyId),
};

type View<T extends { tags: ReadonlyMap<string, string> }> = Readonly<Omit<T, 'generation' | 'tags'>> & {
  readonly tags: Readonly<Record<string, string>>;
};
export type InstanceView = View<InstanceRecord>;
export type VolumeView = View<VolumeRecord>;
export type SnapshotView = View<SnapshotRecord>;
export type ImageView = View<ImageRecord>;
export type HostView = View<HostRecord>;
export type FastRestoreView = Readonly<Omit<FastRestoreRecord, 'generation' | 'credits'>> & {
  /** Volume creation credits left now; undefined unless enabled. */
  readonly credits: number | undefined;
};

const view = <T extends { tags: ReadonlyMap<string, string> }>(record: T): View<T> => {
  const { tags, ...rest } = record;
  const copy: Record<string, unknown> = { ...rest, tags: Object.fromEntries(tags) };
  delete copy.generation;
  for (const [key, value] of Object.entries(copy)) {
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) copy[key] = { ...value };
  }
  return copy as View<T>;
};

const viewOf = <T extends { tags: ReadonlyMap<string, string> }>(
  table: ReadonlyMap<string, T>,
  id: string,
): View<T> | undefined => {
  const record = table.get(id);
  return record && view(record);
};

/**
 * A stateful EC2 for the local cloud, plugged under a real EC2Client with attachSimulator.
 *
 * Every call goes: fault injection → per-API token buckets (RequestLimitExceeded) → the
 * operation, which takes its API latency on the virtual clock, then validates and commits
 * atomically and schedules the state machine's later transitions → lost-response faults (the
 * call took effect, the caller gets an error). The operation modules cite
 * the AWS documentation page of each rule they model.
 */
export class Ec2Simulator {
  readonly dispatch: OperationDispatch;
  readonly #ctx: Ec2Context;
  readonly #throttle: Ec2Throttle;
  readonly #listeners = new Set<(change: InstanceLifecycleChange) => void>();
  /** Subnets created so far: each takes the next /20 of the VPC, never one a deleted subnet had. */
  #subnetBlocks = 0;
  readonly #callObservers = new Set<CallObserver>();

  constructor(options: Ec2SimulatorOptions) {
    const random = options.random ?? seededRandom();
    const availabilityZones = ['a', 'b', 'c'].map((letter) => `${options.region}${letter}`);
    this.#ctx = {
      clock: options.clock,
      region: options.region,
      accountId: options.accountId,
      latency: ec2Latencies(options.latency ?? 'calibrated', options.latencyOverrides),
      ids: new IdGenerator(random),
      emit: options.emit,
      notifyLifecycle: (change) => {
        for (const listener of this.#listeners) listener(change);
      },
      instances: new Map(),
      volumes: new Map(),
      attachments: new Map(),
      snapshots: new Map(),
      images: new Map(),
      hosts: new Map(),
      fastRestores: new Map(),
      subnets: new Map(),
      addresses: new Map(),
      placementGroups: new Map(),
      keyPairs: new Set(),
      kms: options.kms ?? new KmsKeys({ region: options.region, accountId: options.accountId }),
      ebsEncryption: { byDefault: false, defaultKmsKeyId: undefined },
      shortLaunches: new WeakSet(),
      counters: { clientTokenReplays: 0 },
      availabilityZones,
      zoneStates: new Map(),
      capacity: new Map(),
      clientTokens: new Map(),
      replaceRootVolumeTasks: new Map(),
      replaceRootVolumeTokens: new Map(),
    };
    for (const zone of availabilityZones) this.addSubnet({ availabilityZone: zone });
    this.#throttle = new Ec2Throttle(options.clock);
    this.dispatch = async (operation, input) => {
      options.faults.beforeCall('ec2', operation);
      const run = OPERATIONS[operation];
      if (!run) throw ec2Error('InvalidAction', `The action ${operation} is not valid for this web service.`);
      this.#throttle.admit(operation, input);
      const batch =
        operation === 'RunInstances' && Number((input as { MaxCount?: number }).MaxCount ?? 1) > 1;
      if (batch && options.faults.takePartialLaunch()) this.#ctx.shortLaunches.add(input);
      const settle = [...this.#callObservers].flatMap((observe) => observe(operation, input) ?? []);
      let output: Record<string, unknown>;
      try {
        output = await run(this.#ctx, input);
      } catch (error) {
        for (const done of settle) done({ error });
        throw error;
      }
      // Before a lost response's error: the call took effect whatever its caller hears.
      for (const done of settle) done({ output });
      options.faults.afterEc2Call(operation);
      return output;
    };
  }

  /** The account's KMS keys: create, disable or look up the keys encrypted volumes use. */
  get kms(): KmsKeys {
    return this.#ctx.kms;
  }

  /**
   * Seeding: the account's EBS encryption by default (what EnableEbsEncryptionByDefault and
   * ModifyEbsDefaultKmsKeyId set), with the default key given as a key id, ARN or alias.
   */
  setEbsEncryptionByDefault(enabled: boolean, defaultKmsKeyId?: string): void {
    this.#ctx.ebsEncryption.byDefault = enabled;
    this.#ctx.ebsEncryption.defaultKmsKeyId =
      defaultKmsKeyId === undefined
        ? undefined
        : (this.#ctx.kms.key(defaultKmsKeyId)?.arn ?? defaultKmsKeyId);
  }

  /** AZs of the simulated Region (REGIONa, REGIONb, REGIONc). */
  get availabilityZones(): readonly string[] {
    return this.#ctx.availabilityZones;
  }

  /**
   * Instance state changes and "OS booted" moments, synchronously as they happen; the SSM
   * simulator uses it to bring agents online. Returns the unsubscribe function.
   */
  onInstanceLifecycle(listener: (change: InstanceLifecycleChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Observes every operation from now on (the call journal); returns the unsubscribe function. */
  observeCalls(observer: CallObserver): () => void {
    this.#callObservers.add(observer);
    return () => this.#callObservers.delete(observer);
  }

  // Seeding (not AWS operations).

  /** An available AMI with a completed root snapshot of `rootSizeGiB`; returns its id. */
  registerImage(seed: SeedImage): string {
    return seedImage(this.#ctx, seed);
  }

  /** Seeding: a key pair the account has (CreateKeyPair / ImportKeyPair happen outside warmboot). */
  registerKeyPair(keyName: string): void {
    this.#ctx.keyPairs.add(keyName);
  }

  /** What DeleteKeyPair does: later launches naming it are refused. */
  deleteKeyPair(keyName: string): void {
    this.#ctx.keyPairs.delete(keyName);
  }

  addSubnet(subnet: { subnetId?: string; availabilityZone: string; mapPublicIpOnLaunch?: boolean }): string {
    if (!this.#ctx.availabilityZones.includes(subnet.availabilityZone))
      throw new Error(`unknown availability zone ${subnet.availabilityZone}`);
    const subnetId =
      subnet.subnetId === undefined ? this.#ctx.ids.next('subnet') : this.#ctx.ids.claim(subnet.subnetId);
    this.#ctx.subnets.set(subnetId, {
      subnetId,
      availabilityZone: subnet.availabilityZone,
      cidrBlock: subnetCidrBlock(this.#subnetBlocks++),
      nextAddressOffset: 4,
      mapPublicIpOnLaunch: subnet.mapPublicIpOnLaunch ?? true,
    });
    return subnetId;
  }

  /** API_DeleteSubnet: refused (DependencyViolation) while an instance that is not terminated uses it. */
  deleteSubnet(subnetId: string): void {
    const inUse = [...this.#ctx.instances.values()].some(
      (instance) => instance.subnetId === subnetId && instance.state !== 'terminated',
    );
    if (inUse) throw new Error(`DependencyViolation: subnet ${subnetId} has dependencies`);
    this.#ctx.subnets.delete(subnetId);
  }

  /** An AZ's DescribeAvailabilityZones state; launches into an impaired or unavailable AZ get no capacity. */
  setZoneState(availabilityZone: string, state: ZoneStateName): void {
    if (!this.#ctx.availabilityZones.includes(availabilityZone))
      throw new Error(`unknown availability zone ${availabilityZone}`);
    if (state === 'available') this.#ctx.zoneStates.delete(availabilityZone);
    else this.#ctx.zoneStates.set(availabilityZone, state);
  }

  /** RunInstances answered from an earlier launch's ClientToken so far. */
  get clientTokenReplays(): number {
    return this.#ctx.counters.clientTokenReplays;
  }

  /**
   * Seeding: API throttling limits AWS Support raised for the account, for one bucket (see
   * `Ec2Throttle.raise`), e.g. an account that launches hundreds of instances a second.
   */
  raiseApiLimits(bucket: string, limits: { capacity: number; refillPerSecond: number }): void {
    this.#throttle.raise(bucket, limits);
  }

  /** A Dedicated Host (auto-placement off and 96 vCPUs unless given); returns its id. */
  allocateHost(spec: HostSpec): string {
    return newHost(this.#ctx, spec).hostId;
  }

  /** How many instances of a type the AZ holds at once (shared tenancy); undefined = unlimited. */
  setCapacity(availabilityZone: string, instanceType: string, count: number | undefined): void {
    const key = capacityKey(availabilityZone, instanceType);
    if (count === undefined) this.#ctx.capacity.delete(key);
    else this.#ctx.capacity.set(key, count);
  }

  // Read model: copies, safe to keep.

  instances(): InstanceView[] {
    return [...this.#ctx.instances.values()].map(view);
  }

  instance(instanceId: string): InstanceView | undefined {
    return viewOf(this.#ctx.instances, instanceId);
  }

  volumes(): VolumeView[] {
    return [...this.#ctx.volumes.values()].map(view);
  }

  /** One resource by id (the local IAM reads tags and attributes at the moment of a call). */
  volume(volumeId: string): VolumeView | undefined {
    return viewOf(this.#ctx.volumes, volumeId);
  }

  snapshot(snapshotId: string): SnapshotView | undefined {
    return viewOf(this.#ctx.snapshots, snapshotId);
  }

  image(imageId: string): ImageView | undefined {
    return viewOf(this.#ctx.images, imageId);
  }

  host(hostId: string): HostView | undefined {
    return viewOf(this.#ctx.hosts, hostId);
  }

  subnet(
    subnetId: string,
  ):
    | { readonly subnetId: string; readonly availabilityZone: string; readonly cidrBlock: string }
    | undefined {
    const record = this.#ctx.subnets.get(subnetId);
    return (
      record && {
        subnetId: record.subnetId,
        availabilityZone: record.availabilityZone,
        cidrBlock: record.cidrBlock,
      }
    );
  }

  /** Elastic IP addresses: allocation id, public address and the instance it is associated with. */
  addresses(): { readonly allocationId: string; readonly publicIp: string; readonly instanceId?: string }[] {
    return [...this.#ctx.addresses.values()].map((address) => ({
      allocationId: address.allocationId,
      publicIp: address.publicIp,
      ...(address.association ? { instanceId: address.association.instanceId } : {}),
    }));
  }

  snapshots(): SnapshotView[] {
    return [...this.#ctx.snapshots.values()].map(view);
  }

  images(): ImageView[] {
    return [...this.#ctx.images.values()].map(view);
  }

  hosts(): HostView[] {
    return [...this.#ctx.hosts.values()].map(view);
  }

  fastRestores(): FastRestoreView[] {
    return [...this.#ctx.fastRestores.values()].map(
      ({ generation: _generation, credits, times, ...rest }) => ({
        ...rest,
        times: { ...times },
        credits: credits?.tokens,
      }),
    );
  }

  /** Calls and RequestLimitExceeded answers per API, for benchmark reports. */
  stats(): Readonly<Record<string, ApiStats>> {
    return this.#throttle.stats();
  }
}
