import type { z } from 'zod';
import { ADMIN_REQUEST_TYPES, WARMBOOT } from '../catalog';
import { type Caller, isRequestSource } from './caller';
import { errorMessage, ValidationError, WarmbootError } from './errors';
import { eventBridgeEnvelopeSchema } from './schemas/eventbridge';

/** An EventBridge event whose envelope and detail passed their schemas. */
export interface ParsedEvent<D> {
  readonly id: string;
  readonly source: string;
  readonly detailType: string;
  readonly time: string;
  readonly account: string;
  readonly region: string;
  readonly resources: readonly string[];
  readonly detail: D;
  /** Who an operator request acts for (functions/shared/caller.ts); undefined for AWS events and facts. */
  readonly caller?: Caller;
}

export interface EventRoute<R> {
  readonly source: string;
  readonly detailType: string;
  /** Parses `detail`; its error paths are reported as `detail.<path>`. */
  readonly parse: (event: Record<string, unknown>) => ParsedEvent<unknown>;
  readonly handle: (event: ParsedEvent<unknown>) => Promise<R>;
  /** Given every event of a queue batch this route handles, before any is handled (RouteOptions). */
  readonly prepare?: (events: readonly ParsedEvent<unknown>[]) => Promise<void>;
}

export interface RouteOptions<D> {
  /**
   * Batch lookups: the events of one queue batch (functions/shared/event-batch.ts) this route will
   * handle, given together first, so what they all need is fetched in one call (one
   * DescribeInstances for the batch) and each event then finds it cached.
   */
  readonly prepare?: (events: readonly ParsedEvent<D>[]) => Promise<void>;
}

export type DispatchResult<R> =
  | { readonly status: 'handled'; readonly source: string; readonly detailType: string; readonly result: R }
  | { readonly status: 'ignored'; readonly reason: string }
  | {
      readonly status: 'rejected';
      readonly error: { readonly code: string; readonly field?: string; readonly message: string };
    };

const fieldPath = (prefix: string, path: readonly PropertyKey[]): string =>
  [prefix, ...path.map(String)].filter((part) => part.length > 0).join('.');

/** Parse with a zod schema and turn the first issue into a ValidationError that names the field. */
export const parseOrThrow = <S extends z.ZodType>(schema: S, value: unknown, prefix = ''): z.infer<S> => {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => ({
    field: fieldPath(prefix, issue.path) || '(event)',
    message: issue.message,
  }));
  const first = issues[0] ?? { field: prefix || '(event)', message: 'invalid' };
  throw new ValidationError(first.field, first.message, issues);
};

const envelopeOf = (raw: unknown): z.infer<typeof eventBridgeEnvelopeSchema> =>
  parseOrThrow(eventBridgeEnvelopeSchema, raw);

/**
 * Declares which detail schema and which handler belong to one source + detail-type.
 * `handle` receives the parsed detail; domain errors it throws propagate (and the Lambda retries),
 * except ValidationError, which the registry reports as a rejection without retrying.
 */
export const route = <S extends z.ZodType, R>(
  source: string,
  detailType: string,
  detail: S,
  handle: (event: ParsedEvent<z.infer<S>>) => Promise<R>,
  { prepare }: RouteOptions<z.infer<S>> = {},
): EventRoute<R> => ({
  ...(prepare ? { prepare: (events) => prepare(events as ParsedEvent<z.infer<S>>[]) } : {}),
  source,
  detailType,
  parse: (raw) => {
    const envelope = envelopeOf(raw);
    return {
      id: envelope.id,
      source: envelope.source,
      detailType: envelope['detail-type'],
      time: envelope.time,
      account: envelope.account,
      region: envelope.region,
      resources: envelope.resources,
      detail: parseOrThrow(detail, envelope.detail, 'detail'),
    };
  },
  handle: (event) => handle(event as ParsedEvent<z.infer<S>>),
});

const keyOf = (source: string, detailType: string): string => `${source}\u0000${detailType}`;

/**
 * Parser registry keyed on source + detail-type (Karpenter's interruption controller does the
 * same). An event nobody registered is an explicit, logged no-op, not an error: EventBridge
 * rules may deliver more than a function needs while a deployment rolls forward.
 */
export class EventRegistry<R> {
  private readonly routes = new Map<string, EventRoute<R>>();

  constructor(routes: readonly EventRoute<R>[]) {
    for (const entry of routes) this.routes.set(keyOf(entry.source, entry.detailType), entry);
  }

  get accepted(): readonly { source: string; detailType: string }[] {
    return [...this.routes.values()].map(({ source, detailType }) => ({ source, detailType }));
  }

  /**
   * Gives each route that batches lookups (`RouteOptions.prepare`) the events of a queue batch it
   * will handle. Events that do not parse, or that no route takes, are left to `dispatch`, which
   * reports them.
   */
  async prepare(raws: readonly unknown[]): Promise<void> {
    const byRoute = new Map<EventRoute<R>, ParsedEvent<unknown>[]>();
    for (const raw of raws) {
      const envelope = eventBridgeEnvelopeSchema.safeParse(raw);
      if (!envelope.success || isRequestSource(envelope.data.source)) continue;
      const entry = this.routes.get(keyOf(envelope.data.source, envelope.data['detail-type']));
      if (!entry?.prepare) continue;
      try {
        byRoute.set(entry, [...(byRoute.get(entry) ?? []), entry.parse(raw as Record<string, unknown>)]);
      } catch {
        // Rejected when dispatched, with the field named.
      }
    }
    await Promise.all([...byRoute].map(([entry, events]) => entry.prepare?.(events)));
  }

  /**
   * Routes one event. An operator request (source `warmboot` or a tenant-bound
   * `warmboot.tenant.<t>`) is routed as `warmboot` and handed the `caller` the shared chain
   * derived from how it arrived; without one it acts for nobody (`tenants: []`).
   */
  async dispatch(raw: unknown, caller?: Caller): Promise<DispatchResult<R>> {
    let envelope: z.infer<typeof eventBridgeEnvelopeSchema>;
    try {
      envelope = envelopeOf(raw);
    } catch (error) {
      return rejection(error);
    }
    const request = isRequestSource(envelope.source);
    const routedSource = request ? WARMBOOT : envelope.source;
    const entry = this.routes.get(keyOf(routedSource, envelope['detail-type']));
    if (!entry)
      return { status: 'ignored', reason: `no handler for ${envelope.source} / ${envelope['detail-type']}` };
    let parsed: ParsedEvent<unknown>;
    try {
      parsed = entry.parse(raw as Record<string, unknown>);
    } catch (error) {
      return rejection(error);
    }
    if (request) {
      const who = caller ?? { via: 'request-bus' as const, tenants: [], admin: false };
      if (ADMIN_REQUEST_TYPES.has(parsed.detailType) && !who.admin) {
        return {
          status: 'rejected',
          error: {
            code: 'AdminRequestOnly',
            field: 'detail-type',
            message: `${parsed.detailType} is an administrative request: send it by an IAM-authenticated invoke (aws lambda invoke, the console, or the function URL as an administrator), not as an event`,
          },
        };
      }
      parsed = { ...parsed, caller: who };
    }
    try {
      const result = await entry.handle(parsed);
      return { status: 'handled', source: entry.source, detailType: entry.detailType, result };
    } catch (error) {
      if (error instanceof ValidationError) return rejection(error);
      throw error;
    }
  }
}

const rejection = (error: unknown): DispatchResult<never> => {
  if (error instanceof ValidationError) {
    return { status: 'rejected', error: { code: error.code, field: error.field, message: error.message } };
  }
  if (error instanceof WarmbootError)
    return { status: 'rejected', error: { code: error.code, message: error.message } };
  throw new Error(`unexpected parse failure: ${errorMessage(error)}`, { cause: error });
};
