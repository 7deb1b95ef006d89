import type { FunctionId } from '../functions/catalog';
import type { EventEnvelope } from './bus';
import type { VirtualClock } from './clock';

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

/** What a fault acts on: one rule's delivery of an event to one function (or to its event queue). */
interface FaultableDelivery {
  readonly functionId: FunctionId;
  readonly event: EventEnvelope;
}

interface ActiveRule<D> extends EventFaultRule {
  remaining: number;
  held: D[];
  /** Bumped on every flush so a stale hold timer does not flush a newer window. */
  generation: number;
}

const DEFAULT_REORDER_HOLD_MS = 10_000;

const shuffle = <T>(items: readonly T[], random: () => number): T[] => {
  const copy = [...items];
  for (let index = copy.length - 1; index > 0; index--) {
    const other = Math.floor(random() * (index + 1));
    [copy[index], copy[other]] = [copy[other] as T, copy[index] as T];
  }
  return copy;
};

interface EventFaultsOptions<D> {
  readonly clock: VirtualClock;
  /** The bus's seeded generator: a seeded run draws the same probabilities and shuffles. */
  readonly random: () => number;
  /** Put → target, before any fault's own delay. */
  readonly latencyMs: number;
  /** Hands a delivery on, `afterMs` from now. */
  readonly send: (delivery: D, afterMs: number) => void;
}

/**
 * Event faults, injected per delivery (a rule's delivery to a function or to its event queue):
 * what EventBridge's at-least-once delivery allows, lost, duplicated, late and reordered events.
 */
export class EventFaults<D extends FaultableDelivery> {
  readonly #options: EventFaultsOptions<D>;
  #rules: ActiveRule<D>[] = [];

  constructor(options: EventFaultsOptions<D>) {
    this.#options = options;
  }

  inject(rule: EventFaultRule): void {
    if (rule.fault.kind === 'reorder' && rule.fault.window < 2) {
      throw new Error('a reorder fault needs a window of at least 2 events');
    }
    this.#rules.push({ ...rule, remaining: rule.times ?? Number.POSITIVE_INFINITY, held: [], generation: 0 });
  }

  /** Removes every fault; deliveries held for reordering are released in their original order. */
  clear(): void {
    const held = this.#rules.flatMap((rule) => rule.held);
    this.#rules = [];
    for (const delivery of held) this.#options.send(delivery, this.#options.latencyMs);
  }

  deliver(delivery: D): void {
    const { latencyMs, send } = this.#options;
    const rule = this.#rules.find((candidate) => this.#applies(candidate, delivery));
    if (!rule) {
      send(delivery, latencyMs);
      return;
    }
    rule.remaining -= 1;
    const fault = rule.fault;
    switch (fault.kind) {
      case 'drop':
        return;
      case 'duplicate':
        send(delivery, latencyMs);
        send(delivery, latencyMs + (fault.afterMs ?? 0));
        return;
      case 'delay':
        send(delivery, latencyMs + fault.ms);
        return;
      case 'reorder':
        this.#hold(rule, fault, delivery);
        return;
    }
  }

  #applies(rule: ActiveRule<D>, delivery: D): boolean {
    const { match } = rule;
    const { event } = delivery;
    if (rule.remaining <= 0) return false;
    if (match.source !== undefined && match.source !== event.source) return false;
    if (match.detailType !== undefined && match.detailType !== event['detail-type']) return false;
    if (match.functionId !== undefined && match.functionId !== delivery.functionId) return false;
    if (match.where && !match.where(event)) return false;
    return rule.probability === undefined || this.#options.random() < rule.probability;
  }

  #hold(rule: ActiveRule<D>, fault: Extract<EventFault, { kind: 'reorder' }>, delivery: D): void {
    const { clock } = this.#options;
    rule.held.push(delivery);
    if (rule.held.length >= fault.window) {
      this.#release(rule);
      return;
    }
    if (rule.held.length === 1) {
      const generation = rule.generation;
      clock.at(clock.now() + (fault.maxHoldMs ?? DEFAULT_REORDER_HOLD_MS), () => {
        if (rule.generation === generation) this.#release(rule);
      });
    }
  }

  #release(rule: ActiveRule<D>): void {
    const held = rule.held;
    rule.held = [];
    rule.generation += 1;
    // Same instant, shuffled insertion order: the clock fires same-time timers in insertion order.
    for (const delivery of shuffle(held, this.#options.random))
      this.#options.send(delivery, this.#options.latencyMs);
  }
}
