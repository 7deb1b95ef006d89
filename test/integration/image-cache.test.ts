import { readFileSync } from 'node:fs';
import { RunInstancesCommand, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { SSM_COMMAND_STATUS } from '../../functions/catalog';
import { DynamoImageCacheStore, type GroupState } from '../../functions/image-cache/adapters/store';
import { LocalCloud } from '../../local/cloud';

const GiB = 1024 ** 3;
const GROUP = 'gpu-inference';
const HOST_GROUPS = [
  {
    name: GROUP,
    cacheBytes: 20 * GiB,
    cacheDirectory: '/var/cache/warmboot',
    handler: 'download',
    warmConcurrency: 2,
    retryBaseMs: 60_000,
    minResidencyMs: 0,
  },
];

const sample = (path: string) =>
  JSON.parse(readFileSync(new URL(`../../events/${path}`, import.meta.url), 'utf8')) as {
    'detail-type': string;
    detail: Record<string, unknown>;
  };
const register = sample('image-cache/register-image.json');
const pin = sample('image-cache/pin-image.json');
const advise = sample('placement/advise-placement.json');
const image = register.detail.image as { id: string; source: string; digest: string; sizeBytes: number };

let cloud: LocalCloud | undefined;
afterEach(async () => {
  await cloud?.stop();
  cloud = undefined;
});

const start = async (): Promise<LocalCloud> => {
  cloud = await LocalCloud.start({
    dynamodbEndpoint: inject('dynamodbEndpoint'),
    functions: ['imageCache', 'placement'],
    settings: { HOST_GROUPS: JSON.stringify(HOST_GROUPS) },
  });
  cloud.ssm.imageSource.add(image.source, { bytes: image.sizeBytes, digest: image.digest });
  return cloud;
};

const put = (local: LocalCloud, event: { 'detail-type': string; detail: Record<string, unknown> }) =>
  local.putEvent({ source: 'warmboot', detailType: event['detail-type'], detail: event.detail });

const launchHosts = async (local: LocalCloud, zone: string, count: number): Promise<string[]> => {
  const output = await local.run(() =>
    local.runtime('imageCache').clients.ec2.send(
      new RunInstancesCommand({
        ImageId: local.ec2.registerImage({ name: `host-${zone}`, rootSizeGiB: 8 }),
        InstanceType: 'g5.xlarge',
        MinCount: count,
        MaxCount: count,
        Placement: { AvailabilityZone: zone },
        TagSpecifications: [
          {
            ResourceType: 'instance',
            Tags: [
              { Key: 'warmboot:host-group', Value: GROUP },
              { Key: 'warmboot:managed', Value: 'true' },
            ],
          },
        ],
      }),
    ),
  );
  return (output.Instances ?? []).map((instance) => instance.InstanceId ?? '');
};

const groupState = (local: LocalCloud): Promise<GroupState> =>
  local.run(() => new DynamoImageCacheStore(local.documents, local.tables.imageCache).loadGroup(GROUP));

const stateOf = (state: GroupState, instanceId: string, imageId = image.id) =>
  state.entries.find((entry) => entry.instanceId === instanceId && entry.imageId === imageId)?.state;

/** Hosts up, joined and inventoried, image registered. */
const fleet = async (local: LocalCloud) => {
  const hosts = [
    ...(await launchHosts(local, 'us-east-1a', 2)),
    ...(await launchHosts(local, 'us-east-1b', 2)),
  ];
  put(local, register);
  await local.settleFor(2 * 60_000);
  return hosts;
};

describe('image cache on the local cloud', () => {
  it('pins an image: warm commands in batches, status events, every host cached', async () => {
    const local = await start();
    const hosts = await fleet(local);
    expect((await groupState(local)).hosts.map((host) => host.instanceId).sort()).toEqual([...hosts].sort());

    put(local, pin);
    await local.settleFor(10 * 60_000);

    const state = await groupState(local);
    expect(state.pins).toEqual([image.id]);
    for (const host of hosts) {
      expect(stateOf(state, host)).toBe('cached');
      expect(local.ssm.agent(host).cache.has(image.source)).toBe(true);
    }
    const fetches = local.ssm
      .invocations()
      .filter((invocation) => invocation.documentName === 'Warmboot-ImageFetch');
    expect(fetches).toHaveLength(hosts.length);
  });

  it('drops a terminated host from the inventory', async () => {
    const local = await start();
    const hosts = await fleet(local);
    put(local, pin);
    await local.settleFor(10 * 60_000);
    const [gone] = hosts;

    await local.run(() =>
      local
        .runtime('imageCache')
        .clients.ec2.send(new TerminateInstancesCommand({ InstanceIds: [gone ?? ''] })),
    );
    await local.settleFor(5 * 60_000);

    const state = await groupState(local);
    expect(state.hosts.map((host) => host.instanceId)).not.toContain(gone);
    expect(state.entries.filter((entry) => entry.instanceId === gone)).toEqual([]);
  });

  it('converges through the scheduled reconcile when a status event is lost', async () => {
    const local = await start();
    const hosts = await fleet(local);
    local.bus.injectFault({
      match: { source: 'aws.ssm', detailType: SSM_COMMAND_STATUS, functionId: 'imageCache' },
      fault: { kind: 'drop' },
    });
    put(local, pin);
    await local.settleFor(5 * 60_000);
    const stuck = await groupState(local);
    expect(hosts.map((host) => stateOf(stuck, host))).toEqual(hosts.map(() => 'fetching'));

    local.bus.clearFaults();
    local.startSchedules();
    await local.settleFor(20 * 60_000);

    const state = await groupState(local);
    expect(hosts.map((host) => stateOf(state, host))).toEqual(hosts.map(() => 'cached'));
  });

  it('during an image-source outage still places pinned images warm and backs off new fetches', async () => {
    const local = await start();
    const hosts = await fleet(local);
    put(local, pin);
    await local.settleFor(10 * 60_000);
    const other = {
      ...image,
      id: 'llm-7b',
      source: `${image.source.split(':')[0]}-llm:7b`,
      sizeBytes: 2 * GiB,
    };
    local.ssm.imageSource.add(other.source, { bytes: other.sizeBytes, digest: other.digest });

    const failures: string[] = [];
    local.bus.onInvocation((record) => {
      if (record.functionId === 'imageCache' && record.outcome !== 'succeeded')
        failures.push(record.error ?? record.outcome);
    });
    local.ssm.imageSource.setReachable(false);
    put(local, { 'detail-type': 'Pin Image', detail: { hostGroup: GROUP, imageId: other.id, image: other } });
    await local.settleFor(30 * 60_000);

    const state = await groupState(local);
    expect(state.source.consecutiveFailures).toBeGreaterThan(0);
    expect(hosts.map((host) => stateOf(state, host))).toEqual(hosts.map(() => 'cached'));
    const attempts = local.ssm
      .invocations()
      .filter(
        (invocation) =>
          invocation.documentName === 'Warmboot-ImageFetch' && invocation.output.includes('llm'),
      );
    // One batch failed, then single-host probes at backoff intervals: not one per host per plan.
    expect(attempts.length).toBeLessThan(hosts.length + 6);
    expect(failures).toEqual([]);

    const advice = (await local.invoke('placement', {
      version: '0',
      id: 'b6f3c2d1-0000-4000-8000-000000000001',
      source: 'warmboot',
      'detail-type': advise['detail-type'],
      account: '123456789012',
      time: new Date(local.clock.now()).toISOString(),
      region: 'us-east-1',
      resources: [],
      detail: advise.detail,
    })) as {
      status: string;
      result: { placed: number; spread: string; placements: { warm: boolean; count: number }[] };
    };
    expect(advice.status).toBe('handled');
    expect(advice.result.placed).toBe(4);
    expect(advice.result.spread).toBe('even');
    expect(advice.result.placements.every((placement) => placement.warm && placement.count === 1)).toBe(true);

    local.ssm.imageSource.setReachable(true);
    local.startSchedules();
    await local.settleFor(60 * 60_000);
    const healed = await groupState(local);
    expect(hosts.map((host) => stateOf(healed, host, other.id))).toEqual(hosts.map(() => 'cached'));
  });
});
