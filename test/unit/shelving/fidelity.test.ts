import { describe, expect, it } from 'vitest';
import { defaultShelvingSettings } from '../../../functions/shelving/config';
import {
  fastLaunchRequest,
  planLaunchBatches,
  slowLaunchRequest,
} from '../../../functions/shelving/domain/bulk';
import {
  attributesToRead,
  detailsWanted,
  isBurstableType,
  keptAttributes,
} from '../../../functions/shelving/domain/fidelity';
import { planShelve, requestOffload } from '../../../functions/shelving/domain/requests';
import { nextStep, privateIpInUse } from '../../../functions/shelving/domain/saga';
import type { InstanceDetails, Observation, ShelfRecord } from '../../../functions/shelving/domain/types';
import { instance, NOW, REPLACEMENT, record, volume } from './fakes';

/** "Unshelve brings the instance back as it was" (finding W2): the pure decisions. */

const USER_DATA = Buffer.from('#!/bin/sh\necho hi\n').toString('base64');
const ELASTIC_IP = { allocationId: 'eipalloc-0123456789abcdef0', publicIp: '198.51.100.7' };
const DETAILS: InstanceDetails = {
  instanceId: 'i-0123456789abcdef0',
  userData: USER_DATA,
  disableApiTermination: true,
  disableApiStop: true,
  elasticIp: ELASTIC_IP,
  cpuCredits: 'standard',
  placementGroupStrategy: 'cluster',
};

/** What a shelve records of the instance (DETAILS and what DescribeInstances shows). */
const AS_IT_WAS = {
  privateIpAddress: '172.31.5.10',
  userData: USER_DATA,
  disableApiTermination: true,
  disableApiStop: true,
  placementGroup: { groupName: 'hpc', strategy: 'cluster' },
  cpuCredits: 'standard',
  elasticIp: ELASTIC_IP,
} as const;

/** A record shelved from an instance with all of it, at `step`. */
const shelvedAsItWas = (overrides: Partial<ShelfRecord> = {}): ShelfRecord => {
  const base = record();
  return record({
    config: { ...base.config, instanceType: 't3.large', ...AS_IT_WAS },
    ...overrides,
  });
};

const replacement = (state: 'running' | 'stopped', privateIpAddress = '172.31.5.10') =>
  instance({
    instanceId: REPLACEMENT,
    state,
    privateIpAddress,
    placementGroupName: 'hpc',
    tags: { Name: 'web-1', 'warmboot:replacement-for': 'sh-0123456789abcdef0-t8dsxz' },
    blockDevices: [],
  });

const observe = (parts: Partial<Observation> = {}): Observation => ({
  volumes: new Map(),
  snapshots: [],
  ...parts,
});

describe('what a shelve records', () => {
  it('records the private address, placement group and the details DescribeInstances does not show', () => {
    const shelved = planShelve(
      { instanceId: 'i-0123456789abcdef0' },
      instance({ state: 'stopped', privateIpAddress: '172.31.5.10', placementGroupName: 'hpc' }),
      new Map([
        ['vol-0000000000000000a', volume('vol-0000000000000000a')],
        ['vol-0000000000000000b', volume('vol-0000000000000000b')],
      ]),
      defaultShelvingSettings,
      NOW,
      DETAILS,
    );
    expect(shelved.ok && shelved.record.config).toMatchObject(AS_IT_WAS);
  });

  it('records nothing it did not see', () => {
    expect(keptAttributes(instance(), undefined)).toEqual({});
  });

  it('reads details only of instances it may shelve, and credit options only of burstable types', () => {
    expect(detailsWanted(instance())).toBe(true);
    expect(detailsWanted(instance({ tags: { 'warmboot:tenant': 'tenant-a' } }))).toBe(false);
    expect(detailsWanted(instance({ state: 'stopping' }))).toBe(false);
    expect(detailsWanted(instance({ rootDeviceType: 'instance-store' }))).toBe(false);
    expect(
      ['t2.micro', 't3.large', 't3a.small', 't4g.medium', 'm7i.large', 'c7g.xlarge'].map(isBurstableType),
    ).toEqual([true, true, true, true, false, false]);
  });

  it('refuses a running instance with stop protection, and shelves a stopped one', () => {
    const volumes = new Map([
      ['vol-0000000000000000a', volume('vol-0000000000000000a')],
      ['vol-0000000000000000b', volume('vol-0000000000000000b')],
    ]);
    const running = planShelve(
      { instanceId: 'i-0123456789abcdef0' },
      instance(),
      volumes,
      defaultShelvingSettings,
      NOW,
      DETAILS,
    );
    const stopped = planShelve(
      { instanceId: 'i-0123456789abcdef0' },
      instance({ state: 'stopped' }),
      volumes,
      defaultShelvingSettings,
      NOW,
      DETAILS,
    );
    expect(running).toMatchObject({ ok: false, error: { code: 'StopProtected' } });
    expect(stopped.ok).toBe(true);
  });

  it('refuses an Offload while the instance has termination protection, and never offloads it on a timer', () => {
    const shelved = shelvedAsItWas({ step: 'shelved' });
    expect(requestOffload(shelved, true)).toMatchObject({
      ok: false,
      error: { code: 'TerminationProtected' },
    });
    expect(requestOffload(shelved, false)).toMatchObject({ ok: true, to: 'offload.terminate' });

    const snapshotted = nextStep(
      shelvedAsItWas({ step: 'shelve.snapshot', offloadAfterSeconds: 0 }),
      observe({
        snapshots: record().volumes.map((retained) => ({
          snapshotId: retained.snapshotId ?? '',
          volumeId: retained.volumeId,
          state: 'completed' as const,
          startedAt: NOW,
        })),
      }),
      NOW,
      defaultShelvingSettings,
    );
    expect(snapshotted).toMatchObject({ to: 'shelved', set: { offloadAt: null }, recheckAt: null });
  });
});

describe('what a launch asks for', () => {
  it('asks for the private address on a launch of one, with the group and credit option, never user data on the fast path', () => {
    const request = fastLaunchRequest(shelvedAsItWas(), { batchId: 'ub-1', size: 1 }, true);
    expect(request).toMatchObject({
      privateIpAddress: '172.31.5.10',
      cpuCredits: 'standard',
      placement: { placementGroup: { groupName: 'hpc' } },
      maxCount: 1,
    });
    expect(request.userData).toBeUndefined();
  });

  it('launches every record that keeps its address alone, and batches them when addresses are not kept', () => {
    const records = ['a', 'b', 'c'].map((suffix, index) =>
      shelvedAsItWas({
        recordId: `sh-0123456789abcdef${index}-t8dsx${suffix}`,
        config: { ...shelvedAsItWas().config, privateIpAddress: `172.31.5.${10 + index}` },
      }),
    );
    const kept = planLaunchBatches(records, new Map(), 100, true);
    const batched = planLaunchBatches(records, new Map(), 100, false);
    expect(kept.batches.map((batch) => [batch.request.maxCount, batch.request.privateIpAddress])).toEqual([
      [1, '172.31.5.10'],
      [1, '172.31.5.11'],
      [1, '172.31.5.12'],
    ]);
    expect(batched.batches.map((batch) => [batch.request.maxCount, batch.request.privateIpAddress])).toEqual([
      [3, undefined],
    ]);
  });

  it('restores with user data; in another AZ without the address and outside a cluster group', () => {
    const here = slowLaunchRequest(shelvedAsItWas(), true);
    expect(here).toMatchObject({
      privateIpAddress: '172.31.5.10',
      userData: USER_DATA,
      placement: { placementGroup: { groupName: 'hpc' } },
    });

    const moved = shelvedAsItWas({
      unshelve: {
        requestId: 'event-1',
        requestedAt: NOW,
        attempt: 1,
        relocation: {
          subnetId: 'subnet-0fedcba9876543210',
          availabilityZone: 'us-east-1b',
          reason: 'us-east-1a is impaired',
          refusedZones: ['us-east-1a'],
        },
      },
    });
    const elsewhere = slowLaunchRequest(moved, true);
    expect(elsewhere).toMatchObject({ subnetId: 'subnet-0fedcba9876543210', userData: USER_DATA });
    expect(elsewhere.privateIpAddress).toBeUndefined();
    expect(elsewhere.placement.placementGroup).toBeUndefined();
  });

  it('stops asking for an address EC2 said is in use: a new attempt, at once', () => {
    const launching = shelvedAsItWas({
      step: 'unshelve.launch-from-snapshots',
      unshelve: { requestId: 'e', requestedAt: NOW, attempt: 1 },
    });
    const decision = privateIpInUse(launching, NOW);
    expect(decision).toMatchObject({
      recheckAt: NOW,
      set: { unshelve: { privateIpInUse: true, attempt: 2 } },
    });
    const next = { ...launching, unshelve: decision.set?.unshelve };
    expect(slowLaunchRequest(next, true).privateIpAddress).toBeUndefined();
    expect(slowLaunchRequest(next, true).clientToken).not.toBe(
      slowLaunchRequest(launching, true).clientToken,
    );
  });
});

describe('what is set on the replacement, and what is said', () => {
  const starting = (): ShelfRecord =>
    shelvedAsItWas({
      step: 'unshelve.start-replacement',
      unshelve: {
        requestId: 'event-1',
        requestedAt: NOW - 60_000,
        attempt: 1,
        path: 'fast',
        replacementInstanceId: REPLACEMENT,
      },
    });
  const decide = (r: ShelfRecord, o: Observation) => nextStep(r, o, NOW, defaultShelvingSettings);

  it('sets user data while the replacement is stopped, then starts it', () => {
    expect(attributesToRead(starting(), replacement('stopped'))).toEqual({
      attributes: ['userData'],
      elasticIp: false,
    });
    expect(
      decide(
        starting(),
        observe({ replacement: replacement('stopped'), replacementAttributes: { userData: null } }),
      ).actions,
    ).toEqual([{ kind: 'set-user-data', instanceId: REPLACEMENT, userData: USER_DATA }]);
    expect(
      decide(
        starting(),
        observe({ replacement: replacement('stopped'), replacementAttributes: { userData: USER_DATA } }),
      ).actions,
    ).toEqual([{ kind: 'start', instanceId: REPLACEMENT }]);
  });

  it('sets protection and associates the Elastic IP once running, then says only the instance id changed', () => {
    expect(attributesToRead(starting(), replacement('running'))).toEqual({
      attributes: ['disableApiTermination', 'disableApiStop'],
      elasticIp: true,
    });
    const restoring = decide(
      starting(),
      observe({
        replacement: replacement('running'),
        replacementAttributes: { disableApiTermination: false, disableApiStop: false },
        elasticIp: { ...ELASTIC_IP },
      }),
    );
    expect(restoring.to).toBeUndefined();
    expect(restoring.actions).toEqual([
      { kind: 'set-protection', instanceId: REPLACEMENT, attribute: 'disableApiTermination', value: true },
      { kind: 'set-protection', instanceId: REPLACEMENT, attribute: 'disableApiStop', value: true },
      { kind: 'associate-address', allocationId: ELASTIC_IP.allocationId, instanceId: REPLACEMENT },
    ]);

    const ready = decide(
      starting(),
      observe({
        replacement: replacement('running'),
        replacementAttributes: { disableApiTermination: true, disableApiStop: true },
        elasticIp: { ...ELASTIC_IP, instanceId: REPLACEMENT },
      }),
    );
    expect(ready).toMatchObject({ to: 'unshelve.finalize', actions: [] });
    expect(ready.facts?.[0]?.detail).toMatchObject({
      privateIpAddress: '172.31.5.10',
      notKept: [{ attribute: 'instanceId', was: 'i-0123456789abcdef0', now: REPLACEMENT }],
    });
  });

  it('never takes the Elastic IP from another instance, and says so', () => {
    const ready = decide(
      starting(),
      observe({
        replacement: replacement('running', '172.31.9.9'),
        replacementAttributes: { disableApiTermination: true, disableApiStop: true },
        elasticIp: { ...ELASTIC_IP, instanceId: 'i-0aaaaaaaaaaaaaaa1' },
      }),
    );
    expect(ready.actions).toEqual([]);
    expect(ready.facts?.[0]?.detail).toMatchObject({
      notKept: [
        { attribute: 'instanceId' },
        { attribute: 'elasticIp', reason: expect.stringContaining('i-0aaaaaaaaaaaaaaa1') },
        {
          attribute: 'privateIpAddress',
          was: '172.31.5.10',
          now: '172.31.9.9',
          reason: 'EC2 assigned another address',
        },
      ],
    });
  });

  it('says an Elastic IP released since the shelve is not kept, and waits while it is on the terminating original', () => {
    const released = decide(
      starting(),
      observe({
        replacement: replacement('running'),
        replacementAttributes: { disableApiTermination: true, disableApiStop: true },
        elasticIp: null,
      }),
    );
    expect(released.facts?.[0]?.detail).toMatchObject({
      notKept: [
        { attribute: 'instanceId' },
        { attribute: 'elasticIp', reason: expect.stringContaining('released') },
      ],
    });

    const onOriginal = decide(
      starting(),
      observe({
        replacement: replacement('running'),
        replacementAttributes: { disableApiTermination: true, disableApiStop: true },
        elasticIp: { ...ELASTIC_IP, instanceId: 'i-0123456789abcdef0' },
      }),
    );
    expect(onOriginal).toMatchObject({ actions: [], reason: expect.stringContaining('while it terminates') });
    expect(onOriginal.to).toBeUndefined();
  });
});
