import { CreateTagsCommand, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { SSM_COMMAND_STATUS } from '../../functions/catalog';
import type { GroupState } from '../../functions/image-cache/adapters/store';
import type { LocalCloud } from '../../local/cloud';
import { ensureSsmManagedProfile } from '../../local/iam/instance-profiles';
import { launchGroupHosts, outsideEc2Client } from '../support/instances';
import { putRequest as put } from '../support/local-cloud';
import {
  advise,
  advisePlacement,
  cacheCloudPerTest,
  GiB,
  GROUP,
  groupState,
  image,
  pin,
} from './cache-cloud';

/** The download handler, two warms at once, retried after a minute at first. */
const DOWNLOAD_GROUP = { handler: 'download', warmConcurrency: 2, retryBaseMs: 60_000 };

const startCacheCloud = cacheCloudPerTest();

/** Register Image is an administrator's direct invoke, never an event on the request bus. */
const registerImage = (local: LocalCloud, spec: Record<string, unknown>) =>
  local.adminRequest('Register Image', { image: spec });

const launchHosts = (local: LocalCloud, zone: string, count: number): Promise<string[]> =>
  launchGroupHosts(local, {
    group: GROUP,
    imageId: local.ec2.registerImage({ name: `host-${zone}`, rootSizeGiB: 8 }),
    availabilityZone: zone,
    count,
    instanceProfile: ensureSsmManagedProfile(local.instanceProfiles),
  });

const stateOf = (state: GroupState, instanceId: string, imageId = image.id) =>
  state.entries.find((entry) => entry.instanceId === instanceId && entry.imageId === imageId)?.state;

/** Hosts up, joined and inventoried, image registered. */
const fleet = async (local: LocalCloud) => {
  const hosts = [
    ...(await launchHosts(local, 'us-east-1a', 2)),
    ...(await launchHosts(local, 'us-east-1b', 2)),
  ];
  await registerImage(local, image);
  await local.settleFor(2 * 60_000);
  return hosts;
};

describe('image cache on the local cloud', () => {
  it('pins an image: warm commands in batches, status events, every host cached', async () => {
    const local = await start();
    const hosts = await fleet(local);
    expect((await groupState(local)).hosts.map((host) => host.instanceId).sort()).toEqual([...hosts].sort());

    await put(local, pin);
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
    await put(local, pin);
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
    await put(local, pin);
    await local.settleFor(5 * 60_000);
    const stuck = await groupState(local);
    expect(hosts.map((host) => stateOf(stuck, host))).toEqual(hosts.map(() => 'fetching'));

    local.bus.clearFaults();
    local.startSchedules();
    await local.settleFor(20 * 60_000);

    const state = await groupState(local);
    expect(hosts.map((host) => stateOf(state, host))).toEqual(hosts.map(() => 'cached'));
  });

  it('a host launched without an SSM-enabled instance profile stays joining and is named agent-never-registered', async () => {
    const local = await start();
    const [host = ''] = await launchGroupHosts(local, {
      group: GROUP,
      imageId: local.ec2.registerImage({ name: 'host-no-profile', rootSizeGiB: 8 }),
      count: 1,
    });
    local.startSchedules();

    await local.settleFor(40 * 60_000);

    expect((await groupState(local)).hosts).toMatchObject([
      { instanceId: host, status: 'joining', joinProblem: 'agent-never-registered' },
    ]);
    expect(local.ssm.invocations()).toEqual([]);
    expect(local.bus.stats('imageCache')).toMatchObject({ timeouts: 0 });
  });

  it('re-inventories hosts on its interval: an image removed behind its back is fetched again', async () => {
    const local = await start({ inventoryIntervalMs: 10 * 60_000 });
    const hosts = await fleet(local);
    await put(local, pin);
    await local.settleFor(10 * 60_000);
    const [cleaned] = hosts;
    expect(stateOf(await groupState(local), cleaned ?? '')).toBe('cached');

    // Someone frees disk space on the host; no event tells warmboot.
    local.ssm.agent(cleaned ?? '').cache.delete(image.source);
    local.startSchedules();
    await local.settleFor(30 * 60_000);

    expect(local.ssm.agent(cleaned ?? '').cache.has(image.source)).toBe(true);
    expect(stateOf(await groupState(local), cleaned ?? '')).toBe('cached');
    const inventories = local.ssm
      .invocations()
      .filter((invocation) => invocation.documentName === 'Warmboot-ImageInventory');
    // The join's inventory plus one per 5–10 minutes (the host's share of the interval), not one
    // per 5-minute reconcile per host.
    for (const host of hosts) {
      const count = inventories.filter((invocation) => invocation.instanceId === host).length;
      expect(count).toBeGreaterThanOrEqual(2);
      expect(count).toBeLessThanOrEqual(1 + 30 / 5);
    }
    expect(
      local.ssm.invocations().filter((invocation) => invocation.documentName === 'Warmboot-ImageFetch'),
    ).toHaveLength(hosts.length + 1);
  });

  it('during an image-source outage still places pinned images warm and backs off new fetches', async () => {
    const local = await start();
    const hosts = await fleet(local);
    await put(local, pin);
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
    await registerAndPin(local, other);
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

    const advice = await advisePlacement(local, advise.detail);
    expect(advice.placed).toBe(4);
    expect(advice.spread).toBe('even');
    expect(advice.placements.every((placement) => placement.warm && placement.count === 1)).toBe(true);

    local.ssm.imageSource.setReachable(true);
    local.startSchedules();
    await local.settleFor(60 * 60_000);
    const healed = await groupState(local);
    expect(hosts.map((host) => stateOf(healed, host, other.id))).toEqual(hosts.map(() => 'cached'));
  });
});

/** A cloud with one group configured as given (handler, budget) plus the functions named. */
const startWith = async (
  group: Record<string, unknown>,
  functions: ('imageCache' | 'placement' | 'popularity')[] = ['imageCache'],
  settings: Record<string, string> = {},
): Promise<LocalCloud> => startCacheCloud({ ...DOWNLOAD_GROUP, ...group }, functions, settings);

/** The cache and placement functions, the group as configured (plus `group`). */
const start = (group: Record<string, unknown> = {}): Promise<LocalCloud> =>
  startWith(group, ['imageCache', 'placement']);

/** An image whose content lives in an EBS snapshot of this region (the root snapshot of an AMI). */
const snapshotImage = async (local: LocalCloud, id: string, fastRestoreAz?: string) => {
  const ami = local.ec2.registerImage({ name: `${id}-content`, rootSizeGiB: 8 });
  const snapshotId =
    local.ec2.images().find((item) => item.imageId === ami)?.blockDevices[0]?.snapshotId ?? '';
  // The operator marks the snapshot as this image's: volume-link refuses any other (H2).
  const operator = outsideEc2Client('operator', local);
  await local.run(() =>
    operator.send(
      new CreateTagsCommand({ Resources: [snapshotId], Tags: [{ Key: 'warmboot:image', Value: id }] }),
    ),
  );
  if (fastRestoreAz) {
    const { EnableFastSnapshotRestoresCommand } = await import('@aws-sdk/client-ec2');
    await local.run(() =>
      local.runtime('imageCache').clients.ec2.send(
        new EnableFastSnapshotRestoresCommand({
          SourceSnapshotIds: [snapshotId],
          AvailabilityZones: [fastRestoreAz],
        }),
      ),
    );
    await local.settleFor(60 * 60_000);
  }
  return {
    ...image,
    id,
    snapshot: { snapshotId, region: 'us-east-1', fastRestoreAzs: fastRestoreAz ? [fastRestoreAz] : [] },
  };
};

/** An administrator registers the image; an operator then pins it by id. */
const registerAndPin = async (local: LocalCloud, spec: { id: string } & Record<string, unknown>) => {
  await registerImage(local, spec);
  await put(local, { 'detail-type': 'Pin Image', detail: { hostGroup: GROUP, imageId: spec.id } });
};

describe('image handlers and popularity on the local cloud', () => {
  it('volume-link: a volume from the snapshot in the host AZ, fast-restored where FSR is on, attached and mounted', async () => {
    const local = await startWith({ handler: 'volume-link' });
    const linked = await snapshotImage(local, 'sdxl-linked', 'us-east-1a');
    const [inFsrAz] = await launchHosts(local, 'us-east-1a', 1);
    const [elsewhere] = await launchHosts(local, 'us-east-1b', 1);
    await local.settleFor(2 * 60_000);

    await registerAndPin(local, linked);
    await local.settleFor(15 * 60_000);

    const state = await groupState(local);
    for (const [host, zone, fastRestored] of [
      [inFsrAz, 'us-east-1a', true],
      [elsewhere, 'us-east-1b', false],
    ] as const) {
      const entry = state.entries.find((item) => item.instanceId === host && item.imageId === linked.id);
      expect(entry).toMatchObject({ state: 'cached', via: 'volume-link' });
      const volume = local.ec2.volumes().find((item) => item.volumeId === entry?.volumeId);
      expect(volume).toMatchObject({
        availabilityZone: zone,
        snapshotId: linked.snapshot.snapshotId,
        fastRestored,
        state: 'in-use',
      });
      expect(volume?.attachment?.instanceId).toBe(host);
      expect([...local.ssm.agent(host ?? '').mounts.values()]).toContain(entry?.volumeId);
    }
    expect(local.ssm.invocations().filter((item) => item.documentName === 'Warmboot-ImageFetch')).toEqual([]);
  });

  it('volume-link: a volume EC2 deletes at creation for a KMS key warmboot may not use fails the host by name', async () => {
    const keyId = '1234abcd-12ab-34cd-56ef-1234567890ab';
    const keyArn = `arn:aws:kms:us-east-1:123456789012:key/${keyId}`;
    const local = await startWith({ handler: 'volume-link' });
    local.kms.createKey({ keyId });
    const linked = await snapshotImage(local, 'sdxl-kms');
    const [host] = await launchHosts(local, 'us-east-1a', 1);
    await local.settleFor(2 * 60_000);
    // New volumes are encrypted with the key by default; the deployment does not name it.
    local.ec2.setEbsEncryptionByDefault(true, keyArn);

    await registerAndPin(local, linked);
    await local.settleFor(3 * 60_000);

    const entry = (await groupState(local)).entries.find(
      (item) => item.instanceId === host && item.imageId === linked.id,
    );
    expect(entry?.state).toBe('failed');
    expect(entry?.note).toMatch(/^EncryptionKeyUnusable: volume vol-\w+ was deleted while it was created/);
    expect(entry?.note).toContain(keyArn);
    expect(entry?.note).toContain('ebsKmsKeyArns');
    expect(local.ec2.volumes().filter((volume) => volume.snapshotId === linked.snapshot.snapshotId)).toEqual(
      [],
    );
  });

  it('auto: links where it can and downloads where the host has no free attachment, recording why', async () => {
    const local = await startWith({ handler: 'auto' });
    const linked = await snapshotImage(local, 'sdxl-auto');
    const [full, free] = await launchHosts(local, 'us-east-1a', 2);
    // Fill every device name volume-link may use on one host (/dev/sdf … /dev/sdp).
    const { CreateVolumeCommand, AttachVolumeCommand } = await import('@aws-sdk/client-ec2');
    const ec2 = local.runtime('imageCache').clients.ec2;
    for (const letter of 'fghijklmnop') {
      const volume = await local.run(() =>
        ec2.send(new CreateVolumeCommand({ AvailabilityZone: 'us-east-1a', Size: 1 })),
      );
      await local.settleFor(30_000);
      await local.run(() =>
        ec2.send(
          new AttachVolumeCommand({
            VolumeId: volume.VolumeId,
            InstanceId: full,
            Device: `/dev/sd${letter}`,
          }),
        ),
      );
    }
    local.ssm.imageSource.add(linked.source, { bytes: linked.sizeBytes, digest: linked.digest });
    await local.settleFor(2 * 60_000);

    await registerAndPin(local, linked);
    await local.settleFor(15 * 60_000);

    const state = await groupState(local);
    const entryOf = (host?: string) =>
      state.entries.find((item) => item.instanceId === host && item.imageId === linked.id);
    expect(entryOf(free)).toMatchObject({ state: 'cached', via: 'volume-link' });
    expect(entryOf(full)).toMatchObject({ state: 'cached', via: 'download' });
    expect(entryOf(full)?.note).toMatch(/^download: attach-limit: /);
    expect(local.ssm.agent(full ?? '').cache.has(linked.source)).toBe(true);
  });

  it('a Popularity Changed nudge from the popularity function makes the planner warm the top images', async () => {
    const local = await startWith({}, ['popularity', 'imageCache'], {
      POPULARITY_SETTINGS: JSON.stringify({ scoreThreshold: 5, topK: 5 }),
    });
    const hosts = [
      ...(await launchHosts(local, 'us-east-1a', 1)),
      ...(await launchHosts(local, 'us-east-1b', 1)),
    ];
    const rare = { ...image, id: 'rarely-used', source: `${image.source.split(':')[0]}-rare:1` };
    local.ssm.imageSource.add(rare.source, { bytes: rare.sizeBytes, digest: rare.digest });
    await registerImage(local, image);
    await registerImage(local, rare);
    await local.settleFor(2 * 60_000);
    // The local cloud runs every function in one process, where Powertools' idempotency keys carry
    // no function name: imageCache's copy of a `running` event collides with popularity's. One
    // reconcile (what the schedule does) joins the hosts; nothing is popular yet, so it warms nothing.
    await local.deliverByRule('imageCache', {
      version: '0',
      id: 'c0ffee00-0000-4000-8000-000000000001',
      source: 'aws.events',
      'detail-type': 'Scheduled Event',
      account: '123456789012',
      time: new Date(local.clock.now()).toISOString(),
      region: 'us-east-1',
      resources: [],
      detail: {},
    });
    await local.settleFor(2 * 60_000);
    expect((await groupState(local)).hosts.every((host) => host.inventoriedAt !== undefined)).toBe(true);
    expect((await groupState(local)).entries).toEqual([]);
    const nudges: unknown[] = [];
    local.bus.onEvent((event) => {
      if (event['detail-type'] === 'Popularity Changed') nudges.push(event.detail);
    });

    // No schedule runs: only the nudge can start the warm.
    await local.putEvent({
      source: 'warmboot',
      detailType: 'Image Launched',
      detail: { image: image.id, hostGroup: GROUP, availabilityZone: 'us-east-1a', count: 12 },
    });
    await local.putEvent({
      source: 'warmboot',
      detailType: 'Image Launched',
      detail: { image: rare.id, hostGroup: GROUP, availabilityZone: 'us-east-1a', count: 1 },
    });
    await local.settleFor(10 * 60_000);

    expect(nudges).toContainEqual(
      expect.objectContaining({ scope: { kind: 'hostGroup', hostGroup: GROUP } }),
    );
    const state = await groupState(local);
    expect(hosts.map((host) => stateOf(state, host))).toEqual(hosts.map(() => 'cached'));
    for (const host of hosts) expect(local.ssm.agent(host).cache.has(image.source)).toBe(true);
  });
});
