import type { Context } from 'aws-lambda';
import {
  type BusKind,
  DEFAULT_FACTS_BUS_NAME,
  DEFAULT_REQUEST_BUS_NAME,
  deployedPattern,
  FUNCTIONS,
  type FunctionId,
  patternBus,
  RULE_DELIVERY_ALIAS,
  SCHEDULED_EVENT,
} from '../functions/catalog';
import { errorMessage } from '../functions/shared/errors';
import { matchesPattern } from '../functions/shared/event-pattern';
import type { VirtualClock } from './clock';
import { IdGenerator, seededRandom } from './ec2/ids';
import { invocationScope } from './faults';
import { lambdaContext } from './lambda-context';

/** An EventBridge event as a target receives it (EventBridge user guide, eb-events-structure). */
export interface EventEnvelope {
  readonly version: '0';
  readonly id: string;
  readonly 'detail-type': string;
  readonly source: string;
  readonly account: string;
  /** Second precision, like EventBridge: `2026-01-05T08:00:00Z`. */
  readonly time: string;
  readonly region: string;
  readonly resources: readonly string[];
  readonly detail: Record<string, unknown>;
}

/** What a producer decides; the bus adds id, time, account, region and version. */
export interface BusEvent {
  readonly source: string;
  readonly detailType: string;
  readonly detail: Record<string, unknown>;
  readonly resources?: readonly string[];
  /** PutEvents lets a producer set the time; default: now on the virtual clock. */
  readonly time?: number;
}

/** A deployed function as the bus invokes it (asynchronous invocation). */
export type FunctionTarget = (event: EventEnvelope, context: Context) => Promise<unknown>;

/**
 * Creates one execution environment of a function: its own module state (SDK clients, caches,
 * coalescing), as Lambda gives every concurrent invocation its own environment and reuses an idle
 * one for the next invocation (Lambda developer guide, lambda-runtime-environment).
 */
export type EnvironmentFactory = () => FunctionTarget;

export interface EventMatcher {
  readonly source?: string;
  readonly detailType?: string;
  /** Only deliveries to this function (EventBridge delivers to each rule's target separately). */
  readonly functionId?: FunctionId;
  readonly where?: (event: EventEnvelope) => boolean;
}

export type EventFault =
  | { readonly kind: 'drop' }
  /** Deliver a second copy with the same event id, `afterMs` after the first (default together). */
  | { readonly kind: 'duplicate'; readonly afterMs?: number }
  | { readonly kind: 'delay'; readonly ms: number }
  /**
   * Hold matching deliveries until `window` are held (or `maxHoldMs`, default 10 s, passed since
   * the first), then deliver them in a shuffled order.
   */
  | { readonly kind: 'reorder'; readonly window: number; readonly maxHoldMs?: number };

export interface EventFaultRule {
  readonly match: EventMatcher;
  readonly fault: EventFault;
  /** Affect only the next `times` matching deliveries (default: no limit). */
  readonly times?: number;
  /** Affect each matching delivery with this probability, drawn from the bus's seeded generator (default 1). */
  readonly probability?: number;
}

export interface FunctionStats {
  /** Every attempt, first attempts and retries alike. */
  invocations: number;
  /** Attempts that ran past the function's timeout (counted in `errors` too). */
  timeouts: number;
  /** Deliveries that waited for a free environment because reserved concurrency was in use. */
  throttled: number;
  /** Events discarded to the dead-letter queue because they aged past the maximum event age. */
  expired: number;
  /** The most invocations that ran at once. */
  peakConcurrency: number;
  /** Execution environments created (cold starts). */
  environments: number;
  succeeded: number;
  /** Attempts that threw. */
  errors: number;
  /** Attempts whose handler was killed by fault injection (counted in `errors` too). */
  crashes: number;
  retries: number;
  deadLettered: number;
}

export interface DeadLetter {
  readonly event: EventEnvelope;
  readonly attempts: number;
  readonly error: string;
}

export interface InvocationRecord {
  readonly functionId: FunctionId;
  readonly invocationId: string;
  readonly event: EventEnvelope;
  /** 0 for the first attempt, 1 and 2 for Lambda's retries. */
  readonly attempt: number;
  readonly outcome: 'succeeded' | 'failed' | 'crashed';
  readonly result?: unknown;
  readonly error?: string;
}

export interface LocalEventBusOptions {
  readonly clock: VirtualClock;
  readonly region: string;
  readonly accountId: string;
  readonly seed?: number;
  /**
   * Reserved concurrency per function, as the stack deploys it (`reservedConcurrency`): at most
   * this many invocations run at once; the rest wait in Lambda's async queue. Unset: unbounded
   * (the account's unreserved pool).
   */
  readonly reservedConcurrency?: Readonly<Partial<Record<FunctionId, number>>>;
  /**
   * How long an event may wait in the async queue, throttled or between retries, before Lambda
   * discards it to the dead-letter queue (the stack's `maxEventAge`: 1 hour).
   */
  readonly maxEventAgeMs?: number;
  /** Put → target invocation. EventBridge typically delivers within about half a second. */
  readonly deliveryLatencyMs?: number;
  /** The names of warmboot's request and facts buses (default: the stack's defaults). */
  readonly busNames?: { readonly requests?: string; readonly facts?: string };
}

/**
 * Lambda asynchronous invocation: two retries, one minute after the first failure and two
 * minutes after the second (Lambda developer guide, invocation-async-error-handling), then the
 * event goes to the target's dead-letter queue, which the stack deploys for every rule.
 */
const ASYNC_RETRY_DELAYS_MS = [60_000, 120_000] as const;

const DEFAULT_DELIVERY_LATENCY_MS = 500;
/** The stack's async invoke config (infra/function.ts): `maxEventAge: Duration.hours(1)`. */
const DEFAULT_MAX_EVENT_AGE_MS = 3_600_000;
const DEFAULT_REORDER_HOLD_MS = 10_000;

interface ActiveRule extends EventFaultRule {
  remaining: number;
  held: Delivery[];
  /** Bumped on every flush so a stale hold timer does not flush a newer window. */
  generation: number;
}

interface Delivery {
  readonly functionId: FunctionId;
  readonly event: EventEnvelope;
}

/** A delivery in Lambda's async queue: since when it is there, and which attempt is next. */
interface Queued {
  readonly delivery: Delivery;
  readonly attempt: number;
  readonly queuedAt: number;
}

interface Environment {
  readonly target: FunctionTarget;
  busy: boolean;
}

interface FunctionDeployment {
  readonly newEnvironment: EnvironmentFactory;
  readonly environments: Environment[];
  readonly waiting: Queued[];
}

const emptyStats = (): FunctionStats => ({
  invocations: 0,
  timeouts: 0,
  throttled: 0,
  expired: 0,
  peakConcurrency: 0,
  environments: 0,
  succeeded: 0,
  errors: 0,
  crashes: 0,
  retries: 0,
  deadLettered: 0,
});

const isoSeconds = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

const shuffle = <T>(items: readonly T[], random: () => number): T[] => {
  const copy = [...items];
  for (let index = copy.length - 1; index > 0; index--) {
    const other = Math.floor(random() * (index + 1));
    [copy[index], copy[other]] = [copy[other] as T, copy[index] as T];
  }
  return copy;
};

const RATE = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/;
const UNIT_MS: Record<string, number> = {
  minute: 60_000,
  minutes: 60_000,
  hour: 3_600_000,
  hours: 3_600_000,
  day: 86_400_000,
  days: 86_400_000,
};

/** Period of an EventBridge `rate(...)` expression; the catalog uses no `cron(...)`. */
const schedulePeriodMs = (expression: string): number => {
  const match = RATE.exec(expression);
  const unit = match?.[2];
  if (!match || unit === undefined) {
    throw new Error(
      `unsupported schedule expression ${JSON.stringify(expression)}: the local bus runs rate(N unit)`,
    );
  }
  const period = Number(match[1]) * (UNIT_MS[unit] ?? 0);
  if (period <= 0) throw new Error(`schedule ${expression} has no positive period`);
  return period;
};

/**
 * The local EventBridge buses — the account's default bus, where AWS services deliver, and
 * warmboot's request and facts buses — plus Lambda's asynchronous invocation of each rule's
 * target. An event put on a bus reaches only the rules on that bus (EventBridge user guide,
 * "Event buses": a rule matches events on the bus it is associated with). Routing uses the
 * catalog's patterns as deployed (the same objects the CDK rules deploy, each on the bus of its
 * source and pinned to this account), every delivery invokes the function through its rule
 * alias, delivery and retries happen on the virtual clock, and event faults model what
 * EventBridge's at-least-once delivery allows: lost, duplicated, late and reordered events.
 */
export class LocalEventBus {
  readonly #clock: VirtualClock;
  readonly #region: string;
  readonly #accountId: string;
  readonly #random: () => number;
  /** Event and request ids from the seeded generator, so a seeded run names events identically. */
  readonly #ids: IdGenerator;
  readonly #latencyMs: number;
  readonly #reservedConcurrency: Readonly<Partial<Record<FunctionId, number>>>;
  readonly #maxEventAgeMs: number;
  readonly #targets = new Map<FunctionId, FunctionDeployment>();
  readonly #stats = new Map<FunctionId, FunctionStats>();
  readonly #deadLetters = new Map<FunctionId, DeadLetter[]>();
  readonly #eventListeners = new Set<(event: EventEnvelope, bus: string) => void>();
  /** Bus name → which of warmboot's rules sit on it. */
  readonly #buses: ReadonlyMap<string, BusKind>;
  readonly #invocationListeners = new Set<(record: InvocationRecord) => void>();
  #rules: ActiveRule[] = [];
  #scheduleGeneration = 0;

  constructor(options: LocalEventBusOptions) {
    this.#clock = options.clock;
    this.#region = options.region;
    this.#accountId = options.accountId;
    this.#random = seededRandom(options.seed ?? 1);
    this.#ids = new IdGenerator(this.#random);
    this.#latencyMs = options.deliveryLatencyMs ?? DEFAULT_DELIVERY_LATENCY_MS;
    this.#reservedConcurrency = options.reservedConcurrency ?? {};
    this.#maxEventAgeMs = options.maxEventAgeMs ?? DEFAULT_MAX_EVENT_AGE_MS;
    this.#buses = new Map<string, BusKind>([
      ['default', 'default'],
      [options.busNames?.requests ?? DEFAULT_REQUEST_BUS_NAME, 'requests'],
      [options.busNames?.facts ?? DEFAULT_FACTS_BUS_NAME, 'facts'],
    ]);
  }

  /** The name of the bus of this kind. */
  busName(kind: BusKind): string {
    for (const [name, candidate] of this.#buses) if (candidate === kind) return name;
    throw new Error(`no ${kind} bus`);
  }

  /**
   * The bus a PutEvents `EventBusName` names (a name or an event-bus ARN of this account and
   * Region; absent: the default bus), or undefined when no such bus exists.
   */
  resolveBus(nameOrArn: string | undefined): string | undefined {
    if (nameOrArn === undefined) return 'default';
    const prefix = `arn:aws:events:${this.#region}:${this.#accountId}:event-bus/`;
    const name = nameOrArn.startsWith('arn:')
      ? nameOrArn.startsWith(prefix)
        ? nameOrArn.slice(prefix.length)
        : undefined
      : nameOrArn;
    return name !== undefined && this.#buses.has(name) ? name : undefined;
  }

  /**
   * Deploys `functionId`: from now on its catalog rules deliver to it. Given a target, every
   * invocation shares that one environment; given an environment factory, each concurrent
   * invocation gets its own, as in Lambda.
   */
  register(
    functionId: FunctionId,
    target: FunctionTarget | { readonly environments: EnvironmentFactory },
  ): void {
    const newEnvironment = typeof target === 'function' ? () => target : target.environments;
    this.#targets.set(functionId, { newEnvironment, environments: [], waiting: [] });
  }

  /**
   * Puts an event on a bus (default: the default bus, where AWS services deliver) and schedules
   * its delivery to every function with a matching rule on that bus. No authorization happens
   * here: this is AWS delivering, or a PutEvents the caller already passed (local/cloud.ts,
   * local/events-simulator.ts).
   */
  put(event: BusEvent, bus = 'default'): EventEnvelope {
    const kind = this.#buses.get(bus);
    if (kind === undefined) throw new Error(`Event bus ${bus} does not exist.`);
    const envelope = this.envelopeOf(event);
    for (const listener of this.#eventListeners) listener(envelope, bus);
    for (const functionId of this.#targets.keys()) {
      // One delivery per matching rule, as EventBridge does for separate rules with the same target.
      for (const { pattern } of FUNCTIONS[functionId].patterns) {
        if (patternBus(pattern) !== kind) continue;
        if (matchesPattern(envelope, deployedPattern(pattern, this.#accountId))) {
          this.#deliver({ functionId, event: envelope });
        }
      }
    }
    return envelope;
  }

  /**
   * The envelope EventBridge would deliver for `event`, with an id from the seeded generator: also
   * what a console test event or `aws lambda invoke` passes to a function directly.
   */
  envelopeOf(event: BusEvent): EventEnvelope {
    return {
      version: '0',
      id: this.#ids.uuid(),
      'detail-type': event.detailType,
      source: event.source,
      account: this.#accountId,
      time: isoSeconds(event.time ?? this.#clock.now()),
      region: this.#region,
      resources: [...(event.resources ?? [])],
      detail: event.detail,
    };
  }

  /** Watches every event put on any bus (before routing and faults). Returns an unsubscribe. */
  onEvent(listener: (event: EventEnvelope, bus: string) => void): () => void {
    this.#eventListeners.add(listener);
    return () => this.#eventListeners.delete(listener);
  }

  /** Watches every finished invocation attempt. Returns an unsubscribe. */
  onInvocation(listener: (record: InvocationRecord) => void): () => void {
    this.#invocationListeners.add(listener);
    return () => this.#invocationListeners.delete(listener);
  }

  injectFault(rule: EventFaultRule): void {
    if (rule.fault.kind === 'reorder' && rule.fault.window < 2) {
      throw new Error('a reorder fault needs a window of at least 2 events');
    }
    this.#rules.push({ ...rule, remaining: rule.times ?? Number.POSITIVE_INFINITY, held: [], generation: 0 });
  }

  /** Removes every event fault; deliveries held for reordering are released in their original order. */
  clearFaults(): void {
    const held = this.#rules.flatMap((rule) => rule.held);
    this.#rules = [];
    for (const delivery of held) this.#schedule(delivery, this.#latencyMs);
  }

  stats(functionId: FunctionId): Readonly<FunctionStats> {
    return { ...(this.#stats.get(functionId) ?? emptyStats()) };
  }

  deadLetters(functionId: FunctionId): readonly DeadLetter[] {
    return [...(this.#deadLetters.get(functionId) ?? [])];
  }

  /**
   * Fires every registered function's catalog schedule as `aws.events` "Scheduled Event"s,
   * first one period from now. Returns a function that stops them.
   */
  startSchedules(): () => void {
    const generation = ++this.#scheduleGeneration;
    for (const functionId of this.#targets.keys()) {
      const expression = FUNCTIONS[functionId].schedule;
      if (expression === undefined) continue;
      const period = schedulePeriodMs(expression);
      const fire = (): void => {
        if (generation !== this.#scheduleGeneration) return;
        this.#deliver({ functionId, event: this.#scheduledEvent(functionId) });
        this.#clock.at(this.#clock.now() + period, fire);
      };
      this.#clock.at(this.#clock.now() + period, fire);
    }
    return () => {
      if (generation === this.#scheduleGeneration) this.#scheduleGeneration++;
    };
  }

  #scheduledEvent(functionId: FunctionId): EventEnvelope {
    return {
      version: '0',
      id: this.#ids.uuid(),
      'detail-type': SCHEDULED_EVENT,
      source: 'aws.events',
      account: this.#accountId,
      time: isoSeconds(this.#clock.now()),
      region: this.#region,
      resources: [`arn:aws:events:${this.#region}:${this.#accountId}:rule/warmboot-${functionId}-schedule`],
      detail: {},
    };
  }

  #deliver(delivery: Delivery): void {
    const rule = this.#rules.find((candidate) => this.#applies(candidate, delivery));
    if (!rule) {
      this.#schedule(delivery, this.#latencyMs);
      return;
    }
    rule.remaining -= 1;
    const fault = rule.fault;
    switch (fault.kind) {
      case 'drop':
        return;
      case 'duplicate':
        this.#schedule(delivery, this.#latencyMs);
        this.#schedule(delivery, this.#latencyMs + (fault.afterMs ?? 0));
        return;
      case 'delay':
        this.#schedule(delivery, this.#latencyMs + fault.ms);
        return;
      case 'reorder':
        this.#hold(rule, fault, delivery);
        return;
    }
  }

  #applies(rule: ActiveRule, delivery: Delivery): boolean {
    const { match } = rule;
    const { event } = delivery;
    if (rule.remaining <= 0) return false;
    if (match.source !== undefined && match.source !== event.source) return false;
    if (match.detailType !== undefined && match.detailType !== event['detail-type']) return false;
    if (match.functionId !== undefined && match.functionId !== delivery.functionId) return false;
    if (match.where && !match.where(event)) return false;
    return rule.probability === undefined || this.#random() < rule.probability;
  }

  #hold(rule: ActiveRule, fault: Extract<EventFault, { kind: 'reorder' }>, delivery: Delivery): void {
    rule.held.push(delivery);
    if (rule.held.length >= fault.window) {
      this.#release(rule);
      return;
    }
    if (rule.held.length === 1) {
      const generation = rule.generation;
      this.#clock.at(this.#clock.now() + (fault.maxHoldMs ?? DEFAULT_REORDER_HOLD_MS), () => {
        if (rule.generation === generation) this.#release(rule);
      });
    }
  }

  #release(rule: ActiveRule): void {
    const held = rule.held;
    rule.held = [];
    rule.generation += 1;
    // Same instant, shuffled insertion order: the clock fires same-time timers in insertion order.
    for (const delivery of shuffle(held, this.#random)) this.#schedule(delivery, this.#latencyMs);
  }

  #schedule(delivery: Delivery, afterMs: number, attempt = 0, queuedAt?: number): void {
    const at = this.#clock.now() + afterMs;
    this.#clock.at(at, () => {
      this.#dispatch({ delivery, attempt, queuedAt: queuedAt ?? at });
    });
  }

  /**
   * Lambda's async queue: run the delivery in an idle environment, or a new one while reserved
   * concurrency allows; otherwise it waits (throttled) until an invocation ends. An event that
   * has been in the queue longer than the maximum event age is discarded to the dead-letter
   * queue instead (Lambda developer guide, invocation-async-error-handling: throttled and
   * retried events are kept "for up to 6 hours", or the configured maximum event age).
   */
  #dispatch(queued: Queued): void {
    const { functionId } = queued.delivery;
    const deployment = this.#targets.get(functionId);
    if (!deployment) return;
    const stats = this.#statsOf(functionId);
    if (this.#clock.now() - queued.queuedAt > this.#maxEventAgeMs) {
      stats.expired += 1;
      this.#deadLetter(
        queued.delivery,
        queued.attempt,
        'EventAgeExceeded: the event aged past the maximum event age',
      );
      return;
    }
    let environment = deployment.environments.find((candidate) => !candidate.busy);
    const limit = this.#reservedConcurrency[functionId];
    if (!environment && (limit === undefined || deployment.environments.length < limit)) {
      environment = { target: deployment.newEnvironment(), busy: false };
      deployment.environments.push(environment);
      stats.environments += 1;
    }
    if (!environment) {
      stats.throttled += 1;
      deployment.waiting.push(queued);
      return;
    }
    environment.busy = true;
    const running = deployment.environments.filter((candidate) => candidate.busy).length;
    stats.peakConcurrency = Math.max(stats.peakConcurrency, running);
    void this.#invoke(queued, environment, deployment);
  }

  /** Hands waiting deliveries to free environments; an expired one frees its place for the next. */
  #drain(functionId: FunctionId, deployment: FunctionDeployment): void {
    const limit = this.#reservedConcurrency[functionId];
    const hasRoom = () =>
      deployment.environments.some((environment) => !environment.busy) ||
      limit === undefined ||
      deployment.environments.length < limit;
    for (
      let next = deployment.waiting.shift();
      next;
      next = hasRoom() ? deployment.waiting.shift() : undefined
    ) {
      this.#dispatch(next);
    }
  }

  #deadLetter(delivery: Delivery, attempts: number, error: string): void {
    const stats = this.#statsOf(delivery.functionId);
    stats.deadLettered += 1;
    const letters = this.#deadLetters.get(delivery.functionId) ?? [];
    letters.push({ event: delivery.event, attempts, error });
    this.#deadLetters.set(delivery.functionId, letters);
  }

  async #invoke(queued: Queued, environment: Environment, deployment: FunctionDeployment): Promise<void> {
    const { delivery, attempt } = queued;
    const { functionId, event } = delivery;
    const target = environment.target;
    const stats = this.#statsOf(functionId);
    stats.invocations += 1;
    if (attempt > 0) stats.retries += 1;
    const invocationId = this.#ids.uuid();
    const scope = { functionId, invocationId, awsCalls: 0, killed: false };
    const timeoutSeconds = FUNCTIONS[functionId].timeoutSeconds;
    // getRemainingTimeInMillis counts down from the same timeout the bus enforces below.
    const context = lambdaContext({
      functionId,
      requestId: invocationId,
      clock: this.#clock,
      region: this.#region,
      accountId: this.#accountId,
      timeoutMs: timeoutSeconds * 1000,
      // Every rule and schedule targets the function's rule alias (infra/function.ts).
      qualifier: RULE_DELIVERY_ALIAS,
    });
    let timedOut = false;
    let cancelTimeout = (): void => undefined;
    const timeout = new Promise<never>((_, reject) => {
      cancelTimeout = this.#clock.at(this.#clock.now() + timeoutSeconds * 1000, () => {
        timedOut = true;
        // The environment is stopped and discarded: nothing the handler still had in flight
        // reaches AWS (the same fence fault injection uses for a killed process).
        scope.killed = true;
        reject(new Error(`Task timed out after ${timeoutSeconds.toFixed(2)} seconds`));
      });
    });
    timeout.catch(() => undefined);
    let record: InvocationRecord;
    try {
      const result = await Promise.race([invocationScope.run(scope, () => target(event, context)), timeout]);
      // A handler that swallowed its own death still died: Lambda would have seen the crash.
      record = scope.killed
        ? { functionId, invocationId, event, attempt, outcome: 'crashed', error: 'handler killed' }
        : { functionId, invocationId, event, attempt, outcome: 'succeeded', result };
    } catch (error) {
      record = {
        functionId,
        invocationId,
        event,
        attempt,
        outcome: scope.killed && !timedOut ? 'crashed' : 'failed',
        error: errorMessage(error),
      };
    }
    cancelTimeout();
    if (timedOut) {
      stats.timeouts += 1;
      deployment.environments.splice(deployment.environments.indexOf(environment), 1);
    } else {
      environment.busy = false;
    }
    this.#drain(functionId, deployment);
    if (record.outcome === 'succeeded') {
      stats.succeeded += 1;
    } else {
      stats.errors += 1;
      if (record.outcome === 'crashed') stats.crashes += 1;
      const retryDelay = ASYNC_RETRY_DELAYS_MS[attempt];
      if (retryDelay !== undefined) {
        // Back in the async queue: its age keeps counting from when it first arrived.
        this.#schedule(delivery, retryDelay, attempt + 1, queued.queuedAt);
      } else {
        this.#deadLetter(delivery, attempt + 1, record.error ?? 'unknown');
      }
    }
    for (const listener of this.#invocationListeners) listener(record);
  }

  #statsOf(functionId: FunctionId): FunctionStats {
    let stats = this.#stats.get(functionId);
    if (!stats) {
      stats = emptyStats();
      this.#stats.set(functionId, stats);
    }
    return stats;
  }
}
