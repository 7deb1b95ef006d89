import fc from 'fast-check';
import type { FunctionId } from '../../../functions/catalog';
import type { EventFault } from '../../../local/bus';
import type { LocalCloud } from '../../../local/cloud';
import type { SimulatedService } from '../../../local/faults';
import type { EventTarget } from './deliveries';

/**
 * A fault schedule: what goes wrong, and when (virtual ms after the workload starts). Event
 * faults are bus rules (drop, duplicate, delay, reorder) limited to a few deliveries; call faults
 * make the next matching AWS calls fail with a real EC2/SSM error code; a kill makes the next
 * invocation of a function die after a given number of AWS calls (between any two calls).
 */
export type ScheduledFault =
  | {
      readonly kind: 'event';
      readonly atMs: number;
      readonly target: EventTarget;
      readonly fault: EventFault;
      readonly times: number;
    }
  | {
      readonly kind: 'call';
      readonly atMs: number;
      readonly service: SimulatedService;
      readonly operation: string;
      readonly code: AwsFaultCode;
      readonly times: number;
    }
  | {
      readonly kind: 'kill';
      readonly atMs: number;
      readonly functionId: FunctionId;
      readonly afterCalls: number;
    }
  /**
   * The next batch RunInstances launches fewer instances than asked (one), and the invocation
   * dies right after recording what it got, before it records the shortfall (C4).
   */
  | { readonly kind: 'partial-launch'; readonly atMs: number };

/** What EC2 and SSM answer when they fail: throttling, no capacity, wrong state, their own fault. */
export const AWS_FAULT_CODES = [
  'RequestLimitExceeded',
  'InsufficientInstanceCapacity',
  'IncorrectInstanceState',
  'InternalError',
] as const;
/** What DynamoDB answers when it fails: throttled (table or account), its own fault. */
export const DYNAMODB_FAULT_CODES = [
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'InternalServerError',
] as const;
export type AwsFaultCode = (typeof AWS_FAULT_CODES)[number] | (typeof DYNAMODB_FAULT_CODES)[number];

const HTTP_STATUS: Record<AwsFaultCode, number> = {
  RequestLimitExceeded: 503,
  InsufficientInstanceCapacity: 500,
  IncorrectInstanceState: 400,
  InternalError: 500,
  ProvisionedThroughputExceededException: 400,
  ThrottlingException: 400,
  InternalServerError: 500,
};

export interface FaultSpace {
  /** Faults happen within this many virtual ms from the start of the workload. */
  readonly windowMs: number;
  /** The functions whose invocations may be killed. */
  readonly functions: readonly FunctionId[];
  readonly events: readonly EventTarget[];
  /**
   * AWS operations of the capability worth failing, by service; the DynamoDB operations every
   * capability makes (DYNAMODB_CALLS) come after them.
   */
  readonly calls: readonly { readonly service: SimulatedService; readonly operation: string }[];
  /** The most AWS calls one invocation of the function makes in these workloads (kill points). */
  readonly maxCallsPerInvocation: number;
  readonly maxFaults?: number;
  /** The capability launches several instances per RunInstances: schedule partial launches too. */
  readonly partialLaunches?: boolean;
}

export class FaultSchedule {
  readonly faults: readonly ScheduledFault[];

  constructor(faults: readonly ScheduledFault[]) {
    this.faults = [...faults].sort((a, b) => a.atMs - b.atMs);
  }

  /** One line per fault, in time order: what fast-check prints for a (shrunk) counterexample. */
  toString(): string {
    if (this.faults.length === 0) return 'FaultSchedule(no faults)';
    return `FaultSchedule(\n${this.faults.map((fault) => `  ${describeFault(fault)}`).join('\n')}\n)`;
  }

  [fc.toStringMethod](): string {
    return this.toString();
  }
}

const seconds = (ms: number): string => `t+${(ms / 1000).toFixed(0)}s`;

export const describeFault = (fault: ScheduledFault): string => {
  switch (fault.kind) {
    case 'event': {
      const what =
        fault.fault.kind === 'delay'
          ? `delay ${fault.fault.ms / 1000}s`
          : fault.fault.kind === 'duplicate'
            ? `duplicate (copy after ${(fault.fault.afterMs ?? 0) / 1000}s)`
            : fault.fault.kind === 'reorder'
              ? `reorder window ${fault.fault.window}`
              : 'drop';
      return `${seconds(fault.atMs)} ${what} next ${fault.times} × ${fault.target.source} "${fault.target.detailType}"`;
    }
    case 'call':
      return `${seconds(fault.atMs)} fail next ${fault.times} × ${fault.service}:${fault.operation} with ${fault.code}`;
    case 'kill':
      return `${seconds(fault.atMs)} kill next ${fault.functionId} invocation after ${fault.afterCalls} AWS calls`;
    case 'partial-launch':
      return `${seconds(fault.atMs)} next batch RunInstances launches one instance, then its handler dies before recording the shortfall`;
  }
};

/** Operations of one service, as a fault space lists the calls worth failing. */
export const serviceCalls = (
  service: SimulatedService,
  operations: readonly string[],
): { readonly service: SimulatedService; readonly operation: string }[] =>
  operations.map((operation) => ({ service, operation }));

/** The DynamoDB operations warmboot's adapters and the idempotency layer use; each capability may fail them. */
const DYNAMODB_CALLS = serviceCalls('dynamodb', [
  'GetItem',
  'PutItem',
  'UpdateItem',
  'DeleteItem',
  'Query',
  'BatchGetItem',
  'TransactWriteItems',
]);

/** A workload's pause before its next step: often none, else whole seconds up to `maxSeconds`. */
export const pauseArbitrary = (maxSeconds: number): fc.Arbitrary<number> =>
  fc.oneof(
    fc.constant(0),
    fc.integer({ min: 1, max: maxSeconds }).map((s) => s * 1000),
  );

/** Random fault schedules over one capability's events, calls and kill points. */
export const faultScheduleArbitrary = (space: FaultSpace): fc.Arbitrary<FaultSchedule> => {
  // Most of a workload's traffic comes early; half the faults land in the first quarter of the window.
  const atMs = fc
    .oneof(
      fc.integer({ min: 0, max: space.windowMs / 4000 }),
      fc.integer({ min: 0, max: space.windowMs / 1000 }),
    )
    .map((s) => s * 1000);
  const target = fc.constantFrom(...space.events);
  const eventFault = target.chain((chosen) =>
    fc.record({
      kind: fc.constant('event' as const),
      atMs,
      target: fc.constant(chosen),
      fault: fc.oneof(
        ...(chosen.droppable ? [fc.constant<EventFault>({ kind: 'drop' })] : []),
        fc.integer({ min: 0, max: 90 }).map<EventFault>((s) => ({ kind: 'duplicate', afterMs: s * 1000 })),
        fc.integer({ min: 1, max: 240 }).map<EventFault>((s) => ({ kind: 'delay', ms: s * 1000 })),
        fc
          .integer({ min: 2, max: 4 })
          .map<EventFault>((window) => ({ kind: 'reorder', window, maxHoldMs: 30_000 })),
      ),
      times: fc.integer({ min: 1, max: 3 }),
    }),
  );
  const callFault = fc.constantFrom(...space.calls, ...DYNAMODB_CALLS).chain((call) =>
    fc.record({
      kind: fc.constant('call' as const),
      atMs,
      call: fc.constant(call),
      code: fc.constantFrom<AwsFaultCode>(
        ...(call.service === 'dynamodb' ? DYNAMODB_FAULT_CODES : AWS_FAULT_CODES),
      ),
      times: fc.integer({ min: 1, max: 6 }),
    }),
  );
  const kill = fc.record({
    kind: fc.constant('kill' as const),
    atMs,
    functionId: fc.constantFrom(...space.functions),
    afterCalls: fc.integer({ min: 0, max: space.maxCallsPerInvocation }),
  });
  const partialLaunch = fc.record({ kind: fc.constant('partial-launch' as const), atMs });
  return fc
    .array(
      fc.oneof(
        eventFault,
        callFault.map(
          ({ call, ...rest }): ScheduledFault => ({
            ...rest,
            service: call.service,
            operation: call.operation,
          }),
        ),
        kill,
        ...(space.partialLaunches ? [partialLaunch] : []),
      ),
      { maxLength: space.maxFaults ?? 6 },
    )
    .map((faults) => new FaultSchedule(faults));
};

/** Counts what actually fired: call faults and kills from the injector, event faults from the rule matchers. */
export interface FaultCounter {
  events: number;
}

/**
 * Arms each fault at its time on the virtual clock. Event faults count their hits through the
 * matcher (it runs only for the rule the bus picks, right before the fault applies).
 */
export const armFaults = (cloud: LocalCloud, schedule: FaultSchedule, counter: FaultCounter): void => {
  const start = cloud.clock.now();
  for (const fault of schedule.faults) {
    cloud.clock.at(start + fault.atMs, () => {
      switch (fault.kind) {
        case 'event':
          cloud.bus.injectFault({
            match: {
              source: fault.target.source,
              detailType: fault.target.detailType,
              where: () => {
                counter.events += 1;
                return true;
              },
            },
            fault: fault.fault,
            times: fault.times,
          });
          return;
        case 'call':
          cloud.faults.failNextCall(
            { service: fault.service, operation: fault.operation },
            { code: fault.code, httpStatusCode: HTTP_STATUS[fault.code] },
            fault.times,
          );
          return;
        case 'kill':
          cloud.faults.killInvocation({ functionId: fault.functionId, afterCalls: fault.afterCalls });
          return;
        case 'partial-launch':
          cloud.faults.partialLaunchThenCrash();
          return;
      }
    });
  }
};
