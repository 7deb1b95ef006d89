import {
  AttachVolumeCommand,
  DescribeInstancesCommand,
  DescribeVolumesCommand,
  DetachVolumeCommand,
  type Instance,
  RunInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
} from '@aws-sdk/client-ec2';
import { WARMBOOT } from '../functions/catalog';
import { memoryBudgetStore } from '../functions/shared/adapters/budget-store';
import { isThrottled } from '../functions/shared/aws-errors';
import { AccountBudget, paceEc2Calls } from '../functions/shared/ec2-budget';
import { sdkShelvingEc2 } from '../functions/shelving/adapters/ec2';
import { defaultShelvingSettings } from '../functions/shelving/config';
import { fastLaunchRequest, slowLaunchRequest } from '../functions/shelving/domain/bulk';
import { REPLACEMENT_FOR_TAG } from '../functions/shelving/domain/tags';
import type { ShelfRecord } from '../functions/shelving/domain/types';
import { UNSHELVE_INSTANCES } from '../functions/shelving/handler';
import { seededRandom } from '../local/ec2/ids';
import { LAZY_LOAD_MIB_PER_SECOND, SLOWEST_PROVISIONED_MIB_PER_SECOND } from './unshelve-bounds';
import { type Fleet, MINUTE, outsideClient, recordStore, UNSHELVE_SHARE } from './unshelve-fleet';

const INSTANCE_UNSHELVED = 'Instance Unshelved';

/** Seconds from the unshelve request until each record was running with all its volumes. */
export type ReadyTimes = ReadonlyMap<string, number>;

/** Virtual time the deployed function may take before the records still open count as failed. */
const WARMBOOT_LIMIT_MS = 6 * 3600_000;

/**
 * warmboot: the deployed shelving function, asked by one `Unshelve Instances` request on the
 * request bus. Nothing else drives it: EC2 state-change events, its 1-minute schedule, the
 * reserved concurrency and timeout the local bus enforces. A record is ready when its
 * `Instance Unshelved` fact reaches the facts bus. Returns once every record is ready or failed.
 */
export const runWarmboot = async (fleet: Fleet): Promise<ReadyTimes> => {
  const { cloud } = fleet;
  const recordIds = fleet.records.map((record) => record.recordId);
  const ready = new Map<string, number>();
  const t0 = cloud.clock.now();
  const factsBus = cloud.bus.busName('facts');
  const unsubscribe = cloud.bus.onEvent((event, bus) => {
    if (bus !== factsBus || event['detail-type'] !== INSTANCE_UNSHELVED) return;
    const { recordId } = event.detail as { recordId?: unknown };
    if (typeof recordId === 'string' && !ready.has(recordId)) {
      ready.set(recordId, (cloud.clock.now() - t0) / 1000);
    }
  });
  try {
    await cloud.putEvent({ source: WARMBOOT, detailType: UNSHELVE_INSTANCES, detail: { recordIds } });
    for (;;) {
      await cloud.settleFor(MINUTE);
      if (ready.size === recordIds.length) break;
      const open = (await cloud.run(() => recordStore(cloud).getMany(recordIds))).filter(
        (record) => !ready.has(record.recordId),
      );
      if (open.every((record) => record.step === 'failed') || cloud.clock.now() - t0 >= WARMBOOT_LIMIT_MS)
        break;
    }
  } finally {
    unsubscribe();
  }
  return new Map(recordIds.map((recordId) => [recordId, ready.get(recordId) ?? Number.NaN]));
};

/**
 * naive: what a straightforward script does. Every record gets its own workflow, all started at
 * once; one instance per call (no multi-instance Start/Stop, one RunInstances per replacement);
 * no client-side pacing; waits by polling DescribeInstances / DescribeVolumes every 5 s per
 * instance; a throttled call (after the SDK's own retries) is retried with exponential backoff.
 */
export const runNaive = async (fleet: Fleet): Promise<ReadyTimes> => {
  const { client } = fleet;
  const { clock } = fleet.cloud;
  const random = seededRandom(7);
  const t0 = clock.now();
  const ready = new Map<string, number>();
  const retry = async <T>(call: () => Promise<T>): Promise<T> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await call();
      } catch (error) {
        if (!isThrottled(error)) throw error;
        await clock.sleep(Math.floor(random() * Math.min(20_000, 1000 * 2 ** attempt)));
      }
    }
  };
  const instanceOf = async (instanceId: string): Promise<Instance | undefined> =>
    (await retry(() => client.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }))))
      .Reservations?.[0]?.Instances?.[0];
  const waitFor = async (check: () => Promise<boolean>): Promise<void> => {
    while (!(await check())) await clock.sleep(5000);
  };
  const waitState = (instanceId: string, state: string) =>
    waitFor(async () => (await instanceOf(instanceId))?.State?.Name === state);
  const volumeState = async (volumeId: string): Promise<string | undefined> => {
    const volume = (await retry(() => client.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] }))))
      .Volumes?.[0];
    return volume?.Attachments?.[0]?.State ?? volume?.State;
  };

  const unshelveOne = async (record: ShelfRecord): Promise<void> => {
    if (record.step === 'shelved') {
      await retry(() => client.send(new StartInstancesCommand({ InstanceIds: [record.instanceId] })));
      await waitState(record.instanceId, 'running');
      ready.set(record.recordId, (clock.now() - t0) / 1000);
      return;
    }
    const request = fastLaunchRequest(record, {
      batchId: `naive-${record.recordId}`,
      size: 1,
      ...(record.config.hostId ? { hostId: record.config.hostId } : {}),
      ...(record.config.affinity ? { affinity: record.config.affinity } : {}),
    });
    const launched = await retry(() =>
      client.send(
        new RunInstancesCommand({
          ImageId: request.imageId,
          InstanceType: request.instanceType as Instance['InstanceType'],
          SubnetId: request.subnetId,
          SecurityGroupIds: [...request.securityGroupIds],
          MinCount: 1,
          MaxCount: 1,
          Placement: {
            AvailabilityZone: request.placement.availabilityZone,
            Tenancy: request.placement.tenancy,
            ...(request.placement.hostId ? { HostId: request.placement.hostId } : {}),
            ...(request.placement.affinity ? { Affinity: request.placement.affinity } : {}),
          },
          BlockDeviceMappings: request.devices.map((device) =>
            device.noDevice
              ? { DeviceName: device.deviceName, NoDevice: '' }
              : { DeviceName: device.deviceName },
          ),
          TagSpecifications: [
            {
              ResourceType: 'instance',
              Tags: Object.entries({ ...record.tags, [REPLACEMENT_FOR_TAG]: record.recordId }).map(
                ([Key, Value]) => ({
                  Key,
                  Value,
                }),
              ),
            },
          ],
        }),
      ),
    );
    const instanceId = launched.Instances?.[0]?.InstanceId;
    if (!instanceId) throw new Error(`naive: no instance launched for ${record.recordId}`);
    await waitState(instanceId, 'running');
    await retry(() => client.send(new StopInstancesCommand({ InstanceIds: [instanceId], Force: true })));
    await waitState(instanceId, 'stopped');
    const fresh = (await instanceOf(instanceId))?.BlockDeviceMappings?.find(
      (mapping) => mapping.DeviceName === record.config.rootDeviceName,
    )?.Ebs?.VolumeId;
    if (fresh) {
      await retry(() => client.send(new DetachVolumeCommand({ VolumeId: fresh, InstanceId: instanceId })));
      await waitFor(async () => (await volumeState(fresh)) === 'available');
    }
    for (const volume of [...record.volumes].sort((a, b) => Number(b.root) - Number(a.root))) {
      await retry(() =>
        client.send(
          new AttachVolumeCommand({
            VolumeId: volume.volumeId,
            InstanceId: instanceId,
            Device: volume.deviceName,
          }),
        ),
      );
    }
    for (const volume of record.volumes)
      await waitFor(async () => (await volumeState(volume.volumeId)) === 'attached');
    await retry(() => client.send(new StartInstancesCommand({ InstanceIds: [instanceId] })));
    await waitState(instanceId, 'running');
    ready.set(record.recordId, (clock.now() - t0) / 1000);
  };

  await Promise.all(
    fleet.records.map((record) =>
      unshelveOne(record).catch(() => {
        ready.set(record.recordId, Number.NaN);
      }),
    ),
  );
  return ready;
};

export const lazyLoadPenaltySeconds = (
  record: ShelfRecord,
  mibPerSecond = LAZY_LOAD_MIB_PER_SECOND,
): number => Math.max(...record.volumes.map((volume) => (volume.sizeGiB * 1024) / mibPerSecond));

/**
 * What snapshot-restore measures per record: running with its volumes, and also initialized at
 * the fastest and at the slowest provisioned initialization rate.
 */
export interface RestoreTimes {
  readonly running: ReadyTimes;
  readonly hydrated: ReadyTimes;
  readonly hydratedSlowest: ReadyTimes;
}

/**
 * snapshot-restore: records come back from their safety snapshots (what Nova does for an
 * offloaded instance): one RunInstances per instance (each has its own snapshot mappings), paced
 * by an account budget of the share warmboot's unshelve gets. `scope: 'all'` restores every record;
 * `'offloaded'` restores only the offloaded ones and starts the stopped ones (their volumes are
 * still attached) with multi-instance StartInstances calls. A restored instance is hydrated once
 * its largest volume is initialized; a started one needs no initialization.
 */
export const runSnapshotRestore = async (fleet: Fleet, scope: 'all' | 'offloaded'): Promise<RestoreTimes> => {
  const { clock } = fleet.cloud;
  const client = outsideClient(fleet.cloud);
  paceEc2Calls(
    client,
    new AccountBudget({
      store: memoryBudgetStore(),
      clock,
      random: seededRandom(1),
      share: { share: UNSHELVE_SHARE, pool: 'snapshot-restore' },
    }),
  );
  const ec2 = sdkShelvingEc2(client);
  const t0 = clock.now();
  const offloaded = new Set(fleet.offloaded);
  const restored = fleet.records.filter((record) => scope === 'all' || offloaded.has(record.recordId));
  const started = fleet.records.filter((record) => !restored.includes(record));
  /** Instance id → the record it brings back, and whether it came from snapshots. */
  const watched = new Map<string, { record: ShelfRecord; fromSnapshots: boolean }>();
  for (const record of started) watched.set(record.instanceId, { record, fromSnapshots: false });
  const maxBatch = defaultShelvingSettings.maxBatch;
  await Promise.all([
    ...restored.map(async (record) => {
      const [instance] = await ec2.runInstances(slowLaunchRequest(record));
      if (instance) watched.set(instance.instanceId, { record, fromSnapshots: true });
    }),
    ...Array.from({ length: Math.ceil(started.length / maxBatch) }, (_, index) =>
      ec2.startInstances(
        started.slice(index * maxBatch, (index + 1) * maxBatch).map((record) => record.instanceId),
      ),
    ),
  ]);
  const running = new Map<string, number>();
  while (running.size < watched.size) {
    const pending = [...watched.keys()].filter((id) => !running.has(id));
    for (const instance of await ec2.describeInstances(pending)) {
      if (instance.state === 'running') running.set(instance.instanceId, clock.now());
    }
    if (running.size < watched.size) await clock.sleep(1000);
  }
  const seconds = (instanceId: string) => ((running.get(instanceId) ?? Number.NaN) - t0) / 1000;
  const all = fleet.records.map((record) => record.recordId);
  const byRecord = new Map(
    [...watched].map(([instanceId, entry]) => [entry.record.recordId, { instanceId, ...entry }]),
  );
  const timesOf = (mibPerSecond: number | undefined): ReadyTimes =>
    new Map(
      all.map((recordId) => {
        const entry = byRecord.get(recordId);
        if (!entry) return [recordId, Number.NaN];
        const penalty =
          mibPerSecond !== undefined && entry.fromSnapshots
            ? lazyLoadPenaltySeconds(entry.record, mibPerSecond)
            : 0;
        return [recordId, seconds(entry.instanceId) + penalty];
      }),
    );
  return {
    running: timesOf(undefined),
    hydrated: timesOf(LAZY_LOAD_MIB_PER_SECOND),
    hydratedSlowest: timesOf(SLOWEST_PROVISIONED_MIB_PER_SECOND),
  };
};
