import {
  type BusKind,
  DEFAULT_FACTS_BUS_NAME,
  DEFAULT_REQUEST_BUS_NAME,
  deployedPattern,
  FUNCTIONS,
  type FunctionId,
  patternBus,
  SCHEDULED_EVENT,
} from '../functions/catalog';
import { errorMessage } from '../functions/shared/errors';
import { matchesPattern } from '../functions/shared/event-pattern';
import type { VirtualClock } from './clock';
import { IdGenerator, seededRandom } from './ec2/ids';
import { type EventFaultRule, EventFaults } from './event-faults';
import { EVENTBRIDGE_SENDER_ID, type EventQueueStats, eventQueueOf, eventQueueStats } from './event-queue';
import {
  type Environment,
  type EnvironmentFactory,
  emptyStats,
  type FunctionStats,
  type FunctionTarget,
  LambdaFunction,
} from './lambda-service';
import type { MessageOutcome } from './sqs-mapping';

export type { EventFault, EventFaultRule, EventMatcher } from './event-faults';
export type { EventQueueStats } from './event-queue';
export type { EnvironmentFactory, FunctionStats, FunctionTarget } from './lambda-service';

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

export interface DeadLetter {
  readonly event: EventEnvelope;
  readonly attempts: number;
  readonly error: string;
}

/**
 * One finished attempt at an event: an async invocation, or, for an event that came through the
 * function's event queue, one message of a batch invocation with that message's outcome.
 */
export interface InvocationRecord {
  readonly functionId: FunctionId;
  readonly invocationId: string;
  readonly event: EventEnvelope;
  /** 0 for the first attempt, 1 and 2 for Lambda's retries; for a queued event, receives before this one. */
  readonly attempt: number;
  readonly outcome: 'succeeded' | 'failed' | 'crashed';
  readonly result?: unknown;
  readonly error?: string;
  /** Set for an event delivered in a batch from the event queue: its message and the batch's size. */
  readonly batch?: { readonly messageId: string; readonly size: number };
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

interface Delivery {
  readonly functionId: FunctionId;
  readonly event: EventEnvelope;
  /** The rule targets the function's event queue (a `batched` catalog pattern), not the function. */
  readonly queued: boolean;
}

/** A delivery in Lambda's async queue: since when it is there, and which attempt is next. */
interface Queued {
  readonly delivery: Delivery;
  readonly attempt: number;
  readonly queuedAt: number;
}

interface FunctionDeployment {
  readonly lambda: LambdaFunction;
  /** The event queue and its source mapping, for a function with `batched` patterns. */
  readonly eventQueue: ReturnType<typeof eventQueueOf>;
}

const isoSeconds = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

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
export const schedulePeriodMs = (expression: string): number => {
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
 * target, or, for a `batched` pattern, the function's event queue and its SQS event source
 * mapping (local/event-queue.ts). An event put on a bus reaches only the rules on that bus
 * (EventBridge user guide, "Event buses": a rule matches events on the bus it is associated
 * with). Routing uses the catalog's patterns as deployed (the same objects the CDK rules deploy,
 * each on the bus of its source and pinned to this account), every invocation goes through the
 * function's rule alias, delivery and retries happen on the virtual clock, and event faults
 * (local/event-faults.ts) act on each rule's delivery.
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
  /** The last error of each queued message not yet handled, for its dead letter. */
  readonly #lastErrors = new Map<string, string>();
  readonly #faults: EventFaults<Delivery>;
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
    this.#faults = new EventFaults<Delivery>({
      clock: this.#clock,
      random: this.#random,
      latencyMs: this.#latencyMs,
      send: (delivery, afterMs) => this.#schedule(delivery, afterMs),
    });
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
    const stats = this.#statsOf(functionId);
    const lambda = new LambdaFunction({
      functionId,
      newEnvironment,
      clock: this.#clock,
      region: this.#region,
      accountId: this.#accountId,
      ids: this.#ids,
      reservedConcurrency: this.#reservedConcurrency[functionId],
      stats,
    });
    const eventQueue = eventQueueOf({
      functionId,
      clock: this.#clock,
      ids: this.#ids,
      region: this.#region,
      accountId: this.#accountId,
      lambda,
      functionStats: stats,
      onMessage: (outcome) => this.#recordMessage(functionId, outcome),
      onDeadLetter: (moved) => {
        const event = JSON.parse(moved.body) as EventEnvelope;
        const error = this.#lastErrors.get(moved.messageId) ?? 'unknown';
        this.#lastErrors.delete(moved.messageId);
        this.#deadLetter({ functionId, event, queued: true }, moved.receiveCount, error);
      },
    });
    this.#targets.set(functionId, { lambda, eventQueue });
  }

  /**
   * The event queue of a function with batched patterns: what its queue, dead-letter queue and
   * source mapping did (messages, batch sizes, redrives). Undefined for a function without one.
   */
  eventQueueStats(functionId: FunctionId): EventQueueStats | undefined {
    const eventQueue = this.#targets.get(functionId)?.eventQueue;
    return eventQueue ? eventQueueStats(eventQueue) : undefined;
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
      for (const { pattern, batched } of FUNCTIONS[functionId].patterns) {
        if (patternBus(pattern) !== kind) continue;
        if (matchesPattern(envelope, deployedPattern(pattern, this.#accountId))) {
          this.#deliver({ functionId, event: envelope, queued: batched === true });
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
    this.#faults.inject(rule);
  }

  /** Removes every event fault; deliveries held for reordering are released in their original order. */
  clearFaults(): void {
    this.#faults.clear();
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
        this.#deliver({ functionId, event: this.#scheduledEvent(functionId), queued: false });
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

  /** One rule's delivery: through the event faults, then after the delivery latency. */
  #deliver(delivery: Delivery): void {
    this.#faults.deliver(delivery);
  }

  #schedule(delivery: Delivery, afterMs: number, attempt = 0, queuedAt?: number): void {
    const at = this.#clock.now() + afterMs;
    this.#clock.at(at, () => {
      if (delivery.queued) this.#sendToQueue(delivery);
      else this.#dispatch({ delivery, attempt, queuedAt: queuedAt ?? at });
    });
  }

  /**
   * The rule's target is the function's event queue: EventBridge sends the event, as targets
   * receive it, as the message body. A message SQS refuses (over its size limit) can never be
   * delivered, so it goes straight to the rule's dead-letter queue, which the stack deploys for
   * every rule (EventBridge user guide, eb-rule-dlq: for errors such as missing permissions or a
   * missing target "no retry attempts will happen ... EventBridge sends these events directly to
   * the target DLQ"). Treating a refused message as not retried is a choice (the page lists no
   * size error); retrying it for 24 hours would end in the same dead-letter queue.
   */
  #sendToQueue(delivery: Delivery): void {
    const eventQueue = this.#targets.get(delivery.functionId)?.eventQueue;
    if (!eventQueue) return;
    try {
      eventQueue.queue.send(JSON.stringify(delivery.event), EVENTBRIDGE_SENDER_ID);
    } catch (error) {
      this.#deadLetter(delivery, 1, `SQS SendMessage refused the event: ${errorMessage(error)}`);
    }
  }

  /** One message of a batch invocation, reported like an invocation of its event. */
  #recordMessage(functionId: FunctionId, outcome: MessageOutcome): void {
    if (outcome.outcome === 'succeeded') this.#lastErrors.delete(outcome.messageId);
    else this.#lastErrors.set(outcome.messageId, outcome.error ?? 'unknown');
    const record: InvocationRecord = {
      functionId,
      invocationId: outcome.invocationId,
      event: JSON.parse(outcome.body) as EventEnvelope,
      attempt: outcome.receiveCount - 1,
      outcome: outcome.outcome,
      ...(outcome.result !== undefined ? { result: outcome.result } : {}),
      ...(outcome.error !== undefined ? { error: outcome.error } : {}),
      batch: { messageId: outcome.messageId, size: outcome.batchSize },
    };
    for (const listener of this.#invocationListeners) listener(record);
  }

  /**
   * Lambda's async queue: run the delivery in an idle environment, or a new one while reserved
   * concurrency allows; otherwise it waits (throttled) until an invocation ends. An event that
   * has been in the queue longer than the maximum event age is discarded to the dead-letter
   * queue instead (Lambda developer guide, invocation-async-error-handling: throttled and
   * retried events are kept "for up to 6 hours", or the configured maximum event age).
   */
  #dispatch(queued: Queued, waiting = false): void {
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
    const environment = deployment.lambda.acquire();
    if (environment) {
      void this.#invoke(queued, environment, deployment.lambda);
      return;
    }
    if (!waiting) stats.throttled += 1;
    deployment.lambda.wait(() => this.#dispatch(queued, true));
  }

  #deadLetter(delivery: Delivery, attempts: number, error: string): void {
    const stats = this.#statsOf(delivery.functionId);
    stats.deadLettered += 1;
    const letters = this.#deadLetters.get(delivery.functionId) ?? [];
    letters.push({ event: delivery.event, attempts, error });
    this.#deadLetters.set(delivery.functionId, letters);
  }

  async #invoke(queued: Queued, environment: Environment, lambda: LambdaFunction): Promise<void> {
    const { delivery, attempt } = queued;
    const { functionId, event } = delivery;
    const stats = this.#statsOf(functionId);
    if (attempt > 0) stats.retries += 1;
    const ran = await lambda.run(environment, event);
    const record: InvocationRecord = {
      functionId,
      invocationId: ran.invocationId,
      event,
      attempt,
      outcome: ran.outcome,
      ...(ran.result !== undefined ? { result: ran.result } : {}),
      ...(ran.error !== undefined ? { error: ran.error } : {}),
    };
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
