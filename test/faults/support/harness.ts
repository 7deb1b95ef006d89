import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll } from 'vitest';
import { adminRequestFunction, type FunctionId, WARMBOOT, WARMBOOT_FACT } from '../../../functions/catalog';
import type { EventEnvelope } from '../../../local/bus';
import type { LocalCloud } from '../../../local/cloud';
import {
  describeViolation,
  INVARIANTS,
  type InvariantId,
  type OperatorRequest,
  type RequestOutcome,
  requestsAnswered,
  type Violation,
} from '../../../local/invariants';
import { callProvenance, callViolations } from '../../../local/provenance';
import { startLocalCloud, type TestCloudOptions } from '../../support/local-cloud';
import { armFaults, type FaultCounter, type FaultSchedule } from './schedule';

/** How many times the administrator re-sends a direct invoke that failed (no Lambda retry there). */
const ADMIN_ATTEMPTS = 5;

/** Generated schedules per capability: `FAULT_RUNS` (npm run test:faults sets 1000; `npm test` runs 25). */
export const FAULT_RUNS = Number(process.env.FAULT_RUNS ?? 25);

/**
 * The short pass inside `npm test` replays the same schedules every time, so CI's verdict is
 * reproducible; `npm run test:faults` (FAULT_RUNS set) explores new random schedules on each run.
 */
const CI_PASS_SEED = 20_261_121;

/**
 * fast-check options shared by every capability: `FAULT_SEED` and `FAULT_PATH` replay a reported
 * failure exactly (fast-check prints both, with the shrunk workload and fault schedule).
 */
export const assertOptions = <T>(): fc.Parameters<T> => ({
  numRuns: FAULT_RUNS,
  verbose: Number(process.env.FAULT_VERBOSE ?? 0),
  ...(process.env.FAULT_SEED
    ? { seed: Number(process.env.FAULT_SEED) }
    : process.env.FAULT_RUNS === undefined
      ? { seed: CI_PASS_SEED }
      : {}),
  ...(process.env.FAULT_PATH ? { path: process.env.FAULT_PATH } : {}),
});

/** What one capability's property did over all its runs; printed once at the end. */
export class FaultTally {
  readonly capability: string;
  readonly invariants: readonly InvariantId[];
  /** Property executions, shrinking included. */
  runs = 0;
  failedRuns = 0;
  callFaults = 0;
  eventFaults = 0;
  checks = 0;
  /** What the checks actually looked at (records, volumes, hand-outs, cached pairs…), so a vacuous pass shows. */
  readonly observed = new Map<string, number>();
  violations = 0;
  /** What the strict local cloud did across the runs (docs/aws-fidelity.md). */
  readonly strict = {
    iamEvaluations: 0,
    iamDenials: 0,
    commandsExecuted: 0,
    clientTokenReplays: 0,
    lambdaTimeouts: 0,
  };
  /** The distinct calls IAM denied (function, action, resource type), so a denial can be read. */
  readonly denied = new Set<string>();
  readonly #started = performance.now();

  constructor(capability: string, invariants: readonly InvariantId[]) {
    this.capability = capability;
    this.invariants = invariants;
  }

  observe(what: string, count: number): void {
    this.observed.set(what, (this.observed.get(what) ?? 0) + count);
  }

  summary(): string {
    const seconds = ((performance.now() - this.#started) / 1000).toFixed(1);
    return (
      `[faults] ${this.capability}: ${this.runs} runs in ${seconds}s, ` +
      `${this.callFaults + this.eventFaults} faults injected ` +
      `(${this.callFaults} failed calls and killed invocations, ${this.eventFaults} dropped/duplicated/delayed/reordered deliveries), ` +
      `${this.checks} invariant checks (${this.invariants.map((id) => INVARIANTS[id]).join('; ')}), ` +
      `${this.violations} violations in ${this.failedRuns} failing runs; checked ${
        [...this.observed].map(([what, count]) => `${count} ${what}`).join(', ') || 'nothing'
      }; strict cloud: ${this.strict.iamEvaluations} IAM evaluations, ${this.strict.iamDenials} denied, ` +
      `${this.strict.commandsExecuted} commands rendered and run in a shell, ` +
      `${this.strict.clientTokenReplays} ClientToken replays, ${this.strict.lambdaTimeouts} Lambda timeouts` +
      (this.denied.size > 0 ? ` (denied: ${[...this.denied].join('; ')})` : '')
    );
  }
}

/** Prints each tally's summary once the file's tests are done: what a long pass reports. */
export const summarizeAfterAll = (...tallies: readonly FaultTally[]): void =>
  afterAll(() => {
    for (const tally of tallies) console.log(tally.summary());
  });

/**
 * One run's view of the bus: the operator requests it put, every delivery's outcome, the dead
 * letters, and the facts warmboot published.
 */
export class RunLog {
  readonly requests: OperatorRequest[] = [];
  readonly outcomes: RequestOutcome[] = [];
  readonly facts: EventEnvelope[] = [];
  readonly #cloud: LocalCloud;
  readonly #functionIds: readonly FunctionId[];

  /** What the strict cloud did in this run: IAM decisions, commands run in a shell, token replays. */
  strictCloudCounts() {
    const iam = this.#cloud.iam.stats();
    return {
      iamEvaluations: iam.evaluated,
      iamDenials: iam.denied,
      commandsExecuted: this.#cloud.ssm.executedCommands,
      clientTokenReplays: this.#cloud.ec2.clientTokenReplays,
      lambdaTimeouts: this.#functionIds.reduce((sum, id) => sum + this.#cloud.bus.stats(id).timeouts, 0),
      denials: this.#cloud.iam
        .denials()
        .map(
          (denial) =>
            `${denial.functionId} ${denial.action} on ${denial.resource.split(':').pop()?.split('/')[0]}`,
        ),
    };
  }

  constructor(cloud: LocalCloud, functionIds: readonly FunctionId[]) {
    this.#cloud = cloud;
    this.#functionIds = functionIds;
    cloud.bus.onInvocation((record) => {
      if (record.event.source !== WARMBOOT && record.event.source !== WARMBOOT_FACT) return;
      this.outcomes.push({
        eventId: record.event.id,
        outcome: record.outcome,
        ...(record.result !== undefined ? { result: record.result } : {}),
        ...(record.error !== undefined ? { error: record.error } : {}),
      });
    });
    cloud.bus.onEvent((event) => {
      if (event.source === WARMBOOT || event.source === WARMBOOT_FACT) this.facts.push(event);
    });
  }

  /**
   * An operator request as the operator sends it: through PutEvents on the request bus, or, for an
   * administrative request, a direct invoke of the function that serves it. A direct invoke has no
   * retry, so the administrator re-sends the same event (as a console test event is re-sent) until
   * it is answered, at most `ADMIN_ATTEMPTS` times; each failed attempt is an outcome.
   */
  async request(detailType: string, detail: Record<string, unknown>): Promise<EventEnvelope> {
    const functionId = adminRequestFunction(detailType);
    if (functionId === undefined) {
      const event = await this.#cloud.putEvent({ source: WARMBOOT, detailType, detail });
      this.requests.push({ eventId: event.id, detailType, sentAt: this.#cloud.clock.now() });
      return event;
    }
    const event = this.#cloud.bus.envelopeOf({ source: WARMBOOT, detailType, detail });
    this.requests.push({ eventId: event.id, detailType, sentAt: this.#cloud.clock.now() });
    for (let attempt = 1; attempt <= ADMIN_ATTEMPTS; attempt++) {
      try {
        const result = await this.#cloud.invoke(functionId, event);
        this.outcomes.push({ eventId: event.id, outcome: 'succeeded', result });
        break;
      } catch (error) {
        this.outcomes.push({ eventId: event.id, outcome: 'crashed', error: String(error) });
      }
    }
    return event;
  }

  /** Delivery outcomes plus the dead-letter queue, which is where a failed request's error ends up. */
  allOutcomes(): RequestOutcome[] {
    return [
      ...this.outcomes,
      ...this.#functionIds
        .flatMap((functionId) => this.#cloud.bus.deadLetters(functionId))
        .map((letter) => ({
          eventId: letter.event.id,
          outcome: 'dead-lettered' as const,
          error: letter.error,
        })),
    ];
  }

  /** Each request and every delivery outcome of it, one line each, for a failing run's report. */
  timeline(): string {
    const outcomes = this.allOutcomes();
    return this.requests
      .map((request) => {
        const seen = outcomes
          .filter((outcome) => outcome.eventId === request.eventId)
          .map((outcome) =>
            outcome.outcome === 'succeeded'
              ? `succeeded ${JSON.stringify(outcome.result).slice(0, 400)}`
              : `${outcome.outcome}${outcome.error ? ` (${outcome.error})` : ''}`,
          );
        return `  ${request.detailType} ${request.eventId}: ${seen.join(' → ') || 'no delivery'}`;
      })
      .concat(
        this.facts
          .filter((fact) => !this.requests.some((request) => request.eventId === fact.id))
          .map((fact) => `  fact ${fact['detail-type']} ${JSON.stringify(fact.detail).slice(0, 300)}`),
      )
      .join('\n');
  }

  /** The answer the handler gave to a request (its last successful delivery), if any. */
  answer(eventId: string): unknown {
    return this.outcomes
      .filter((outcome) => outcome.eventId === eventId && outcome.outcome === 'succeeded')
      .at(-1)?.result;
  }
}

/**
 * Runs the fault phase: arms the schedule, drives the workload, lets the window pass, then stops
 * every fault (counting what fired) so the reconciles that follow run on a healthy cloud.
 */
const withFaults = async (
  cloud: LocalCloud,
  schedule: FaultSchedule,
  windowMs: number,
  tally: FaultTally,
  workload: () => Promise<void>,
): Promise<void> => {
  const counter: FaultCounter = { events: 0 };
  const start = cloud.clock.now();
  armFaults(cloud, schedule, counter);
  await workload();
  const left = start + windowMs - cloud.clock.now();
  if (left > 0) await cloud.settleFor(left);
  tally.callFaults += cloud.faults.injected;
  tally.eventFaults += counter.events;
  cloud.faults.reset();
  cloud.bus.clearFaults();
};

/** Where a generated property's first failing run is written, named after the capability. */
export const FAILURE_DIR = 'fault-failures';

/**
 * Writes a generated property's first failing run (its inputs and what went wrong) the moment it
 * fails. fast-check prints the seed and path only after shrinking, which on a long pass can take
 * longer than the pass itself; this file is the case even if the pass is stopped first.
 */
const recordFirstFailure = (tally: FaultTally, inputs: readonly unknown[], message: string): string => {
  mkdirSync(FAILURE_DIR, { recursive: true });
  const file = join(FAILURE_DIR, `${tally.capability.replace(/[^a-z0-9]+/gi, '-')}.json`);
  writeFileSync(file, `${JSON.stringify({ capability: tally.capability, message, inputs }, null, 2)}\n`);
  return file;
};

/**
 * Fails the run with every violation, one per line (fast-check prints it with the counterexample).
 * `inputs` are the run's generated values, recorded on the first failure of a generated property
 * (one that names invariants; fixed regressions and sabotage runs name none).
 */
export const expectNoViolations = (
  tally: FaultTally,
  violations: readonly Violation[],
  log: RunLog,
  inputs: readonly unknown[],
): void => {
  tally.checks += tally.invariants.length;
  const strict = log.strictCloudCounts();
  tally.strict.iamEvaluations += strict.iamEvaluations;
  tally.strict.iamDenials += strict.iamDenials;
  tally.strict.commandsExecuted += strict.commandsExecuted;
  tally.strict.clientTokenReplays += strict.clientTokenReplays;
  tally.strict.lambdaTimeouts += strict.lambdaTimeouts;
  for (const denial of strict.denials) tally.denied.add(denial);
  if (violations.length === 0) return;
  tally.violations += violations.length;
  tally.failedRuns += 1;
  const message =
    `invariants violated:\n${violations.map((violation) => `  ${describeViolation(violation)}`).join('\n')}` +
    `\nwhat the requests got:\n${log.timeline()}`;
  if (tally.failedRuns === 1 && tally.invariants.length > 0) {
    const file = recordFirstFailure(tally, inputs, message);
    console.error(
      `[faults] ${tally.capability}: first failing run written to ${file} (fast-check now shrinks it)`,
    );
  }
  throw new Error(message);
};

/** One generated run: its cloud, its log of requests and answers, its workload. */
interface FaultRun<W> {
  readonly cloud: LocalCloud;
  readonly log: RunLog;
  readonly workload: W;
}

/**
 * One capability's fault property: what runs, what the operators do while the faults fire, what
 * must hold once the cloud is healthy again. `S` is what `setup` prepares for `apply` and `checks`.
 */
interface FaultPropertySpec<W extends { readonly seed: number }, S> {
  /** The functions deployed: the ones the faults may kill and whose dead letters the log reads. */
  readonly functions: readonly FunctionId[];
  /** The rest of the cloud's options for this workload: settings, SSM documents, host management. */
  readonly cloud?: (
    workload: W,
  ) => Omit<TestCloudOptions, 'functions' | 'seed' | 'latency' | 'faultsOnDynamodb'>;
  /** Faults happen within this many virtual ms from the start of the workload. */
  readonly windowMs: number;
  /** How long the healthy cloud runs (schedules, retries, reconciles) before the checks. */
  readonly settleMs: number;
  /** Before the faults: the resources the workload acts on; returns what `apply` and `checks` share. */
  readonly setup: (run: FaultRun<W>) => Promise<S>;
  /** What the operators (and the account) do while the faults fire. */
  readonly apply: (run: FaultRun<W>, state: S) => Promise<void>;
  /**
   * On the settled cloud: every violation of the capability's own invariants; what it looked at
   * goes to `tally.observe`. Every run also checks that each destructive call touched only what
   * warmboot manages (onlyManaged) and that every operator request was answered (requestAnswered).
   */
  readonly checks: (run: FaultRun<W>, state: S, tally: FaultTally) => Promise<readonly Violation[]>;
}

/**
 * The skeleton every fault suite shares, as a property over any workloads and fault schedules
 * (counted in `tally`): start a strict cloud seeded by the workload, set up, run the workload while
 * the schedule's faults fire, let the healthy cloud settle, check, stop the cloud.
 */
export const faultProperty =
  <W extends { readonly seed: number }, S>(spec: FaultPropertySpec<W, S>) =>
  (workloads: fc.Arbitrary<W>, faults: fc.Arbitrary<FaultSchedule>, tally: FaultTally) =>
    fc.asyncProperty(workloads, faults, async (workload, schedule) => {
      tally.runs += 1;
      const cloud = await startLocalCloud({
        latency: 'zero',
        faultsOnDynamodb: true,
        seed: workload.seed,
        functions: spec.functions,
        ...spec.cloud?.(workload),
      });
      try {
        const run: FaultRun<W> = { cloud, log: new RunLog(cloud, spec.functions), workload };
        const state = await spec.setup(run);
        await withFaults(cloud, schedule, spec.windowMs, tally, () => spec.apply(run, state));
        await cloud.settleFor(spec.settleMs);
        const violations = await spec.checks(run, state, tally);
        const provenance = callProvenance(cloud);
        tally.observe('destructive calls', provenance.calls.length);
        expectNoViolations(
          tally,
          [
            ...violations,
            ...callViolations(provenance),
            ...requestsAnswered(run.log.requests, run.log.allOutcomes()),
          ],
          run.log,
          [workload, schedule],
        );
      } finally {
        await cloud.stop();
      }
    });
