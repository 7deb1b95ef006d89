import type { ShelvingEc2 } from '../../../functions/shelving/adapters/ec2';
import { memoryShelfStore } from '../../../functions/shelving/adapters/memory-store';
import type { Rounds } from '../../../functions/shelving/application/requests';
import { RoundRunner } from '../../../functions/shelving/application/rounds';
import { defaultShelvingSettings, type ShelvingSettings } from '../../../functions/shelving/config';
import type { ShelvingDependencies } from '../../../functions/shelving/dependencies';
import type {
  ObservedInstance,
  ObservedRootReplacement,
  ObservedVolume,
  RetainedVolume,
  ShelfRecord,
} from '../../../functions/shelving/domain/types';

export const NOW = Date.UTC(2026, 0, 5, 8, 0, 0);

/** An EC2 that answers every describe with nothing and counts every call. */
export const countingEc2 = (): ShelvingEc2 & { calls: string[] } => {
  const calls: string[] = [];
  const empty = async () => [];
  return new Proxy({ calls } as unknown as ShelvingEc2 & { calls: string[] }, {
    get(_target, property) {
      if (property === 'calls') return calls;
      return async () => {
        calls.push(String(property));
        if (String(property) === 'describeShelvedSnapshots' || String(property) === 'describeHostRoom')
          return new Map();
        return empty();
      };
    },
  });
};

/** Rounds that never run: a request is only recorded (a driver runs the rounds, or none does). */
export const RECORD_ONLY: Rounds = {
  advance: async () => ({ records: [], throttled: 0, acted: 0 }),
};

/**
 * The shelving use cases on a memory store and a clock the test moves (sleeps advance it). With
 * `killAfterStep`, the store's first write of that step is the last thing a handling does: the
 * write lands, then the handling dies (Lambda timeout, crash), as a kill after N calls does.
 */
export const shelvingOnClock = (
  ec2: ShelvingEc2,
  killAfterStep?: ShelfRecord['step'],
  settings: ShelvingSettings = defaultShelvingSettings,
) => {
  const memory = memoryShelfStore();
  const clock = { at: NOW };
  const kill = { armed: killAfterStep !== undefined };
  const store: typeof memory = {
    ...memory,
    records: memory.records,
    async update(expected, next, options) {
      const written = await memory.update(expected, next, options);
      if (written && kill.armed && next.step === killAfterStep) {
        kill.armed = false;
        throw new Error('killed after the write that moved the record');
      }
      return written;
    },
  };
  const deps: ShelvingDependencies = {
    ec2,
    store,
    facts: { publish: async () => {} },
    clock: {
      now: () => clock.at,
      sleep: async (ms) => {
        clock.at += ms;
      },
    },
    settings,
  };
  return { deps, rounds: new RoundRunner(deps), store: memory, clock };
};

export const shelvingWith = (ec2: ShelvingEc2) => {
  const store = memoryShelfStore();
  const facts: unknown[] = [];
  const deps: ShelvingDependencies = {
    ec2,
    store,
    facts: { publish: async (published) => void facts.push(...published) },
    clock: { now: () => NOW, sleep: async () => {} },
    settings: defaultShelvingSettings,
  };
  return { deps, store, facts };
};

/** The volumes of the instance these fakes shelve: its root, and one data volume. */
export const ROOT_AND_DATA_VOLUMES = [
  { volumeId: 'vol-0000000000000000a', deviceName: '/dev/xvda', root: true },
  { volumeId: 'vol-0000000000000000b', deviceName: '/dev/sdf', root: false },
] as const;

export const instance = (overrides: Partial<ObservedInstance> = {}): ObservedInstance => ({
  instanceId: 'i-0123456789abcdef0',
  state: 'running',
  imageId: 'ami-0123456789abcdef0',
  instanceType: 'm7i.large',
  availabilityZone: 'us-east-1a',
  subnetId: 'subnet-0123456789abcdef0',
  securityGroupIds: ['sg-0123456789abcdef0'],
  tenancy: 'default',
  rootDeviceName: '/dev/xvda',
  rootDeviceType: 'ebs',
  blockDevices: ROOT_AND_DATA_VOLUMES.map(({ deviceName, volumeId }) => ({
    deviceName,
    volumeId,
    deleteOnTermination: true,
  })),
  tags: { 'warmboot:shelving': 'true', 'warmboot:tenant': 'tenant-a', Name: 'web-1' },
  ...overrides,
});

export const volume = (volumeId: string, overrides: Partial<ObservedVolume> = {}): ObservedVolume => ({
  volumeId,
  state: 'in-use',
  availabilityZone: 'us-east-1a',
  sizeGiB: 8,
  volumeType: 'gp3',
  tags: {},
  ...overrides,
});

export const retained = (volumeId: string, deviceName: string, root: boolean): RetainedVolume => ({
  volumeId,
  deviceName,
  root,
  sizeGiB: 8,
  volumeType: 'gp3',
  deleteOnTermination: true,
  snapshotId: `snap-${volumeId.slice(4)}`,
});

/** The id of the record `record()` makes, unless told otherwise. */
export const RECORD_ID = 'sh-0123456789abcdef0-t8dsxz';
/** The replacement an unshelve of that record launches, and the fresh root it launches with. */
export const REPLACEMENT = 'i-0fffffffffffffff1';
export const FRESH = 'vol-0ffffffffffffff01';
/** What a replacement and its fresh root are tagged with: the recorded tags and replacement-for. */
export const REPLACEMENT_TAGS = {
  Name: 'web-1',
  'warmboot:shelving': 'true',
  'warmboot:tenant': 'tenant-a',
  'warmboot:replacement-for': RECORD_ID,
};

/**
 * An EC2 showing the replacement running on its fresh root with the data volume attached and the
 * retained root available: the in-place swap's next call is CreateReplaceRootVolumeTask, or its
 * wait for the task `rootReplacements` answers. `overrides` replaces further methods.
 */
export const replacementWithDataAttached = (
  rootReplacements: () => readonly ObservedRootReplacement[],
  overrides: Partial<Record<keyof ShelvingEc2, (...args: never[]) => Promise<unknown>>> = {},
): ShelvingEc2 & { calls: string[] } => {
  const counting = countingEc2();
  return new Proxy(counting, {
    get(target, property) {
      const override = overrides[property as keyof ShelvingEc2];
      if (override) return override;
      if (property === 'describeInstances') {
        return async () => [
          instance({
            instanceId: REPLACEMENT,
            tags: REPLACEMENT_TAGS,
            blockDevices: [
              { deviceName: '/dev/xvda', volumeId: FRESH, deleteOnTermination: true },
              { deviceName: '/dev/sdf', volumeId: 'vol-0000000000000000b', deleteOnTermination: false },
            ],
          }),
        ];
      }
      if (property === 'describeVolumes') {
        return async () => [
          volume(FRESH, {
            attachment: { instanceId: REPLACEMENT, device: '/dev/xvda', state: 'attached' },
            tags: REPLACEMENT_TAGS,
          }),
          volume('vol-0000000000000000a', { state: 'available' }),
          volume('vol-0000000000000000b', {
            attachment: { instanceId: REPLACEMENT, device: '/dev/sdf', state: 'attached' },
          }),
        ];
      }
      if (property === 'describeRootReplacements') {
        return async () => {
          target.calls.push('describeRootReplacements');
          return rootReplacements();
        };
      }
      return Reflect.get(target, property);
    },
  });
};

export const record = (overrides: Partial<ShelfRecord> = {}): ShelfRecord => ({
  recordId: RECORD_ID,
  tenant: 'tenant-a',
  instanceId: 'i-0123456789abcdef0',
  config: {
    imageId: 'ami-0123456789abcdef0',
    instanceType: 'm7i.large',
    availabilityZone: 'us-east-1a',
    subnetId: 'subnet-0123456789abcdef0',
    securityGroupIds: ['sg-0123456789abcdef0'],
    rootDeviceName: '/dev/xvda',
    tenancy: 'default',
  },
  tags: { Name: 'web-1', 'warmboot:shelving': 'true', 'warmboot:tenant': 'tenant-a' },
  volumes: ROOT_AND_DATA_VOLUMES.map(({ volumeId, deviceName, root }) =>
    retained(volumeId, deviceName, root),
  ),
  snapshotOnShelve: true,
  offloadAfterSeconds: 3600,
  shelvedAt: NOW,
  offloadAt: null,
  step: 'offloaded',
  version: 3,
  stepSince: NOW,
  nextDueAt: null,
  ...overrides,
});

/** A record in the in-place swap, its replacement launched, due now. */
export const REPLACING_ROOT = record({
  step: 'unshelve.replace-root',
  nextDueAt: NOW,
  unshelve: {
    requestId: 'r',
    requestedAt: NOW - 30_000,
    attempt: 0,
    path: 'in-place',
    replacementInstanceId: REPLACEMENT,
  },
});
