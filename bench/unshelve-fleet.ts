import {
  type BlockDeviceMapping,
  DescribeInstancesCommand,
  EC2Client,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import type { FactPublisher } from '../functions/shared/adapters/facts';
import { ClockRetryStrategy } from '../functions/shared/retry';
import { sdkShelvingEc2 } from '../functions/shelving/adapters/ec2';
import { memoryShelfStore } from '../functions/shelving/adapters/store';
import { defaultShelvingSettings, type ShelvingSettings } from '../functions/shelving/config';
import { Pacer } from '../functions/shelving/domain/pacer';
import { MANAGED_TAG, TENANT_TAG } from '../functions/shelving/domain/tags';
import type { ShelfRecord, Step } from '../functions/shelving/domain/types';
import { ShelvingEngine } from '../functions/shelving/engine';
import { VirtualClock } from '../local/clock';
import { seededRandom } from '../local/ec2/ids';
import { Ec2Simulator } from '../local/ec2/simulator';
import { FaultInjector } from '../local/faults';
import { attachSimulator } from '../local/sdk-bridge';

/**
 * A shelved fleet on the EC2 simulator (calibrated latencies, published token buckets), built
 * through warmboot's own shelve and offload code, and a driver that advances records on the
 * virtual clock. The benchmark builds one fresh, identical fleet per policy.
 */

export const REGION = 'us-east-1';
export const INSTANCE_TYPE = 'm7i.large';
export const ROOT_GIB = 8;
export const DATA_GIB = 20;
export const DATA_DEVICE = '/dev/sdf';
/** m7i.large is 2 vCPUs; a 96-vCPU host holds 48. */
export const HOST_VCPUS = 96;

export interface FleetOptions {
  readonly count: number;
  /** Share of instances on Dedicated Hosts (half with affinity host, half default). */
  readonly hostShare: number;
  readonly dataVolumes: number;
  readonly seed: number;
}

export interface Fleet {
  readonly clock: VirtualClock;
  readonly simulator: Ec2Simulator;
  readonly client: EC2Client;
  /** The shelve records, as warmboot wrote them. */
  readonly store: ReturnType<typeof memoryShelfStore>;
  readonly records: readonly ShelfRecord[];
  readonly offloaded: readonly string[];
  readonly stopped: readonly string[];
  readonly imageId: string;
  readonly subnetId: string;
  readonly availabilityZone: string;
}

export const noFacts: FactPublisher = { publish: async () => {} };

export const sdkClient = (clock: VirtualClock, simulator: Ec2Simulator): EC2Client => {
  const client = new EC2Client({
    region: REGION,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    endpoint: 'http://127.0.0.1:9',
    retryStrategy: new ClockRetryStrategy(clock),
  });
  attachSimulator(client, simulator.dispatch);
  return client;
};

/** A fresh engine (its own pacer, so its buckets start full like EC2's after a quiet period). */
export const newEngine = (
  fleet: Pick<Fleet, 'clock' | 'client'>,
  store = memoryShelfStore(),
  settings: ShelvingSettings = defaultShelvingSettings,
) => ({
  store,
  engine: new ShelvingEngine({
    ec2: sdkShelvingEc2(fleet.client, new Pacer(), fleet.clock),
    store,
    facts: noFacts,
    clock: fleet.clock,
    settings,
  }),
});

/**
 * Advances `recordIds` round after round every `tickMs` until `done` holds for all of them (or
 * `timeoutMs` of virtual time passed). Rounds do not wait for their actions, so calls of
 * different records overlap as they would across concurrent invocations; each round batches the
 * Start/Stop/Terminate/RunInstances work that is due in it.
 */
export const drive = async (
  engine: ShelvingEngine,
  clock: VirtualClock,
  recordIds: readonly string[],
  done: (record: ShelfRecord) => boolean,
  options: { tickMs?: number; timeoutMs?: number } = {},
): Promise<ShelfRecord[]> => {
  const tickMs = options.tickMs ?? 1000;
  const deadline = clock.now() + (options.timeoutMs ?? 6 * 3600_000);
  for (;;) {
    const records = await engine.load(recordIds);
    const open = records.filter((record) => !done(record));
    if (open.length === 0 || clock.now() >= deadline) {
      await engine.settled();
      return engine.load(recordIds);
    }
    const due = open.filter(
      (record) =>
        !engine.isInFlight(record.recordId) && record.nextDueAt !== null && record.step !== 'failed',
    );
    if (due.length === 0 && open.every((record) => record.step === 'failed' || record.nextDueAt === null)) {
      await engine.settled();
      return engine.load(recordIds);
    }
    await engine.round(due, { wait: false });
    await clock.sleep(tickMs);
  }
};

export const atStep =
  (...steps: Step[]) =>
  (record: ShelfRecord): boolean =>
    steps.includes(record.step) || record.step === 'failed';

const deviceMappings = (dataVolumes: number): BlockDeviceMapping[] =>
  Array.from({ length: dataVolumes }, (_, index) => ({
    DeviceName: `/dev/sd${String.fromCharCode('f'.charCodeAt(0) + index)}`,
    Ebs: { VolumeSize: DATA_GIB, VolumeType: 'gp3', DeleteOnTermination: true },
  }));

/** Launches the fleet, shelves every instance with warmboot, offloads half, lets the buckets refill. */
export const buildShelvedFleet = async (options: FleetOptions): Promise<Fleet> => {
  const clock = new VirtualClock();
  const simulator = new Ec2Simulator({
    clock,
    region: REGION,
    accountId: '123456789012',
    emit: () => {},
    faults: new FaultInjector(),
    latency: 'calibrated',
    random: seededRandom(options.seed),
  });
  const availabilityZone = simulator.availabilityZones[0] ?? `${REGION}a`;
  const subnetId = simulator.addSubnet({ availabilityZone });
  const imageId = simulator.registerImage({ name: 'al2023-bench', rootSizeGiB: ROOT_GIB });
  const client = sdkClient(clock, simulator);
  const onHosts = Math.round(options.count * options.hostShare);
  const perHost = HOST_VCPUS / 2;
  const hosts = Array.from({ length: Math.ceil(onHosts / perHost) }, () =>
    simulator.allocateHost({ availabilityZone, instanceType: INSTANCE_TYPE, totalVCpus: HOST_VCPUS }),
  );

  // The SDK reads its shared config files on a client's first call: real I/O the virtual clock
  // cannot see, so that first call happens before the clock drives anything.
  await client.send(new DescribeInstancesCommand({ MaxResults: 5 }));
  return clock.run(async () => {
    const launch = async (count: number, placement: Record<string, string>) => {
      for (let start = 0; start < count; start += 100) {
        const size = Math.min(100, count - start);
        await client.send(
          new RunInstancesCommand({
            ImageId: imageId,
            InstanceType: INSTANCE_TYPE,
            SubnetId: subnetId,
            SecurityGroupIds: ['sg-0bench'],
            MinCount: size,
            MaxCount: size,
            Placement: { AvailabilityZone: availabilityZone, ...placement },
            BlockDeviceMappings: deviceMappings(options.dataVolumes),
            TagSpecifications: [
              {
                ResourceType: 'instance',
                Tags: [
                  { Key: MANAGED_TAG, Value: 'true' },
                  { Key: TENANT_TAG, Value: 'tenant-bench' },
                  { Key: 'Name', Value: 'bench' },
                ],
              },
            ],
          }),
        );
        await clock.sleep(1000);
      }
    };
    let remaining = onHosts;
    for (const [index, hostId] of hosts.entries()) {
      const count = Math.min(perHost, remaining);
      remaining -= count;
      await launch(count, {
        Tenancy: 'host',
        HostId: hostId,
        Affinity: index % 2 === 0 ? 'host' : 'default',
      });
    }
    await launch(options.count - onHosts, {});
    await clock.sleep(60_000);

    const { engine, store } = newEngine({ clock, client });
    const instanceIds = simulator
      .instances()
      .filter((instance) => instance.state === 'running')
      .map((instance) => instance.instanceId)
      .sort();
    const shelved = await engine.shelve(
      instanceIds.map((instanceId) => ({ instanceId, offloadAfterSeconds: -1, snapshot: true })),
    );
    const recordIds = shelved.flatMap((result) => (result.ok ? [result.recordId] : []));
    await drive(engine, clock, recordIds, atStep('shelved'));
    const offloaded = recordIds.filter((_, index) => index % 2 === 0);
    await engine.offload(offloaded);
    await drive(engine, clock, offloaded, atStep('offloaded'));
    // Safety snapshots complete and every token bucket refills before the measured phase.
    await clock.sleep(30 * 60_000);
    const records = await engine.load(recordIds);
    return {
      clock,
      simulator,
      client,
      store,
      records,
      offloaded,
      stopped: recordIds.filter((_, index) => index % 2 === 1),
      imageId,
      subnetId,
      availabilityZone,
    };
  });
};
