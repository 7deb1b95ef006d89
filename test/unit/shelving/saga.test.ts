import { describe, expect, it } from 'vitest';
import { defaultShelvingSettings } from '../../../functions/shelving/config';
import { slowLaunchRequest } from '../../../functions/shelving/domain/bulk';
import { LAUNCH_REISSUE_MS, nextStep, slowLaunchRefused } from '../../../functions/shelving/domain/saga';
import type {
  Observation,
  ObservedInstance,
  ObservedVolume,
  ShelfRecord,
  Step,
  UnshelveState,
  ZoneState,
} from '../../../functions/shelving/domain/types';
import { FRESH, instance, NOW, RECORD_ID, REPLACEMENT, REPLACEMENT_TAGS, record, volume } from './fakes';

const shelvedTag = { 'warmboot:shelved': RECORD_ID };
/** The safety snapshots of `record()`'s two volumes, as DescribeSnapshots lists them. */
const SAFETY_SNAPSHOTS = record().volumes.map((retained) => ({
  snapshotId: retained.snapshotId ?? '',
  volumeId: retained.volumeId,
  state: 'completed' as const,
  startedAt: NOW,
}));
const observe = (parts: Partial<Observation> & { volumeList?: ObservedVolume[] } = {}): Observation => ({
  volumes: new Map((parts.volumeList ?? []).map((v) => [v.volumeId, v])),
  snapshots: parts.snapshots ?? SAFETY_SNAPSHOTS,
  ...(parts.instance ? { instance: parts.instance } : {}),
  ...(parts.replacement ? { replacement: parts.replacement } : {}),
  ...(parts.attachSlots !== undefined ? { attachSlots: parts.attachSlots } : {}),
});
const decide = (r: ReturnType<typeof record>, o: Observation) => nextStep(r, o, NOW, defaultShelvingSettings);
/** `observation` with the safety snapshot of `volumeId` gone from what DescribeSnapshots lists. */
const safetySnapshotGone = (volumeId: string, observation: Observation): Observation => ({
  ...observation,
  snapshots: SAFETY_SNAPSHOTS.filter((snapshot) => snapshot.volumeId !== volumeId),
});

/** Both retained volumes detached and available in the recorded AZ, as an unshelve finds them. */
const atRest = (): ObservedVolume[] => [
  volume('vol-0000000000000000a', { state: 'available' }),
  volume('vol-0000000000000000b', { state: 'available' }),
];
/** Both retained volumes tagged as the record's (plus `tags`), as shelving leaves them. */
const shelvedVolumes = (tags: Record<string, string> = {}, more: Partial<ObservedVolume> = {}) =>
  record().volumes.map((retained) =>
    volume(retained.volumeId, { tags: { ...shelvedTag, ...tags }, ...more }),
  );
/** The instance with every volume kept on termination (DeleteOnTermination false), as prepare leaves it. */
const keptInstance = (overrides: Partial<ObservedInstance> = {}) =>
  instance({
    blockDevices: instance().blockDevices.map((d) => ({ ...d, deleteOnTermination: false })),
    ...overrides,
  });

/** The devices of the shelved instance: the retained root and data volume. */
const RETAINED_DEVICES = instance().blockDevices;
const replacement = (
  state: 'running' | 'stopped',
  devices: readonly { deviceName: string; volumeId: string }[],
) =>
  instance({
    instanceId: REPLACEMENT,
    state,
    tags: REPLACEMENT_TAGS,
    blockDevices: devices.map((d) => ({ ...d, deleteOnTermination: false })),
  });
/** The replacement's fresh root, attached at the root device and tagged like the replacement. */
const freshRoot = volume(FRESH, {
  attachment: { instanceId: REPLACEMENT, device: '/dev/xvda', state: 'attached' },
  tags: REPLACEMENT_TAGS,
});
/** A retained volume attached to the replacement at `device`. */
const onReplacement = (volumeId: string, device: string, state: 'attaching' | 'attached' = 'attached') =>
  volume(volumeId, { attachment: { instanceId: REPLACEMENT, device, state } });

/** A record at an unshelve `step`, with this unshelve state of request 'r'. */
const unshelving = (
  step: Step,
  unshelve: Omit<UnshelveState, 'requestId'>,
  overrides: Partial<ShelfRecord> = {},
): ShelfRecord => record({ ...overrides, step, unshelve: { requestId: 'r', ...unshelve } });
/** A record on the fast path at `step`, its replacement known. */
const swapping = (
  step: Step,
  requestedAt: number,
  attempt: number,
  more: Partial<UnshelveState> = {},
  overrides: Partial<ShelfRecord> = {},
): ShelfRecord =>
  unshelving(
    step,
    { requestedAt, attempt, path: 'fast', replacementInstanceId: REPLACEMENT, ...more },
    overrides,
  );
/** A record on the slow path, launching from the safety snapshots. */
const launchingFromSnapshots = (
  unshelve: Omit<UnshelveState, 'requestId' | 'path'>,
  overrides: Partial<ShelfRecord> = {},
): ShelfRecord => unshelving('unshelve.launch-from-snapshots', { ...unshelve, path: 'slow' }, overrides);

describe('shelve steps', () => {
  it('keeps every volume before stopping: first the shelved tag, then DeleteOnTermination false', () => {
    const untagged = decide(
      record({ step: 'shelve.prepare' }),
      observe({
        instance: instance(),
        volumeList: [volume('vol-0000000000000000a'), volume('vol-0000000000000000b')],
      }),
    );
    // IAM lets ModifyInstanceAttribute change only managed volumes: the tags go on in a round of their own.
    const tagged = decide(
      record({ step: 'shelve.prepare' }),
      observe({ instance: instance(), volumeList: shelvedVolumes({ 'warmboot:shelving': 'true' }) }),
    );

    expect(untagged.actions).toEqual([
      {
        kind: 'tag',
        resourceIds: ['vol-0000000000000000a', 'vol-0000000000000000b'],
        tags: { ...shelvedTag, 'warmboot:shelving': 'true' },
      },
    ]);
    expect(tagged.actions).toEqual([
      {
        kind: 'set-delete-on-termination',
        instanceId: 'i-0123456789abcdef0',
        devices: [
          { deviceName: '/dev/xvda', deleteOnTermination: false },
          { deviceName: '/dev/sdf', deleteOnTermination: false },
        ],
      },
    ]);
  });

  it('moves on once EC2 shows the volumes kept (a repeated prepare does nothing)', () => {
    const decision = decide(
      record({ step: 'shelve.prepare' }),
      observe({ instance: keptInstance(), volumeList: shelvedVolumes() }),
    );

    expect(decision).toMatchObject({ to: 'shelve.stop', actions: [] });
  });

  it('records the safety snapshots and becomes shelved with the offload timer', () => {
    const decision = decide(
      record({ step: 'shelve.snapshot', volumes: record().volumes.map(({ snapshotId: _s, ...v }) => v) }),
      observe({
        snapshots: [
          { snapshotId: 'snap-1', volumeId: 'vol-0000000000000000a', state: 'pending', startedAt: NOW },
          { snapshotId: 'snap-2', volumeId: 'vol-0000000000000000b', state: 'pending', startedAt: NOW },
        ],
      }),
    );

    expect(decision).toMatchObject({
      to: 'shelved',
      set: { offloadAt: NOW + 3_600_000, volumes: [{ snapshotId: 'snap-1' }, { snapshotId: 'snap-2' }] },
    });
    expect(decision.facts?.[0]).toMatchObject({
      detailType: 'Instance Shelved',
      detail: { shelvedVolumeGiB: 16 },
    });
  });

  it('never adopts a snapshot tagged with the record but started before the snapshot step (L5)', () => {
    const planted = {
      volumeId: 'vol-0000000000000000a',
      state: 'completed' as const,
      startedAt: NOW - 24 * 3_600_000,
    };
    const decision = decide(
      record({
        step: 'shelve.snapshot',
        stepSince: NOW,
        volumes: record().volumes.map(({ snapshotId: _s, ...v }) => v),
      }),
      observe({
        snapshots: [
          { ...planted, snapshotId: 'snap-old-a' },
          { ...planted, volumeId: 'vol-0000000000000000b', snapshotId: 'snap-old-b' },
        ],
      }),
    );

    expect(decision).toMatchObject({ actions: [{ kind: 'snapshot' }] });
    expect(decision.to).toBeUndefined();
  });
});

describe('offload', () => {
  it('never terminates while EC2 shows a volume that would be deleted with the instance', () => {
    const stopped = instance({
      state: 'stopped',
      blockDevices: [
        { deviceName: '/dev/xvda', volumeId: 'vol-0000000000000000a', deleteOnTermination: true },
        { deviceName: '/dev/sdf', volumeId: 'vol-0000000000000000b', deleteOnTermination: false },
      ],
    });
    const decision = decide(
      record({ step: 'offload.terminate' }),
      observe({ instance: stopped, volumeList: shelvedVolumes() }),
    );

    expect(decision.actions.map((a) => a.kind)).toEqual(['set-delete-on-termination']);
  });

  it('never terminates while a volume attached after shelving would be deleted with the instance (L6)', () => {
    const stopped = instance({
      state: 'stopped',
      blockDevices: [
        ...keptInstance().blockDevices,
        { deviceName: '/dev/sdg', volumeId: 'vol-0000000000000000c', deleteOnTermination: true },
      ],
    });
    const decision = decide(
      record({ step: 'offload.terminate' }),
      observe({ instance: stopped, volumeList: [...shelvedVolumes(), volume('vol-0000000000000000c')] }),
    );

    expect(decision.actions).toEqual([]);
    expect(decision).toMatchObject({
      to: 'failed',
      set: { error: { code: 'UnrecordedVolume', message: expect.stringContaining('vol-0000000000000000c') } },
    });
  });

  it('terminates once volumes are kept and tagged, and reports offloaded when the instance is gone', () => {
    const stopped = keptInstance({ state: 'stopped' });
    const volumes = shelvedVolumes();

    expect(
      decide(record({ step: 'offload.terminate' }), observe({ instance: stopped, volumeList: volumes }))
        .actions,
    ).toEqual([{ kind: 'terminate', instanceId: 'i-0123456789abcdef0' }]);
    expect(decide(record({ step: 'offload.terminate' }), observe({ volumeList: volumes }))).toMatchObject({
      to: 'offloaded',
    });
  });
});

describe('unshelve path choice', () => {
  it('takes the fast path when every retained volume is there in the AZ', () => {
    const decision = decide(record({ step: 'unshelve.choose' }), observe({ volumeList: atRest() }));

    expect(decision).toMatchObject({ to: 'unshelve.launch', set: { unshelve: { path: 'fast' } } });
  });

  it('takes the slow path from the snapshots when a volume is gone, saying so', () => {
    const decision = decide(
      record({ step: 'unshelve.choose' }),
      observe({ volumeList: [volume('vol-0000000000000000a', { state: 'available' })] }),
    );

    expect(decision).toMatchObject({
      to: 'unshelve.launch-from-snapshots',
      set: { unshelve: { path: 'slow', reason: expect.stringContaining('vol-0000000000000000b is gone') } },
    });
  });
});

describe('unshelve into another AZ when the recorded one is unusable', () => {
  const VPC = 'vpc-0a1b2c3d4e5f60718';
  const RECORDED_SUBNET = 'subnet-0123456789abcdef0';
  const subnet = (subnetId: string, availabilityZone: string, free = 4000, mapPublicIpOnLaunch = false) => ({
    subnetId,
    vpcId: VPC,
    availabilityZone,
    availableIpAddressCount: free,
    mapPublicIpOnLaunch,
  });
  const placement = (
    zones: Record<string, ZoneState>,
    subnets = [
      subnet(RECORDED_SUBNET, 'us-east-1a'),
      subnet('subnet-0bbbbbbbbbbbbbbb1', 'us-east-1b', 100),
      subnet('subnet-0ccccccccccccccc1', 'us-east-1c', 3000),
      subnet('subnet-0ccccccccccccccc2', 'us-east-1c', 4000, true),
    ],
  ) => ({ zones: new Map(Object.entries(zones)), subnets });
  const allAvailable = {
    'us-east-1a': 'available',
    'us-east-1b': 'available',
    'us-east-1c': 'available',
  } as const;
  const movable = (overrides: Parameters<typeof record>[0] = {}) =>
    record({ ...overrides, config: { ...record().config, vpcId: VPC, ...overrides.config } });
  const withPlacement = (
    zones: Record<string, ZoneState>,
    subnets?: ReturnType<typeof subnet>[],
  ): Observation => ({
    ...observe({ volumeList: atRest() }),
    placement: placement(zones, subnets),
  });
  /** The recorded AZ (us-east-1a) impaired, the others available. */
  const recordedAzImpaired = () => withPlacement({ ...allAvailable, 'us-east-1a': 'impaired' });

  it('restores from the snapshots into the most like subnet of another AZ when the recorded AZ is impaired', () => {
    const decision = decide(movable({ step: 'unshelve.choose' }), recordedAzImpaired());

    expect(decision).toMatchObject({
      to: 'unshelve.launch-from-snapshots',
      set: {
        unshelve: {
          path: 'slow',
          relocation: {
            subnetId: 'subnet-0ccccccccccccccc1',
            availabilityZone: 'us-east-1c',
            reason: 'us-east-1a is impaired',
            refusedZones: ['us-east-1a'],
          },
        },
      },
    });
    expect(decision.reason).toContain('into us-east-1c (subnet-0ccccccccccccccc1): us-east-1a is impaired');
  });

  it('moves when the recorded subnet is gone', () => {
    const decision = decide(
      movable({ step: 'unshelve.choose' }),
      withPlacement(allAvailable, [subnet('subnet-0bbbbbbbbbbbbbbb1', 'us-east-1b')]),
    );

    expect(decision).toMatchObject({
      to: 'unshelve.launch-from-snapshots',
      set: {
        unshelve: {
          relocation: { subnetId: 'subnet-0bbbbbbbbbbbbbbb1', reason: `subnet ${RECORDED_SUBNET} is gone` },
        },
      },
    });
  });

  it('keeps the fast path while the recorded AZ is usable', () => {
    const decision = decide(movable({ step: 'unshelve.choose' }), withPlacement(allAvailable));

    expect(decision).toMatchObject({ to: 'unshelve.launch', set: { unshelve: { path: 'fast' } } });
  });

  const refusedFor = (seconds: number) =>
    movable({
      step: 'unshelve.launch',
      unshelve: {
        requestId: 'r',
        requestedAt: NOW - seconds * 1000,
        attempt: 3,
        path: 'fast',
        capacityRefusedSince: NOW - seconds * 1000,
      },
    });

  it('leaves the fast path once the AZ has refused the replacement for otherAzAfterSeconds', () => {
    const waitSeconds = defaultShelvingSettings.otherAzAfterSeconds;

    expect(decide(refusedFor(waitSeconds - 1), withPlacement(allAvailable))).toMatchObject({
      actions: [{ kind: 'launch' }],
    });
    const moved = decide(refusedFor(waitSeconds), withPlacement(allAvailable));
    expect(moved).toMatchObject({
      to: 'unshelve.launch-from-snapshots',
      set: { unshelve: { path: 'slow', attempt: 4, relocation: { availabilityZone: 'us-east-1c' } } },
    });
    expect(moved.set?.unshelve?.capacityRefusedSince).toBeUndefined();
    expect(moved.reason).toContain(`no m7i.large capacity for ${waitSeconds} s`);
  });

  it('re-issues a launch with no replacement only once the budget may have let its call out and the grace passed', () => {
    const claimed = (queuedMs?: number) =>
      record({
        step: 'unshelve.launch',
        unshelve: {
          requestId: 'r',
          requestedAt: NOW - 120_000,
          attempt: 0,
          batch: {
            batchId: 'ub-1',
            size: 1,
            index: 0,
            issuedAt: NOW - 61_000,
            ...(queuedMs ? { queuedMs } : {}),
          },
        },
      });
    const noReplacement = observe({ volumeList: shelvedVolumes({}, { state: 'available' }) });

    // Claimed 61 s ago behind 90 s of other launches: its call may still be waiting its turn.
    expect(decide(claimed(90_000), noReplacement)).toMatchObject({
      actions: [],
      recheckAt: NOW - 61_000 + 90_000 + LAUNCH_REISSUE_MS,
    });
    // With nothing ahead of it, 61 s without a replacement: the same ClientToken again.
    expect(decide(claimed(), noReplacement).actions).toEqual([{ kind: 'launch', recordId: RECORD_ID }]);
  });

  it('never moves while a launch is outstanding: its replacement may still appear here', () => {
    const outstanding = refusedFor(3600);
    const launching = {
      ...outstanding,
      unshelve: {
        requestId: 'r',
        requestedAt: NOW - 3_600_000,
        attempt: 3,
        capacityRefusedSince: NOW - 3_600_000,
        batch: { batchId: 'b', size: 1, index: 0, issuedAt: NOW },
      },
    };
    const decision = decide(launching, withPlacement({ ...allAvailable, 'us-east-1a': 'unavailable' }));

    expect(decision.to).toBeUndefined();
  });

  it('goes on to a third AZ, never back, when the one it moved to refuses too', () => {
    const decision = decide(
      movable({
        step: 'unshelve.launch-from-snapshots',
        unshelve: {
          requestId: 'r',
          requestedAt: NOW - 3_600_000,
          attempt: 4,
          path: 'slow',
          capacityRefusedSince: NOW - 3_600_000,
          relocation: {
            subnetId: 'subnet-0ccccccccccccccc1',
            availabilityZone: 'us-east-1c',
            reason: 'us-east-1a is impaired',
            refusedZones: ['us-east-1a'],
          },
        },
      }),
      recordedAzImpaired(),
    );

    expect(decision).toMatchObject({
      set: {
        unshelve: {
          relocation: { availabilityZone: 'us-east-1b', refusedZones: ['us-east-1a', 'us-east-1c'] },
        },
      },
    });
  });

  it.each([
    [
      'the setting says never',
      movable({ step: 'unshelve.choose' }),
      { ...defaultShelvingSettings, otherAzAfterSeconds: -1 },
    ],
    [
      'the instance is on a Dedicated Host',
      movable({
        step: 'unshelve.choose',
        config: { ...record().config, vpcId: VPC, tenancy: 'host', hostId: 'h-0123456789abcdef0' },
      }),
      defaultShelvingSettings,
    ],
    [
      'a volume has no safety snapshot',
      movable({
        step: 'unshelve.choose',
        volumes: record().volumes.map(({ snapshotId: _none, ...rest }) => rest),
      }),
      defaultShelvingSettings,
    ],
  ])('stays in the recorded AZ when %s', (_why, subject, settings) => {
    const decision = nextStep(subject, recordedAzImpaired(), NOW, settings);

    expect(decision.set?.unshelve?.relocation).toBeUndefined();
  });

  it('stays on the fast path in the impaired AZ, saying why, when its safety snapshots no longer exist', () => {
    const decision = decide(
      movable({ step: 'unshelve.choose' }),
      safetySnapshotGone('vol-0000000000000000a', recordedAzImpaired()),
    );

    expect(decision).toMatchObject({
      to: 'unshelve.launch',
      set: {
        unshelve: {
          path: 'fast',
          slowPathUnavailable:
            'the safety snapshot snap-0000000000000000a (of vol-0000000000000000a) no longer exists',
        },
      },
    });
    expect(decision.set?.unshelve?.relocation).toBeUndefined();
    expect(decision.reason).toContain(
      'once us-east-1a can launch (us-east-1a is impaired; the safety snapshot',
    );
  });

  it('never leaves the AZ from the launch step once the slow path is ruled out', () => {
    const refused = refusedFor(3600);
    const ruledOut = { ...refused, unshelve: { ...refused.unshelve, slowPathUnavailable: 'snapshots gone' } };

    const decision = decide(ruledOut as typeof refused, recordedAzImpaired());

    expect(decision).toMatchObject({ actions: [{ kind: 'launch' }] });
    expect(decision.to).toBeUndefined();
  });
});

describe('a safety snapshot that is gone', () => {
  it('fails the record, naming the snapshot, when a retained volume is gone too', () => {
    const decision = decide(
      record({ step: 'unshelve.choose' }),
      safetySnapshotGone(
        'vol-0000000000000000b',
        observe({ volumeList: [volume('vol-0000000000000000a', { state: 'available' })] }),
      ),
    );

    expect(decision).toMatchObject({
      to: 'failed',
      set: {
        error: {
          code: 'NoWayBack',
          message:
            'cannot unshelve: vol-0000000000000000b is gone; and the safety snapshot snap-0000000000000000b (of vol-0000000000000000b) no longer exists',
        },
      },
    });
  });

  it('takes a refused slow-path launch back to path choice, as a new attempt with the slow path ruled out', () => {
    const launching = launchingFromSnapshots({
      requestedAt: NOW - 60_000,
      attempt: 2,
      slowLaunchIssuedAt: NOW - 1_000,
      relocation: {
        subnetId: 'subnet-0bbbbbbbbbbbbbbb1',
        availabilityZone: 'us-east-1b',
        reason: 'us-east-1a is impaired',
        refusedZones: ['us-east-1a'],
      },
    });

    const back = slowLaunchRefused(
      launching,
      { code: 'NotFound', message: "snapshot 'snap-1' does not exist" },
      NOW,
    );

    expect(back).toMatchObject({
      to: 'unshelve.choose',
      set: {
        unshelve: {
          attempt: 3,
          slowPathUnavailable:
            "the slow-path launch was refused (NotFound: snapshot 'snap-1' does not exist)",
        },
      },
    });
    expect(back.set?.unshelve?.relocation).toBeUndefined();
    expect(back.set?.unshelve?.slowLaunchIssuedAt).toBeUndefined();
    const chosen = decide(
      { ...launching, step: 'unshelve.choose', unshelve: back.set?.unshelve },
      observe({ volumeList: atRest() }),
    );
    expect(chosen).toMatchObject({ to: 'unshelve.launch', set: { unshelve: { path: 'fast' } } });
  });
});

describe('launch retries', () => {
  const refusedLaunch = (step: 'unshelve.launch' | 'unshelve.launch-from-snapshots', retryAt: number) =>
    unshelving(
      step,
      {
        requestedAt: NOW - 120_000,
        attempt: 1,
        path: step === 'unshelve.launch' ? 'fast' : 'slow',
        capacityRefusedSince: NOW - 60_000,
        reason: 'RunInstances failed: InsufficientInstanceCapacity',
      },
      { nextDueAt: retryAt },
    );

  it.each(['unshelve.launch', 'unshelve.launch-from-snapshots'] as const)(
    'waits in %s for the retry time a refused launch wrote, then launches again',
    (step) => {
      const early = decide(refusedLaunch(step, NOW + 30_000), observe());
      expect(early).toMatchObject({ actions: [], recheckAt: NOW + 30_000 });
      expect(early.reason).toContain('InsufficientInstanceCapacity; trying again in 30 s');

      expect(decide(refusedLaunch(step, NOW), observe()).actions).toHaveLength(1);
    },
  );

  it('waits for a launch still in flight instead of re-issuing it on every round', () => {
    const issued = (issuedAt: number) =>
      launchingFromSnapshots(
        { requestedAt: issuedAt, attempt: 0, slowLaunchIssuedAt: issuedAt },
        { nextDueAt: issuedAt + LAUNCH_REISSUE_MS },
      );

    expect(decide(issued(NOW - 1_000), observe())).toMatchObject({
      actions: [],
      recheckAt: NOW - 1_000 + LAUNCH_REISSUE_MS,
    });
    expect(decide(issued(NOW - LAUNCH_REISSUE_MS), observe()).actions).toEqual([
      { kind: 'launch-from-snapshots', recordId: RECORD_ID },
    ]);
  });
});

/**
 * A ClientToken stays bound to its launch "for at least 24 hours after the termination of the
 * instance" (EC2 API Reference, Run_Instance_Idempotency): re-issuing it after the replacement
 * terminated returns the terminated replacement, never a new one (R5).
 */
describe('a replacement that terminated before it was used', () => {
  const terminatedReplacement = instance({
    instanceId: REPLACEMENT,
    state: 'terminated',
    tags: { 'warmboot:replacement-for': RECORD_ID },
  });
  const slowLaunched = (issuedAt: number) =>
    launchingFromSnapshots({
      requestedAt: issuedAt,
      attempt: 2,
      slowLaunchIssuedAt: issuedAt,
      replacementInstanceId: REPLACEMENT,
    });

  it('takes the slow path to a new attempt (a new token) after a pause, instead of re-issuing the spent one', () => {
    const decision = decide(
      slowLaunched(NOW - 10 * LAUNCH_REISSUE_MS),
      observe({ replacement: terminatedReplacement }),
    );

    expect(decision).toMatchObject({
      actions: [],
      recheckAt: NOW + 60_000,
      set: { unshelve: { attempt: 3, replacementInstanceId: undefined, slowLaunchIssuedAt: undefined } },
    });
    expect(decision.reason).toContain(`replacement ${REPLACEMENT} terminated`);
    expect(slowLaunchRequest({ ...slowLaunched(NOW), ...decision.set } as ShelfRecord).clientToken).not.toBe(
      slowLaunchRequest(slowLaunched(NOW)).clientToken,
    );
  });

  it('takes the slow path to a new attempt when its known replacement is no longer described at all', () => {
    const gone = decide(slowLaunched(NOW - 2 * 3_600_000), observe());
    const justLaunched = decide(slowLaunched(NOW - 1_000), observe());

    expect(gone).toMatchObject({ set: { unshelve: { attempt: 3 } } });
    expect(gone.reason).toContain('is gone');
    expect(justLaunched).toMatchObject({ actions: [], recheckAt: NOW - 1_000 + LAUNCH_REISSUE_MS });
  });

  it('takes the fast path to a new attempt (a new batch) when its batch replacement terminated', () => {
    const launching = unshelving('unshelve.launch', {
      requestedAt: NOW - 120_000,
      attempt: 0,
      path: 'fast',
      batch: { batchId: 'ub-1', size: 1, index: 0, issuedAt: NOW - 120_000 },
    });

    const decision = decide(launching, observe({ replacement: terminatedReplacement }));

    expect(decision).toMatchObject({
      to: 'unshelve.launch',
      set: { unshelve: { attempt: 1, batch: undefined, replacementInstanceId: undefined } },
    });
  });
});

describe('the root swap', () => {
  const base = swapping('unshelve.swap-root', NOW - 60_000, 1);

  it('detaches the fresh root first and attaches data volumes at their device names meanwhile', () => {
    const decision = decide(
      base,
      observe({
        replacement: replacement('stopped', [{ deviceName: '/dev/xvda', volumeId: FRESH }]),
        volumeList: [freshRoot, ...atRest()],
      }),
    );

    expect(decision.set?.unshelve?.freshRootVolumeId).toBe(FRESH);
    expect(decision.actions).toEqual([
      { kind: 'detach', volumeId: FRESH, instanceId: REPLACEMENT },
      { kind: 'attach', volumeId: 'vol-0000000000000000b', instanceId: REPLACEMENT, device: '/dev/sdf' },
    ]);
  });

  it('waits, not detaches again, when the instance still lists a fresh root its later describe shows detached', () => {
    // observe.ts reads the instance before the volumes; the detach finished in between.
    const detached = volume(FRESH, { state: 'available', tags: REPLACEMENT_TAGS });
    const decision = decide(
      swapping('unshelve.swap-root', NOW - 60_000, 1, { freshRootVolumeId: FRESH }),
      observe({
        replacement: replacement('stopped', [{ deviceName: '/dev/xvda', volumeId: FRESH }]),
        volumeList: [detached, ...atRest()],
      }),
    );

    expect(decision.actions.filter((action) => action.kind === 'detach')).toEqual([]);
    expect(decision.to).toBeUndefined();
  });

  it('treats an attach that already happened as done and moves to start', () => {
    const decision = decide(
      base,
      observe({
        replacement: replacement('stopped', RETAINED_DEVICES),
        volumeList: [
          onReplacement('vol-0000000000000000a', '/dev/xvda'),
          onReplacement('vol-0000000000000000b', '/dev/sdf'),
        ],
      }),
    );

    expect(decision).toMatchObject({ to: 'unshelve.start-replacement', actions: [] });
  });

  it('never takes a retained volume away from an instance it did not launch for the record', () => {
    const decision = decide(
      base,
      observe({
        replacement: replacement('stopped', [{ deviceName: '/dev/xvda', volumeId: FRESH }]),
        volumeList: [
          freshRoot,
          volume('vol-0000000000000000a', {
            attachment: { instanceId: 'i-0aaaaaaaaaaaaaaa9', device: '/dev/sdg', state: 'attached' },
          }),
          volume('vol-0000000000000000b', { state: 'available' }),
        ],
      }),
    );

    expect(decision).toMatchObject({ to: 'failed', set: { error: { code: 'VolumeInUse' } }, actions: [] });
  });
});

describe('data volumes before the stop', () => {
  const stopping = swapping('unshelve.stop-replacement', NOW - 30_000, 1);
  const running = observe({
    replacement: replacement('running', [{ deviceName: '/dev/xvda', volumeId: FRESH }]),
    volumeList: [freshRoot, ...atRest()],
  });
  const stop = { kind: 'stop', instanceId: REPLACEMENT, force: true };

  it('attaches the data volumes to the running replacement, then stops it; the root waits for the stop', () => {
    expect(decide(stopping, running).actions).toEqual([
      { kind: 'attach', volumeId: 'vol-0000000000000000b', instanceId: REPLACEMENT, device: '/dev/sdf' },
      stop,
    ]);
  });

  it('stops at once when the AttachVolume bucket has no room now (the swap attaches them later)', () => {
    expect(decide(stopping, { ...running, attachSlots: 0 }).actions).toEqual([stop]);
  });

  it('stops at once when the setting is off', () => {
    const settings = { ...defaultShelvingSettings, attachDataVolumesWhileRunning: false };

    expect(nextStep(stopping, running, NOW, settings).actions).toEqual([stop]);
  });

  it('stops a Windows replacement at once: its fresh OS would bring the retained data disks online (W4)', () => {
    const windows = { ...stopping, config: { ...stopping.config, platform: 'windows' as const } };

    expect(decide(windows, running).actions).toEqual([stop]);
  });

  it('does not attach a data volume again once EC2 shows it on the replacement', () => {
    const attached = observe({
      replacement: replacement('running', [
        { deviceName: '/dev/xvda', volumeId: FRESH },
        { deviceName: '/dev/sdf', volumeId: 'vol-0000000000000000b' },
      ]),
      volumeList: [
        ...running.volumes.values(),
        onReplacement('vol-0000000000000000b', '/dev/sdf', 'attaching'),
      ],
    });

    expect(decide(stopping, attached).actions).toEqual([stop]);
  });

  it('gives the root its attach before the data volumes when slots are short', () => {
    const swap = record({ ...stopping, step: 'unshelve.swap-root' });
    const detached = observe({
      replacement: replacement('stopped', []),
      volumeList: atRest(),
      attachSlots: 1,
    });

    expect(decide(swap, detached)).toMatchObject({
      actions: [
        { kind: 'attach', volumeId: 'vol-0000000000000000a', instanceId: REPLACEMENT, device: '/dev/xvda' },
      ],
      reason: 'swapping root and attaching volumes',
    });
  });
});

describe('finalize', () => {
  it('deletes only the fresh root and hands the retained volumes back', () => {
    const r = swapping('unshelve.finalize', NOW, 1, { freshRootVolumeId: FRESH });
    const decision = decide(
      r,
      observe({
        replacement: replacement('running', RETAINED_DEVICES),
        volumeList: [volume(FRESH, { state: 'available' }), ...shelvedVolumes()],
      }),
    );

    expect(decision.actions).toEqual([
      { kind: 'delete-replacement-root', volumeId: FRESH, recordId: RECORD_ID },
      {
        kind: 'untag',
        resourceIds: ['vol-0000000000000000a', 'vol-0000000000000000b'],
        keys: ['warmboot:shelved'],
      },
      {
        kind: 'set-delete-on-termination',
        instanceId: REPLACEMENT,
        devices: [
          { deviceName: '/dev/xvda', deleteOnTermination: true },
          { deviceName: '/dev/sdf', deleteOnTermination: true },
        ],
      },
    ]);
  });
});

describe('an EBS encryption key EC2 could not use for the role (R4)', () => {
  const KEY = 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
  const refusedByKey = {
    code: 'Client.InternalError',
    message: 'Client.InternalError: Client error on launch',
  };
  const encrypted = shelvedVolumes({}, { encrypted: true, kmsKeyId: KEY });
  const starting = swapping('unshelve.start-replacement', NOW - 300_000, 0, {}, { stepSince: NOW - 60_000 });
  const stoppedReplacement = (launchTime: number, stateReason?: { code: string; message: string }) => ({
    ...replacement('stopped', []),
    launchTime,
    ...(stateReason ? { stateReason } : {}),
  });

  it('fails a replacement start EC2 ended for the key, naming the key, instead of starting it every 30 s', () => {
    const decision = decide(
      starting,
      observe({ replacement: stoppedReplacement(NOW - 20_000, refusedByKey), volumeList: encrypted }),
    );

    expect(decision).toMatchObject({
      to: 'failed',
      actions: [],
      set: { error: { code: 'EncryptionKeyUnusable' } },
    });
    expect(decision.set?.error?.message).toContain(`did not start (Client.InternalError`);
    expect(decision.set?.error?.message).toContain(KEY);
    expect(decision.facts?.[0]).toMatchObject({ detailType: 'Shelve Failed' });
  });

  it('still starts a replacement whose key failure is older than the step (a start of an earlier attempt)', () => {
    const decision = decide(
      starting,
      observe({ replacement: stoppedReplacement(NOW - 600_000, refusedByKey), volumeList: encrypted }),
    );

    expect(decision.actions).toEqual([{ kind: 'start', instanceId: REPLACEMENT }]);
  });

  it('fails a slow-path replacement that terminated at launch for the key instead of launching another', () => {
    const slow = launchingFromSnapshots({
      requestedAt: NOW - 300_000,
      attempt: 1,
      slowLaunchIssuedAt: NOW - 120_000,
      replacementInstanceId: REPLACEMENT,
    });
    const terminated = instance({
      instanceId: REPLACEMENT,
      state: 'terminated',
      stateReason: {
        code: 'Client.InvalidKMSKey.InvalidState',
        message: 'The KMS key provided is in an incorrect state',
      },
    });

    const decision = decide(slow, observe({ replacement: terminated }));

    expect(decision).toMatchObject({ to: 'failed', set: { error: { code: 'EncryptionKeyUnusable' } } });
  });
});
