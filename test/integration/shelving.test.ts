import {
  AllocateAddressCommand,
  AssociateAddressCommand,
  CreatePlacementGroupCommand,
  DeleteSnapshotCommand,
  DeleteVolumeCommand,
  DescribeInstanceAttributeCommand,
  DescribeSubnetsCommand,
  ModifyInstanceAttributeCommand,
  type ModifyInstanceAttributeCommandInput,
  RunInstancesCommand,
  type RunInstancesCommandInput,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { defaultRetryPolicy } from '../../functions/shared/retry';
import { dynamoShelfStore } from '../../functions/shelving/adapters/store';
import type { ShelfRecord } from '../../functions/shelving/domain/types';
import type { LocalCloud } from '../../local/cloud';
import { runShelvingScenario, SHELVING_SCENARIO_BUDGET } from '../../local/scenarios/shelving';
import { optedInInstanceTags } from '../support/instances';
import { localCloudPerTest } from '../support/local-cloud';
import { launchWithDataVolume, shelvingRequest } from '../support/shelving';
import { NOW, record as recordFixture } from '../unit/shelving/fakes';

const MINUTE = 60_000;

const startCloud = localCloudPerTest();

/**
 * `allowShelvedDataDeletion`: the deployment opted in to deleting retained data on a confirmed
 * Delete Shelved Record; without it IAM denies DeleteVolume on retained volumes.
 */
const start = (
  settings: Record<string, unknown> = {},
  options: { readonly allowShelvedDataDeletion?: boolean } = {},
): Promise<LocalCloud> =>
  startCloud({
    functions: ['shelving'],
    settings: {
      SHELVING_SETTINGS: JSON.stringify({
        offloadAfterSeconds: -1,
        ...settings,
        allowDataDeletion: options.allowShelvedDataDeletion ?? false,
      }),
    },
  });

const request = shelvingRequest;

/** Launches managed instances with a root and a data volume, optionally on a Dedicated Host. */
const launch = (local: LocalCloud, count: number, placement: Record<string, string> = {}) =>
  launchWithDataVolume(local, count, { placement });

/** The unconfirmed Delete Shelved Record (an administrator's direct invoke): its plan and token. */
const deletionPlan = async (local: LocalCloud, recordId: string) =>
  (
    (await request(local, 'delete-shelved.json', { recordId })) as unknown as {
      result: {
        result: {
          ok: boolean;
          confirm: string;
          willDelete: { volumeIds: string[]; snapshotIds: string[] };
        };
      };
    }
  ).result.result;

const records = (local: LocalCloud) => dynamoShelfStore(local.documents, local.tables.shelves);
const load = async (local: LocalCloud, ids: readonly string[]): Promise<ShelfRecord[]> =>
  local.run(() => records(local).getMany(ids));

/** Unshelves one record and lets `settleMs` pass: the record then. */
const unshelvedAfter = async (local: LocalCloud, recordId: string, settleMs: number) => {
  await request(local, 'unshelve.json', { recordIds: [recordId] });
  await local.settleFor(settleMs);
  const [record] = await load(local, [recordId]);
  return record;
};

/** The details of every Instance Unshelved fact published from now on. */
const unshelvedFacts = (local: LocalCloud) => {
  const facts: Record<string, unknown>[] = [];
  local.bus.onEvent((event) => {
    if (event.source === 'warmboot.fact' && event['detail-type'] === 'Instance Unshelved')
      facts.push(event.detail as Record<string, unknown>);
  });
  return facts;
};

/** The account's administrator (outside any invocation): what an owner does to its instances. */
const admin = (local: LocalCloud) => local.runtime('shelving').clients.ec2;

/** Runs one instance as its owner: its id. */
const runOne = async (
  local: LocalCloud,
  input: Omit<RunInstancesCommandInput, 'MinCount' | 'MaxCount'>,
): Promise<string> => {
  const answer = await local.run(() =>
    admin(local).send(new RunInstancesCommand({ MinCount: 1, MaxCount: 1, ...input })),
  );
  return answer.Instances?.[0]?.InstanceId ?? '';
};

/** Turns a protection of an instance on or off, as its owner. */
const protect = (
  local: LocalCloud,
  instanceId: string,
  protection: Pick<ModifyInstanceAttributeCommandInput, 'DisableApiStop' | 'DisableApiTermination'>,
) =>
  local.run(() =>
    admin(local).send(new ModifyInstanceAttributeCommand({ InstanceId: instanceId, ...protection })),
  );

/** The answer item of a request refused for `id` with `code`. */
const refusal = (id: string, code: string) =>
  expect.objectContaining({ id, ok: false, error: expect.objectContaining({ code }) });

const shelve = async (local: LocalCloud, instanceIds: string[]) => {
  const answer = await request(local, 'shelve.json', { instanceIds, tenant: 'tenant-a', snapshot: true });
  await local.settleFor(3 * MINUTE);
  return (answer.result.results ?? []).map((result) => result.recordId ?? '');
};

/** One managed instance shelved and offloaded; its record id once `settleMs` has passed. */
const offloadedRecord = async (local: LocalCloud, settleMs: number): Promise<string> => {
  const [recordId = ''] = await offloadedRecords(local, 1, settleMs);
  return recordId;
};

/** `count` managed instances shelved and offloaded in one request; their record ids once `settleMs` has passed. */
const offloadedRecords = async (local: LocalCloud, count: number, settleMs: number): Promise<string[]> => {
  const recordIds = await shelve(local, await launch(local, count));
  await request(local, 'offload.json', { recordIds });
  await local.settleFor(settleMs);
  return recordIds;
};

const retainedVolumesIntact = (local: LocalCloud, all: readonly ShelfRecord[]) => {
  const existing = new Set(local.ec2.volumes().map((volume) => volume.volumeId));
  return all
    .flatMap((record) => record.volumes.map((volume) => volume.volumeId))
    .every((id) => existing.has(id));
};

describe('shelve, offload, unshelve on the local cloud', () => {
  it('keeps every volume and comes back on the same Dedicated Host with the volumes at their device names', async () => {
    const local = await start();
    const hostId = local.ec2.allocateHost({ availabilityZone: 'us-east-1a', instanceType: 'm7i.large' });
    const instanceIds = await launch(local, 2, { Tenancy: 'host', HostId: hostId, Affinity: 'host' });

    const recordIds = await shelve(local, instanceIds);
    const shelved = await load(local, recordIds);
    expect(shelved.map((record) => record.step)).toEqual(['shelved', 'shelved']);
    for (const instanceId of instanceIds) expect(local.ec2.instance(instanceId)?.state).toBe('stopped');
    const kept = local.ec2
      .volumes()
      .filter((volume) => recordIds.includes(volume.tags['warmboot:shelved'] ?? ''));
    expect(kept).toHaveLength(4);
    expect(kept.every((volume) => volume.attachment?.deleteOnTermination === false)).toBe(true);
    expect(
      local.ec2.snapshots().filter((snapshot) => recordIds.includes(snapshot.tags['warmboot:shelved'] ?? '')),
    ).toHaveLength(4);

    await request(local, 'offload.json', { recordIds });
    await local.settleFor(2 * MINUTE);
    for (const instanceId of instanceIds) expect(local.ec2.instance(instanceId)?.state).toBe('terminated');
    expect((await load(local, recordIds)).map((record) => record.step)).toEqual(['offloaded', 'offloaded']);
    expect(retainedVolumesIntact(local, shelved)).toBe(true);

    await request(local, 'unshelve.json', { recordIds, tenant: 'tenant-a' });
    await local.settleFor(5 * MINUTE);

    const done = await load(local, recordIds);
    expect(done.map((record) => [record.step, record.unshelve?.path])).toEqual([
      ['unshelved', 'in-place'],
      ['unshelved', 'in-place'],
    ]);
    for (const record of done) {
      const replacement = local.ec2.instance(record.unshelve?.replacementInstanceId ?? '');
      expect(replacement).toMatchObject({
        state: 'running',
        hostId,
        tags: { Name: 'web', 'warmboot:tenant': 'tenant-a' },
      });
      for (const volume of record.volumes) {
        expect(
          local.ec2.volumes().find((candidate) => candidate.volumeId === volume.volumeId)?.attachment,
        ).toMatchObject({
          instanceId: replacement?.instanceId,
          device: volume.deviceName,
        });
      }
      expect(
        local.ec2.volumes().some((volume) => volume.volumeId === record.unshelve?.freshRootVolumeId),
      ).toBe(false);
    }
  });

  it('unshelves in place: the running replacement takes the retained root from EC2, never stopped, with the fresh root deleted by EC2', async () => {
    const local = await start();
    const recordId = await offloadedRecord(local, 2 * MINUTE);
    const [offloaded] = await load(local, [recordId]);
    const before = local.ec2.stats();
    const calls = (operation: string) =>
      (local.ec2.stats()[operation]?.calls ?? 0) - (before[operation]?.calls ?? 0);

    const record = await unshelvedAfter(local, recordId, 3 * MINUTE);
    expect(record).toMatchObject({ step: 'unshelved', unshelve: { path: 'in-place' } });
    const replacementId = record?.unshelve?.replacementInstanceId ?? '';
    const replacement = local.ec2.instance(replacementId);
    expect(replacement?.state).toBe('running');
    for (const volume of offloaded?.volumes ?? []) {
      expect(local.ec2.volume(volume.volumeId)?.attachment).toMatchObject({
        instanceId: replacementId,
        device: volume.deviceName,
      });
    }
    // One launch, one data attach, one root replacement; no stop, start, detach or DeleteVolume.
    expect([
      calls('RunInstances'),
      calls('AttachVolume'),
      calls('CreateReplaceRootVolumeTask'),
      calls('StopInstances'),
      calls('StartInstances'),
      calls('DetachVolume'),
      calls('DeleteVolume'),
    ]).toEqual([1, 1, 1, 0, 0, 0, 0]);
    // The fresh root the replacement launched with is gone: EC2 deleted it with the task.
    const retained = new Set(offloaded?.volumes.map((volume) => volume.volumeId));
    expect(
      local.ec2
        .volumes()
        .filter(
          (volume) => volume.tags['warmboot:replacement-for'] === recordId && !retained.has(volume.volumeId),
        ),
    ).toEqual([]);
  });

  it('answers Unshelve with the instance back in place: the request follows its record instead of waiting for queued state-change events', async () => {
    const local = await start();
    const recordId = await offloadedRecord(local, 2 * MINUTE);

    const answer = await request(local, 'unshelve.json', { recordIds: [recordId] });

    expect(answer).toMatchObject({ status: 'handled', result: { results: [{ id: recordId, ok: true }] } });
    const [record] = await load(local, [recordId]);
    expect(record).toMatchObject({ step: 'unshelved', unshelve: { path: 'in-place' } });
  });

  it('takes the stopped swap for an instance with user data, and says why in the record', async () => {
    const local = await start();
    const [instanceId = ''] = await launchWithDataVolume(local, 1, { userData: 'IyEvYmluL3NoCmVjaG8gaGkK' });
    const [recordId = ''] = await shelve(local, [instanceId]);
    await request(local, 'offload.json', { recordIds: [recordId] });
    await local.settleFor(2 * MINUTE);

    const record = await unshelvedAfter(local, recordId, 5 * MINUTE);
    expect(record).toMatchObject({
      step: 'unshelved',
      unshelve: { path: 'fast', inPlaceSkipped: expect.stringContaining('user data') },
    });
  });

  it('starts a shelved instance that was never offloaded', async () => {
    const local = await start();
    const [instanceId = ''] = await launch(local, 1);
    const [recordId = ''] = await shelve(local, [instanceId]);

    await request(local, 'unshelve.json', { instanceIds: [instanceId] });
    await local.settleFor(2 * MINUTE);

    const [record] = await load(local, [recordId]);
    expect(record).toMatchObject({ step: 'unshelved', unshelve: { path: 'start' } });
    expect(local.ec2.instance(instanceId)?.state).toBe('running');
  });

  it.each([
    ['keeps the key pair of an instance whose key still exists', false, 'ops'],
    ['comes back without the key pair, not refused, when the key was deleted since (R12)', true, undefined],
  ])('%s', async (_title, deleteKey, expectedKeyName) => {
    const local = await start();
    local.ec2.registerKeyPair('ops');
    const imageId = local.ec2.registerImage({ name: 'al2023-keyed', rootSizeGiB: 8 });
    const instanceId = await runOne(local, {
      ImageId: imageId,
      InstanceType: 'm7i.large',
      KeyName: 'ops',
      MetadataOptions: { HttpTokens: 'optional', HttpPutResponseHopLimit: 3 },
      Placement: { AvailabilityZone: 'us-east-1a' },
      TagSpecifications: optedInInstanceTags('shelving', { 'warmboot:tenant': 'tenant-a' }),
    });
    await local.settleFor(MINUTE);
    const [recordId = ''] = await shelve(local, [instanceId]);
    await request(local, 'offload.json', { recordIds: [recordId] });
    await local.settleFor(5 * MINUTE);
    if (deleteKey) local.ec2.deleteKeyPair('ops');

    const record = await unshelvedAfter(local, recordId, 10 * MINUTE);
    expect(record).toMatchObject({ step: 'unshelved' });
    const replacement = local.ec2.instance(record?.unshelve?.replacementInstanceId ?? '');
    expect(replacement?.state).toBe('running');
    expect(replacement?.keyName).toBe(expectedKeyName);
    // Its metadata options as they were, except that IMDSv2 is always required (M2).
    expect(replacement?.metadataOptions).toEqual({
      httpTokens: 'required',
      httpPutResponseHopLimit: 3,
      httpEndpoint: 'enabled',
    });
  });

  it('takes the slow path from the safety snapshots when a retained volume is gone, and says so', async () => {
    const local = await start();
    const recordId = await offloadedRecord(local, 30 * MINUTE);
    const [offloaded] = await load(local, [recordId]);
    const data = offloaded?.volumes.find((volume) => !volume.root)?.volumeId ?? '';
    await local.run(() =>
      local.runtime('shelving').clients.ec2.send(new DeleteVolumeCommand({ VolumeId: data })),
    );

    const record = await unshelvedAfter(local, recordId, 3 * MINUTE);
    expect(record).toMatchObject({
      step: 'unshelved',
      unshelve: { path: 'slow', reason: expect.stringContaining(`${data} is gone`) },
    });
    expect(local.ec2.instance(record?.unshelve?.replacementInstanceId ?? '')?.state).toBe('running');
  });

  /** An offloaded record forced onto the slow path: one of its retained volumes deleted. */
  const slowPathRecord = async (local: LocalCloud): Promise<string> => {
    const recordId = await offloadedRecord(local, 30 * MINUTE);
    const [offloaded] = await load(local, [recordId]);
    const data = offloaded?.volumes.find((volume) => !volume.root)?.volumeId ?? '';
    await local.run(() =>
      local.runtime('shelving').clients.ec2.send(new DeleteVolumeCommand({ VolumeId: data })),
    );
    return recordId;
  };
  const replacementsFor = (local: LocalCloud, recordId: string) =>
    local.ec2.instances().filter((instance) => instance.tags['warmboot:replacement-for'] === recordId);

  it('launches a new slow-path replacement, with a new ClientToken, when the first one is terminated (R5)', async () => {
    const local = await start();
    const recordId = await slowPathRecord(local);
    local.startSchedules();

    // The request's invocation follows its record: the first replacement is terminated while it
    // is still pending, under that invocation.
    const first = await local.run(async () => {
      const answer = request(local, 'unshelve.json', { recordIds: [recordId] });
      let launched = replacementsFor(local, recordId)[0];
      while (launched === undefined) {
        await local.settleFor(250);
        launched = replacementsFor(local, recordId)[0];
      }
      expect(launched.state).toBe('pending');
      await local
        .runtime('shelving')
        .clients.ec2.send(new TerminateInstancesCommand({ InstanceIds: [launched.instanceId] }));
      await answer;
      return launched;
    });
    await local.settleFor(10 * MINUTE);

    const [record] = await load(local, [recordId]);
    const second = local.ec2.instance(record?.unshelve?.replacementInstanceId ?? '');
    expect(record).toMatchObject({ step: 'unshelved', unshelve: { path: 'slow' } });
    expect(second?.instanceId).not.toBe(first?.instanceId);
    expect(second?.state).toBe('running');
    expect(second?.clientToken).not.toBe(first?.clientToken);
  });

  it('repeats a slow-path launch that answered a server error with the same ClientToken, launching once (W5)', async () => {
    const local = await start();
    const recordId = await slowPathRecord(local);
    local.startSchedules();
    // Every SDK attempt of the first call: it launches, and the engine never hears of it.
    local.faults.loseNextResponse(
      { service: 'ec2', operation: 'RunInstances' },
      { code: 'InternalError' },
      defaultRetryPolicy.maxAttempts,
    );

    const record = await unshelvedAfter(local, recordId, 10 * MINUTE);
    expect(local.faults.injected).toBe(defaultRetryPolicy.maxAttempts);
    expect(record).toMatchObject({ step: 'unshelved', unshelve: { path: 'slow' } });
    expect(replacementsFor(local, recordId).map((instance) => instance.instanceId)).toEqual([
      record?.unshelve?.replacementInstanceId,
    ]);
  });

  it('repeats a fast-path batch launch that answered a server error with the same ClientToken, leaving no orphan (W5)', async () => {
    // Batches of several replacements exist only when private addresses are not kept.
    const local = await start({ keepPrivateIp: false });
    const recordIds = await offloadedRecords(local, 3, 2 * MINUTE);
    local.startSchedules();
    local.faults.loseNextResponse(
      { service: 'ec2', operation: 'RunInstances' },
      { code: 'InternalError' },
      defaultRetryPolicy.maxAttempts,
    );

    await request(local, 'unshelve.json', { recordIds });
    await local.settleFor(10 * MINUTE);

    const done = await load(local, recordIds);
    expect(local.faults.injected).toBe(defaultRetryPolicy.maxAttempts);
    expect(done.map((record) => [record.step, record.unshelve?.path])).toEqual(
      recordIds.map(() => ['unshelved', 'in-place']),
    );
    const launchedForBatches = local.ec2
      .instances()
      .filter((instance) => instance.tags['warmboot:replacement-batch'] !== undefined);
    expect(new Set(launchedForBatches.map((instance) => instance.instanceId))).toEqual(
      new Set(done.map((record) => record.unshelve?.replacementInstanceId)),
    );
  });

  it('restores into another AZ from the safety snapshots when the recorded AZ is impaired, and says so', async () => {
    const local = await start();
    const recordId = await offloadedRecord(local, 30 * MINUTE);
    const facts = unshelvedFacts(local);
    local.ec2.setZoneState('us-east-1a', 'impaired');

    const record = await unshelvedAfter(local, recordId, 5 * MINUTE);
    const movedTo = record?.unshelve?.relocation?.availabilityZone;
    expect(record).toMatchObject({
      step: 'unshelved',
      unshelve: { path: 'slow', relocation: { reason: 'us-east-1a is impaired' } },
    });
    expect(movedTo).toMatch(/^us-east-1[bc]$/);
    const replacement = local.ec2.instance(record?.unshelve?.replacementInstanceId ?? '');
    expect(replacement).toMatchObject({ state: 'running', availabilityZone: movedTo });
    expect(facts).toEqual([
      expect.objectContaining({
        recordId,
        path: 'slow',
        availabilityZone: movedTo,
        reason: expect.stringContaining('us-east-1a is impaired'),
      }),
    ]);
    // The retained volumes stay where they were, still the record's: nothing is deleted.
    expect(retainedVolumesIntact(local, record ? [record] : [])).toBe(true);
  });

  it('waits for its impaired AZ on the fast path, saying why, when its safety snapshots were deleted outside warmboot', async () => {
    const local = await start();
    const recordId = await offloadedRecord(local, 30 * MINUTE);
    const [offloaded] = await load(local, [recordId]);
    for (const { snapshotId } of offloaded?.volumes ?? []) {
      await local.run(() =>
        local.runtime('shelving').clients.ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId })),
      );
    }
    local.ec2.setZoneState('us-east-1a', 'impaired');
    local.startSchedules();
    const launchesBefore = local.ec2.stats().RunInstances?.calls ?? 0;

    await request(local, 'unshelve.json', { recordIds: [recordId] });
    await local.settleFor(10 * MINUTE);

    const [waiting] = await load(local, [recordId]);
    expect(waiting).toMatchObject({
      step: 'unshelve.launch',
      unshelve: {
        path: 'fast',
        slowPathUnavailable: expect.stringContaining('no longer exist'),
        reason: expect.stringContaining('InsufficientInstanceCapacity'),
      },
    });
    expect(waiting?.unshelve?.relocation).toBeUndefined();
    // One refused launch per retry interval, not one per round of every invocation.
    const refusedLaunches = (local.ec2.stats().RunInstances?.calls ?? 0) - launchesBefore;
    expect(refusedLaunches).toBeGreaterThan(0);
    expect(refusedLaunches).toBeLessThanOrEqual(11);

    local.ec2.setZoneState('us-east-1a', 'available');
    await local.settleFor(5 * MINUTE);

    const [record] = await load(local, [recordId]);
    expect(record).toMatchObject({ step: 'unshelved', unshelve: { path: 'in-place' } });
    expect(local.ec2.instance(record?.unshelve?.replacementInstanceId ?? '')).toMatchObject({
      state: 'running',
      availabilityZone: 'us-east-1a',
    });
  });

  it('leaves an AZ that has refused the replacement for lack of capacity for otherAzAfterSeconds', async () => {
    const local = await start({ otherAzAfterSeconds: 600 });
    const recordId = await offloadedRecord(local, 30 * MINUTE);
    local.ec2.setCapacity('us-east-1a', 'm7i.large', 0);
    local.startSchedules();

    await request(local, 'unshelve.json', { recordIds: [recordId] });
    await local.settleFor(5 * MINUTE);
    const [waiting] = await load(local, [recordId]);
    expect(waiting).toMatchObject({ step: 'unshelve.launch', unshelve: { path: 'fast' } });

    await local.settleFor(15 * MINUTE);
    const [record] = await load(local, [recordId]);
    expect(record).toMatchObject({
      step: 'unshelved',
      unshelve: { path: 'slow', reason: expect.stringContaining('no m7i.large capacity') },
    });
    expect(local.ec2.instance(record?.unshelve?.replacementInstanceId ?? '')?.availabilityZone).not.toBe(
      'us-east-1a',
    );
  });

  it('resumes after the handler dies between any two calls, losing and duplicating nothing', async () => {
    const local = await start();
    // Five records, so invocations stay long enough for the kill after the 12th call to fire.
    const recordIds = await offloadedRecords(local, 5, 2 * MINUTE);
    const before = await load(local, recordIds);
    local.startSchedules();

    for (const afterCalls of [3, 6, 9, 12])
      local.faults.killInvocation({ functionId: 'shelving', afterCalls });
    local.faults.failNextCall(
      { service: 'ec2', operation: 'AttachVolume' },
      { code: 'RequestLimitExceeded' },
      8,
    );
    await request(local, 'unshelve-bulk.json', { tenant: 'tenant-a' }).catch(() => undefined);
    await local.settleFor(15 * MINUTE);

    const after = await load(local, recordIds);
    expect(local.faults.injected).toBeGreaterThanOrEqual(4 + 8);
    expect(after.map((record) => record.step)).toEqual(recordIds.map(() => 'unshelved'));
    expect(retainedVolumesIntact(local, before)).toBe(true);
    const live = local.ec2
      .instances()
      .filter((instance) => instance.state !== 'terminated' && instance.tags['warmboot:shelving'] === 'true');
    expect(live).toHaveLength(5);
    expect(new Set(after.map((record) => record.unshelve?.replacementInstanceId))).toEqual(
      new Set(live.map((i) => i.instanceId)),
    );
  });

  it('offloads the rest of a batch when one instance is termination-protected (R6)', async () => {
    const local = await start();
    const instanceIds = await launch(local, 3);
    const protectedId = instanceIds[1] ?? '';
    await protect(local, protectedId, { DisableApiTermination: { Value: true } });
    const recordIds = await shelve(local, instanceIds);
    local.startSchedules();

    const answer = await request(local, 'offload.json', { recordIds });
    await local.settleFor(5 * MINUTE);

    // Refused by name: warmboot never turns protection off (W2).
    expect(answer.result.results?.find((result) => !result.ok)).toMatchObject({
      id: recordIds[1],
      error: { code: 'TerminationProtected' },
    });
    const after = await load(local, recordIds);
    expect(after.map((record) => record.instanceId === protectedId || record.step === 'offloaded')).toEqual([
      true,
      true,
      true,
    ]);
    expect(local.ec2.instance(protectedId)?.state).toBe('stopped');
    expect(instanceIds.filter((id) => id !== protectedId).map((id) => local.ec2.instance(id)?.state)).toEqual(
      ['terminated', 'terminated'],
    );
  });

  it('never terminates a replacement another record took, when a partial batch is re-issued after a crash (C4)', async () => {
    const local = await startCloud({
      functions: ['shelving'],
      // Batches of several replacements exist only when private addresses are not kept.
      settings: { SHELVING_SETTINGS: JSON.stringify({ offloadAfterSeconds: -1, keepPrivateIp: false }) },
      faultsOnDynamodb: true,
    });
    const recordIds = await offloadedRecords(local, 2, 2 * MINUTE);
    const before = await load(local, recordIds);
    local.startSchedules();
    // The batch of two launches one replacement, and the handler dies right after it recorded the
    // one it got, before it recorded the other record's shortfall: that record keeps the batch and
    // re-issues it with the same token, which returns the first record's replacement again.
    const faults = local.faults;
    faults.partialLaunchThenCrash();

    await request(local, 'unshelve.json', { recordIds }).catch(() => undefined);
    await local.settleFor(20 * MINUTE);

    const after = await load(local, recordIds);
    // The short launch and the crash after it both fired.
    expect(faults.injected).toBe(2);
    expect(after.map((record) => record.step)).toEqual(['unshelved', 'unshelved']);
    expect(retainedVolumesIntact(local, before)).toBe(true);
    for (const record of after) {
      expect(local.ec2.instance(record.unshelve?.replacementInstanceId ?? '')?.state).toBe('running');
    }
  });

  it('deletes a shelve record only with the server-issued confirmation of its exact volumes and snapshots', async () => {
    const local = await start({}, { allowShelvedDataDeletion: true });
    const recordId = await offloadedRecord(local, 2 * MINUTE);
    const [record] = await load(local, [recordId]);
    const volumeIds = record?.volumes.map((volume) => volume.volumeId) ?? [];
    const snapshotIds = record?.volumes.map((volume) => volume.snapshotId) ?? [];
    expect(snapshotIds).toHaveLength(2);

    const unconfirmed = await deletionPlan(local, recordId);
    expect(unconfirmed).toMatchObject({ ok: false, willDelete: { volumeIds, snapshotIds } });
    expect(retainedVolumesIntact(local, record ? [record] : [])).toBe(true);
    // The record id, the sample's old "confirmation", deletes nothing.
    const byRecordId = await request(local, 'delete-shelved.json', { recordId, confirm: recordId });
    expect(byRecordId).toMatchObject({ status: 'rejected', error: { field: 'detail.confirm' } });
    expect(retainedVolumesIntact(local, record ? [record] : [])).toBe(true);

    await request(local, 'delete-shelved.json', { recordId, confirm: unconfirmed.confirm });
    await local.settleFor(MINUTE);
    const existing = new Set(local.ec2.volumes().map((volume) => volume.volumeId));
    expect(volumeIds.some((id) => existing.has(id))).toBe(false);
    const snapshotsLeft = new Set(local.ec2.snapshots().map((snapshot) => snapshot.snapshotId));
    expect(snapshotIds.some((id) => id !== undefined && snapshotsLeft.has(id))).toBe(false);
    expect(await load(local, [recordId])).toEqual([]);
  });

  it('keeps the safety snapshots of a record whose deletion could not delete a volume (finding 11)', async () => {
    const local = await start({}, { allowShelvedDataDeletion: true });
    const recordId = await offloadedRecord(local, 2 * MINUTE);
    const [record] = await load(local, [recordId]);
    const snapshotIds = record?.volumes.map((volume) => volume.snapshotId ?? '') ?? [];
    const snapshotsExisting = () => {
      const existing = new Set(local.ec2.snapshots().map((snapshot) => snapshot.snapshotId));
      return snapshotIds.filter((id) => existing.has(id));
    };
    local.faults.failNextCall(
      { service: 'ec2', operation: 'DeleteVolume' },
      { code: 'IncorrectInstanceState' },
      1,
    );

    const failed = (await request(local, 'delete-shelved.json', {
      recordId,
      confirm: (await deletionPlan(local, recordId)).confirm,
    })) as unknown as {
      result: { result: { ok: boolean; deleted: { snapshots: { id: string; ok: boolean }[] } } };
    };

    expect(failed.result.result.ok).toBe(false);
    expect(failed.result.result.deleted.snapshots).toEqual(snapshotIds.map((id) => refusal(id, 'Kept')));
    expect(snapshotsExisting()).toEqual(snapshotIds);
    const [kept] = await load(local, [recordId]);
    expect(kept).toMatchObject({ step: 'offloaded', error: { code: 'DeletionIncomplete' } });

    await request(local, 'delete-shelved.json', {
      recordId,
      confirm: (await deletionPlan(local, recordId)).confirm,
    });
    await local.settleFor(MINUTE);
    expect(snapshotsExisting()).toEqual([]);
    expect(await load(local, [recordId])).toEqual([]);
  });
});

describe('shelving requests over the request bus act for the caller’s tenant (security review C3)', () => {
  const ACCOUNT = '123456789012';
  const operatorOf = (tenant: string) => ({
    principalArn: `arn:aws:iam::${ACCOUNT}:role/${tenant}-operator`,
  });
  const SHELVING_REQUESTS = ['Shelve Instances', 'Offload Instances', 'Unshelve Instances'];

  it('shelves a tenant’s instance for its own operator only, whatever the request says', async () => {
    const local = await startCloud({
      functions: ['shelving'],
      accountId: ACCOUNT,
      settings: { SHELVING_SETTINGS: JSON.stringify({ offloadAfterSeconds: -1 }) },
      operators: ['tenant-a', 'tenant-b'].map((tenant) => ({
        principal: operatorOf(tenant).principalArn,
        requests: SHELVING_REQUESTS,
        tenants: [tenant],
      })),
    });
    const [instanceId = ''] = await launch(local, 1);
    const shelveAs = (tenant: string, source: string, detail: Record<string, unknown>) =>
      local.putEvent({ source, detailType: 'Shelve Instances', detail }, { as: operatorOf(tenant) });

    // tenant-b's operator, with its own source: the instance is tenant-a's, so nothing happens.
    await shelveAs('tenant-b', 'warmboot.tenant.tenant-b', { instanceIds: [instanceId] });
    // Claiming tenant-a in the request does not help: the source binds the tenant.
    await shelveAs('tenant-b', 'warmboot.tenant.tenant-b', { instanceIds: [instanceId], tenant: 'tenant-a' });
    // Nor does putting tenant-a's source or the unbound one: the bus policy refuses them.
    await expect(
      shelveAs('tenant-b', 'warmboot.tenant.tenant-a', { instanceIds: [instanceId] }),
    ).rejects.toMatchObject({ name: 'AccessDeniedException' });
    await expect(shelveAs('tenant-b', 'warmboot', { instanceIds: [instanceId] })).rejects.toMatchObject({
      name: 'AccessDeniedException',
    });
    await local.settleFor(3 * MINUTE);
    expect(local.ec2.instance(instanceId)?.state).toBe('running');
    expect(await local.run(() => records(local).recordIdForInstance(instanceId))).toBeUndefined();

    await shelveAs('tenant-a', 'warmboot.tenant.tenant-a', { instanceIds: [instanceId], snapshot: false });
    await local.settleFor(3 * MINUTE);
    expect(local.ec2.instance(instanceId)?.state).toBe('stopped');
    const recordId = (await local.run(() => records(local).recordIdForInstance(instanceId))) ?? '';
    expect((await load(local, [recordId]))[0]).toMatchObject({ tenant: 'tenant-a', step: 'shelved' });

    // tenant-b cannot offload or unshelve it either.
    await local.putEvent(
      {
        source: 'warmboot.tenant.tenant-b',
        detailType: 'Offload Instances',
        detail: { recordIds: [recordId] },
      },
      { as: operatorOf('tenant-b') },
    );
    await local.putEvent(
      {
        source: 'warmboot.tenant.tenant-b',
        detailType: 'Unshelve Instances',
        detail: { instanceIds: [instanceId] },
      },
      { as: operatorOf('tenant-b') },
    );
    await local.settleFor(3 * MINUTE);
    expect((await load(local, [recordId]))[0]).toMatchObject({ step: 'shelved' });
    expect(local.ec2.instance(instanceId)?.state).toBe('stopped');
  });
});

describe('an unshelved instance comes back as it was (W2)', () => {
  const USER_DATA = Buffer.from('#!/bin/sh\necho "hello from user data"\n').toString('base64');
  const ADDRESS = '172.31.5.10';

  /**
   * A stopped t3.large as its owner configured it: a chosen private address, an Elastic IP, user
   * data, stop and termination protection, a spread placement group, the standard credit option
   * (T3 defaults to unlimited) and its tags.
   */
  const configuredInstance = async (local: LocalCloud) => {
    const imageId = local.ec2.registerImage({ name: 'al2023-w2', rootSizeGiB: 8 });
    const subnets = await local.run(() =>
      admin(local).send(
        new DescribeSubnetsCommand({ Filters: [{ Name: 'availability-zone', Values: ['us-east-1a'] }] }),
      ),
    );
    const subnetId = subnets.Subnets?.[0]?.SubnetId ?? '';
    await local.run(() =>
      admin(local).send(new CreatePlacementGroupCommand({ GroupName: 'web', Strategy: 'spread' })),
    );
    const instanceId = await runOne(local, {
      ImageId: imageId,
      InstanceType: 't3.large',
      SubnetId: subnetId,
      PrivateIpAddress: ADDRESS,
      UserData: USER_DATA,
      CreditSpecification: { CpuCredits: 'standard' },
      Placement: { AvailabilityZone: 'us-east-1a', GroupName: 'web' },
      BlockDeviceMappings: [{ DeviceName: '/dev/sdf', Ebs: { VolumeSize: 20, DeleteOnTermination: true } }],
      TagSpecifications: optedInInstanceTags('shelving', { 'warmboot:tenant': 'tenant-a', Name: 'web' }),
    });
    await local.settleFor(MINUTE);
    const { AllocationId: allocationId = '' } = await local.run(() =>
      admin(local).send(new AllocateAddressCommand({ Domain: 'vpc' })),
    );
    await local.run(() =>
      admin(local).send(new AssociateAddressCommand({ AllocationId: allocationId, InstanceId: instanceId })),
    );
    // Stop protection refuses the stop a shelve makes: the owner stops the instance first.
    await local.run(() => admin(local).send(new StopInstancesCommand({ InstanceIds: [instanceId] })));
    await local.settleFor(MINUTE);
    for (const protection of [
      { DisableApiStop: { Value: true } },
      { DisableApiTermination: { Value: true } },
    ]) {
      await protect(local, instanceId, protection);
    }
    return { instanceId, allocationId, subnetId };
  };

  /** Shelved and offloaded; the owner lifts termination protection, which refused the first offload. */
  const shelvedAndOffloaded = async (local: LocalCloud, instanceId: string): Promise<string> => {
    const [recordId = ''] = await shelve(local, [instanceId]);
    const refused = await request(local, 'offload.json', { recordIds: [recordId] });
    expect(refused.result.results).toEqual([refusal(recordId, 'TerminationProtected')]);
    expect(local.ec2.instance(instanceId)?.state).toBe('stopped');
    await protect(local, instanceId, { DisableApiTermination: { Value: false } });
    await request(local, 'offload.json', { recordIds: [recordId] });
    await local.settleFor(5 * MINUTE);
    expect(local.ec2.instance(instanceId)?.state).toBe('terminated');
    return recordId;
  };

  const attributesOf = async (local: LocalCloud, instanceId: string) => {
    const read = async (Attribute: 'userData' | 'disableApiTermination' | 'disableApiStop') =>
      local.run(() =>
        admin(local).send(new DescribeInstanceAttributeCommand({ InstanceId: instanceId, Attribute })),
      );
    return {
      userData: (await read('userData')).UserData?.Value,
      disableApiTermination: (await read('disableApiTermination')).DisableApiTermination?.Value,
      disableApiStop: (await read('disableApiStop')).DisableApiStop?.Value,
    };
  };

  /** The replacement holds the Elastic IP and the user data and protections the instance had. */
  const expectAddressAndAttributesOn = async (
    local: LocalCloud,
    replacementId: string,
    allocationId: string,
  ) => {
    expect(local.ec2.addresses()).toEqual([
      expect.objectContaining({ allocationId, instanceId: replacementId }),
    ]);
    expect(await attributesOf(local, replacementId)).toEqual({
      userData: USER_DATA,
      disableApiTermination: true,
      disableApiStop: true,
    });
  };

  it('keeps the private IP, Elastic IP, user data, protection, placement group, credit option and tags on the fast path', async () => {
    const local = await start();
    const { instanceId, allocationId } = await configuredInstance(local);
    const facts = unshelvedFacts(local);
    const recordId = await shelvedAndOffloaded(local, instanceId);
    // The Elastic IP stays allocated, disassociated from the terminated instance.
    expect(local.ec2.addresses()).toEqual([expect.objectContaining({ allocationId })]);
    expect(local.ec2.addresses()[0]?.instanceId).toBeUndefined();

    const record = await unshelvedAfter(local, recordId, 5 * MINUTE);
    expect(record).toMatchObject({ step: 'unshelved', unshelve: { path: 'fast' } });
    const replacementId = record?.unshelve?.replacementInstanceId ?? '';
    expect(local.ec2.instance(replacementId)).toMatchObject({
      state: 'running',
      privateIpAddress: ADDRESS,
      placementGroupName: 'web',
      cpuCredits: 'standard',
      tags: { Name: 'web', 'warmboot:tenant': 'tenant-a' },
    });
    await expectAddressAndAttributesOn(local, replacementId, allocationId);
    expect(facts).toEqual([
      expect.objectContaining({
        recordId,
        path: 'fast',
        privateIpAddress: ADDRESS,
        notKept: [expect.objectContaining({ attribute: 'instanceId', was: instanceId, now: replacementId })],
      }),
    ]);
  });

  it('comes back with a new private IP, and says so, when its address was taken since the shelve', async () => {
    const local = await start();
    const { instanceId, subnetId } = await configuredInstance(local);
    const facts = unshelvedFacts(local);
    const recordId = await shelvedAndOffloaded(local, instanceId);
    const imageId = local.ec2.images()[0]?.imageId ?? '';
    await runOne(local, {
      ImageId: imageId,
      InstanceType: 't3.large',
      SubnetId: subnetId,
      PrivateIpAddress: ADDRESS,
    });

    const record = await unshelvedAfter(local, recordId, 5 * MINUTE);
    expect(record).toMatchObject({ step: 'unshelved', unshelve: { path: 'fast', privateIpInUse: true } });
    const replacement = local.ec2.instance(record?.unshelve?.replacementInstanceId ?? '');
    expect(replacement?.state).toBe('running');
    expect(replacement?.privateIpAddress).not.toBe(ADDRESS);
    expect(facts).toEqual([
      expect.objectContaining({
        privateIpAddress: replacement?.privateIpAddress,
        notKept: expect.arrayContaining([
          expect.objectContaining({
            attribute: 'privateIpAddress',
            was: ADDRESS,
            now: replacement?.privateIpAddress,
            reason: expect.stringContaining('in use'),
          }),
        ]),
      }),
    ]);
  });

  it('restores into another AZ with a new subnet and private IP, says so, and keeps the rest', async () => {
    const local = await start();
    const { instanceId, allocationId } = await configuredInstance(local);
    const facts = unshelvedFacts(local);
    const recordId = await shelvedAndOffloaded(local, instanceId);
    await local.settleFor(30 * MINUTE);
    local.ec2.setZoneState('us-east-1a', 'impaired');

    const record = await unshelvedAfter(local, recordId, 5 * MINUTE);
    expect(record).toMatchObject({ step: 'unshelved', unshelve: { path: 'slow' } });
    const replacementId = record?.unshelve?.replacementInstanceId ?? '';
    const replacement = local.ec2.instance(replacementId);
    const movedTo = record?.unshelve?.relocation;
    expect(replacement).toMatchObject({
      state: 'running',
      availabilityZone: movedTo?.availabilityZone,
      subnetId: movedTo?.subnetId,
      placementGroupName: 'web',
      cpuCredits: 'standard',
    });
    expect(replacement?.privateIpAddress).not.toBe(ADDRESS);
    await expectAddressAndAttributesOn(local, replacementId, allocationId);
    expect(facts).toEqual([
      expect.objectContaining({
        path: 'slow',
        subnetId: movedTo?.subnetId,
        privateIpAddress: replacement?.privateIpAddress,
        notKept: [
          expect.objectContaining({ attribute: 'instanceId' }),
          expect.objectContaining({
            attribute: 'subnet',
            now: expect.stringContaining(movedTo?.subnetId ?? '-'),
          }),
          expect.objectContaining({
            attribute: 'privateIpAddress',
            was: ADDRESS,
            now: replacement?.privateIpAddress,
          }),
        ],
      }),
    ]);
  });

  it('refuses to shelve a running instance with stop protection, naming it, and changes nothing', async () => {
    const local = await start();
    const [instanceId = ''] = await launch(local, 1);
    await protect(local, instanceId, { DisableApiStop: { Value: true } });

    const answer = await request(local, 'shelve.json', { instanceIds: [instanceId], tenant: 'tenant-a' });
    await local.settleFor(MINUTE);

    expect(answer.result.results).toEqual([refusal(instanceId, 'StopProtected')]);
    expect(local.ec2.instance(instanceId)?.state).toBe('running');
    expect(local.ec2.volumes().filter((volume) => volume.tags['warmboot:shelved'] !== undefined)).toEqual([]);
  });
});

describe('Shelve answers remembered under the request id (DynamoDB Local conditions)', () => {
  const expiresAt = NOW / 1000 + 3600;
  /** A record a Shelve request just created (shelve.prepare). */
  const shelfRecord = (recordId: string): ShelfRecord =>
    recordFixture({ recordId, step: 'shelve.prepare', version: 1, nextDueAt: NOW });

  it('answers a request that created a record with that record, even once the instance link is gone', async () => {
    const local = await start();
    const store = records(local);
    const first = shelfRecord('sh-0123456789abcdef0-t8dsxs');
    expect(await local.run(() => store.create(first, { requestId: 'event-1', expiresAt }))).toEqual({
      created: true,
    });
    const unshelved = { ...first, step: 'unshelved' as const, version: 2, nextDueAt: null };
    expect(
      await local.run(() => store.update(first, unshelved, { unlinkInstanceId: first.instanceId })),
    ).toBe(true);

    const retried = await local.run(() =>
      store.create(shelfRecord('sh-0123456789abcdef0-t8dt2s'), { requestId: 'event-1', expiresAt }),
    );

    const answer = { id: first.instanceId, ok: true, recordId: first.recordId, created: true };
    expect(retried).toEqual({ created: false, remembered: answer });
    expect(await local.run(() => store.shelveAnswers('event-1', NOW))).toEqual(
      new Map([[first.instanceId, answer]]),
    );
    expect(await load(local, ['sh-0123456789abcdef0-t8dt2s'])).toEqual([]);
    expect(
      await local.run(() =>
        store.create(shelfRecord('sh-0123456789abcdef0-t8dt2s'), { requestId: 'event-2', expiresAt }),
      ),
    ).toEqual({ created: true });
  });

  it('removes an unshelved record without the instance link of a newer record of the same instance', async () => {
    const local = await start();
    const store = records(local);
    const first = shelfRecord('sh-0123456789abcdef0-t8dsxo');
    await local.run(() => store.create(first, { requestId: 'event-1', expiresAt }));
    const unshelved = { ...first, step: 'unshelved' as const, version: 2, nextDueAt: null };
    await local.run(() => store.update(first, unshelved, { unlinkInstanceId: first.instanceId }));
    const second = shelfRecord('sh-0123456789abcdef0-t8dsxq');
    await local.run(() => store.create(second, { requestId: 'event-2', expiresAt }));

    expect(await local.run(() => store.remove(unshelved))).toBe(true);

    expect(await load(local, [first.recordId])).toEqual([]);
    expect(await local.run(() => store.recordIdForInstance(first.instanceId))).toBe(second.recordId);
  });

  it('keeps the first answer of a request, and forgets it once expired', async () => {
    const local = await start();
    const store = records(local);
    const refused = {
      id: 'i-0123456789abcdef0',
      ok: false as const,
      error: { code: 'IncorrectState', message: 'stopping' },
    };
    const found = {
      id: 'i-0123456789abcdef0',
      ok: true as const,
      recordId: 'sh-0123456789abcdef0-t8dsxs',
      created: false,
    };

    expect(
      await local.run(() => store.rememberShelveAnswer({ requestId: 'event-1', expiresAt }, refused, NOW)),
    ).toEqual(refused);
    expect(
      await local.run(() => store.rememberShelveAnswer({ requestId: 'event-1', expiresAt }, found, NOW)),
    ).toEqual(refused);

    const later = (expiresAt + 1) * 1000;
    expect(await local.run(() => store.shelveAnswers('event-1', later))).toEqual(new Map());
    expect(
      await local.run(() =>
        store.rememberShelveAnswer({ requestId: 'event-1', expiresAt: expiresAt + 3600 }, found, later),
      ),
    ).toEqual(found);
  });
});

describe('the shelving sandbox scenario', () => {
  it('shelves 50 instances (10 on a Dedicated Host), offloads them and unshelves them all in place', async () => {
    const local = await startCloud({
      functions: ['shelving'],
      settings: {
        SHELVING_SETTINGS: JSON.stringify({ offloadAfterSeconds: -1, allowDataDeletion: false }),
        ...SHELVING_SCENARIO_BUDGET,
      },
    });

    const summary = await runShelvingScenario(local, { count: 50, onHost: 10 });

    expect(summary).toMatchObject({
      shelved: 50,
      offloaded: 50,
      unshelved: 50,
      failed: [],
      sameHost: 10,
      retainedVolumesLost: 0,
    });
    expect(summary.timeToReadySeconds['in-place']?.count).toBe(50);
  });
});

/**
 * Volumes encrypted with a customer managed KMS key (finding R4). EC2 uses the key as the caller:
 * the shelving role needs kms:CreateGrant, Decrypt, DescribeKey, GenerateDataKeyWithoutPlaintext
 * and ReEncrypt on it (ebs-encryption-requirements), which the stack grants only for the keys the
 * deployment names in `ebsKmsKeyArns`. Without them a start ends pending → stopped, a launch ends
 * terminated (Client.InternalError) and an attach is refused: the record fails, naming the key, and
 * keeps its volumes, instead of starting or launching again every round.
 */
describe('shelving volumes encrypted with a customer managed KMS key (R4)', () => {
  const KEY_ID = '1234abcd-12ab-34cd-56ef-1234567890ab';
  const KEY_ARN = `arn:aws:kms:us-east-1:123456789012:key/${KEY_ID}`;

  const startWithKeys = async (
    ebsKmsKeyArns: readonly string[],
    settings: Record<string, unknown> = {},
  ): Promise<LocalCloud> => {
    const cloud = await startCloud({
      functions: ['shelving'],
      settings: {
        SHELVING_SETTINGS: JSON.stringify({ offloadAfterSeconds: -1, allowDataDeletion: false, ...settings }),
      },
      iam: { ebsKmsKeyArns },
    });
    cloud.kms.createKey({ keyId: KEY_ID });
    return cloud;
  };

  /** A managed instance whose root and data volumes the owner encrypted with the key. */
  const launchEncrypted = async (local: LocalCloud): Promise<string> => {
    const imageId = local.ec2.registerImage({ name: 'al2023-encrypted', rootSizeGiB: 8 });
    const instanceId = await runOne(local, {
      ImageId: imageId,
      InstanceType: 'm7i.large',
      Placement: { AvailabilityZone: 'us-east-1a' },
      BlockDeviceMappings: [
        { DeviceName: '/dev/xvda', Ebs: { Encrypted: true, KmsKeyId: KEY_ARN } },
        { DeviceName: '/dev/sdf', Ebs: { VolumeSize: 20, Encrypted: true, KmsKeyId: KEY_ARN } },
      ],
      TagSpecifications: optedInInstanceTags('shelving', { 'warmboot:tenant': 'tenant-a' }),
    });
    await local.settleFor(MINUTE);
    return instanceId;
  };

  const calls = (local: LocalCloud, api: string): number => local.ec2.stats()[api]?.calls ?? 0;
  const retained = (local: LocalCloud, recordId: string) =>
    local.ec2.volumes().filter((volume) => volume.tags['warmboot:shelved'] === recordId);
  const kmsDenials = (local: LocalCloud) =>
    local.iam.denials().filter((denial) => denial.action.startsWith('kms:'));

  it('fails an in-place unshelve with EncryptionKeyUnusable when the deployment does not name the key: one start, volumes kept', async () => {
    const local = await startWithKeys([]);
    const instanceId = await launchEncrypted(local);
    const [recordId = ''] = await shelve(local, [instanceId]);
    const volumeIds = retained(local, recordId).map((volume) => volume.volumeId);
    const startsBefore = calls(local, 'StartInstances');

    const record = await unshelvedAfter(local, recordId, 30 * MINUTE);
    expect(record).toMatchObject({ step: 'failed', error: { code: 'EncryptionKeyUnusable' } });
    expect(record?.error?.message).toContain(KEY_ARN);
    expect(record?.error?.message).toContain('ebsKmsKeyArns');
    // Without the fix the saga started it again on every `stopped` for ever.
    expect(calls(local, 'StartInstances') - startsBefore).toBe(1);
    expect(local.ec2.instance(instanceId)).toMatchObject({
      state: 'stopped',
      stateReason: { code: 'Client.InternalError' },
    });
    expect(volumeIds).toHaveLength(2);
    for (const volumeId of volumeIds) expect(local.ec2.volume(volumeId)?.kmsKeyId).toBe(KEY_ARN);
    expect(kmsDenials(local)[0]).toMatchObject({
      functionId: 'shelving',
      operation: 'StartInstances via EC2',
      resource: KEY_ARN,
    });
  });

  it('fails the fast path at the first attach EC2 refuses for the key, launching once and keeping the volumes', async () => {
    const local = await startWithKeys([]);
    const instanceId = await launchEncrypted(local);
    const [recordId = ''] = await shelve(local, [instanceId]);
    await request(local, 'offload.json', { recordIds: [recordId] });
    await local.settleFor(5 * MINUTE);
    const before = { launches: calls(local, 'RunInstances'), attaches: calls(local, 'AttachVolume') };

    const record = await unshelvedAfter(local, recordId, 30 * MINUTE);
    expect(record).toMatchObject({ step: 'failed', error: { code: 'EncryptionKeyUnusable' } });
    expect(record?.error?.message).toMatch(/could not be attached.*CustomerKeyHasBeenRevoked/);
    expect(calls(local, 'RunInstances') - before.launches).toBe(1);
    expect(calls(local, 'AttachVolume') - before.attaches).toBe(1);
    const kept = retained(local, recordId);
    expect(kept.map((volume) => volume.state)).toEqual(['available', 'available']);
    expect(kmsDenials(local).map((denial) => denial.operation)).toContain('AttachVolume via EC2');
  });

  it('fails, launching once, when the account encrypts new volumes by default with a key the role may not use', async () => {
    const local = await startWithKeys([]);
    const [instanceId = ''] = await launch(local, 1);
    const [recordId = ''] = await shelve(local, [instanceId]);
    await request(local, 'offload.json', { recordIds: [recordId] });
    await local.settleFor(5 * MINUTE);
    // The replacement's fresh root is encrypted although the launch does not ask (encryption by default).
    local.ec2.setEbsEncryptionByDefault(true, KEY_ARN);
    const launchesBefore = calls(local, 'RunInstances');

    const record = await unshelvedAfter(local, recordId, 30 * MINUTE);
    expect(record).toMatchObject({ step: 'failed', error: { code: 'EncryptionKeyUnusable' } });
    expect(record?.error?.message).toContain('terminated at launch (Client.InternalError');
    expect(calls(local, 'RunInstances') - launchesBefore).toBe(1);
    expect(retained(local, recordId).map((volume) => volume.state)).toEqual(['available', 'available']);
  });

  it('after a replacement start EC2 refused for the key, Unshelve sent again resumes that replacement (fast path, not the snapshots)', async () => {
    const local = await startWithKeys([KEY_ARN], { replaceRootInPlace: false });
    const instanceId = await launchEncrypted(local);
    const [recordId = ''] = await shelve(local, [instanceId]);
    const [shelved] = await load(local, [recordId]);
    const rootId = shelved?.volumes.find((volume) => volume.root)?.volumeId ?? '';
    await request(local, 'offload.json', { recordIds: [recordId] });
    await local.settleFor(5 * MINUTE);
    // The key goes away once the retained root is on the stopped replacement, before its start
    // (while the request's invocation still follows the record).
    await local.run(async () => {
      const answer = request(local, 'unshelve.json', { recordIds: [recordId] });
      for (let tick = 0; tick < 2_400; tick += 1) {
        if (local.ec2.volume(rootId)?.attachment?.state === 'attached') break;
        await local.settleFor(250);
      }
      local.kms.setKeyState(KEY_ARN, 'Disabled');
      await answer;
    });
    await local.settleFor(10 * MINUTE);
    const [refused] = await load(local, [recordId]);
    expect(refused).toMatchObject({ step: 'failed', error: { code: 'EncryptionKeyUnusable' } });
    const replacementId = refused?.unshelve?.replacementInstanceId ?? '';
    expect(local.ec2.instance(replacementId)?.state).toBe('stopped');

    local.kms.setKeyState(KEY_ARN, 'Enabled');
    const record = await unshelvedAfter(local, recordId, 30 * MINUTE);

    expect(record).toMatchObject({
      step: 'unshelved',
      unshelve: { path: 'fast', replacementInstanceId: replacementId },
    });
    expect(local.ec2.instance(replacementId)?.state).toBe('running');
    expect(local.ec2.volume(rootId)?.attachment?.instanceId).toBe(replacementId);
    // Its fresh root, detached in the first attempt's swap, is deleted by this attempt's finalize.
    expect(
      local.ec2.volumes().filter((volume) => volume.tags['warmboot:replacement-root'] !== undefined),
    ).toEqual([]);
  });

  it('shelves, offloads and unshelves encrypted volumes on the fast path when the deployment names the key', async () => {
    const local = await startWithKeys([KEY_ARN]);
    const instanceId = await launchEncrypted(local);
    const [recordId = ''] = await shelve(local, [instanceId]);
    const [shelved] = await load(local, [recordId]);
    await request(local, 'offload.json', { recordIds: [recordId] });
    await local.settleFor(5 * MINUTE);

    const record = await unshelvedAfter(local, recordId, 10 * MINUTE);
    expect(record).toMatchObject({ step: 'unshelved', unshelve: { path: 'in-place' } });
    const replacementId = record?.unshelve?.replacementInstanceId ?? '';
    expect(local.ec2.instance(replacementId)?.state).toBe('running');
    const root = shelved?.volumes.find((volume) => volume.root);
    expect(local.ec2.volume(root?.volumeId ?? '')).toMatchObject({
      kmsKeyId: KEY_ARN,
      attachment: { instanceId: replacementId, device: '/dev/xvda' },
    });
    expect(kmsDenials(local)).toEqual([]);
  });
});
