import { RunInstancesCommand } from '@aws-sdk/client-ec2';
import { WARMBOOT } from '../../functions/catalog';
import { ACCOUNT_BUDGET_ENV } from '../../functions/shared/account-budget';
import { dynamoShelfStore } from '../../functions/shelving/adapters/store';
import type { ShelfRecord } from '../../functions/shelving/domain/types';
import { OFFLOAD_INSTANCES, SHELVE_INSTANCES, UNSHELVE_INSTANCES } from '../../functions/shelving/handler';
import type { LocalCloud } from '../cloud';

/**
 * The scenario's account budget (ACCOUNT_BUDGET): its account has no other EC2 client, and a bulk
 * unshelve wants more than the default 10 % of each bucket (docs/account-budget.md), so shelving
 * gets a share of its own, 0.8 as in the unshelve bench. A cloud that runs the scenario sets it.
 */
export const SHELVING_SCENARIO_BUDGET: Readonly<Record<string, string>> = {
  [ACCOUNT_BUDGET_ENV]: JSON.stringify({ functions: { shelving: 0.8 } }),
};

export interface ShelvingScenarioOptions {
  /** Instances to shelve (default 50). */
  readonly count?: number;
  /** How many of them run on one Dedicated Host (default 10). */
  readonly onHost?: number;
  readonly tenant?: string;
}

export interface ShelvingScenarioSummary {
  readonly shelved: number;
  readonly offloaded: number;
  readonly unshelved: number;
  readonly failed: readonly { recordId: string; step: string; error?: string }[];
  /** Seconds from the unshelve request to ready, per path taken. */
  readonly timeToReadySeconds: Readonly<Record<string, { count: number; max: number; mean: number }>>;
  /** Replacements of host-placed records that came back on the recorded host. */
  readonly sameHost: number;
  readonly retainedVolumesLost: number;
}

const MINUTE = 60_000;

/**
 * The sandbox story of issue 5: shelve `count` opted-in instances (some on a Dedicated Host),
 * offload them all, then unshelve the whole tenant, through the deployed shelving function
 * (operator events in, EC2 state-change events and the schedule driving the saga).
 * The cloud must deploy the `shelving` function, with SHELVING_SCENARIO_BUDGET among its settings.
 */
export async function runShelvingScenario(
  cloud: LocalCloud,
  options: ShelvingScenarioOptions = {},
): Promise<ShelvingScenarioSummary> {
  const count = options.count ?? 50;
  const onHost = Math.min(options.onHost ?? 10, count);
  const tenant = options.tenant ?? 'tenant-sandbox';
  const ec2 = cloud.runtime('shelving').clients.ec2;
  const availabilityZone = cloud.ec2.availabilityZones[0] ?? `${cloud.region}a`;
  const imageId = cloud.ec2.registerImage({ name: `shelving-sandbox-${cloud.clock.now()}`, rootSizeGiB: 8 });
  const hostId = cloud.ec2.allocateHost({ availabilityZone, instanceType: 'm7i.large' });
  const launch = (size: number, placement: Record<string, string>) =>
    cloud.run(() =>
      ec2.send(
        new RunInstancesCommand({
          ImageId: imageId,
          InstanceType: 'm7i.large',
          MinCount: size,
          MaxCount: size,
          Placement: { AvailabilityZone: availabilityZone, ...placement },
          BlockDeviceMappings: [
            { DeviceName: '/dev/sdf', Ebs: { VolumeSize: 20, DeleteOnTermination: true } },
          ],
          TagSpecifications: [
            {
              ResourceType: 'instance',
              Tags: [
                { Key: 'warmboot:shelving', Value: 'true' },
                { Key: 'warmboot:tenant', Value: tenant },
                { Key: 'Name', Value: 'sandbox' },
              ],
            },
          ],
        }),
      ),
    );
  const ids = [
    ...((await launch(onHost, { Tenancy: 'host', HostId: hostId, Affinity: 'host' })).Instances ?? []),
    ...((count > onHost ? await launch(count - onHost, {}) : { Instances: [] }).Instances ?? []),
  ].map((instance) => instance.InstanceId ?? '');
  await cloud.settleFor(MINUTE);
  cloud.startSchedules();

  let sequence = 0;
  const operator = (detailType: string, detail: Record<string, unknown>) =>
    cloud.invoke('shelving', {
      version: '0',
      id: `sandbox-${++sequence}`,
      'detail-type': detailType,
      source: WARMBOOT,
      account: cloud.accountId,
      time: new Date(cloud.clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      region: cloud.region,
      resources: [],
      detail,
    }) as Promise<{ result?: { results?: { recordId?: string }[] } }>;

  const shelved = await operator(SHELVE_INSTANCES, { instanceIds: ids, tenant, offloadAfterSeconds: -1 });
  const recordIds = (shelved.result?.results ?? []).flatMap((result) =>
    result.recordId ? [result.recordId] : [],
  );
  await cloud.settleFor(5 * MINUTE);
  const store = dynamoShelfStore(cloud.documents, cloud.tables.shelves);
  const load = (): Promise<ShelfRecord[]> => cloud.run(() => store.getMany(recordIds));
  const afterShelve = await load();

  await operator(OFFLOAD_INSTANCES, { recordIds });
  await cloud.settleFor(5 * MINUTE);
  const afterOffload = await load();

  await operator(UNSHELVE_INSTANCES, { tenant });
  await cloud.settleFor(10 * MINUTE);
  const done = await load();

  const byPath: Record<string, number[]> = {};
  for (const record of done) {
    const { path, readyAt, requestedAt } = record.unshelve ?? {};
    if (record.step !== 'unshelved' || !path || readyAt === undefined || requestedAt === undefined) continue;
    const times = byPath[path] ?? [];
    times.push((readyAt - requestedAt) / 1000);
    byPath[path] = times;
  }
  const existing = new Set(cloud.ec2.volumes().map((volume) => volume.volumeId));
  const replacementHost = (record: ShelfRecord) =>
    cloud.ec2.instance(record.unshelve?.replacementInstanceId ?? '')?.hostId;
  return {
    shelved: afterShelve.filter((record) => record.step === 'shelved').length,
    offloaded: afterOffload.filter((record) => record.step === 'offloaded').length,
    unshelved: done.filter((record) => record.step === 'unshelved').length,
    failed: done
      .filter((record) => record.step !== 'unshelved')
      .map((record) => ({
        recordId: record.recordId,
        step: record.step,
        ...(record.error ? { error: record.error.message } : {}),
      })),
    timeToReadySeconds: Object.fromEntries(
      Object.entries(byPath).map(([path, times]) => [
        path,
        {
          count: times.length,
          max: Math.max(...times),
          mean: times.reduce((a, b) => a + b, 0) / times.length,
        },
      ]),
    ),
    sameHost: done.filter(
      (record) => record.config.hostId && replacementHost(record) === record.config.hostId,
    ).length,
    retainedVolumesLost: afterShelve
      .flatMap((record) => record.volumes.map((volume) => volume.volumeId))
      .filter((volumeId) => !existing.has(volumeId)).length,
  };
}
