import {
  CreateVolumeCommand,
  type CreateVolumeCommandInput,
  DescribeAvailabilityZonesCommand,
  EC2Client,
  EnableFastSnapshotRestoresCommand,
  RunInstancesCommand,
  type RunInstancesCommandInput,
} from '@aws-sdk/client-ec2';
import { DescribeInstanceInformationCommand, SSMClient } from '@aws-sdk/client-ssm';
import type { CommandDocument } from '../../../functions/shared/ssm-document';
import { VirtualClock } from '../../../local/clock';
import type { SimulatorEvent } from '../../../local/ec2/events';
import { Ec2Simulator } from '../../../local/ec2/simulator';
import { FaultInjector } from '../../../local/faults';
import { InstanceProfiles } from '../../../local/iam/instance-profiles';
import type { Ec2Latencies, LatencyMode } from '../../../local/latency';
import { attachSimulator } from '../../../local/sdk-bridge';
import type { DocumentBehaviour } from '../../../local/ssm/agent';
import { SsmSimulator } from '../../../local/ssm/simulator';

/** Shared setup of the EC2/SSM simulator tests: real SDK clients on a virtual clock. */

export const REGION = 'us-east-1';
export const ACCOUNT = '123456789012';
export const ZONE_A = 'us-east-1a';
export const ZONE_B = 'us-east-1b';

export interface RecordedEvent extends SimulatorEvent {
  /** Virtual milliseconds since the cloud was created. */
  readonly at: number;
}

const clientConfig = {
  region: REGION,
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  endpoint: 'http://127.0.0.1:9',
  // One attempt: the tests assert on the first answer, and SDK back-off would wait in real time.
  maxAttempts: 1,
};

export const createCloud = async (
  options: {
    latency?: LatencyMode;
    /** Figures replacing the mode's (an assumed latency a test sweeps). */
    latencyOverrides?: Partial<Ec2Latencies>;
    documents?: readonly CommandDocument[];
    behaviours?: Readonly<Record<string, DocumentBehaviour>>;
    /**
     * Default Host Management Configuration. On by default here, so an SSM test launches instances
     * whose agents register without a profile; the registration tests turn it off.
     */
    defaultHostManagement?: boolean;
  } = {},
) => {
  const clock = new VirtualClock();
  const start = clock.now();
  const events: RecordedEvent[] = [];
  const emit = (event: SimulatorEvent) => events.push({ ...event, at: clock.now() - start });
  const faults = new FaultInjector();
  const latency = options.latency ?? 'zero';
  const ec2 = new Ec2Simulator({
    clock,
    region: REGION,
    accountId: ACCOUNT,
    emit,
    faults,
    latency,
    ...(options.latencyOverrides ? { latencyOverrides: options.latencyOverrides } : {}),
  });
  const instanceProfiles = new InstanceProfiles(ACCOUNT);
  const ssm = new SsmSimulator({
    clock,
    region: REGION,
    accountId: ACCOUNT,
    ec2,
    emit,
    faults,
    latency,
    documents: options.documents ?? [],
    behaviours: options.behaviours ?? {},
    instanceProfiles,
    defaultHostManagement: options.defaultHostManagement ?? true,
  });
  const ec2Client = new EC2Client(clientConfig);
  attachSimulator(ec2Client, ec2.dispatch);
  const ssmClient = new SSMClient(clientConfig);
  attachSimulator(ssmClient, ssm.dispatch);
  const imageId = ec2.registerImage({ name: 'al2023', rootSizeGiB: 8 });
  // A client's first call resolves its configuration with real (untracked) I/O; inside
  // clock.run that could let virtual time jump. Two calls that take no virtual time warm them up.
  await ec2Client.send(new DescribeAvailabilityZonesCommand({}));
  await ssmClient.send(new DescribeInstanceInformationCommand({}));
  return {
    clock,
    ec2,
    ssm,
    instanceProfiles,
    ec2Client,
    ssmClient,
    faults,
    events,
    imageId,
    /** Virtual milliseconds since the cloud was created. */
    elapsed: () => clock.now() - start,
    run: <T>(task: () => Promise<T>) => clock.run(task),
    /** Lets every scheduled transition happen (bounded, so the 1 h terminated cleanup is not forced). */
    settle: (ms = 10 * 60_000) => clock.advanceBy(ms),
  };
};

export type Cloud = Awaited<ReturnType<typeof createCloud>>;

/**
 * A cloud with image `name` registered besides its default one (an 8 GiB root, like the default,
 * unless `attributes` say otherwise); the cloud and that image's id.
 */
export const createCloudWithImage = async (
  name: string,
  attributes: Partial<Omit<Parameters<Cloud['ec2']['registerImage']>[0], 'name'>> = {},
) => {
  const cloud = await createCloud();
  return { cloud, imageId: cloud.ec2.registerImage({ name, rootSizeGiB: 8, ...attributes }) };
};

/** A RunInstances request for one m7i.large of `imageId`; `input` overrides any field. */
export const runRequest = (imageId: string | undefined, input: Partial<RunInstancesCommandInput> = {}) =>
  new RunInstancesCommand({
    ImageId: imageId,
    InstanceType: 'm7i.large',
    MinCount: 1,
    MaxCount: 1,
    ...input,
  });

/** RunInstances of one m7i.large from the cloud's image (overridable); the reservation. */
export const runInstances = (cloud: Cloud, input: Partial<RunInstancesCommandInput> = {}) =>
  cloud.run(() => cloud.ec2Client.send(runRequest(cloud.imageId, input)));

/** One m7i.large from the cloud's image (overridable); its id. */
export const launch = async (cloud: Cloud, input: Partial<RunInstancesCommandInput> = {}): Promise<string> =>
  (await runInstances(cloud, input)).Instances?.[0]?.InstanceId ?? '';

/** CreateVolume in ZONE_A (overridable); EC2's answer. */
export const createVolume = (cloud: Cloud, input: Partial<CreateVolumeCommandInput> = {}) =>
  cloud.run(() => cloud.ec2Client.send(new CreateVolumeCommand({ AvailabilityZone: ZONE_A, ...input })));

/** The snapshot behind an image's root device. */
export const rootSnapshotOf = (cloud: Cloud, imageId: string): string =>
  cloud.ec2.images().find((image) => image.imageId === imageId)?.blockDevices[0]?.snapshotId ?? '';

/** EnableFastSnapshotRestores for the snapshots in `zones` (ZONE_A unless named); EC2's answer. */
export const enableFastRestore = (cloud: Cloud, snapshotIds: string[], zones: string[] = [ZONE_A]) =>
  cloud.run(() =>
    cloud.ec2Client.send(
      new EnableFastSnapshotRestoresCommand({ SourceSnapshotIds: snapshotIds, AvailabilityZones: zones }),
    ),
  );

export const instanceEvents = (events: readonly RecordedEvent[], instanceId: string) =>
  events
    .filter(
      (event) =>
        event.detailType === 'EC2 Instance State-change Notification' &&
        event.detail['instance-id'] === instanceId,
    )
    .map((event) => ({ at: event.at, state: event.detail.state }));

/** The states an instance's state-change events announced, in order. */
export const stateChanges = (cloud: Cloud, instanceId: string) =>
  instanceEvents(cloud.events, instanceId).map((event) => event.state);
