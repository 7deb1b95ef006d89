import { describe, expect, it } from 'vitest';
import {
  type CallFacts,
  cachesConverge,
  claimedOnce,
  describeViolation,
  fastRestoreWithinBudget,
  handledOnce,
  noHalfSwap,
  onlyManagedTouched,
  outcomesPublished,
  poolClaims,
  popularityExact,
  requestsAnswered,
  retainedVolumesKept,
  retainedVolumesOwned,
  runningInstancesKept,
  type ShelfFacts,
  type ShelfVersion,
  type ShelvingState,
  safetySnapshotsKept,
  shelvingClaims,
  unshelvedOnlyEarlierShelves,
} from '../../local/invariants';
import { ROOT_AND_DATA_VOLUMES } from './shelving/fakes';

/**
 * The fault suite is only as good as its checkers: each one must pass a healthy state and catch
 * the violation it exists for, built here by hand.
 */

const offloaded: ShelfFacts = {
  recordId: 'sh-0123456789abcdef0-t8dsxz',
  instanceId: 'i-0123456789abcdef0',
  step: 'offloaded',
  volumes: [...ROOT_AND_DATA_VOLUMES],
};

const unshelved: ShelfFacts = {
  ...offloaded,
  step: 'unshelved',
  unshelve: {
    path: 'fast',
    replacementInstanceId: 'i-0fedcba9876543210',
    freshRootVolumeId: 'vol-0000000000000000c',
  },
};

const retainedVolume = (volumeId: string, recordId = offloaded.recordId) => ({
  volumeId,
  state: 'available',
  tags: { 'warmboot:shelved': recordId },
});

const healthyOffloaded: ShelvingState = {
  records: [offloaded],
  volumes: [retainedVolume('vol-0000000000000000a'), retainedVolume('vol-0000000000000000b')],
  instances: [{ instanceId: offloaded.instanceId, state: 'terminated', tags: {} }],
  everRetained: new Map([
    ['vol-0000000000000000a', offloaded.recordId],
    ['vol-0000000000000000b', offloaded.recordId],
  ]),
  deletedRecords: new Set(),
};

const attachedTo = (volumeId: string, instanceId: string, device: string) => ({
  volumeId,
  state: 'in-use',
  attachment: { instanceId, device },
  tags: {},
});

const healthyUnshelved: ShelvingState = {
  records: [unshelved],
  volumes: [
    attachedTo('vol-0000000000000000a', 'i-0fedcba9876543210', '/dev/xvda'),
    attachedTo('vol-0000000000000000b', 'i-0fedcba9876543210', '/dev/sdf'),
  ],
  instances: [
    { instanceId: offloaded.instanceId, state: 'terminated', tags: {} },
    {
      instanceId: 'i-0fedcba9876543210',
      state: 'running',
      tags: { 'warmboot:replacement-for': offloaded.recordId },
    },
  ],
  everRetained: healthyOffloaded.everRetained,
  deletedRecords: new Set(),
};

describe('shelving invariants', () => {
  it('hold for an offloaded record and for a record unshelved on the fast path', () => {
    for (const state of [healthyOffloaded, healthyUnshelved]) {
      expect([...retainedVolumesKept(state), ...retainedVolumesOwned(state), ...noHalfSwap(state)]).toEqual(
        [],
      );
    }
  });

  it('catch a retained volume that was deleted, unless the operator deleted its record', () => {
    const deleted = { ...healthyOffloaded, volumes: [retainedVolume('vol-0000000000000000a')] };

    expect(retainedVolumesKept(deleted).map(describeViolation)).toEqual([
      '[no retained volume deleted] vol-0000000000000000b: retained by sh-0123456789abcdef0-t8dsxz, which the operator did not delete, and the volume is gone',
    ]);
    expect(retainedVolumesKept({ ...deleted, deletedRecords: new Set([offloaded.recordId]) })).toEqual([]);
    const deleting = {
      ...healthyOffloaded,
      volumes: [
        retainedVolume('vol-0000000000000000a'),
        { ...retainedVolume('vol-0000000000000000b'), state: 'deleting' },
      ],
    };
    expect(retainedVolumesKept(deleting).map((violation) => violation.subject)).toEqual([
      'vol-0000000000000000b',
    ]);
  });

  it('catch a volume that was retained for a while and deleted before any record listed it', () => {
    const sampled = {
      ...healthyOffloaded,
      everRetained: new Map([
        ...healthyOffloaded.everRetained,
        ['vol-0000000000000000d', offloaded.recordId],
      ]),
    };

    expect(retainedVolumesKept(sampled).map((violation) => violation.subject)).toEqual([
      'vol-0000000000000000d',
    ]);
  });

  it('catch an orphaned retained volume and a volume two live records claim', () => {
    const orphan = {
      ...healthyOffloaded,
      volumes: [
        ...healthyOffloaded.volumes,
        retainedVolume('vol-0000000000000000e', 'sh-0000000000000000f-abc'),
      ],
    };
    const twice = {
      ...healthyOffloaded,
      records: [
        offloaded,
        { ...offloaded, recordId: 'sh-0fedcba9876543210-t8dsxz', instanceId: 'i-0fedcba9876543210' },
      ],
    };

    expect(retainedVolumesOwned(orphan).map((violation) => violation.message)).toEqual([
      'tagged warmboot:shelved=sh-0000000000000000f-abc but no such record exists (orphaned)',
    ]);
    expect(retainedVolumesOwned(twice).map((violation) => violation.subject)).toEqual([
      'vol-0000000000000000a',
      'vol-0000000000000000b',
    ]);
  });

  it('catch a half-swapped unshelve: the retained root still detached from the replacement', () => {
    const halfSwapped = {
      ...healthyUnshelved,
      volumes: [
        { volumeId: 'vol-0000000000000000a', state: 'available', tags: {} },
        attachedTo('vol-0000000000000000b', 'i-0fedcba9876543210', '/dev/sdf'),
        attachedTo('vol-0000000000000000c', 'i-0fedcba9876543210', '/dev/xvda'),
      ],
    };

    expect(noHalfSwap(halfSwapped).map(describeViolation)).toEqual([
      '[no instance left half-swapped] sh-0123456789abcdef0-t8dsxz: unshelved on i-0fedcba9876543210, but retained root vol-0000000000000000a is unattached instead of at /dev/xvda',
      "[no instance left half-swapped] sh-0123456789abcdef0-t8dsxz: the replacement's fresh root vol-0000000000000000c is left behind (on i-0fedcba9876543210)",
    ]);
  });

  it('catch a record stuck mid-saga and a leaked replacement instance', () => {
    const stuck = {
      ...healthyOffloaded,
      records: [{ ...offloaded, step: 'unshelve.swap-root' }],
      instances: [
        ...healthyOffloaded.instances,
        {
          instanceId: 'i-0aaaaaaaaaaaaaaaa',
          state: 'stopped',
          tags: { 'warmboot:replacement-for': offloaded.recordId },
        },
      ],
    };

    expect(noHalfSwap(stuck).map((violation) => [violation.invariant, violation.subject])).toEqual([
      ['recordAtRest', offloaded.recordId],
      ['noHalfSwap', 'i-0aaaaaaaaaaaaaaaa'],
    ]);
  });

  it('catch an unshelved record whose instance is not running', () => {
    const down = {
      ...healthyUnshelved,
      instances: healthyUnshelved.instances.map((instance) => ({ ...instance, state: 'stopped' })),
    };

    expect(noHalfSwap(down).map((violation) => violation.message)).toContain(
      'unshelved, but i-0fedcba9876543210 is stopped',
    );
  });
});

describe('handledOnce', () => {
  it('catches a retried request that created a second record for one instance', () => {
    const requested = new Map([['i-1', 1]]);

    expect(handledOnce(requested, new Map([['i-1', ['sh-a']]]), 'shelve records')).toEqual([]);
    expect(
      handledOnce(requested, new Map([['i-1', ['sh-a', 'sh-b']]]), 'shelve records').map(describeViolation),
    ).toEqual([
      '[handling the same event twice changes nothing the second time] i-1: 2 shelve records (sh-a, sh-b) for 1 distinct request event(s)',
    ]);
  });

  it('lets a later shelve record supersede an unshelved one of the same instance', () => {
    const reshelved = {
      ...healthyUnshelved,
      records: [
        { ...unshelved, shelvedAt: 1 },
        {
          ...offloaded,
          recordId: 'sh-later',
          instanceId: 'i-0fedcba9876543210',
          step: 'shelved',
          shelvedAt: 2,
        },
      ],
      instances: healthyUnshelved.instances.map((instance) => ({ ...instance, state: 'stopped' })),
    };

    expect(noHalfSwap(reshelved).filter((violation) => violation.message.includes('is stopped'))).toEqual([]);
  });
});

describe('unshelvedOnlyEarlierShelves', () => {
  const unshelvedRecord = (recordId: string, shelveRequestId: string): ShelfFacts => ({
    recordId,
    instanceId: 'i-1',
    step: 'unshelve.start',
    shelvedBy: { requestId: shelveRequestId },
    volumes: [],
    unshelve: { requestId: 'event-unshelve' },
  });
  const sentAt = new Map([
    ['event-shelve-first', 4_900],
    ['event-unshelve', 10_200],
    ['event-shelve-same-second', 10_900],
    ['event-shelve-again', 11_000],
  ]);

  it('accepts an Unshelve that moved the record of a Shelve sent before it, however late that Shelve was handled', () => {
    expect(unshelvedOnlyEarlierShelves([unshelvedRecord('sh-first', 'event-shelve-first')], sentAt)).toEqual(
      [],
    );
  });

  it('accepts a Shelve sent in the same second, which event times cannot order', () => {
    expect(
      unshelvedOnlyEarlierShelves([unshelvedRecord('sh-same', 'event-shelve-same-second')], sentAt),
    ).toEqual([]);
  });

  it('catches an Unshelve that moved the record of an instance shelved again by a later request', () => {
    expect(
      unshelvedOnlyEarlierShelves(
        [
          { ...unshelvedRecord('sh-first', 'event-shelve-first'), step: 'unshelved' },
          unshelvedRecord('sh-again', 'event-shelve-again'),
        ],
        sentAt,
      ).map(describeViolation),
    ).toEqual([
      "[handling the same event twice changes nothing the second time] sh-again: unshelved by request event-unshelve sent at 10200, but shelved by request event-shelve-again sent at 11000, a later second (its instance ids were resolved to a later Shelve's record)",
    ]);
  });

  it('catches a moved record that names no Shelve request', () => {
    const { shelvedBy: _, ...unnamed } = unshelvedRecord('sh-unnamed', 'event-shelve-first');
    expect(unshelvedOnlyEarlierShelves([unnamed], sentAt).map((violation) => violation.subject)).toEqual([
      'sh-unnamed',
    ]);
  });
});

describe('claimedOnce', () => {
  it('passes distinct hand-outs and repeats of the same one', () => {
    expect(
      claimedOnce([
        { requestId: 'r1', instanceId: 'i-1' },
        { requestId: 'r2', instanceId: 'i-2' },
        { requestId: 'r1', instanceId: 'i-1' },
      ]),
    ).toEqual([]);
  });

  it('catches a member handed to two requests and a request served twice', () => {
    const violations = claimedOnce([
      { requestId: 'r1', instanceId: 'i-1' },
      { requestId: 'r2', instanceId: 'i-1' },
      { requestId: 'r3', instanceId: 'i-2' },
      { requestId: 'r3', instanceId: 'i-3' },
    ]);

    expect(violations.map(describeViolation)).toEqual([
      '[no pool member claimed twice] i-1: handed to 2 requests: r1, r2',
      '[no pool member claimed twice] r3: got 2 servers: i-2, i-3',
    ]);
  });
});

describe('popularityExact', () => {
  it('catches a launch counted twice and one never counted', () => {
    const violations = popularityExact(
      new Map([
        ['ami-1', 2],
        ['ami-2', 1],
      ]),
      new Map([
        ['ami-1', 3],
        ['ami-2', 1],
        ['ami-3', 1],
      ]),
    );

    expect(violations.map((violation) => [violation.subject, violation.message])).toEqual([
      ['ami-1', 'counted 3 launches, but 2 distinct launches happened'],
      ['ami-3', 'counted 1 launches, but 0 distinct launches happened'],
    ]);
  });
});

describe('popularityExact with dead-lettered launches', () => {
  it('allows a dead-lettered launch to be counted or not, and nothing more', () => {
    const distinct = new Map([['ami-1', 3]]);
    const deadLettered = new Map([['ami-1', 1]]);

    expect(popularityExact(distinct, new Map([['ami-1', 2]]), deadLettered)).toEqual([]);
    expect(popularityExact(distinct, new Map([['ami-1', 3]]), deadLettered)).toEqual([]);
    expect(popularityExact(distinct, new Map([['ami-1', 1]]), deadLettered).map(describeViolation)).toEqual([
      '[popularity counts equal distinct launches] ami-1: counted 1 launches, but 3 distinct launches happened (1 of them dead-lettered)',
    ]);
    expect(popularityExact(distinct, new Map([['ami-1', 4]]), deadLettered)).toHaveLength(1);
  });
});

describe('fastRestoreWithinBudget', () => {
  const pair = (snapshotId: string, state: string) => ({ snapshotId, availabilityZone: 'us-east-1a', state });

  it('counts billed warmboot pairs only and catches a pair over budget', () => {
    const foreign = new Set(['snap-f@us-east-1a']);
    const within = [pair('snap-1', 'enabled'), pair('snap-2', 'disabled'), pair('snap-f', 'enabled')];

    expect(fastRestoreWithinBudget(within, foreign, 1, 't+0s')).toEqual([]);
    expect(
      fastRestoreWithinBudget([...within, pair('snap-3', 'disabling')], foreign, 1, 't+60s').map(
        describeViolation,
      ),
    ).toEqual([
      '[fast snapshot restore stays within its budget] t+60s: 2 pairs billed (snap-1@us-east-1a:enabled, snap-3@us-east-1a:disabling), budget 1',
    ]);
  });

  it('catches a foreign pair that was disabled', () => {
    expect(
      fastRestoreWithinBudget([pair('snap-f', 'disabling')], new Set(['snap-f@us-east-1a']), 5, 't+5s').map(
        (violation) => violation.invariant,
      ),
    ).toEqual(['onlyManaged']);
  });
});

describe('cachesConverge', () => {
  it('passes equal sets and catches missing and unplanned images per host', () => {
    const plan = new Map([['i-1', new Set(['a', 'b'])]]);

    expect(cachesConverge(plan, new Map([['i-1', new Set(['b', 'a'])]]))).toEqual([]);
    expect(
      cachesConverge(
        plan,
        new Map([
          ['i-1', new Set(['a', 'c'])],
          ['i-2', new Set(['d'])],
        ]),
      ).map(describeViolation),
    ).toEqual([
      '[caches converge to the plan] i-1: missing b; not planned but cached c',
      '[caches converge to the plan] i-2: not planned but cached d',
    ]);
  });
});

describe('requestsAnswered', () => {
  const requests = [
    { eventId: 'e1', detailType: 'Shelve Instances', sentAt: 0 },
    { eventId: 'e2', detailType: 'Unshelve Instances', sentAt: 0 },
    { eventId: 'e3', detailType: 'Request Server', sentAt: 0 },
    { eventId: 'e4', detailType: 'Drain Pool', sentAt: 0 },
  ];

  it('accepts handled, rejected-with-error and dead-lettered requests', () => {
    expect(
      requestsAnswered(requests, [
        { eventId: 'e1', outcome: 'crashed', error: 'handler killed' },
        { eventId: 'e1', outcome: 'succeeded', result: { status: 'handled', result: {} } },
        {
          eventId: 'e2',
          outcome: 'succeeded',
          result: { status: 'rejected', error: { code: 'ValidationError', message: 'x' } },
        },
        { eventId: 'e3', outcome: 'dead-lettered', error: 'InsufficientInstanceCapacity' },
        { eventId: 'e4', outcome: 'succeeded', result: { status: 'handled', result: null } },
      ]),
    ).toEqual([]);
  });

  it('catches a request never delivered, one that only failed, and one merely ignored', () => {
    const violations = requestsAnswered(requests, [
      { eventId: 'e2', outcome: 'failed', error: 'boom' },
      { eventId: 'e3', outcome: 'succeeded', result: { status: 'ignored', reason: 'no handler' } },
      { eventId: 'e4', outcome: 'succeeded', result: { status: 'handled' } },
    ]);

    expect(violations.map((violation) => [violation.subject, violation.message])).toEqual([
      ['Shelve Instances e1', 'never delivered to a handler and not dead-lettered'],
      ['Unshelve Instances e2', 'no answer: failed (boom)'],
      ['Request Server e3', 'no answer: succeeded'],
    ]);
  });

  it('catches a terminal record whose fact was never published', () => {
    expect(
      outcomesPublished(
        [unshelved, { ...offloaded, recordId: 'sh-1', step: 'failed' }],
        [{ detailType: 'Instance Unshelved', recordId: unshelved.recordId }],
      ).map((violation) => violation.subject),
    ).toEqual(['sh-1']);
  });
});

// ---------------------------------------------------------------- calls as they happened

/** A destructive call as the call journal records it, at virtual time 0 unless given. */
const call = (
  seq: number,
  caller: string,
  operation: string,
  resource: CallFacts['resource'],
): CallFacts => ({ seq, at: Date.UTC(2026, 0, 5, 8, 0, seq), caller, operation, resource });

const instanceX = 'i-0123456789abcdef0';
const replacementY = 'i-0fedcba9876543210';
const recordR = offloaded.recordId;
const version = (seq: number, record?: ShelfFacts): ShelfVersion => ({
  seq,
  recordId: record?.recordId ?? recordR,
  ...(record ? { record } : {}),
});
const shelvedR: ShelfFacts = { ...offloaded, step: 'shelved', shelvedAt: 1 };
const offloadingR: ShelfFacts = { ...shelvedR, step: 'offload.terminate' };
const unshelvedR: ShelfFacts = {
  ...unshelved,
  shelvedAt: 1,
  offloadedAt: 2,
  unshelve: { ...unshelved.unshelve, readyAt: 3 },
};
/** X as EC2 shows it while shelved: stopped, its retained volumes kept on termination. */
const shelvedInstance = (deleteOnTermination = false): CallFacts['resource'] => ({
  kind: 'instance',
  id: instanceX,
  state: 'stopped',
  tags: { 'warmboot:shelving': 'true' },
  attachedVolumes: offloaded.volumes.map((volume) => ({
    volumeId: volume.volumeId,
    device: volume.deviceName,
    deleteOnTermination,
    tags: { 'warmboot:shelved': recordR, 'warmboot:shelving': 'true' },
  })),
});

describe('runningInstancesKept', () => {
  it("accepts the offload of a record's own instance with its volumes kept, and calls from outside warmboot", () => {
    const history = [version(1, shelvedR), version(2, offloadingR)];

    expect(
      runningInstancesKept([call(3, 'shelving', 'TerminateInstances', shelvedInstance())], history),
    ).toEqual([]);
    expect(
      runningInstancesKept(
        [call(3, 'outside', 'TerminateInstances', shelvedInstance(true))],
        [version(1, shelvedR)],
      ),
    ).toEqual([]);
  });

  it('catches a shelved instance terminated before its record was offloading, judged by the record at the time of the call', () => {
    const history = [version(1, shelvedR), version(5, offloadingR)];

    expect(
      runningInstancesKept([call(3, 'shelving', 'TerminateInstances', shelvedInstance())], history).map(
        describeViolation,
      ),
    ).toEqual([
      `[no instance terminated that a shelve record runs as or that holds a retained volume] ${instanceX}: shelving TerminateInstances at 2026-01-05T08:00:03.000Z (call 3) terminated it while ${recordR} (step shelved) runs as it`,
      `[no instance terminated that a shelve record runs as or that holds a retained volume] ${instanceX}: shelving TerminateInstances at 2026-01-05T08:00:03.000Z (call 3) terminated it with vol-0000000000000000a, retained by ${recordR} (step shelved), attached at /dev/xvda (DeleteOnTermination false)`,
      `[no instance terminated that a shelve record runs as or that holds a retained volume] ${instanceX}: shelving TerminateInstances at 2026-01-05T08:00:03.000Z (call 3) terminated it with vol-0000000000000000b, retained by ${recordR} (step shelved), attached at /dev/sdf (DeleteOnTermination false)`,
    ]);
    // Before the Shelve wrote its record (and tagged the volumes), nothing named X.
    const beforeShelve = {
      ...shelvedInstance(),
      attachedVolumes: (shelvedInstance().attachedVolumes ?? []).map((volume) => ({ ...volume, tags: {} })),
    };
    expect(
      runningInstancesKept([call(3, 'shelving', 'TerminateInstances', beforeShelve)], [version(4, shelvedR)]),
    ).toEqual([]);
  });

  it('catches an offload that would take a retained volume with it (DeleteOnTermination still true)', () => {
    const history = [version(1, shelvedR), version(2, offloadingR)];

    expect(
      runningInstancesKept([call(3, 'shelving', 'TerminateInstances', shelvedInstance(true))], history).map(
        (violation) => violation.message.split(' terminated it ')[1],
      ),
    ).toEqual([
      `with vol-0000000000000000a, retained by ${recordR} (step offload.terminate), attached at /dev/xvda (DeleteOnTermination true)`,
      `with vol-0000000000000000b, retained by ${recordR} (step offload.terminate), attached at /dev/sdf (DeleteOnTermination true)`,
    ]);
  });

  it('catches the instance an unshelved record runs as being terminated as an unclaimed replacement (security review C4)', () => {
    const replacement = {
      kind: 'instance',
      id: replacementY,
      state: 'running',
      tags: { 'warmboot:replacement-for': recordR, 'warmboot:replacement-batch': 'batch-1' },
      attachedVolumes: [],
    };

    expect(
      runningInstancesKept(
        [call(4, 'shelving', 'TerminateInstances', replacement)],
        [version(1, shelvedR), version(3, unshelvedR)],
      ).map((violation) => violation.message),
    ).toEqual([
      `shelving TerminateInstances at 2026-01-05T08:00:04.000Z (call 4) terminated it while ${recordR} (step unshelved) runs as it`,
    ]);
  });

  it('lets the offload of a newer record of the same instance terminate it (the instance was shelved again)', () => {
    const reshelved: ShelfFacts = {
      ...offloadingR,
      recordId: 'sh-later',
      instanceId: replacementY,
      shelvedAt: 9,
    };
    const replacement = {
      kind: 'instance',
      id: replacementY,
      state: 'stopped',
      tags: {},
      attachedVolumes: offloaded.volumes.map((volume) => ({
        volumeId: volume.volumeId,
        device: volume.deviceName,
        deleteOnTermination: false,
        tags: { 'warmboot:shelved': 'sh-later' },
      })),
    };

    expect(
      runningInstancesKept(
        [call(11, 'shelving', 'TerminateInstances', replacement)],
        [version(3, unshelvedR), version(10, reshelved)],
      ),
    ).toEqual([]);
  });
});

describe('safetySnapshotsKept', () => {
  const withSnapshots: ShelfFacts = {
    ...offloaded,
    volumes: offloaded.volumes.map((volume, index) => ({ ...volume, snapshotId: `snap-${index}` })),
  };
  const deleting: ShelfFacts = {
    ...withSnapshots,
    step: 'deleting',
    deletion: {
      volumeIds: offloaded.volumes.map((volume) => volume.volumeId),
      snapshotIds: ['snap-0', 'snap-1'],
    },
  };
  const snapshot = (id: string, sourceVolumeId: string, liveVolumeIds: string[] = []) => ({
    kind: 'snapshot',
    id,
    state: 'completed',
    tags: { 'warmboot:shelved': recordR },
    sourceVolumeId,
    liveVolumeIds,
  });
  const deleteSnapshot = (
    seq: number,
    id = 'snap-0',
    source = 'vol-0000000000000000a',
    live: string[] = [],
  ) => call(seq, 'shelving', 'DeleteSnapshot', snapshot(id, source, live));

  it("accepts deleting a record's own snapshots once its confirmed deletion removed its volumes, even after the record went", () => {
    expect(
      safetySnapshotsKept(
        [deleteSnapshot(3), deleteSnapshot(5, 'snap-1', 'vol-0000000000000000b')],
        [version(1, withSnapshots), version(2, deleting), version(4)],
      ),
    ).toEqual([]);
  });

  it('catches a snapshot deleted while its record rests, or after it was removed without a confirmed deletion', () => {
    expect(
      safetySnapshotsKept([deleteSnapshot(3)], [version(1, withSnapshots), version(4, deleting)]).map(
        describeViolation,
      ),
    ).toEqual([
      `[safety snapshots stay until their record is confirmed deleted] snap-0: shelving DeleteSnapshot at 2026-01-05T08:00:03.000Z (call 3) deleted the safety snapshot of ${recordR}, which is offloaded, not confirmed deleted`,
    ]);
    expect(
      safetySnapshotsKept([deleteSnapshot(3)], [version(1, withSnapshots), version(2)]).map(
        (violation) => violation.message.split(`${recordR}, `)[1],
      ),
    ).toEqual(['which was removed from offloaded, not by a confirmed deletion']);
  });

  it('catches a snapshot deleted while a volume of the deletion is left (finding 11)', () => {
    expect(
      safetySnapshotsKept(
        [deleteSnapshot(3, 'snap-0', 'vol-0000000000000000a', ['vol-0000000000000000b'])],
        [version(1, withSnapshots), version(2, deleting)],
      ).map((violation) => violation.message.split(`${recordR}, `)[1]),
    ).toEqual(['while the record still holds vol-0000000000000000b']);
  });

  it("catches a snapshot deleted under a record's name that was not taken from one of its volumes", () => {
    expect(
      safetySnapshotsKept(
        [deleteSnapshot(3, 'snap-9', 'vol-0000000000000000f')],
        [version(1, withSnapshots), version(2, deleting)],
      ).map((violation) => violation.message.split(`${recordR}, `)[1]),
    ).toEqual(["but it was taken from vol-0000000000000000f, never one of that record's volumes"]);
  });
});

describe('onlyManagedTouched', () => {
  const customer = {
    kind: 'instance',
    id: 'i-0c0c0c0c0c0c0c0c0',
    state: 'running',
    tags: { owner: 'team-web' },
  };
  const poolMember = {
    kind: 'instance',
    id: 'i-0d0d0d0d0d0d0d0d0',
    state: 'stopped',
    tags: { 'warmboot:pools': 'true', 'warmboot:pool': 'linux-web' },
  };
  const retained = {
    kind: 'volume',
    id: 'vol-0000000000000000a',
    state: 'available',
    tags: { 'warmboot:shelving': 'true', 'warmboot:shelved': recordR },
  };
  const pair = (enabledBy: string) => ({
    kind: 'fast-restore-pair',
    id: 'snap-1@us-east-1a',
    state: 'enabled',
    tags: {},
    enabledBy,
  });
  const shelvedCustomerInstance = { ...customer, id: instanceX, tags: { 'warmboot:shelving': 'true' } };

  it('accepts each capability on what it manages, by tag, by record or by who enabled it, and the customer on anything', () => {
    const claims = shelvingClaims([version(1, shelvedR)]);

    expect(
      onlyManagedTouched(
        [
          call(2, 'shelving', 'StopInstances', shelvedCustomerInstance),
          call(3, 'shelving', 'DeleteVolume', retained),
          call(4, 'pools', 'TerminateInstances', poolMember),
          call(5, 'claim', 'ModifyInstanceAttribute', poolMember),
          call(6, 'fastRestore', 'DisableFastSnapshotRestores', pair('fastRestore')),
          call(7, 'outside', 'TerminateInstances', customer),
        ],
        claims,
      ),
    ).toEqual([]);
  });

  it("catches shelving on a pool member, pools on a shelved instance's volume, and anyone on an unmanaged instance", () => {
    expect(
      onlyManagedTouched(
        [
          call(2, 'shelving', 'TerminateInstances', poolMember),
          call(3, 'pools', 'DetachVolume', retained),
          call(4, 'claim', 'StopInstances', customer),
        ],
        [],
      ).map(describeViolation),
    ).toEqual([
      '[a capability only changes resources it manages] i-0d0d0d0d0d0d0d0d0: shelving TerminateInstances at 2026-01-05T08:00:02.000Z (call 2), by capability shelving, on a instance which pools manages (tag warmboot:pool=linux-web)',
      `[a capability only changes resources it manages] vol-0000000000000000a: pools DetachVolume at 2026-01-05T08:00:03.000Z (call 3), by capability pools, on a volume which shelving manages (tag warmboot:shelved=${recordR})`,
      '[a capability only changes resources it manages] i-0c0c0c0c0c0c0c0c0: claim StopInstances at 2026-01-05T08:00:04.000Z (call 4), by capability pools, on a instance which nothing manages (tags: {"owner":"team-web"})',
    ]);
  });

  it('judges by the records at the time of the call: a record not yet written, or a member already handed over, manages nothing', () => {
    const handedOver = { ...poolMember, tags: { owner: 'team-web' } };
    const members = poolClaims([
      { seq: 1, pool: 'linux-web', instanceId: poolMember.id, state: 'claimed' },
      { seq: 3, pool: 'linux-web', instanceId: poolMember.id, state: 'handed-over' },
    ]);

    expect(
      onlyManagedTouched(
        [
          call(2, 'shelving', 'StopInstances', shelvedCustomerInstance),
          call(2, 'pools', 'ModifyInstanceAttribute', handedOver),
          call(4, 'pools', 'TerminateInstances', handedOver),
        ],
        [...shelvingClaims([version(5, shelvedR)]), ...members],
      ).map((violation) => [violation.subject, violation.message.includes('nothing manages')]),
    ).toEqual([
      [instanceX, true],
      [poolMember.id, true],
    ]);
  });

  it('catches a fast snapshot restore pair someone else enabled being disabled, and a resource two capabilities claim', () => {
    expect(
      onlyManagedTouched(
        [
          call(2, 'fastRestore', 'DisableFastSnapshotRestores', pair('outside')),
          call(3, 'shelving', 'StopInstances', { ...poolMember, id: instanceX }),
        ],
        shelvingClaims([version(1, shelvedR)]),
      ).map((violation) => violation.message.split(' on a ')[1]),
    ).toEqual([
      'fast-restore-pair which nothing manages (tags: {})',
      'instance which pools manages (tag warmboot:pool=linux-web)',
    ]);
  });
});
