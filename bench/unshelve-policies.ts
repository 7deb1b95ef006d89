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
import { isThrottled } from '../functions/shared/aws-errors';
import { sdkShelvingEc2 } from '../functions/shelving/adapters/ec2';
import { defaultShelvingSettings, type ShelvingSettings } from '../functions/shelving/config';
import { fastLaunchRequest, slowLaunchRequest } from '../functions/shelving/domain/bulk';
import { Pacer } from '../functions/shelving/domain/pacer';
import { REPLACEMENT_FOR_TAG } from '../functions/shelving/domain/tags';
import type { ShelfRecord } from '../functions/shelving/domain/types';
import type { VirtualClock } from '../local/clock';
import { seededRandom } from '../local/ec2/ids';
import { atStep, drive, type Fleet, newEngine } from './unshelve-fleet';

/** Seconds from the unshelve request until each record was running with all its volumes. */
export type ReadyTimes = ReadonlyMap<string, number>;

/**
 * warmboot: the production engine, batched and paced, fast path for offloaded records. With the
 * default settings every replacement keeps its private IP, so it is its own RunInstances call.
 */
export const runWarmboot = async (
  fleet: Fleet,
  settings: ShelvingSettings = defaultShelvingSettings,
): Promise<ReadyTimes> => {
  const { engine } = newEngine(fleet, fleet.store, settings);
  const recordIds = fleet.records.map((record) => record.recordId);
  const t0 = fleet.clock.now();
  await engine.unshelve(recordIds, undefined, 'bench', { advance: false });
  const records = await drive(engine, fleet.clock, recordIds, atStep('unshelved'));
  return readyTimes(records, t0);
};

const readyTimes = (records: readonly ShelfRecord[], t0: number): ReadyTimes =>
  new Map(
    records.map((record) => [
      record.recordId,
      record.unshelve?.readyAt !== undefined ? (record.unshelve.readyAt - t0) / 1000 : Number.NaN,
    ]),
  );

/**
 * naive: what a straightforward script does. Every record gets its own workflow, all started at
 * once; one instance per call (no multi-instance Start/Stop, one RunInstances per replacement);
 * no client-side pacing; waits by polling DescribeInstances / DescribeVolumes every 5 s per
 * instance; a throttled call (after the SDK's own retries) is retried with exponential backoff.
 */
export const runNaive = async (fleet: Fleet): Promise<ReadyTimes> => {
  const { client, clock } = fleet;
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

/**
 * EBS "Initialize Amazon EBS volumes": a volume restored from a snapshot reaches full
 * performance only once every block was downloaded from S3; the fastest rate a user can buy for
 * that (Provisioned Rate for Volume Initialization) is 300 MiB/s. The penalty modelled is the
 * time to initialize the largest restored volume at that best rate: a lower bound of the real one.
 */
export const LAZY_LOAD_MIB_PER_SECOND = 300;
export const lazyLoadPenaltySeconds = (record: ShelfRecord): number =>
  Math.max(...record.volumes.map((volume) => (volume.sizeGiB * 1024) / LAZY_LOAD_MIB_PER_SECOND));

/**
 * snapshot-restore: every record comes back from its safety snapshots (what Nova does for an
 * offloaded instance): one RunInstances per instance (each has its own snapshot mappings),
 * paced by the same client-side token buckets as warmboot; ready = running + lazy-load penalty.
 */
export const runSnapshotRestore = async (fleet: Fleet): Promise<ReadyTimes> => {
  const { client, clock } = fleet;
  const ec2 = sdkShelvingEc2(client, new Pacer(), clock);
  const t0 = clock.now();
  const launched = new Map<string, string>();
  await Promise.all(
    fleet.records.map(async (record) => {
      const [instance] = await ec2.runInstances(slowLaunchRequest(record));
      if (instance) launched.set(instance.instanceId, record.recordId);
    }),
  );
  const running = new Map<string, number>();
  while (running.size < launched.size) {
    const pending = [...launched.keys()].filter((id) => !running.has(id));
    for (const instance of await ec2.describeInstances(pending)) {
      if (instance.state === 'running') running.set(instance.instanceId, clock.now());
    }
    if (running.size < launched.size) await clock.sleep(1000);
  }
  const byRecord = new Map(fleet.records.map((record) => [record.recordId, record]));
  return new Map(
    [...launched].map(([instanceId, recordId]) => {
      const record = byRecord.get(recordId);
      const at = running.get(instanceId) ?? Number.NaN;
      return [recordId, (at - t0) / 1000 + (record ? lazyLoadPenaltySeconds(record) : 0)];
    }),
  );
};

export const runOn = <T>(clock: VirtualClock, task: () => Promise<T>): Promise<T> => clock.run(task);
