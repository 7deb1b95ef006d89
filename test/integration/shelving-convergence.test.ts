import { TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { EC2_STATE_CHANGE, FUNCTIONS } from '../../functions/catalog';
import { matchesPattern } from '../../functions/shared/event-pattern';
import { dynamoShelfStore } from '../../functions/shelving/adapters/store';
import type { ShelfRecord } from '../../functions/shelving/domain/types';
import type { LocalCloud } from '../../local/cloud';
import { localCloudPerTest } from '../support/local-cloud';
import { launchWithDataVolume, SHELVING_ZONE, shelvingRequest } from '../support/shelving';

/**
 * Unshelve where the world does not cooperate: a full Dedicated Host (affinity decides between
 * waiting and moving), and EC2 state-change events that arrive twice, never, or out of order
 * (the 1-minute reconcile has to carry every record home, once).
 */

const MINUTE = 60_000;
const AZ = SHELVING_ZONE;
const startCloud = localCloudPerTest();

const start = (settings: Record<string, unknown> = {}): Promise<LocalCloud> =>
  startCloud({
    functions: ['shelving'],
    settings: { SHELVING_SETTINGS: JSON.stringify({ offloadAfterSeconds: -1, ...settings }) },
  });

const request = shelvingRequest;

/** Launches instances with a root and a data volume; `managed: false` launches a plain tenant instance. */
const launch = (
  local: LocalCloud,
  count: number,
  placement: Record<string, string> = {},
  managed = true,
): Promise<string[]> =>
  launchWithDataVolume(local, count, {
    placement,
    ...(managed
      ? {}
      : { tags: [{ ResourceType: 'instance', Tags: [{ Key: 'Name', Value: 'someone-else' }] }] }),
  });

const present = (records: readonly (ShelfRecord | undefined)[]): ShelfRecord[] =>
  records.flatMap((record) => (record ? [record] : []));

/** The records of `ids`, in that order. */
const load = async (local: LocalCloud, ids: readonly string[]): Promise<(ShelfRecord | undefined)[]> => {
  const found = await local.run(() => dynamoShelfStore(local.documents, local.tables.shelves).getMany(ids));
  return ids.map((id) => found.find((record) => record.recordId === id));
};

const shelveAndOffload = async (local: LocalCloud, instanceIds: string[], offload: readonly string[]) => {
  const answer = await request(local, 'shelve.json', { instanceIds, tenant: 'tenant-a', snapshot: true });
  await local.settleFor(3 * MINUTE);
  const recordIds = (answer.result.results ?? []).map((result) => result.recordId ?? '');
  const toOffload = recordIds.filter((_, index) => offload.includes(instanceIds[index] ?? ''));
  await request(local, 'offload.json', { recordIds: toOffload });
  await local.settleFor(2 * MINUTE);
  return recordIds;
};

describe('unshelve when the recorded Dedicated Host is full', () => {
  it('waits for the host with affinity host, goes to another host of the AZ with affinity default', async () => {
    const local = await start();
    // Room for exactly two m7i.large (2 vCPUs each); a second host with auto-placement takes strays.
    const recorded = local.ec2.allocateHost({
      availabilityZone: AZ,
      instanceType: 'm7i.large',
      totalVCpus: 4,
    });
    const other = local.ec2.allocateHost({
      availabilityZone: AZ,
      instanceType: 'm7i.large',
      autoPlacement: 'on',
    });
    const [pinned = ''] = await launch(local, 1, { Tenancy: 'host', HostId: recorded, Affinity: 'host' });
    const [flexible = ''] = await launch(local, 1, {
      Tenancy: 'host',
      HostId: recorded,
      Affinity: 'default',
    });
    const [pinnedRecord = '', flexibleRecord = ''] = await shelveAndOffload(
      local,
      [pinned, flexible],
      [pinned, flexible],
    );
    // While they were offloaded, someone else took the whole host.
    const squatters = await launch(local, 2, { Tenancy: 'host', HostId: recorded, Affinity: 'host' }, false);
    local.startSchedules();

    await request(local, 'unshelve.json', { recordIds: [pinnedRecord, flexibleRecord] });
    await local.settleFor(5 * MINUTE);

    const [waiting, moved] = await load(local, [pinnedRecord, flexibleRecord]);
    expect(waiting).toMatchObject({
      step: 'unshelve.launch',
      unshelve: { waitingForHostSince: expect.any(Number), reason: `Dedicated Host ${recorded} is full` },
    });
    expect(waiting?.unshelve?.replacementInstanceId).toBeUndefined();
    expect(moved).toMatchObject({ step: 'unshelved', unshelve: { path: 'in-place' } });
    expect(local.ec2.instance(moved?.unshelve?.replacementInstanceId ?? '')).toMatchObject({
      state: 'running',
      hostId: other,
    });

    // The host frees up: the next reconcile (every minute) launches the waiting record on it.
    await local.run(() =>
      local
        .runtime('shelving')
        .clients.ec2.send(new TerminateInstancesCommand({ InstanceIds: [squatters[0] ?? ''] })),
    );
    await local.settleFor(5 * MINUTE);

    const [back] = await load(local, [pinnedRecord]);
    expect(back).toMatchObject({ step: 'unshelved', unshelve: { path: 'in-place' } });
    expect(local.ec2.instance(back?.unshelve?.replacementInstanceId ?? '')).toMatchObject({
      state: 'running',
      hostId: recorded,
    });
  });
});

describe('unshelve under duplicated, lost and reordered EC2 events', () => {
  it('converges through the 1-minute reconcile with nothing lost and nothing done twice', async () => {
    // The stopped swap: its progress rides on the replacements' state changes, which the faults
    // below drop, duplicate and reorder (the in-place swap waits on no event).
    const local = await start({ replaceRootInPlace: false });
    const instanceIds = await launch(local, 5);
    // Four come back on the fast path (offloaded), one by a plain start.
    const recordIds = await shelveAndOffload(local, instanceIds, instanceIds.slice(0, 4));
    const before = present(await load(local, recordIds));
    expect(before.map((record) => record.step).sort()).toEqual([
      'offloaded',
      'offloaded',
      'offloaded',
      'offloaded',
      'shelved',
    ]);
    const unshelvedFacts = new Map<string, number>();
    local.bus.onEvent((event) => {
      if (event.source !== 'warmboot.fact' || event['detail-type'] !== 'Instance Unshelved') return;
      const recordId = String((event.detail as { recordId?: unknown }).recordId);
      unshelvedFacts.set(recordId, (unshelvedFacts.get(recordId) ?? 0) + 1);
    });
    // Which state changes the shelving function should have seen, and how often it got each.
    const routed = new Set<string>();
    local.bus.onEvent((event) => {
      const forShelving = FUNCTIONS.shelving.patterns.some(({ pattern }) => matchesPattern(event, pattern));
      if (event.source === 'aws.ec2' && forShelving) routed.add(event.id);
    });
    const deliveries = new Map<string, number>();
    local.bus.onInvocation(({ functionId, event, attempt }) => {
      if (functionId === 'shelving' && event.source === 'aws.ec2' && attempt === 0)
        deliveries.set(event.id, (deliveries.get(event.id) ?? 0) + 1);
    });
    local.startSchedules();
    const ec2Events = { functionId: 'shelving' as const, source: 'aws.ec2', detailType: EC2_STATE_CHANGE };
    local.bus.injectFault({ match: ec2Events, fault: { kind: 'drop' }, probability: 0.3 });
    local.bus.injectFault({
      match: ec2Events,
      fault: { kind: 'duplicate', afterMs: 2_000 },
      probability: 0.4,
    });
    local.bus.injectFault({ match: ec2Events, fault: { kind: 'reorder', window: 3, maxHoldMs: 20_000 } });

    await request(local, 'unshelve-bulk.json', { tenant: 'tenant-a' });
    await local.settleFor(15 * MINUTE);
    local.bus.clearFaults();

    // The faults did happen: some state changes never arrived, some arrived twice.
    expect([...routed].filter((id) => !deliveries.has(id)).length).toBeGreaterThan(0);
    expect([...deliveries.values()].filter((count) => count > 1).length).toBeGreaterThan(0);

    const after = present(await load(local, recordIds));
    expect(after.map((record) => [record.recordId, record.step, record.unshelve?.path])).toEqual(
      before.map((record) => [record.recordId, 'unshelved', record.step === 'offloaded' ? 'fast' : 'start']),
    );
    // Nothing duplicated: one fact per record, one live managed instance per record.
    expect(Object.fromEntries(unshelvedFacts)).toEqual(Object.fromEntries(recordIds.map((id) => [id, 1])));
    const live = local.ec2
      .instances()
      .filter((instance) => instance.state !== 'terminated' && instance.tags['warmboot:shelving'] === 'true');
    expect(new Set(live.map((instance) => instance.instanceId))).toEqual(
      new Set(after.map((record) => record.unshelve?.replacementInstanceId ?? record.instanceId)),
    );
    // Nothing lost: every retained volume is attached to its record's instance at its device,
    // and no fresh replacement root is left behind.
    const volumes = new Map(local.ec2.volumes().map((volume) => [volume.volumeId, volume]));
    for (const record of after) {
      const runsAs = record.unshelve?.replacementInstanceId ?? record.instanceId;
      for (const kept of record.volumes) {
        expect(volumes.get(kept.volumeId)?.attachment).toMatchObject({
          instanceId: runsAs,
          device: kept.deviceName,
        });
      }
    }
    expect(
      local.ec2.volumes().filter((volume) => volume.tags['warmboot:replacement-root'] === 'true'),
    ).toEqual([]);
  });
});
