import { DeleteVolumeCommand, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { REPLACEMENT_FOR_TAG } from '../../functions/shelving/domain/tags';
import type { LocalCloud } from '../../local/cloud';
import { invocationScope } from '../../local/faults';
import { AMAZON_SSM_MANAGED_INSTANCE_CORE } from '../../local/iam/instance-profiles';
import {
  handledOnce,
  noHalfSwap,
  outcomesPublished,
  retainedVolumesKept,
  retainedVolumesOwned,
  SHELVED_TAG,
  type ShelfFacts,
  unshelvedOnlyEarlierShelves,
} from '../../local/invariants';
import { callProvenance } from '../../local/provenance';
import { optedInInstanceTags } from '../support/instances';
import {
  launchWithDataVolume,
  SHELVING_REQUEST_TYPES,
  SHELVING_ZONE,
  type ShelvingMove,
} from '../support/shelving';
import { AWS_EVENTS, operatorRequest } from './support/deliveries';
import { assertOptions, FaultTally, faultProperty, type RunLog, summarizeAfterAll } from './support/harness';
import { callFault, eventFault, recordedSchedule } from './support/recorded';
import { scanTable } from './support/records';
import { FaultSchedule, faultScheduleArbitrary, serviceCalls } from './support/schedule';

/**
 * Shelving under faults: random shelve / offload / unshelve / delete requests on a few managed
 * instances (some on a Dedicated Host), random faults for the first eight virtual minutes, then
 * twelve minutes of healthy scheduled reconciles, then every shelving invariant of DESIGN.md.
 */

const MINUTE = 60_000;
const FAULT_WINDOW_MS = 8 * MINUTE;
/** What the faults hit and for how long: the functions deployed (any invocation may die), the window. */
const FAULT_SCOPE = { functions: ['shelving'], windowMs: FAULT_WINDOW_MS } as const;
/** Pools serve unshelve: the pools function is deployed, and its invocations die too. */
const POOL_FAULT_SCOPE = { functions: ['shelving', 'pools'], windowMs: FAULT_WINDOW_MS } as const;
/** The pool that serves unshelve in those runs (running or stopped tier), and its members' instance profile. */
const SERVING_POOL = 'fault-hot';
const MEMBER_PROFILE = 'fault-member';
const RECONCILE_MS = 12 * MINUTE;

type Operation =
  | {
      readonly kind: ShelvingMove;
      readonly targets: readonly number[];
      readonly afterMs: number;
    }
  | { readonly kind: 'delete'; readonly target: number; readonly afterMs: number };

interface ShelvingWorkload {
  readonly seed: number;
  readonly instances: number;
  readonly onHost: boolean;
  readonly offloadAfterSeconds: number;
  /** Off: fast-path replacements batch (new private IPs); on (the default): one launch each. */
  readonly keepPrivateIp?: boolean;
  /** Off: every fast-path unshelve takes the stopped swap (the fallback); on (the default): in place. */
  readonly replaceRootInPlace?: boolean;
  readonly operations: readonly Operation[];
  /** The instances' AZ goes impaired for a while (the unshelve may move to another AZ). */
  readonly outage?: { readonly atMs: number; readonly forMs: number };
  /** A pool of the instances' configuration serves unshelve (`unshelveFromPools`). */
  readonly pool?: boolean;
  /** The tier that pool keeps its members in (running by default; stopped members are started). */
  readonly poolTier?: 'running' | 'stopped';
}

const workloadArbitrary: fc.Arbitrary<ShelvingWorkload> = fc
  .integer({ min: 1, max: 3 })
  .chain((instances) => {
    const index = fc.integer({ min: 0, max: instances - 1 });
    const afterMs = fc.integer({ min: 0, max: 180 }).map((s) => s * 1000);
    const targets = fc.uniqueArray(index, { minLength: 1, maxLength: instances });
    const move = fc.record({
      kind: fc.constantFrom('shelve' as const, 'offload' as const, 'unshelve' as const),
      targets,
      afterMs,
    });
    const remove = fc.record({ kind: fc.constant('delete' as const), target: index, afterMs });
    return fc.record({
      seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
      instances: fc.constant(instances),
      onHost: fc.boolean(),
      offloadAfterSeconds: fc.constantFrom(-1, 0, 120),
      keepPrivateIp: fc.boolean(),
      replaceRootInPlace: fc.boolean(),
      operations: fc.array(fc.oneof({ weight: 4, arbitrary: move }, { weight: 1, arbitrary: remove }), {
        minLength: 1,
        maxLength: 6,
      }),
    });
  });

/**
 * The same workloads with an outage of the instances' AZ early in the fault window, ending with an
 * Unshelve of every instance, so unshelves meet the outage (and move) often.
 */
const outageWorkloadArbitrary: fc.Arbitrary<ShelvingWorkload> = fc
  .tuple(
    workloadArbitrary,
    fc.integer({ min: 0, max: 240 }),
    fc.integer({ min: 120, max: 900 }),
    fc.integer({ min: 0, max: 180 }),
  )
  .map(([workload, atSeconds, forSeconds, unshelveAfterSeconds]) => ({
    ...workload,
    operations: [
      ...workload.operations,
      {
        kind: 'unshelve' as const,
        targets: Array.from({ length: workload.instances }, (_, index) => index),
        afterMs: unshelveAfterSeconds * 1000,
      },
    ],
    outage: { atMs: atSeconds * 1000, forMs: forSeconds * 1000 },
  }));

/**
 * The same workloads where a pool of the instances' configuration serves unshelve (replacements
 * then batch: `keepPrivateIp` is off, as the setting requires), ending with an Unshelve of every
 * instance, so offloaded records take pool members often.
 */
const poolWorkloadArbitrary: fc.Arbitrary<ShelvingWorkload> = fc
  .tuple(
    workloadArbitrary,
    fc.integer({ min: 0, max: 180 }),
    fc.constantFrom('running' as const, 'stopped' as const),
  )
  .map(([workload, unshelveAfterSeconds, poolTier]) => ({
    ...workload,
    keepPrivateIp: false,
    // Only the in-place path can use a member.
    replaceRootInPlace: true,
    pool: true,
    poolTier,
    operations: [
      ...workload.operations,
      {
        kind: 'unshelve' as const,
        targets: Array.from({ length: workload.instances }, (_, index) => index),
        afterMs: unshelveAfterSeconds * 1000,
      },
    ],
  }));

const faultScheduleOf = (scope: typeof FAULT_SCOPE | typeof POOL_FAULT_SCOPE) =>
  faultScheduleArbitrary({
    ...scope,
    events: [
      AWS_EVENTS.ec2StateChange,
      AWS_EVENTS.scheduleTick,
      ...Object.values(SHELVING_REQUEST_TYPES).map(operatorRequest),
    ],
    calls: serviceCalls('ec2', [
      'StopInstances',
      'StartInstances',
      'TerminateInstances',
      'RunInstances',
      'AttachVolume',
      'DetachVolume',
      'CreateSnapshots',
      'CreateTags',
      'DeleteTags',
      'DeleteVolume',
      'ModifyInstanceAttribute',
      'DescribeInstances',
      'DescribeVolumes',
      'DescribeInstanceAttribute',
      'DescribeAddresses',
    ]),
    maxCallsPerInvocation: 30,
    // Fast-path replacements launch in batches (keepPrivateIp off): a batch that comes back short,
    // then a crash.
    partialLaunches: true,
  });
const faultArbitrary = faultScheduleOf(FAULT_SCOPE);
const poolFaultArbitrary = faultScheduleOf(POOL_FAULT_SCOPE);

const SHELVING_INVARIANTS = [
  'retainedVolumeKept',
  'retainedVolumeOwned',
  'noHalfSwap',
  'recordAtRest',
  'requestAnswered',
  'handledOnce',
  'runningInstanceKept',
  'safetySnapshotKept',
  'onlyManaged',
] as const;
const tally = new FaultTally('shelving', SHELVING_INVARIANTS);
const outageTally = new FaultTally('shelving with an AZ outage', SHELVING_INVARIANTS);
const poolTally = new FaultTally('shelving with a pool serving unshelve', SHELVING_INVARIANTS);
/** The AZ every workload launches in (and the one an outage impairs). */
const ZONE = SHELVING_ZONE;
const { shelve: SHELVE, offload: OFFLOAD, unshelve: UNSHELVE } = SHELVING_REQUEST_TYPES;

const launchInstances = async (cloud: LocalCloud, workload: ShelvingWorkload): Promise<string[]> => {
  cloud.ec2.registerImage({ name: 'al2023', rootSizeGiB: 8 });
  const hostId = workload.onHost
    ? cloud.ec2.allocateHost({ availabilityZone: ZONE, instanceType: 'm7i.large' })
    : undefined;
  if (workload.pool)
    cloud.instanceProfiles.create(MEMBER_PROFILE, { managedPolicyArns: [AMAZON_SSM_MANAGED_INSTANCE_CORE] });
  return launchWithDataVolume(cloud, workload.instances, {
    placement: hostId ? { Tenancy: 'host', HostId: hostId, Affinity: 'host' } : {},
    tags: optedInInstanceTags('shelving', { 'warmboot:tenant': 'tenant-a' }),
    ...(workload.pool ? { instanceProfile: MEMBER_PROFILE } : {}),
  });
};

/** A pool of the instances' AMI, type, subnet and profile in `tier`: what an unshelve may take. */
const defineServingPool = async (
  cloud: LocalCloud,
  instanceIds: readonly string[],
  tier: 'running' | 'stopped',
): Promise<void> => {
  const [first] = instanceIds.map((instanceId) => cloud.ec2.instance(instanceId));
  if (!first?.subnetId) throw new Error('the workload launched no instance to model the pool on');
  await cloud.adminRequest('Define Pool', {
    pool: {
      name: SERVING_POOL,
      image: first.imageId,
      instanceType: first.instanceType,
      subnets: [first.subnetId],
      instanceProfile: MEMBER_PROFILE,
      initialization: { platform: 'linux', packages: [], timeoutMinutes: 30 },
      tier,
      minSize: instanceIds.length,
      maxSize: instanceIds.length * 2,
    },
  });
};

const readRecords = async (cloud: LocalCloud): Promise<ShelfFacts[]> =>
  (await scanTable(cloud, cloud.tables.shelves))
    .filter((item) => item.sk === 'RECORD')
    .map((item) => item.record as ShelfFacts);

/** Every volume that is retained at this moment, by tag; sampled all through the run. */
const sampleRetained = (cloud: LocalCloud, everRetained: Map<string, string>): void => {
  for (const volume of cloud.ec2.volumes()) {
    const owner = volume.tags[SHELVED_TAG];
    if (owner !== undefined && !everRetained.has(volume.volumeId)) everRetained.set(volume.volumeId, owner);
  }
};

/** The confirmation token an answered, unconfirmed Delete Shelved Record issued, if any. */
const confirmationOf = (log: RunLog, eventId: string): string | undefined => {
  for (const outcome of log.outcomes) {
    if (outcome.eventId !== eventId || outcome.outcome !== 'succeeded') continue;
    const answer = outcome.result as
      | { result?: { kind?: string; result?: { confirm?: string } } }
      | undefined;
    if (answer?.result?.kind === 'delete' && answer.result.result?.confirm)
      return answer.result.result.confirm;
  }
  return undefined;
};

const runWorkload = async (
  cloud: LocalCloud,
  log: RunLog,
  instanceIds: readonly string[],
  workload: ShelvingWorkload,
  deleteRequested: Set<string>,
): Promise<void> => {
  for (const operation of workload.operations) {
    await cloud.settleFor(operation.afterMs);
    if (operation.kind === 'delete') {
      const instanceId = instanceIds[operation.target] ?? '';
      const record = (await readRecords(cloud)).find((candidate) => candidate.instanceId === instanceId);
      if (!record) continue;
      deleteRequested.add(record.recordId);
      // Two steps, as an administrator deletes: the plan and its token, then the confirmation.
      const planned = await log.request('Delete Shelved Record', { recordId: record.recordId });
      const confirm = confirmationOf(log, planned.id);
      if (confirm !== undefined)
        await log.request('Delete Shelved Record', { recordId: record.recordId, confirm });
      continue;
    }
    const ids = operation.targets.map((target) => instanceIds[target] ?? '');
    const detailType = SHELVING_REQUEST_TYPES[operation.kind];
    await log.request(detailType, {
      instanceIds: ids,
      ...(operation.kind === 'shelve' ? { tenant: 'tenant-a' } : {}),
    });
  }
};

interface ShelvingRun {
  readonly instanceIds: readonly string[];
  /** Every volume ever retained, and the record that retained it. */
  readonly everRetained: Map<string, string>;
  /** The records a Delete Shelved Record named. */
  readonly deleteRequested: Set<string>;
}

/**
 * The property, over any workloads and fault schedules. `beforeChecks` runs on the settled cloud
 * right before the invariant checks: a regression asserts its scenario's outcome there, and the
 * test proving the property can fail breaks the cloud there.
 */
const shelvingProperty = (
  workloads: fc.Arbitrary<ShelvingWorkload>,
  faults: fc.Arbitrary<FaultSchedule>,
  counts: FaultTally,
  beforeChecks?: (cloud: LocalCloud) => Promise<void>,
  scope: typeof FAULT_SCOPE | typeof POOL_FAULT_SCOPE = FAULT_SCOPE,
) =>
  faultProperty<ShelvingWorkload, ShelvingRun>({
    ...scope,
    cloud: (workload) => ({
      // Shelving sends no SSM command; a serving pool's members run the pool's own documents.
      ...(workload.pool ? {} : { documents: [], behaviours: {} }),
      settings: {
        SHELVING_SETTINGS: JSON.stringify({
          // The workload sends confirmed Delete Shelved Record requests: the deployment opted in.
          allowDataDeletion: true,
          offloadAfterSeconds: workload.offloadAfterSeconds,
          keepPrivateIp: workload.keepPrivateIp ?? true,
          replaceRootInPlace: workload.replaceRootInPlace ?? true,
          hostWaitSeconds: 600,
          // The shelved instances then have the pool's profile: shelving may relaunch with it.
          ...(workload.pool
            ? { unshelveFromPools: [SERVING_POOL], instanceProfiles: [{ name: MEMBER_PROFILE }] }
            : {}),
        }),
        ...(workload.pool
          ? { POOL_POLICY: JSON.stringify({ instanceProfiles: [{ name: MEMBER_PROFILE }] }) }
          : {}),
      },
    }),
    settleMs: RECONCILE_MS,
    setup: async ({ cloud, workload }) => {
      const everRetained = new Map<string, string>();
      cloud.bus.onInvocation(() => sampleRetained(cloud, everRetained));
      cloud.ec2.onInstanceLifecycle(() => sampleRetained(cloud, everRetained));
      const instanceIds = await launchInstances(cloud, workload);
      if (workload.pool) await defineServingPool(cloud, instanceIds, workload.poolTier ?? 'running');
      cloud.startSchedules();
      const outage = workload.outage;
      if (outage) {
        const start = cloud.clock.now() + outage.atMs;
        cloud.clock.at(start, () => cloud.ec2.setZoneState(ZONE, 'impaired'));
        cloud.clock.at(start + outage.forMs, () => cloud.ec2.setZoneState(ZONE, 'available'));
      }
      return { instanceIds, everRetained, deleteRequested: new Set() };
    },
    apply: ({ cloud, log, workload }, { instanceIds, deleteRequested }) =>
      runWorkload(cloud, log, instanceIds, workload, deleteRequested),
    checks: async ({ cloud, log, workload }, { instanceIds, everRetained, deleteRequested }) => {
      sampleRetained(cloud, everRetained);
      await beforeChecks?.(cloud);
      const records = await readRecords(cloud);
      const state = {
        records,
        volumes: cloud.ec2.volumes(),
        instances: cloud.ec2.instances(),
        everRetained,
        deletedRecords: deleteRequested,
      };
      const shelveRequests = new Map<string, number>();
      for (const operation of workload.operations) {
        if (operation.kind !== 'shelve') continue;
        for (const target of operation.targets) {
          const instanceId = instanceIds[target] ?? '';
          shelveRequests.set(instanceId, (shelveRequests.get(instanceId) ?? 0) + 1);
        }
      }
      const recordsByInstance = new Map<string, string[]>();
      for (const record of records) {
        if (!instanceIds.includes(record.instanceId)) continue;
        recordsByInstance.set(record.instanceId, [
          ...(recordsByInstance.get(record.instanceId) ?? []),
          record.recordId,
        ]);
      }
      const provenance = callProvenance(cloud);
      counts.observe('shelve records', records.length);
      for (const operation of ['TerminateInstances', 'DeleteSnapshot'])
        counts.observe(
          `${operation} calls`,
          provenance.calls.filter((call) => call.operation === operation).length,
        );
      counts.observe('retained volumes', everRetained.size);
      counts.observe('unshelved records', records.filter((record) => record.step === 'unshelved').length);
      // Which way the unshelved ones came back (issue 19: in place is the default).
      for (const path of ['in-place', 'fast', 'slow', 'start'] as const)
        counts.observe(
          `unshelved ${path}`,
          records.filter((record) => record.step === 'unshelved' && record.unshelve?.path === path).length,
        );
      counts.observe(
        'unshelved on a pool member',
        records.filter(
          (record) =>
            record.step === 'unshelved' &&
            record.unshelve?.poolMember !== undefined &&
            record.unshelve.poolMember.instanceId === record.unshelve.replacementInstanceId,
        ).length,
      );
      counts.observe(
        'unshelves into another AZ',
        state.instances.filter(
          (instance) =>
            instance.tags[REPLACEMENT_FOR_TAG] !== undefined &&
            instance.state !== 'terminated' &&
            instance.availabilityZone !== ZONE,
        ).length,
      );
      return [
        ...handledOnce(shelveRequests, recordsByInstance, 'shelve records'),
        ...unshelvedOnlyEarlierShelves(
          records,
          new Map(log.requests.map((request) => [request.eventId, request.sentAt])),
        ),
        ...retainedVolumesKept(state),
        ...retainedVolumesOwned(state),
        ...noHalfSwap(state),
        ...outcomesPublished(
          records,
          log.facts.map((fact) => ({
            detailType: fact['detail-type'],
            recordId: String((fact.detail as { recordId?: unknown }).recordId ?? ''),
          })),
        ),
      ];
    },
  })(workloads, faults, counts);

/**
 * A recorded case's workload: `operations` on one instance off any Dedicated Host, never
 * offloaded, from seed 1, unless the case says otherwise.
 */
const recordedWorkload = (
  operations: readonly Operation[],
  overrides: Partial<Omit<ShelvingWorkload, 'operations'>> = {},
) =>
  fc.constant<ShelvingWorkload>({
    seed: 1,
    instances: 1,
    onHost: false,
    offloadAfterSeconds: -1,
    ...overrides,
    operations,
  });

/** A regression: one run of a recorded case, `check`ed on the settled cloud before the invariants. */
const replay = (
  workload: fc.Arbitrary<ShelvingWorkload>,
  faults: fc.Arbitrary<FaultSchedule>,
  check?: (cloud: LocalCloud) => Promise<void>,
) =>
  fc.assert(shelvingProperty(workload, faults, new FaultTally('shelving regression', []), check), {
    numRuns: 1,
  });

/** The property over one run of `workload` without faults, `sabotage` done to the settled cloud. */
const sabotaged = (
  workload: fc.Arbitrary<ShelvingWorkload>,
  sabotage: (cloud: LocalCloud) => Promise<void>,
) =>
  fc.check(shelvingProperty(workload, recordedSchedule(), new FaultTally('sabotage', []), sabotage), {
    numRuns: 1,
  });

describe('shelving under duplicate, lost and reordered events, throttling, capacity errors and crashes', () => {
  summarizeAfterAll(tally, outageTally, poolTally);

  it('keeps every retained volume, leaves nothing half-swapped and answers every request', async () => {
    await fc.assert(shelvingProperty(workloadArbitrary, faultArbitrary, tally), assertOptions());
  });

  it("keeps every invariant when the instances' AZ goes impaired and unshelves move to another AZ", async () => {
    // A quarter as many schedules as the main property: the outage adds one dimension to it.
    const options = assertOptions<[ShelvingWorkload, FaultSchedule]>();
    await fc.assert(shelvingProperty(outageWorkloadArbitrary, faultArbitrary, outageTally), {
      ...options,
      numRuns: Math.max(1, Math.ceil((options.numRuns ?? 1) / 4)),
    });
  });

  it('keeps every invariant when a pool serves unshelve: members taken, handed over and swapped in place under faults', async () => {
    // A quarter as many schedules as the main property, like the outage runs.
    const options = assertOptions<[ShelvingWorkload, FaultSchedule]>();
    await fc.assert(
      shelvingProperty(poolWorkloadArbitrary, poolFaultArbitrary, poolTally, undefined, POOL_FAULT_SCOPE),
      { ...options, numRuns: Math.max(1, Math.ceil((options.numRuns ?? 1) / 4)) },
    );
  });

  it('does not shelve an instance again when a killed Shelve request is retried after an Unshelve', async () => {
    const shelveThenUnshelve = recordedWorkload([
      { kind: 'shelve', targets: [0], afterMs: 4_000 },
      { kind: 'unshelve', targets: [0], afterMs: 57_000 },
    ]);
    const killedOnce = fc
      .integer({ min: 0, max: 20 })
      .map(
        (afterCalls) => new FaultSchedule([{ kind: 'kill', atMs: 0, functionId: 'shelving', afterCalls }]),
      );

    await fc.assert(
      shelvingProperty(shelveThenUnshelve, killedOnce, new FaultTally('shelving regression', [])),
      {
        numRuns: 30,
      },
    );
  });

  it('never deletes the volumes of a record an Unshelve moved, when a confirmed Delete races it (finding 7)', async () => {
    // The shrunk counterexample of seed 1265396480: the Unshelve's delivery held back by a
    // reorder, the confirmed Delete five seconds after the start.
    const deleteRacingUnshelve = recordedWorkload(
      [
        { kind: 'shelve', targets: [0], afterMs: 108_000 },
        { kind: 'shelve', targets: [0], afterMs: 65_000 },
        { kind: 'offload', targets: [0], afterMs: 62_000 },
        { kind: 'shelve', targets: [0], afterMs: 177_000 },
        { kind: 'unshelve', targets: [0], afterMs: 63_000 },
        { kind: 'delete', target: 0, afterMs: 5_000 },
      ],
      { instances: 3 },
    );
    const unshelveHeldBack = recordedSchedule(
      eventFault(0, operatorRequest(UNSHELVE), { kind: 'reorder', window: 2, maxHoldMs: 30_000 }, 1),
    );

    await replay(deleteRacingUnshelve, unshelveHeldBack);
  });

  it('deletes an unshelved record whose instance was shelved again (finding 9)', async () => {
    const deleteAfterReshelve = recordedWorkload([
      { kind: 'shelve', targets: [0], afterMs: 0 },
      { kind: 'unshelve', targets: [0], afterMs: 1_000 },
      { kind: 'shelve', targets: [0], afterMs: 1_000 },
      { kind: 'delete', target: 0, afterMs: 0 },
    ]);

    await replay(deleteAfterReshelve, recordedSchedule());
  });

  it('unshelves the record of a Shelve sent before the Unshelve but delivered late and retried (finding 10)', async () => {
    // The first failing run of seed 1122002 (unshrunk): the Shelve held back 138 s and failed once
    // (DescribeVolumes), the Unshelve's first handling failed (GetItem); Lambda's retries of both
    // ran in the same second, the Shelve's first.
    const delayedShelve = recordedWorkload(
      [
        { kind: 'delete', target: 0, afterMs: 13_000 },
        { kind: 'shelve', targets: [0], afterMs: 93_000 },
        { kind: 'offload', targets: [0], afterMs: 47_000 },
        { kind: 'unshelve', targets: [0], afterMs: 151_000 },
      ],
      { seed: 1_557_992_694, onHost: true, offloadAfterSeconds: 0 },
    );
    const lateShelve = recordedSchedule(
      eventFault(3_000, operatorRequest(UNSHELVE), { kind: 'duplicate', afterMs: 43_000 }, 3),
      eventFault(35_000, operatorRequest(UNSHELVE), { kind: 'duplicate', afterMs: 68_000 }, 1),
      eventFault(49_000, operatorRequest(OFFLOAD), { kind: 'delay', ms: 193_000 }, 3),
      eventFault(100_000, operatorRequest(SHELVE), { kind: 'delay', ms: 138_000 }, 3),
      callFault(114_000, 'dynamodb', 'GetItem', 'InternalServerError', 5),
      callFault(202_000, 'ec2', 'DescribeVolumes', 'InternalError', 5),
    );

    await replay(delayedShelve, lateShelve, async (cloud) => {
      const records = await readRecords(cloud);
      expect(records.map((record) => record.step)).toEqual(['unshelved']);
    });
  });

  it('keeps the safety snapshots when a confirmed Delete fails on a volume, so an Unshelve during an AZ outage restores from them (finding 11)', async () => {
    // The first failing run of the combined pass's outage property (unshrunk): every DeleteVolume
    // of a confirmed Delete failed, and the deletion, undone, had already deleted the snapshots;
    // the second Unshelve, in the outage, then re-issued a launch from them for good.
    const outageAfterFailedDelete = recordedWorkload(
      [
        { kind: 'delete', target: 0, afterMs: 88_000 },
        { kind: 'shelve', targets: [0], afterMs: 173_000 },
        { kind: 'delete', target: 0, afterMs: 48_000 },
        { kind: 'offload', targets: [0], afterMs: 29_000 },
        { kind: 'unshelve', targets: [0], afterMs: 46_000 },
        { kind: 'shelve', targets: [0], afterMs: 100_000 },
        { kind: 'unshelve', targets: [0], afterMs: 56_000 },
      ],
      { seed: 1_371_684_413, offloadAfterSeconds: 0, outage: { atMs: 28_000, forMs: 632_000 } },
    );
    const failedDeleteAndKills = recordedSchedule(
      eventFault(45_000, operatorRequest(UNSHELVE), { kind: 'reorder', window: 3, maxHoldMs: 30_000 }, 2),
      callFault(52_000, 'ec2', 'DeleteVolume', 'IncorrectInstanceState', 4),
      { kind: 'kill', atMs: 53_000, functionId: 'shelving', afterCalls: 25 },
      { kind: 'kill', atMs: 259_000, functionId: 'shelving', afterCalls: 26 },
    );

    await replay(outageAfterFailedDelete, failedDeleteAndKills, async (cloud) => {
      const [record] = await readRecords(cloud);
      expect(record).toMatchObject({
        step: 'unshelved',
        unshelve: { path: 'slow', relocation: { reason: `${ZONE} is impaired` } },
      });
      const snapshots = new Set(cloud.ec2.snapshots().map((snapshot) => snapshot.snapshotId));
      expect(record?.volumes.every((volume) => snapshots.has(volume.snapshotId ?? ''))).toBe(true);
    });
  });

  it('fails, naming the invariant, when a retained volume is deleted behind its record', async () => {
    const offloaded = recordedWorkload([{ kind: 'shelve', targets: [0], afterMs: 0 }], {
      seed: 7,
      offloadAfterSeconds: 0,
    });
    const deleteOneRetainedVolume = async (cloud: LocalCloud) => {
      const retained = cloud.ec2.volumes().find((volume) => volume.tags[SHELVED_TAG] !== undefined);
      if (!retained) throw new Error('the workload retained no volume to delete');
      await cloud.run(() =>
        cloud.runtime('shelving').clients.ec2.send(new DeleteVolumeCommand({ VolumeId: retained.volumeId })),
      );
    };

    const result = await sabotaged(offloaded, deleteOneRetainedVolume);

    expect(result.failed).toBe(true);
    expect(String(result.errorInstance)).toContain('[no retained volume deleted] vol-');
  });

  it('fails, naming the invariant, when the shelving function terminates a shelved instance it was not offloading', async () => {
    const shelvedForGood = recordedWorkload([{ kind: 'shelve', targets: [0], afterMs: 0 }], { seed: 7 });
    // The call a bug in shelving would make: inside one of its invocations, so the journal
    // attributes it to shelving and the local IAM evaluates it against shelving's role.
    const terminateAsShelving = async (cloud: LocalCloud) => {
      const [record] = await readRecords(cloud);
      if (record?.step !== 'shelved') throw new Error('the workload shelved no instance');
      const scope = { functionId: 'shelving', invocationId: 'sabotage', awsCalls: 0, killed: false };
      await cloud.run(() =>
        invocationScope.run(scope, () =>
          cloud
            .runtime('shelving')
            .clients.ec2.send(new TerminateInstancesCommand({ InstanceIds: [record.instanceId] })),
        ),
      );
    };

    const result = await sabotaged(shelvedForGood, terminateAsShelving);

    expect(result.failed).toBe(true);
    expect(String(result.errorInstance)).toContain(
      '[no instance terminated that a shelve record runs as or that holds a retained volume] i-',
    );
  });
});
