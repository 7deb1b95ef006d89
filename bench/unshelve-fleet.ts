import {
  type BlockDeviceMapping,
  DescribeInstancesCommand,
  EC2Client,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import { WARMBOOT } from '../functions/catalog';
import { ACCOUNT_BUDGET_ENV } from '../functions/shared/account-budget';
import { OPT_IN_TAG, OPTED_IN } from '../functions/shared/tags';
import { dynamoShelfStore } from '../functions/shelving/adapters/store';
import type { ShelvingSettings } from '../functions/shelving/config';
import { TENANT_TAG } from '../functions/shelving/domain/tags';
import type { ShelfRecord, Step } from '../functions/shelving/domain/types';
import { createShelvingHandler, OFFLOAD_INSTANCES, SHELVE_INSTANCES } from '../functions/shelving/handler';
import { LocalCloud } from '../local/cloud';
import type { Ec2Simulator } from '../local/ec2/simulator';
import { AMAZON_SSM_MANAGED_INSTANCE_CORE } from '../local/iam/instance-profiles';
import type { Ec2Latencies } from '../local/latency';
import { ClockRetryStrategy } from '../local/retry-strategy';
import { attachSimulator } from '../local/sdk-bridge';

/**
 * A shelved fleet on the strict local cloud (local/cloud.ts: EC2 simulator with calibrated
 * latencies and the published token buckets, DynamoDB Local, the local EventBridge, IAM evaluated
 * on every call of the deployed function). The deployed `shelving` function shelves every
 * instance and offloads half of them through operator requests on the request bus, driven only
 * by its own control loop (EC2 state-change events, its 1-minute schedule). The benchmark builds
 * one fresh, identical fleet per policy.
 */

export const REGION = 'us-east-1';
export const INSTANCE_TYPE = 'm7i.large';
export const ROOT_GIB = 8;
export const DATA_GIB = 20;
export const TENANT = 'tenant-bench';
/** m7i.large is 2 vCPUs; a 96-vCPU host holds 48. */
export const HOST_VCPUS = 96;
export const MINUTE = 60_000;

export interface FleetOptions {
  readonly count: number;
  /** Share of instances on Dedicated Hosts (half with affinity host, half default). */
  readonly hostShare: number;
  readonly dataVolumes: number;
  readonly seed: number;
  /** The DynamoDB Local every fleet's cloud uses (each cloud creates its own tables). */
  readonly dynamodbEndpoint: string;
  /** The deployment's shelving settings beyond `offloadAfterSeconds: -1` (the bench offloads by request). */
  readonly settings?: Partial<ShelvingSettings>;
  /** The deployment's `reservedConcurrency` for shelving (absent: none, the stack's default). */
  readonly reservedConcurrency?: number;
  /**
   * Deploy the shelving function so it can be removed once the fleet is shelved: the baselines
   * unshelve a fleet warmboot shelved, with warmboot no longer reacting to anything.
   */
  readonly removable?: boolean;
  /** EC2 latencies replacing the calibrated ones (the replace-root swap sweep). */
  readonly latencyOverrides?: Partial<Ec2Latencies>;
  /**
   * Pools serve unshelve: a running-tier pool of this many members of the fleet's configuration
   * (AMI, type, subnet, instance profile) is defined once the fleet is shelved, and the shelving
   * function may take them (`unshelveFromPools`, with `keepPrivateIp` off as it requires).
   */
  readonly poolMembers?: number;
  /** Which tier those members wait in: running (the default) or stopped (the warm tier). */
  readonly poolTier?: 'running' | 'stopped';
}

/** The pool that serves unshelve in the pool variant, and its members' instance profile. */
export const BENCH_POOL = 'bench-hot';
const BENCH_PROFILE = 'bench-member';

export interface Fleet {
  readonly cloud: LocalCloud;
  /** The EC2 simulator of the cloud (its counters give api_calls and throttled). */
  readonly simulator: Ec2Simulator;
  /**
   * The bench's own EC2 client: an outside principal (the baselines' script). LocalCloud
   * evaluates IAM for the deployed functions' calls and for PutEvents of outside callers
   * (`iam.authorizeCaller`), not for an outside principal's EC2 calls, so these are unevaluated.
   */
  readonly client: EC2Client;
  /** The shelve records, as the deployed function wrote them. */
  readonly records: readonly ShelfRecord[];
  readonly offloaded: readonly string[];
  readonly stopped: readonly string[];
  /** Stops the deployed function from acting on anything further (only for `removable` fleets). */
  removeWarmboot(): void;
  stop(): Promise<void>;
}

/** shelving's share of the account budget in the unshelve benches (`accountBudget.functions.shelving`). */
export const UNSHELVE_SHARE = 0.8;

/** An EC2 client on the cloud's simulator and clock, outside every function's role. */
export const outsideClient = (cloud: LocalCloud): EC2Client => {
  const client = new EC2Client({
    region: cloud.region,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    endpoint: 'http://127.0.0.1:9',
    retryStrategy: new ClockRetryStrategy(cloud.clock),
  });
  attachSimulator(client, cloud.ec2.dispatch);
  return client;
};

const deviceMappings = (dataVolumes: number): BlockDeviceMapping[] =>
  Array.from({ length: dataVolumes }, (_, index) => ({
    DeviceName: `/dev/sd${String.fromCharCode('f'.charCodeAt(0) + index)}`,
    Ebs: { VolumeSize: DATA_GIB, VolumeType: 'gp3', DeleteOnTermination: true },
  }));

export const recordStore = (cloud: LocalCloud) => dynamoShelfStore(cloud.documents, cloud.tables.shelves);

/** Lets virtual time pass a minute at a time until every record is at one of `steps` (or failed). */
export const settleUntil = async (
  cloud: LocalCloud,
  recordIds: readonly string[],
  steps: readonly Step[],
  limitMs: number,
): Promise<ShelfRecord[]> => {
  const deadline = cloud.clock.now() + limitMs;
  for (;;) {
    const records = await cloud.run(() => recordStore(cloud).getMany(recordIds));
    const open = records.filter((record) => !steps.includes(record.step) && record.step !== 'failed');
    if (records.length === recordIds.length && open.length === 0) return records;
    if (cloud.clock.now() >= deadline) {
      throw new Error(
        `${open.length + recordIds.length - records.length} of ${recordIds.length} records did not reach ${steps.join('/')} within ${limitMs / MINUTE} min`,
      );
    }
    await cloud.settleFor(MINUTE);
  }
};

/**
 * Launches the fleet, then shelves every instance and offloads half with operator requests on
 * the request bus (`cloud.putEvent`, authorized by the bus policy and IAM), waits for the deployed
 * function to finish them, and lets the safety snapshots complete and every bucket refill.
 */
export const buildShelvedFleet = async (options: FleetOptions): Promise<Fleet> => {
  let active = true;
  const cloud = await LocalCloud.start({
    dynamodbEndpoint: options.dynamodbEndpoint,
    seed: options.seed,
    latency: 'calibrated',
    ...(options.latencyOverrides ? { ec2LatencyOverrides: options.latencyOverrides } : {}),
    functions: options.poolMembers ? ['shelving', 'pools'] : ['shelving'],
    ...(options.removable
      ? {
          handlers: {
            shelving: (runtime) => {
              const handler = createShelvingHandler(runtime);
              return async (event, context) => (active ? handler(event, context) : undefined);
            },
          },
        }
      : {}),
    settings: {
      // The bench's account has no other EC2 client: shelving's bulk unshelve gets most of each
      // bucket, and what its one-second leases may overrun (docs/account-budget.md) stays free.
      [ACCOUNT_BUDGET_ENV]: JSON.stringify({ functions: { shelving: UNSHELVE_SHARE } }),
      SHELVING_SETTINGS: JSON.stringify({
        offloadAfterSeconds: -1,
        // The instances then have the pool's profile: shelving may relaunch with it.
        ...(options.poolMembers
          ? {
              keepPrivateIp: false,
              unshelveFromPools: [BENCH_POOL],
              instanceProfiles: [{ name: BENCH_PROFILE }],
            }
          : {}),
        ...options.settings,
      }),
      ...(options.poolMembers
        ? { POOL_POLICY: JSON.stringify({ instanceProfiles: [{ name: BENCH_PROFILE }] }) }
        : {}),
    },
    ...(options.reservedConcurrency !== undefined
      ? { reservedConcurrency: { shelving: options.reservedConcurrency } }
      : {}),
  });
  try {
    const simulator = cloud.ec2;
    const availabilityZone = simulator.availabilityZones[0] ?? `${REGION}a`;
    const subnetId = simulator.addSubnet({ availabilityZone });
    const imageId = simulator.registerImage({ name: 'al2023-bench', rootSizeGiB: ROOT_GIB });
    const client = outsideClient(cloud);
    // Pool members boot with an instance profile (their SSM agent must register); the fleet's
    // instances have the same one, or no member would fit them.
    if (options.poolMembers)
      cloud.instanceProfiles.create(BENCH_PROFILE, { managedPolicyArns: [AMAZON_SSM_MANAGED_INSTANCE_CORE] });
    const onHosts = Math.round(options.count * options.hostShare);
    const perHost = HOST_VCPUS / 2;
    const hosts = Array.from({ length: Math.ceil(onHosts / perHost) }, () =>
      simulator.allocateHost({ availabilityZone, instanceType: INSTANCE_TYPE, totalVCpus: HOST_VCPUS }),
    );
    // The SDK reads its shared config files on a client's first call: real I/O the virtual clock
    // cannot see, so that first call happens before the clock drives anything.
    await client.send(new DescribeInstancesCommand({ MaxResults: 5 }));
    const instanceIds = await cloud.run(async () => {
      const launched: string[] = [];
      const launch = async (count: number, placement: Record<string, string>) => {
        for (let start = 0; start < count; start += 100) {
          const size = Math.min(100, count - start);
          const answer = await client.send(
            new RunInstancesCommand({
              ImageId: imageId,
              InstanceType: INSTANCE_TYPE,
              SubnetId: subnetId,
              MinCount: size,
              MaxCount: size,
              Placement: { AvailabilityZone: availabilityZone, ...placement },
              BlockDeviceMappings: deviceMappings(options.dataVolumes),
              ...(options.poolMembers ? { IamInstanceProfile: { Name: BENCH_PROFILE } } : {}),
              TagSpecifications: [
                {
                  ResourceType: 'instance',
                  Tags: [
                    { Key: OPT_IN_TAG.shelving, Value: OPTED_IN },
                    { Key: TENANT_TAG, Value: TENANT },
                    { Key: 'Name', Value: 'bench' },
                  ],
                },
              ],
            }),
          );
          launched.push(...(answer.Instances ?? []).map((instance) => instance.InstanceId ?? ''));
          await cloud.clock.sleep(1000);
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
      return launched.sort();
    });
    await cloud.settleFor(MINUTE);
    cloud.startSchedules();

    await cloud.putEvent({
      source: WARMBOOT,
      detailType: SHELVE_INSTANCES,
      detail: { instanceIds, tenant: TENANT, snapshot: true },
    });
    const store = recordStore(cloud);
    // A large Shelve takes the function more than a minute (it paces its calls): wait for every record.
    const recordsOf = () =>
      cloud.run(async () => {
        const ids: string[] = [];
        for (const instanceId of instanceIds) {
          const recordId = await store.recordIdForInstance(instanceId);
          if (recordId) ids.push(recordId);
        }
        return ids;
      });
    let recordIds: string[] = [];
    for (let waited = 0; recordIds.length < instanceIds.length; waited += 1) {
      if (waited === 30) {
        throw new Error(
          `the Shelve request left ${instanceIds.length - recordIds.length} of ${instanceIds.length} instances without a record after 30 min`,
        );
      }
      await cloud.settleFor(MINUTE);
      recordIds = await recordsOf();
    }
    await settleUntil(cloud, recordIds, ['shelved'], 60 * MINUTE);
    const offloaded = recordIds.filter((_, index) => index % 2 === 0);
    await cloud.putEvent({
      source: WARMBOOT,
      detailType: OFFLOAD_INSTANCES,
      detail: { recordIds: offloaded },
    });
    await settleUntil(cloud, offloaded, ['offloaded'], 60 * MINUTE);
    if (options.poolMembers) {
      await cloud.adminRequest('Define Pool', {
        pool: {
          name: BENCH_POOL,
          image: imageId,
          instanceType: INSTANCE_TYPE,
          subnets: [subnetId],
          instanceProfile: BENCH_PROFILE,
          initialization: { platform: 'linux', packages: [], timeoutMinutes: 30 },
          tier: options.poolTier ?? 'running',
          minSize: options.poolMembers,
          maxSize: options.poolMembers * 2,
        },
      });
    }
    // Safety snapshots complete, pool members are ready and every token bucket refills before the
    // measured phase.
    await cloud.settleFor(30 * MINUTE);
    const records = await settleUntil(cloud, recordIds, ['shelved', 'offloaded'], 0);
    const failed = records.filter((record) => record.step === 'failed');
    if (failed.length > 0) {
      throw new Error(
        `${failed.length} records failed while the fleet was shelved: ${failed[0]?.error?.message}`,
      );
    }
    return {
      cloud,
      simulator,
      client,
      records,
      offloaded,
      stopped: recordIds.filter((_, index) => index % 2 === 1),
      removeWarmboot: () => {
        if (!options.removable) throw new Error('this fleet was built with its shelving function fixed');
        active = false;
      },
      stop: async () => {
        client.destroy();
        await cloud.stop();
      },
    };
  } catch (error) {
    await cloud.stop();
    throw error;
  }
};
