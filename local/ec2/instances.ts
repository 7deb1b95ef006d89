import type {
  DescribeInstanceStatusRequest,
  DescribeInstanceStatusResult,
  DescribeInstancesRequest,
  DescribeInstancesResult,
  Instance,
  InstanceState,
  InstanceStateChange,
  ModifyInstanceAttributeRequest,
  ModifyInstancePlacementRequest,
  ModifyInstancePlacementResult,
  Reservation,
  RunInstancesRequest,
  StartInstancesRequest,
  StartInstancesResult,
  StopInstancesRequest,
  StopInstancesResult,
  TerminateInstancesRequest,
  TerminateInstancesResult,
  VolumeType,
} from '@aws-sdk/client-ec2';
import type { EbsKeyRefusal } from '../kms/keys';
import { publicAddressOf, releaseAddressesOf } from './addresses';
import { launchRefusal, oneTimeSpotStopRefusal, resizeRefusal } from './compatibility';
import { keyRefusal, keyStateReason, newVolumeKey, type RequestedEncryption } from './encryption';
import { ec2Error, invalidParameterValue, missingParameter, notFound, requiredParameter } from './errors';
import { type InstanceStateName, instanceStateChange } from './events';
import { describePage, tagList, tagsFor } from './filters';
import { availableHostIn, chooseHost } from './hosts';
import { isWellFormedId } from './ids';
import { imageOrThrow, platformValue } from './images';
import {
  checkLaunchUserData,
  checkOneAttribute,
  launchCpuCredits,
  modifiedUserData,
} from './instance-attributes';
import { architectureOfType, imageArchitectureOf } from './instance-types';
import { assertKeyPairExists } from './key-pairs';
import {
  assignPrivateAddress,
  availableAddresses,
  checkRequestedAddress,
  unknownSubnets,
  VPC_ID,
  zoneState,
} from './network';
import { checkPlacementGroup, partitionFor } from './placement-groups';
import {
  capacityKey,
  clientTokenKey,
  type Ec2Context,
  type InstanceRecord,
  type SubnetRecord,
} from './state';
import {
  attachedVolumes,
  deleteVolumeRecord,
  newVolume,
  releaseVolume,
  rootVolume,
  volumeSizeFor,
} from './volumes';

/**
 * Instances follow ec2-instance-lifecycle: pending → running; stopping → stopped;
 * shutting-down → terminated. Every transition emits "EC2 Instance State-change Notification"
 * (monitoring-instance-state-changes) and runs on the virtual clock with latency.ts delays.
 */

/** API_InstanceState: the low byte codes of each state. */
const STATE_CODES: Record<InstanceStateName, number> = {
  pending: 0,
  running: 16,
  'shutting-down': 32,
  terminated: 48,
  stopping: 64,
  stopped: 80,
};

const stateOf = (name: InstanceStateName): InstanceState => ({ Code: STATE_CODES[name], Name: name });

/** States in which an instance holds capacity in its AZ or on its Dedicated Host. */
const HOLDS_CAPACITY = new Set<InstanceStateName>(['pending', 'running', 'stopping', 'shutting-down']);

const instanceArn = (ctx: Ec2Context, instanceId: string): string =>
  `arn:aws:ec2:${ctx.region}:${ctx.accountId}:instance/${instanceId}`;

const enterState = (ctx: Ec2Context, instance: InstanceRecord, state: InstanceStateName): void => {
  instance.state = state;
  instance.generation += 1;
  instance.osReadyAt = undefined;
  ctx.emit(instanceStateChange(instanceArn(ctx, instance.instanceId), instance.instanceId, state));
  ctx.notifyLifecycle({ kind: 'state', instanceId: instance.instanceId, state });
};

/** Runs `next` after `ms` unless the instance moved on (e.g. terminated while pending). */
const later = (ctx: Ec2Context, instance: InstanceRecord, ms: number, next: () => void): void => {
  const generation = instance.generation;
  ctx.clock.at(ctx.clock.now() + ms, () => {
    if (instance.generation === generation) next();
  });
};

/**
 * pending → running, then the OS boots and the SSM agent comes online (data/README timings).
 * With `keyFailure` (an encrypted volume whose KMS key the caller could not use, encryption.ts)
 * the instance never runs: a launch goes pending → shutting-down → terminated, a start pending →
 * stopped, with that state reason (re:Post knowledge center "encrypted-volumes-stops-immediately",
 * "kms-iam-ec2-permission").
 */
const boot = (
  ctx: Ec2Context,
  instance: InstanceRecord,
  pendingMs: number,
  bootMs: number,
  keyFailure?: { readonly reason: { code: string; message: string }; readonly end: 'stopped' | 'terminated' },
): void => {
  instance.launchTime = ctx.clock.now();
  instance.stateReason = undefined;
  enterState(ctx, instance, 'pending');
  later(ctx, instance, pendingMs, () => {
    if (keyFailure) {
      instance.stateReason = keyFailure.reason;
      if (keyFailure.end === 'stopped') {
        enterState(ctx, instance, 'stopped');
        return;
      }
      enterState(ctx, instance, 'shutting-down');
      later(ctx, instance, ctx.latency.shuttingDownMs, () => finishTermination(ctx, instance));
      return;
    }
    enterState(ctx, instance, 'running');
    later(ctx, instance, bootMs, () => {
      instance.osReadyAt = ctx.clock.now();
      ctx.notifyLifecycle({ kind: 'os-ready', instanceId: instance.instanceId });
    });
  });
};

/**
 * A reboot EC2 performs itself (replace-root: "The instance is automatically rebooted during the
 * process. The contents of the memory (RAM) is erased"): the instance stays `running`, so no
 * state-change notification is sent, but its OS is down from now on (the SSM agent offline, a
 * running command interrupted) until `restart`, which boots it in `bootMs`. `stillDown` turns
 * false once the instance moved on (stopped or terminated meanwhile); `restart` then does nothing.
 */
export const shutDownOs = (
  ctx: Ec2Context,
  instance: InstanceRecord,
): { readonly stillDown: () => boolean; readonly restart: (bootMs: number, booted: () => void) => void } => {
  instance.generation += 1;
  instance.osReadyAt = undefined;
  const generation = instance.generation;
  const stillDown = (): boolean => instance.generation === generation && instance.state === 'running';
  return {
    stillDown,
    restart: (bootMs, booted) => {
      if (!stillDown()) return;
      later(ctx, instance, bootMs, () => {
        instance.osReadyAt = ctx.clock.now();
        ctx.notifyLifecycle({ kind: 'os-ready', instanceId: instance.instanceId });
        booted();
      });
    },
  };
};

const insufficientCapacity = (availabilityZone: string, instanceType: string): Error =>
  ec2Error(
    'InsufficientInstanceCapacity',
    `We currently do not have sufficient ${instanceType} capacity in the Availability Zone you requested (${availabilityZone}). Our system will be working on provisioning additional capacity.`,
  );

/** ec2-capacity / troubleshooting-launch: shared-tenancy capacity set with setCapacity. */
const hasSharedCapacity = (ctx: Ec2Context, availabilityZone: string, instanceType: string): boolean => {
  // An impaired or unavailable AZ (setZoneState) admits no launch or start: the simplest reading
  // of ec2-instance-recover / aws-health AZ events, where launches there fail with no capacity.
  const zone = zoneState(ctx, availabilityZone);
  if (zone === 'impaired' || zone === 'unavailable') return false;
  const limit = ctx.capacity.get(capacityKey(availabilityZone, instanceType));
  if (limit === undefined) return true;
  let used = 0;
  for (const instance of ctx.instances.values()) {
    if (
      instance.availabilityZone === availabilityZone &&
      instance.instanceType === instanceType &&
      instance.tenancy !== 'host' &&
      HOLDS_CAPACITY.has(instance.state)
    )
      used += 1;
  }
  return used < limit;
};

/**
 * Reserves capacity for one instance and returns the Dedicated Host it lands on, if any.
 * dedicated-hosts-understanding: a launch naming a host, and a start with affinity 'host', must
 * use that host; a start with affinity 'default' prefers the previous host but may move to any
 * auto-placement host with room.
 */
const placeOne = (
  ctx: Ec2Context,
  instance: Pick<InstanceRecord, 'availabilityZone' | 'instanceType' | 'tenancy' | 'hostId'>,
  mayMoveHost: boolean,
): string | undefined => {
  if (instance.tenancy !== 'host') {
    if (!hasSharedCapacity(ctx, instance.availabilityZone, instance.instanceType))
      throw insufficientCapacity(instance.availabilityZone, instance.instanceType);
    return undefined;
  }
  const request = {
    availabilityZone: instance.availabilityZone,
    instanceType: instance.instanceType,
    count: 1,
  };
  if (instance.hostId === undefined || !mayMoveHost)
    return chooseHost(ctx, { ...request, hostId: instance.hostId }).hostId;
  try {
    return chooseHost(ctx, { ...request, hostId: instance.hostId }).hostId;
  } catch {
    return chooseHost(ctx, { ...request, hostId: undefined }).hostId;
  }
};

/** Looks up instance ids: malformed ids and unknown ids are distinct errors (API_DescribeInstances). */
export const lookupInstances = (ctx: Ec2Context, ids: readonly string[] | undefined): InstanceRecord[] => {
  if (!ids?.length) throw missingParameter('InstanceId');
  const malformed = ids.find((id) => !isWellFormedId('i', id));
  if (malformed !== undefined) throw ec2Error('InvalidInstanceID.Malformed', `Invalid id: "${malformed}"`);
  const missing = ids.filter((id) => !ctx.instances.has(id));
  if (missing.length > 0) throw notFound('InvalidInstanceID.NotFound', missing, 'instance');
  return ids.map((id) => ctx.instances.get(id) as InstanceRecord);
};

/**
 * RunInstances `InstanceMarketOptions` (API_SpotMarketOptions): `SpotInstanceType` defaults to
 * one-time; a persistent request needs `InstanceInterruptionBehavior` stop or hibernate.
 */
const spotRequestType = (
  options: RunInstancesRequest['InstanceMarketOptions'],
): 'one-time' | 'persistent' | undefined => {
  if (options?.MarketType !== 'spot') return undefined;
  const type = options.SpotOptions?.SpotInstanceType ?? 'one-time';
  if (
    type === 'persistent' &&
    (options.SpotOptions?.InstanceInterruptionBehavior ?? 'terminate') === 'terminate'
  )
    throw ec2Error(
      'InvalidParameterCombination',
      'A persistent Spot Instance request needs InstanceInterruptionBehavior stop or hibernate to be started and stopped.',
    );
  return type === 'persistent' ? 'persistent' : 'one-time';
};

const toSdkInstance = (ctx: Ec2Context, instance: InstanceRecord, launchIndex: number): Instance => ({
  InstanceId: instance.instanceId,
  ClientToken: instance.clientToken,
  ImageId: instance.imageId,
  InstanceType: instance.instanceType as Instance['InstanceType'],
  LaunchTime: new Date(instance.launchTime),
  AmiLaunchIndex: launchIndex,
  State: stateOf(instance.state),
  StateTransitionReason: instance.stateTransitionReason,
  ...(instance.spotInstanceType ? { InstanceLifecycle: 'spot' as const } : {}),
  EnaSupport: instance.enaSupport ?? true,
  StateReason: instance.stateReason
    ? { Code: instance.stateReason.code, Message: instance.stateReason.message }
    : instance.state === 'stopped' || instance.state === 'stopping'
      ? {
          Code: 'Client.UserInitiatedShutdown',
          Message: 'Client.UserInitiatedShutdown: User initiated shutdown',
        }
      : undefined,
  Placement: {
    AvailabilityZone: instance.availabilityZone,
    Tenancy: instance.tenancy,
    HostId: instance.hostId,
    Affinity: instance.affinity,
    ...(instance.placementGroupName !== undefined ? { GroupName: instance.placementGroupName } : {}),
    ...(instance.partitionNumber !== undefined ? { PartitionNumber: instance.partitionNumber } : {}),
  },
  SubnetId: instance.subnetId,
  VpcId: VPC_ID,
  // A terminated instance's network interface is gone, and its addresses with it.
  PrivateIpAddress: instance.state === 'terminated' ? undefined : instance.privateIpAddress,
  PublicIpAddress: publicAddressOf(ctx, instance.instanceId),
  KeyName: instance.keyName,
  MetadataOptions: {
    State: 'applied',
    HttpTokens: instance.metadataOptions.httpTokens,
    HttpPutResponseHopLimit: instance.metadataOptions.httpPutResponseHopLimit,
    HttpEndpoint: instance.metadataOptions.httpEndpoint,
  },
  SecurityGroups: instance.securityGroupIds.map((groupId) => ({ GroupId: groupId })),
  IamInstanceProfile: instance.iamInstanceProfile ? { Arn: instance.iamInstanceProfile } : undefined,
  Architecture: imageArchitectureOf(architectureOfType(instance.instanceType)),
  VirtualizationType: 'hvm',
  Hypervisor: 'xen',
  RootDeviceName: instance.rootDeviceName,
  RootDeviceType: instance.rootDeviceType,
  Platform: platformValue(instance.platform),
  PlatformDetails: instance.platform === 'windows' ? 'Windows' : 'Linux/UNIX',
  HibernationOptions: { Configured: instance.hibernationConfigured },
  BlockDeviceMappings: attachedVolumes(ctx, instance.instanceId).flatMap((volume) => {
    if (!volume.attachment) return [];
    return [
      {
        DeviceName: volume.attachment.device,
        Ebs: {
          VolumeId: volume.volumeId,
          Status: volume.attachment.state,
          AttachTime: new Date(volume.attachment.attachTime),
          DeleteOnTermination: volume.attachment.deleteOnTermination,
        },
      },
    ];
  }),
  Tags: tagList(instance.tags),
});

interface PlannedDevice {
  readonly deviceName: string;
  readonly snapshotId: string | undefined;
  readonly size: number;
  readonly volumeType: VolumeType | undefined;
  readonly deleteOnTermination: boolean;
  /** The mapping's `Encrypted` and `KmsKeyId` (encryption.ts decides the volume's key). */
  readonly encryption?: RequestedEncryption;
}

/**
 * The volumes a launch creates: the AMI's block devices, overridden or removed (NoDevice) by the
 * request's BlockDeviceMappings, plus new ones (block-device-mapping-concepts). A size below the
 * snapshot's is InvalidBlockDeviceMapping.
 */
const planBlockDevices = (
  ctx: Ec2Context,
  imageDevices: readonly PlannedDevice[],
  mappings: RunInstancesRequest['BlockDeviceMappings'],
): PlannedDevice[] => {
  const devices = new Map(imageDevices.map((device) => [device.deviceName, device]));
  for (const mapping of mappings ?? []) {
    const deviceName = mapping.DeviceName;
    if (!deviceName) throw missingParameter('BlockDeviceMapping.DeviceName');
    if (mapping.NoDevice !== undefined) {
      devices.delete(deviceName);
      continue;
    }
    if (!mapping.Ebs) continue;
    const existing = devices.get(deviceName);
    const snapshotId = mapping.Ebs.SnapshotId ?? existing?.snapshotId;
    const snapshot = snapshotId === undefined ? undefined : ctx.snapshots.get(snapshotId);
    if (snapshotId !== undefined && !snapshot)
      throw notFound('InvalidSnapshot.NotFound', [snapshotId], 'snapshot');
    let size: number;
    try {
      size = volumeSizeFor(snapshot?.volumeSize, mapping.Ebs.VolumeSize ?? existing?.size);
    } catch (error) {
      throw ec2Error('InvalidBlockDeviceMapping', error instanceof Error ? error.message : String(error));
    }
    devices.set(deviceName, {
      deviceName,
      snapshotId,
      size,
      volumeType: mapping.Ebs.VolumeType ?? existing?.volumeType,
      deleteOnTermination: mapping.Ebs.DeleteOnTermination ?? existing?.deleteOnTermination ?? true,
      encryption: { encrypted: mapping.Ebs.Encrypted, kmsKeyId: mapping.Ebs.KmsKeyId },
    });
  }
  return [...devices.values()];
};

const resolveSubnet = (ctx: Ec2Context, input: RunInstancesRequest): SubnetRecord => {
  const requestedZone = input.Placement?.AvailabilityZone;
  if (input.SubnetId !== undefined) {
    const subnet = ctx.subnets.get(input.SubnetId);
    if (!subnet) throw unknownSubnets([input.SubnetId]);
    if (requestedZone !== undefined && requestedZone !== subnet.availabilityZone)
      throw ec2Error(
        'InvalidParameterCombination',
        'The specified Availability Zone does not match the subnet.',
      );
    return subnet;
  }
  // Without a subnet, EC2 launches into the default subnet of the requested (or any) AZ.
  const zone = requestedZone ?? ctx.availabilityZones[0];
  const subnet = [...ctx.subnets.values()].find((candidate) => candidate.availabilityZone === zone);
  if (!subnet) throw invalidParameterValue(`Invalid availability zone: [${zone}]`);
  return subnet;
};

/**
 * Run_Instance_Idempotency (EC2 API Reference and the EC2 developer guide "Ensuring idempotency
 * in Amazon EC2 API requests"): a client token is "a unique, case-sensitive string of up to 64
 * ASCII characters" (API_RunInstances: "Constraints: Maximum 64 ASCII characters"). Neither page
 * names the error for a longer or non-ASCII token; InvalidParameterValue, the code EC2 uses for
 * a parameter value outside its constraints, is an assumption (docs/ec2-fidelity-notes.md).
 */
const CLIENT_TOKEN_MAX = 64;
const isAscii = (text: string): boolean =>
  Array.from(text).every((character) => (character.codePointAt(0) ?? 0) <= 0x7f);

export const checkClientToken = (clientToken: string): void => {
  if (clientToken.length > CLIENT_TOKEN_MAX || !isAscii(clientToken))
    throw invalidParameterValue(
      `Value (${clientToken}) for parameter clientToken is invalid. The client token must be at most ${CLIENT_TOKEN_MAX} ASCII characters.`,
    );
};

/**
 * RunInstances idempotency is zonal when the request names an AZ, explicitly (Placement) or
 * through its subnet, and regional otherwise: the same token launches once per AZ, or once per
 * Region (ec2-api-idempotency, "RunInstances idempotency").
 */
const idempotencyZone = (ctx: Ec2Context, input: RunInstancesRequest): string | undefined =>
  input.Placement?.AvailabilityZone ??
  (input.SubnetId === undefined ? undefined : ctx.subnets.get(input.SubnetId)?.availabilityZone);

/**
 * Every parameter but the token, with object keys sorted, so equal requests compare equal (the
 * request a ClientToken binds: RunInstances, CreateReplaceRootVolumeTask).
 */
export const idempotentParameters = (input: { readonly ClientToken?: string | undefined }): string => {
  const canonical = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(canonical);
    if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
    if (typeof value !== 'object' || value === null) return value;
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, entry]) => entry !== undefined)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([key, entry]) => [key, canonical(entry)]),
    );
  };
  const { ClientToken: _token, ...parameters } = input;
  return JSON.stringify(canonical(parameters));
};

/** A repeat under a bound ClientToken must send the same parameters (ec2-api-idempotency). */
export const checkSameParameters = (
  bound: { readonly parameters: string },
  input: { readonly ClientToken?: string | undefined },
): void => {
  if (bound.parameters !== idempotentParameters(input))
    throw ec2Error(
      'IdempotentParameterMismatch',
      'Arguments on this idempotent request are inconsistent with arguments used in previous request(s).',
    );
};

/**
 * A repeat of a completed launch with the same token: the same reservation and instances, in
 * their current state, and nothing launched ("If you repeat the request with the same client
 * token, the same response is returned ... The only information that might vary in the response
 * is the state of the instance"). The token stays bound for at least 24 hours after the
 * instances terminate; here it stays bound for the life of the simulated cloud, the strictest
 * reading of "at least". Different parameters under the same token: IdempotentParameterMismatch.
 */
const repeatedLaunch = (
  ctx: Ec2Context,
  input: RunInstancesRequest,
  clientToken: string,
): Reservation | undefined => {
  const original = ctx.clientTokens.get(clientTokenKey(idempotencyZone(ctx, input), clientToken));
  if (!original) return undefined;
  checkSameParameters(original, input);
  ctx.counters.clientTokenReplays += 1;
  return {
    ReservationId: original.reservationId,
    OwnerId: ctx.accountId,
    Groups: [],
    Instances: original.instances.map((instance, index) => toSdkInstance(ctx, instance, index)),
  };
};

/**
 * API_RunInstances. Launches between MinCount and MaxCount instances: as many as capacity
 * allows, and InsufficientInstanceCapacity / InsufficientHostCapacity when fewer than MinCount
 * fit (ec2-capacity). The answer comes after the measured API latency; the instances are then
 * pending and reach running after the measured pending time.
 */
export const runInstances = async (ctx: Ec2Context, input: RunInstancesRequest): Promise<Reservation> => {
  await ctx.clock.sleep(ctx.latency.runInstancesApiMs);
  const clientToken = input.ClientToken;
  if (clientToken !== undefined) {
    checkClientToken(clientToken);
    const repeated = repeatedLaunch(ctx, input, clientToken);
    if (repeated) return repeated;
  }
  const image = imageOrThrow(ctx, input.ImageId);
  if (image.state !== 'available')
    throw ec2Error('InvalidAMIID.Unavailable', `The image id '[${image.imageId}]' is not available`);
  const minCount = requiredParameter(input.MinCount, 'MinCount');
  const maxCount = requiredParameter(input.MaxCount, 'MaxCount');
  if (minCount < 1 || maxCount < minCount)
    throw invalidParameterValue(`Invalid MinCount/MaxCount: ${minCount}/${maxCount}`);
  assertKeyPairExists(ctx, input.KeyName);
  const typeArchitecture = imageArchitectureOf(architectureOfType(input.InstanceType ?? 'm1.small'));
  if (typeArchitecture !== image.architecture)
    throw invalidParameterValue(
      `The architecture '${typeArchitecture}' of the specified instance type does not match the architecture '${image.architecture}' of the specified AMI. Specify an instance type and an AMI that have matching architectures, and try again.`,
    );
  const bootable = {
    bootMode: image.bootMode ?? 'uefi-preferred',
    enaSupport: image.enaSupport ?? true,
  } as const;
  const incompatible = launchRefusal(input.InstanceType ?? 'm1.small', bootable);
  if (incompatible) throw incompatible;
  const spotInstanceType = spotRequestType(input.InstanceMarketOptions);
  const subnet = resolveSubnet(ctx, input);
  const devices = planBlockDevices(
    ctx,
    image.blockDevices.map((device) => ({ ...device, size: device.volumeSize })),
    input.BlockDeviceMappings,
  );
  const placement = input.Placement;
  const tenancy = placement?.HostId !== undefined ? 'host' : (placement?.Tenancy ?? 'default');
  if (tenancy !== 'default' && tenancy !== 'dedicated' && tenancy !== 'host')
    throw invalidParameterValue(`Invalid tenancy: ${tenancy}`);
  // User data, credit option, placement group and private address, checked before anything launches.
  checkLaunchUserData(input.UserData);
  const cpuCredits = launchCpuCredits(input, input.InstanceType ?? 'm1.small', tenancy);
  const group = checkPlacementGroup(ctx, placement, subnet.availabilityZone, tenancy);
  if (input.PrivateIpAddress !== undefined) {
    // API_RunInstances: "You cannot specify this option if you're launching more than one instance
    // in the request" (no code documented: InvalidParameterCombination is the simulator's choice).
    if (maxCount > 1)
      throw ec2Error(
        'InvalidParameterCombination',
        'PrivateIpAddress cannot be specified when launching more than one instance',
      );
    checkRequestedAddress(ctx, subnet, input.PrivateIpAddress);
  }
  const freeAddresses = availableAddresses(ctx, subnet);
  if (freeAddresses < minCount)
    throw ec2Error(
      'InsufficientFreeAddressesInSubnet',
      `There are not enough free addresses in subnet '${subnet.subnetId}' to satisfy the requested number of instances.`,
    );
  // Each new volume's key (encryption.ts). A key the caller may not use does not refuse the call:
  // the instances launch and then terminate (boot).
  const deviceKeys = devices.map((device) =>
    newVolumeKey(
      ctx,
      device.snapshotId === undefined ? undefined : ctx.snapshots.get(device.snapshotId)?.kmsKeyId,
      device.encryption ?? {},
    ),
  );
  const checking = keyRefusal(
    ctx,
    'RunInstances',
    deviceKeys.map((kmsKeyId) => ({ kmsKeyId })),
  );
  const refusal = checking && (await checking);
  if (checking && clientToken !== undefined) {
    // Another launch with this token may have completed while the caller's IAM was evaluated.
    const repeated = repeatedLaunch(ctx, input, clientToken);
    if (repeated) return repeated;
  }
  const instanceType = input.InstanceType ?? 'm1.small';
  const reservationId = ctx.ids.next('r');
  const instanceTags = tagsFor(input.TagSpecifications, 'instance');
  const volumeTags = tagsFor(input.TagSpecifications, 'volume');

  const launched: InstanceRecord[] = [];
  // A fault (FaultInjector.partialLaunchThenCrash) lets only one instance find capacity.
  const launchAtMost = Math.min(
    freeAddresses,
    ctx.shortLaunches.has(input) ? Math.max(minCount, 1) : maxCount,
  );
  while (launched.length < launchAtMost) {
    const instance: InstanceRecord = {
      instanceId: ctx.ids.next('i'),
      reservationId,
      clientToken,
      imageId: image.imageId,
      instanceType,
      availabilityZone: subnet.availabilityZone,
      subnetId: subnet.subnetId,
      privateIpAddress: assignPrivateAddress(ctx, subnet, input.PrivateIpAddress),
      placementGroupName: group?.groupName,
      partitionNumber: partitionFor(ctx, group, placement?.PartitionNumber),
      cpuCredits,
      tenancy,
      hostId: placement?.HostId,
      affinity: tenancy === 'host' ? (placement?.Affinity === 'host' ? 'host' : 'default') : undefined,
      state: 'pending',
      stateTransitionReason: '',
      launchTime: ctx.clock.now(),
      rootDeviceName: image.rootDeviceName,
      rootDeviceType: image.rootDeviceType,
      platform: image.platform,
      keyName: input.KeyName,
      securityGroupIds: input.SecurityGroupIds ?? [],
      iamInstanceProfile:
        input.IamInstanceProfile?.Arn ??
        (input.IamInstanceProfile?.Name
          ? `arn:aws:iam::${ctx.accountId}:instance-profile/${input.IamInstanceProfile.Name}`
          : undefined),
      userData: input.UserData,
      shutdownBehavior: input.InstanceInitiatedShutdownBehavior === 'terminate' ? 'terminate' : 'stop',
      disableApiTermination: input.DisableApiTermination === true,
      disableApiStop: input.DisableApiStop === true,
      metadataOptions: {
        httpTokens: input.MetadataOptions?.HttpTokens === 'required' ? 'required' : 'optional',
        httpPutResponseHopLimit: input.MetadataOptions?.HttpPutResponseHopLimit ?? 1,
        httpEndpoint: input.MetadataOptions?.HttpEndpoint === 'disabled' ? 'disabled' : 'enabled',
      },
      hibernationConfigured: input.HibernationOptions?.Configured === true,
      ...bootable,
      ...(spotInstanceType ? { spotInstanceType } : {}),
      hibernated: false,
      osReadyAt: undefined,
      generation: 0,
      tags: new Map(instanceTags),
    };
    try {
      instance.hostId = placeOne(ctx, instance, false);
    } catch (error) {
      if (launched.length >= minCount) break;
      for (const placed of launched) ctx.instances.delete(placed.instanceId);
      throw error;
    }
    // The record holds capacity from here on, so the next placement sees it.
    ctx.instances.set(instance.instanceId, instance);
    launched.push(instance);
  }

  for (const instance of launched) {
    for (const [index, device] of devices.entries()) {
      newVolume(ctx, {
        kmsKeyId: deviceKeys[index],
        size: device.size,
        snapshotId: device.snapshotId,
        availabilityZone: instance.availabilityZone,
        volumeType: device.volumeType,
        tags: new Map(volumeTags),
        attachTo: {
          instanceId: instance.instanceId,
          device: device.deviceName,
          deleteOnTermination: device.deleteOnTermination,
        },
      });
    }
    boot(
      ctx,
      instance,
      ctx.latency.launchPendingMs,
      ctx.latency.launchBootMs,
      refusal ? { reason: keyStateReason(refusal), end: 'terminated' } : undefined,
    );
  }
  // Only a launch that completed binds the token: a refused one (capacity, a bad parameter) may be
  // repeated with the same token and then launches (Run_Instance_Idempotency, retry table).
  if (clientToken !== undefined) {
    ctx.clientTokens.set(clientTokenKey(idempotencyZone(ctx, input), clientToken), {
      parameters: idempotentParameters(input),
      reservationId,
      instances: launched,
    });
  }
  return {
    ReservationId: reservationId,
    OwnerId: ctx.accountId,
    Groups: [],
    Instances: launched.map((instance, index) => toSdkInstance(ctx, instance, index)),
  };
};

const change = (instance: InstanceRecord, previous: InstanceStateName): InstanceStateChange => ({
  InstanceId: instance.instanceId,
  CurrentState: stateOf(instance.state),
  PreviousState: stateOf(previous),
});

/** Each instance's state change as the call answers it, once `transition` has acted on it. */
const changes = (
  instances: readonly InstanceRecord[],
  transition: (instance: InstanceRecord) => void,
): InstanceStateChange[] =>
  instances.map((instance) => {
    const previous = instance.state;
    transition(instance);
    return change(instance, previous);
  });

/** OperationNotPermitted while the instance's stop or termination protection is on. */
const protectionRefusal = (
  instanceId: string,
  refused: 'stopped' | 'terminated',
  attribute: 'disableApiStop' | 'disableApiTermination',
): Error =>
  ec2Error(
    'OperationNotPermitted',
    `The instance '${instanceId}' may not be ${refused}. Modify its '${attribute}' instance attribute and try again.`,
  );

/** IncorrectInstanceState, in the call's own words, for an instance in a state the call refuses. */
const refuseStates = (
  instance: InstanceRecord,
  refused: readonly InstanceStateName[],
  message: string,
): void => {
  if (refused.includes(instance.state)) throw ec2Error('IncorrectInstanceState', message);
};

/**
 * API_StartInstances (Stop_Start): only a stopped instance starts; one already pending or running
 * is reported as it is; stopping, shutting-down and terminated ones are IncorrectInstanceState.
 * An EBS-backed instance needs a volume at its root device (IncorrectInstanceState otherwise).
 * Capacity is taken again on start (InsufficientInstanceCapacity / InsufficientHostCapacity);
 * the call is all or nothing.
 */
export const startInstances = async (
  ctx: Ec2Context,
  input: StartInstancesRequest,
): Promise<StartInstancesResult> => {
  const resuming = (input.InstanceIds ?? []).some((id) => ctx.instances.get(id)?.hibernated === true);
  await ctx.clock.sleep(resuming ? ctx.latency.resumeApiMs : ctx.latency.startInstancesApiMs);
  // A stopped instance's encrypted volumes are decrypted again at start with the caller's KMS
  // permissions; without them (or with the key disabled) the start is accepted and the instance
  // goes pending → stopped (re:Post "kms-iam-ec2-permission"). Asked before anything changes.
  const refusals = new Map<string, EbsKeyRefusal>();
  for (const id of new Set(input.InstanceIds ?? [])) {
    const candidate = ctx.instances.get(id);
    if (candidate?.state !== 'stopped') continue;
    const checking = keyRefusal(ctx, 'StartInstances', attachedVolumes(ctx, id));
    const refusal = checking && (await checking);
    if (refusal) refusals.set(id, refusal);
  }
  const instances = lookupInstances(ctx, input.InstanceIds);
  for (const instance of instances) {
    refuseStates(
      instance,
      ['stopping', 'shutting-down', 'terminated'],
      `The instance '${instance.instanceId}' is not in a state from which it can be started.`,
    );
    if (instance.state === 'stopped' && instance.rootDeviceType === 'ebs' && !rootVolume(ctx, instance)) {
      throw ec2Error(
        'IncorrectInstanceState',
        `Invalid value '${instance.instanceId}' for instanceId. Instance does not have a volume attached at root (${instance.rootDeviceName})`,
      );
    }
  }
  const toStart = instances.filter((instance) => instance.state === 'stopped');
  const previousHosts = toStart.map((instance) => instance.hostId);
  const held: InstanceRecord[] = [];
  try {
    for (const instance of toStart) {
      instance.hostId = placeOne(ctx, instance, instance.affinity !== 'host');
      // Held as pending (no event yet) so the next placement of this call counts it.
      instance.state = 'pending';
      held.push(instance);
    }
  } catch (error) {
    held.forEach((instance) => {
      instance.state = 'stopped';
    });
    toStart.forEach((instance, index) => {
      instance.hostId = previousHosts[index];
    });
    throw error;
  }
  const previous = instances.map((instance) => (toStart.includes(instance) ? 'stopped' : instance.state));
  for (const instance of toStart) {
    const resume = instance.hibernated;
    instance.hibernated = false;
    const refusal = refusals.get(instance.instanceId);
    boot(
      ctx,
      instance,
      resume ? ctx.latency.resumePendingMs : ctx.latency.startPendingMs,
      resume ? ctx.latency.resumeBootMs : ctx.latency.startBootMs,
      refusal ? { reason: keyStateReason(refusal), end: 'stopped' } : undefined,
    );
  }
  return {
    StartingInstances: instances.map((instance, index) => change(instance, previous[index] ?? 'stopped')),
  };
};

/**
 * API_StopInstances (Stop_Start, Hibernate): instance-store-backed instances cannot be stopped
 * (UnsupportedOperation); pending, shutting-down and terminated ones are IncorrectInstanceState;
 * stopping or stopped ones are reported as they are. Hibernation needs HibernationOptions at launch.
 * EBS volumes stay attached; capacity is given back once stopped.
 */
export const stopInstances = (ctx: Ec2Context, input: StopInstancesRequest): StopInstancesResult => {
  const instances = lookupInstances(ctx, input.InstanceIds);
  for (const instance of instances) {
    if (instance.rootDeviceType === 'instance-store') {
      throw ec2Error(
        'UnsupportedOperation',
        `The instance '${instance.instanceId}' does not have an 'ebs' root device type and cannot be stopped.`,
      );
    }
    refuseStates(
      instance,
      ['pending', 'shutting-down', 'terminated'],
      `This instance '${instance.instanceId}' is not in a state from which it can be stopped.`,
    );
    if (input.Hibernate && !instance.hibernationConfigured)
      throw ec2Error(
        'UnsupportedOperation',
        `The instance '${instance.instanceId}' is not enabled for hibernation.`,
      );
    // Only a persistent Spot request's instance can be stopped (spot-interruptions, "Stop a Spot Instance").
    if (instance.spotInstanceType === 'one-time') throw oneTimeSpotStopRefusal(instance.instanceId);
    // Stop protection fails the whole call, whatever else it names (Stop_Start, "Enable stop protection").
    if (instance.disableApiStop) throw protectionRefusal(instance.instanceId, 'stopped', 'disableApiStop');
  }
  return {
    StoppingInstances: changes(instances, (instance) => {
      if (instance.state === 'running') {
        enterState(ctx, instance, 'stopping');
        instance.stateTransitionReason = `User initiated (${new Date(ctx.clock.now()).toISOString()})`;
        const hibernate = input.Hibernate === true;
        later(ctx, instance, hibernate ? ctx.latency.hibernatingMs : ctx.latency.stoppingMs, () => {
          instance.hibernated = hibernate;
          enterState(ctx, instance, 'stopped');
        });
      }
    }),
  };
};

/**
 * terminating-instances: volumes with DeleteOnTermination are deleted, the others become
 * available; the terminated instance stays describable for about an hour.
 */
const finishTermination = (ctx: Ec2Context, instance: InstanceRecord): void => {
  enterState(ctx, instance, 'terminated');
  releaseAddressesOf(ctx, instance.instanceId);
  for (const volume of attachedVolumes(ctx, instance.instanceId)) {
    if (volume.attachment?.deleteOnTermination) deleteVolumeRecord(ctx, volume);
    else releaseVolume(ctx, volume);
  }
  ctx.attachments.delete(instance.instanceId);
  later(ctx, instance, ctx.latency.terminatedVisibleMs, () => ctx.instances.delete(instance.instanceId));
};

/** API_TerminateInstances: terminating a shutting-down or terminated instance changes nothing. */
export const terminateInstances = (
  ctx: Ec2Context,
  input: TerminateInstancesRequest,
): TerminateInstancesResult => {
  const instances = lookupInstances(ctx, input.InstanceIds);
  // API_TerminateInstances: "If you specify multiple instances and the request fails (for example,
  // because of a single incorrect instance ID), none of the instances are terminated"; termination
  // protection is such a failure.
  const protectedInstance = instances.find(
    (instance) => instance.disableApiTermination && instance.state !== 'terminated',
  );
  if (protectedInstance)
    throw protectionRefusal(protectedInstance.instanceId, 'terminated', 'disableApiTermination');
  return {
    TerminatingInstances: changes(instances, (instance) => {
      if (instance.state !== 'shutting-down' && instance.state !== 'terminated') {
        instance.stateReason = undefined;
        enterState(ctx, instance, 'shutting-down');
        later(ctx, instance, ctx.latency.shuttingDownMs, () => finishTermination(ctx, instance));
      }
    }),
  };
};

export const describeInstances = async (
  ctx: Ec2Context,
  input: DescribeInstancesRequest,
): Promise<DescribeInstancesResult> => {
  if (input.InstanceIds?.length && input.MaxResults !== undefined)
    throw ec2Error(
      'InvalidParameterCombination',
      'The parameter instancesSet cannot be used with the parameter maxResults',
    );
  if (input.MaxResults !== undefined && (input.MaxResults < 5 || input.MaxResults > 1000))
    throw invalidParameterValue(
      `Value ( ${input.MaxResults} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.`,
    );
  const candidates = input.InstanceIds?.length
    ? lookupInstances(ctx, input.InstanceIds)
    : ctx.instances.values();
  const { page, nextToken } = describePage(
    candidates,
    input,
    {
      'instance-id': (instance) => [instance.instanceId],
      'instance-state-name': (instance) => [instance.state],
      'instance-state-code': (instance) => [String(STATE_CODES[instance.state])],
      'instance-type': (instance) => [instance.instanceType],
      'availability-zone': (instance) => [instance.availabilityZone],
      'image-id': (instance) => [instance.imageId],
      'host-id': (instance) => [instance.hostId],
      'subnet-id': (instance) => [instance.subnetId],
      'private-ip-address': (instance) => [
        instance.state === 'terminated' ? undefined : instance.privateIpAddress,
      ],
      'placement-group-name': (instance) => [instance.placementGroupName],
      'reservation-id': (instance) => [instance.reservationId],
      'client-token': (instance) => [instance.clientToken],
      tenancy: (instance) => [instance.tenancy],
      'key-name': (instance) => [instance.keyName],
      'root-device-type': (instance) => [instance.rootDeviceType],
      platform: (instance) => [instance.platform === 'windows' ? 'windows' : undefined],
      'block-device-mapping.volume-id': (instance) =>
        attachedVolumes(ctx, instance.instanceId).map((volume) => volume.volumeId),
    },
    (instance) => instance.tags,
  );
  const reservations = new Map<string, Reservation>();
  for (const instance of page) {
    const reservation = reservations.get(instance.reservationId) ?? {
      ReservationId: instance.reservationId,
      OwnerId: ctx.accountId,
      Groups: [],
      Instances: [],
    };
    reservation.Instances?.push(toSdkInstance(ctx, instance, reservation.Instances.length));
    reservations.set(instance.reservationId, reservation);
  }
  return { Reservations: [...reservations.values()], NextToken: nextToken };
};

/**
 * API_DescribeInstanceStatus: running instances only unless IncludeAllInstances. Status checks
 * read "initializing" until the OS has booted, then "ok"; not-applicable when not running.
 */
export const describeInstanceStatus = async (
  ctx: Ec2Context,
  input: DescribeInstanceStatusRequest,
): Promise<DescribeInstanceStatusResult> => {
  const candidates = input.InstanceIds?.length
    ? lookupInstances(ctx, input.InstanceIds)
    : [...ctx.instances.values()];
  const visible = candidates.filter((instance) => input.IncludeAllInstances || instance.state === 'running');
  const checkOf = (instance: InstanceRecord) =>
    instance.state !== 'running'
      ? 'not-applicable'
      : instance.osReadyAt === undefined
        ? 'initializing'
        : 'ok';
  const { page, nextToken } = describePage(
    visible,
    input,
    {
      'instance-state-name': (instance) => [instance.state],
      'availability-zone': (instance) => [instance.availabilityZone],
      'instance-status.status': (instance) => [checkOf(instance)],
      'system-status.status': (instance) => [checkOf(instance)],
    },
    (instance) => instance.tags,
  );
  return {
    InstanceStatuses: page.map((instance) => ({
      InstanceId: instance.instanceId,
      AvailabilityZone: instance.availabilityZone,
      InstanceState: stateOf(instance.state),
      InstanceStatus: { Status: checkOf(instance) },
      SystemStatus: { Status: checkOf(instance) },
    })),
    NextToken: nextToken,
  };
};

const requireStopped = (instance: InstanceRecord): void => {
  if (instance.state !== 'stopped')
    throw ec2Error(
      'IncorrectInstanceState',
      `The instance '${instance.instanceId}' is not in the 'stopped' state.`,
    );
};

/**
 * API_ModifyInstanceAttribute: the instance type and user data change only while stopped
 * (ec2-instance-resize, user-data); DeleteOnTermination of an attached volume changes at any time.
 */
export const modifyInstanceAttribute = (
  ctx: Ec2Context,
  input: ModifyInstanceAttributeRequest,
): Record<string, never> => {
  const [instance] = lookupInstances(ctx, input.InstanceId === undefined ? undefined : [input.InstanceId]);
  if (!instance) throw missingParameter('InstanceId');
  checkOneAttribute(input);
  if (input.InstanceType?.Value !== undefined) {
    requireStopped(instance);
    // resize-limitations: the new type must run the instance's AMI (same architecture; a Mac only
    // as another Mac of that architecture). EC2 answers an incompatible change this way.
    if (architectureOfType(input.InstanceType.Value) !== architectureOfType(instance.instanceType))
      throw ec2Error(
        'InvalidInstanceAttributeValue',
        `Modifying the instance type from ${instance.instanceType} to ${input.InstanceType.Value} is not allowed.`,
      );
    const incompatible = resizeRefusal(
      {
        instanceId: instance.instanceId,
        hibernationConfigured: instance.hibernationConfigured,
        bootMode: instance.bootMode ?? 'uefi-preferred',
        enaSupport: instance.enaSupport ?? true,
      },
      input.InstanceType.Value,
    );
    if (incompatible) throw incompatible;
    instance.instanceType = input.InstanceType.Value;
  }
  if (input.DisableApiTermination?.Value !== undefined) {
    instance.disableApiTermination = input.DisableApiTermination.Value;
  }
  if (input.DisableApiStop?.Value !== undefined) {
    instance.disableApiStop = input.DisableApiStop.Value;
  }
  if (input.UserData?.Value !== undefined) {
    requireStopped(instance);
    instance.userData = modifiedUserData(input.UserData.Value);
  }
  // Every device of the list is checked before any changes: a refused request changes nothing.
  const mapped = (input.BlockDeviceMappings ?? []).map((mapping) => {
    const attachment = attachedVolumes(ctx, instance.instanceId).find(
      (candidate) => candidate.attachment?.device === mapping.DeviceName,
    )?.attachment;
    if (!attachment)
      throw invalidParameterValue(
        `The device '${mapping.DeviceName}' is not attached to ${instance.instanceId}`,
      );
    return { attachment, deleteOnTermination: mapping.Ebs?.DeleteOnTermination };
  });
  for (const { attachment, deleteOnTermination } of mapped) {
    if (deleteOnTermination !== undefined) attachment.deleteOnTermination = deleteOnTermination;
  }
  return {};
};

/** API_ModifyInstancePlacement: host, affinity and tenancy change only while stopped. */
export const modifyInstancePlacement = (
  ctx: Ec2Context,
  input: ModifyInstancePlacementRequest,
): ModifyInstancePlacementResult => {
  const [instance] = lookupInstances(ctx, input.InstanceId === undefined ? undefined : [input.InstanceId]);
  if (!instance) throw missingParameter('InstanceId');
  requireStopped(instance);
  if (input.HostId !== undefined) {
    instance.hostId = availableHostIn(ctx, input.HostId, instance.availabilityZone).hostId;
    instance.tenancy = 'host';
  }
  if (input.Tenancy !== undefined) instance.tenancy = input.Tenancy;
  if (input.Affinity !== undefined) instance.affinity = input.Affinity;
  if (instance.tenancy === 'host' && instance.affinity === undefined) instance.affinity = 'default';
  return { Return: true };
};
