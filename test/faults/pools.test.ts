import fc from 'fast-check';
import { describe, it } from 'vitest';
import type { LocalCloud } from '../../local/cloud';
import { plantForeignPoolMember } from '../../local/foreign-resources';
import { type Assignment, claimedOnce, type Violation } from '../../local/invariants';
import { AWS_EVENTS, operatorRequest, warmbootFact } from './support/deliveries';
import { assertOptions, FaultTally, faultProperty, type RunLog, summarizeAfterAll } from './support/harness';
import { callFault, recordedSchedule } from './support/recorded';
import { faultScheduleArbitrary, pauseArbitrary, serviceCalls } from './support/schedule';

/**
 * Prestarted pools and claims under faults: a pool is defined and filled, then random Request
 * Server traffic arrives (concurrent requests, client retries of the same requestId, other
 * instance types and AZs, sometimes a drain) while events are lost, duplicated, delayed and
 * reordered, EC2 and SSM calls fail and either function dies between any two calls. After the
 * pools reconcile has run on a healthy cloud: no member went to two requesters, no request got
 * two servers, and every request ended in Server Ready, Server Request Failed or a reported error.
 */

const MINUTE = 60_000;
const FAULT_WINDOW_MS = 8 * MINUTE;
/** What the faults hit and for how long: the functions deployed (any invocation may die), the window. */
const FAULT_SCOPE = { functions: ['pools', 'claim'], windowMs: FAULT_WINDOW_MS } as const;
const RECONCILE_MS = 12 * MINUTE;
const SUBNET_A = 'subnet-0aaaaaaaaaaaaaaa1';
const SUBNET_B = 'subnet-0bbbbbbbbbbbbbbb2';
const POOL = 'linux-web';
/** The owner tag carrying the request id, so EC2 itself shows who got which server. */
const REQUEST_TAG = 'request';

interface ServerRequest {
  readonly afterMs: number;
  readonly availabilityZone: 'us-east-1a' | 'us-east-1b';
  readonly instanceType: 'm7i.large' | 'm7i.xlarge';
  /** The client sends the same requestId again this long after (a client retry), or never. */
  readonly retryAfterMs: number | null;
}

interface PoolWorkload {
  readonly seed: number;
  readonly tier: 'stopped' | 'running';
  readonly minSize: number;
  readonly extra: number;
  readonly requests: readonly ServerRequest[];
  readonly drainAfterMs: number | null;
}

/** One stopped member and one claim of it at once; a Drain Pool `drainAfterMs` later, or none. */
const oneRequest = (drainAfterMs: number | null) =>
  fc.constant<PoolWorkload>({
    seed: 1,
    tier: 'stopped',
    minSize: 1,
    extra: 0,
    requests: [{ afterMs: 0, availabilityZone: 'us-east-1a', instanceType: 'm7i.large', retryAfterMs: null }],
    drainAfterMs,
  });

const workloadArbitrary: fc.Arbitrary<PoolWorkload> = fc.record({
  seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
  tier: fc.constantFrom('stopped' as const, 'running' as const),
  minSize: fc.integer({ min: 1, max: 3 }),
  extra: fc.integer({ min: 0, max: 1 }),
  requests: fc.array(
    fc.record({
      afterMs: pauseArbitrary(120),
      availabilityZone: fc.constantFrom('us-east-1a' as const, 'us-east-1b' as const),
      instanceType: fc.constantFrom('m7i.large' as const, 'm7i.xlarge' as const),
      retryAfterMs: fc.option(
        fc.integer({ min: 0, max: 90 }).map((s) => s * 1000),
        { freq: 3 },
      ),
    }),
    { minLength: 1, maxLength: 4 },
  ),
  drainAfterMs: fc.option(
    fc.integer({ min: 0, max: 240 }).map((s) => s * 1000),
    { freq: 6 },
  ),
});

const faultArbitrary = faultScheduleArbitrary({
  ...FAULT_SCOPE,
  events: [
    AWS_EVENTS.ec2StateChange,
    AWS_EVENTS.ssmCommandStatus,
    AWS_EVENTS.scheduleTick,
    operatorRequest('Request Server'),
    // The pools function's resume of an interrupted claim.
    ...['Request Server', 'Server Claimed'].map(warmbootFact),
  ],
  calls: [
    ...serviceCalls('ec2', [
      'RunInstances',
      'StartInstances',
      'StopInstances',
      'TerminateInstances',
      'ModifyInstanceAttribute',
      'CreateTags',
      'DeleteTags',
      'DescribeInstances',
    ]),
    ...serviceCalls('ssm', ['SendCommand', 'GetCommandInvocation']),
  ],
  maxCallsPerInvocation: 30,
});

const tally = new FaultTally('pools + claim', [
  'claimedOnce',
  'requestAnswered',
  'onlyManaged',
  'runningInstanceKept',
  'safetySnapshotKept',
]);

/** The planted instance was never started, stopped, modified, tagged, terminated or handed out by warmboot. */
const foreignUntouched = (
  cloud: LocalCloud,
  planted: string,
  assignments: readonly Assignment[],
): Violation[] => [
  ...cloud.calls
    .calls()
    .filter((call) => call.resource.id === planted && call.caller !== 'outside')
    .map((call) => ({
      invariant: 'onlyManaged' as const,
      subject: planted,
      message: `${call.caller} called ${call.operation} on an instance someone else tagged as a pool member`,
    })),
  ...assignments
    .filter((assignment) => assignment.instanceId === planted)
    .map((assignment) => ({
      invariant: 'onlyManaged' as const,
      subject: planted,
      message: `handed to ${assignment.requestId}, but warmboot never launched it`,
    })),
  ...(cloud.ec2.instance(planted)?.state === 'running'
    ? []
    : [{ invariant: 'onlyManaged' as const, subject: planted, message: 'no longer running' }]),
];

const factsOf = (log: RunLog, detailType: string) =>
  log.facts
    .filter((fact) => fact['detail-type'] === detailType)
    .map((fact) => fact.detail as { requestId?: string; instanceId?: string });

/** Who got which server, from every witness: Server Ready facts, the handlers' answers, EC2's tags. */
const assignmentsOf = (cloud: LocalCloud, log: RunLog): Assignment[] => {
  const assignments: Assignment[] = [];
  for (const fact of factsOf(log, 'Server Ready')) {
    if (fact.requestId && fact.instanceId)
      assignments.push({ requestId: fact.requestId, instanceId: fact.instanceId });
  }
  for (const outcome of log.outcomes) {
    const answer = (
      outcome.result as { result?: { status?: string; requestId?: string; instanceId?: string } }
    )?.result;
    if (answer?.status === 'ready' && answer.requestId && answer.instanceId) {
      assignments.push({ requestId: answer.requestId, instanceId: answer.instanceId });
    }
  }
  for (const instance of cloud.ec2.instances()) {
    const requestId = instance.tags[REQUEST_TAG];
    if (requestId !== undefined && instance.state !== 'terminated')
      assignments.push({ requestId, instanceId: instance.instanceId });
  }
  return assignments;
};

/** Each requestId ends in Server Ready or Server Request Failed, or every event of it was rejected or dead-lettered. */
const claimsFinished = (
  log: RunLog,
  requestIds: readonly string[],
  requestEvents: Map<string, string[]>,
): Violation[] => {
  const finished = new Set(
    [...factsOf(log, 'Server Ready'), ...factsOf(log, 'Server Request Failed')].map((fact) => fact.requestId),
  );
  const letters = new Set(
    log
      .allOutcomes()
      .filter((outcome) => outcome.outcome === 'dead-lettered')
      .map((o) => o.eventId),
  );
  const rejected = new Set(
    log.outcomes
      .filter((outcome) => (outcome.result as { status?: string } | undefined)?.status === 'rejected')
      .map((outcome) => outcome.eventId),
  );
  return requestIds
    .filter((requestId) => !finished.has(requestId))
    .filter(
      (requestId) => !(requestEvents.get(requestId) ?? []).every((id) => letters.has(id) || rejected.has(id)),
    )
    .map((requestId) => ({
      invariant: 'requestAnswered' as const,
      subject: requestId,
      message:
        'neither Server Ready nor Server Request Failed was published, and the request was not dead-lettered',
    }));
};

interface PoolRun {
  /** The instance someone else tagged as a member of the pool. */
  readonly planted: string;
  readonly requestIds: readonly string[];
  /** Every event that carried each requestId (client retries send it again). */
  readonly requestEvents: Map<string, string[]>;
}

/** The property over any workloads and fault schedules. */
const poolsProperty = faultProperty<PoolWorkload, PoolRun>({
  ...FAULT_SCOPE,
  // The account has Default Host Management Configuration on: every agent registers (S4).
  cloud: () => ({ defaultHostManagement: true }),
  settleMs: RECONCILE_MS,
  setup: async ({ cloud, workload }) => {
    cloud.ec2.addSubnet({ subnetId: SUBNET_A, availabilityZone: 'us-east-1a' });
    cloud.ec2.addSubnet({ subnetId: SUBNET_B, availabilityZone: 'us-east-1b' });
    const image = cloud.ec2.registerImage({ name: 'al2023-web', rootSizeGiB: 8 });
    const planted = await plantForeignPoolMember(cloud, { pool: POOL, imageId: image, subnetId: SUBNET_A });
    // An administrative request: a direct invoke, not an event on the request bus.
    await cloud.adminRequest('Define Pool', {
      pool: {
        name: POOL,
        image,
        instanceType: 'm7i.large',
        instanceTypes: ['m7i.xlarge'],
        subnets: [SUBNET_A, SUBNET_B],
        initialization: { platform: 'linux', packages: ['nginx'], timeoutMinutes: 30 },
        tier: workload.tier,
        minSize: workload.minSize,
        maxSize: workload.minSize + workload.extra,
      },
    });
    await cloud.settleFor(5 * MINUTE);
    cloud.startSchedules();
    return {
      planted,
      requestIds: workload.requests.map((_, index) => `req-${index + 1}`),
      requestEvents: new Map(),
    };
  },
  apply: async ({ cloud, log, workload }, { requestIds, requestEvents }) => {
    const send = async (index: number): Promise<void> => {
      const request = workload.requests[index];
      const requestId = requestIds[index] ?? '';
      if (!request) return;
      const event = await log.request('Request Server', {
        requestId,
        pool: POOL,
        instanceType: request.instanceType,
        availabilityZone: request.availabilityZone,
        ownerTags: { owner: 'team-web', [REQUEST_TAG]: requestId },
        personalization: { hostname: `web-${index + 1}` },
      });
      requestEvents.set(requestId, [...(requestEvents.get(requestId) ?? []), event.id]);
    };
    const start = cloud.clock.now();
    if (workload.drainAfterMs !== null) {
      cloud.clock.at(start + workload.drainAfterMs, () => {
        void log.request('Drain Pool', { pool: POOL });
      });
    }
    for (const [index, request] of workload.requests.entries()) {
      await cloud.settleFor(request.afterMs);
      await send(index);
      if (request.retryAfterMs !== null)
        cloud.clock.at(cloud.clock.now() + request.retryAfterMs, () => void send(index));
    }
  },
  checks: async ({ cloud, log }, { planted, requestIds, requestEvents }, counts) => {
    const assignments = assignmentsOf(cloud, log);
    counts.observe('hand-outs', new Set(assignments.map((a) => `${a.requestId}|${a.instanceId}`)).size);
    counts.observe('requests', requestIds.length);
    return [
      ...claimedOnce(assignments),
      ...claimsFinished(log, requestIds, requestEvents),
      ...foreignUntouched(cloud, planted, assignments),
    ];
  },
});

describe('pools and claims under duplicate, lost and reordered events, throttling, capacity errors and crashes', () => {
  summarizeAfterAll(tally);

  it('never hands a member to two requesters and answers every request', async () => {
    await fc.assert(poolsProperty(workloadArbitrary, faultArbitrary, tally), assertOptions());
  });

  it('finishes a claim whose owner tagging was throttled past the SDK retries', async () => {
    const oneClaim = oneRequest(null);
    const throttledTagging = recordedSchedule(callFault(0, 'ec2', 'CreateTags', 'RequestLimitExceeded', 5));

    await fc.assert(poolsProperty(oneClaim, throttledTagging, new FaultTally('pools regression', [])), {
      numRuns: 1,
    });
  });

  it('answers a Drain Pool whose first reconcile pass cannot describe the pool (1,000-run pass, seed 20261205)', async () => {
    const drainAtOnce = oneRequest(0);
    const describesFail = recordedSchedule(
      callFault(0, 'ec2', 'DescribeInstances', 'IncorrectInstanceState', 5),
    );

    await fc.assert(poolsProperty(drainAtOnce, describesFail, new FaultTally('pools regression', [])), {
      numRuns: 1,
    });
  });
});
