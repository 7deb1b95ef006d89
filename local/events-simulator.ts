import type { BusEvent, EventEnvelope, LocalEventBus } from './bus';
import type { FaultInjector } from './faults';
import { type OperationDispatch, SimulatedAwsError } from './sdk-bridge';

/** EventBridge quotas: 10 entries per PutEvents, 256 KB per request (eb-quota, CalculatePutEventsEntrySize). */
const PUT_EVENTS_MAX_ENTRIES = 10;
export const PUT_EVENTS_MAX_BYTES = 256 * 1024;

export interface PutEventsEntry {
  readonly Source?: string;
  readonly DetailType?: string;
  readonly Detail?: string;
  readonly Resources?: readonly string[];
  readonly Time?: Date;
  readonly EventBusName?: string;
}

export type EntryCheck =
  | { readonly ok: true; readonly event: BusEvent; readonly bus: string }
  | {
      readonly ok: false;
      readonly code: 'InvalidArgument' | 'MalformedDetail' | 'NotAuthorizedForSourceException';
      readonly message: string;
    };

/**
 * One PutEvents entry checked as EventBridge checks it (API reference, PutEventsResultEntry):
 * Source, DetailType and Detail are required, Detail must be a JSON object, the bus must exist,
 * and nobody but AWS may publish with an `aws.` source (NotAuthorizedForSourceException: "You do
 * not have permissions to publish events with this source onto this event bus"). `resolveBus`
 * names the bus an `EventBusName` (name or ARN) means, or undefined when there is none.
 */
export const checkEntry = (
  entry: PutEventsEntry,
  resolveBus: (nameOrArn: string | undefined) => string | undefined,
): EntryCheck => {
  for (const field of ['Source', 'DetailType', 'Detail'] as const) {
    if (typeof entry[field] !== 'string' || entry[field].length === 0) {
      return {
        ok: false,
        code: 'InvalidArgument',
        message: `Parameter ${field} is not valid. Reason: ${field} is a required argument.`,
      };
    }
  }
  const bus = resolveBus(entry.EventBusName);
  if (bus === undefined) {
    return { ok: false, code: 'InvalidArgument', message: `Event bus ${entry.EventBusName} does not exist.` };
  }
  if ((entry.Source as string).startsWith('aws.')) {
    return {
      ok: false,
      code: 'NotAuthorizedForSourceException',
      message: 'Not authorized for the source.',
    };
  }
  let detail: unknown;
  try {
    detail = JSON.parse(entry.Detail as string);
  } catch {
    return { ok: false, code: 'MalformedDetail', message: 'Detail is malformed.' };
  }
  if (typeof detail !== 'object' || detail === null || Array.isArray(detail)) {
    return { ok: false, code: 'MalformedDetail', message: 'Detail is malformed.' };
  }
  return {
    ok: true,
    bus,
    event: {
      source: entry.Source as string,
      detailType: entry.DetailType as string,
      detail: detail as Record<string, unknown>,
      resources: entry.Resources ?? [],
      ...(entry.Time ? { time: entry.Time.getTime() } : {}),
    },
  };
};

/** Entry size as EventBridge computes it (user guide, CalculatePutEventsEntrySize). */
export const entrySize = (entry: PutEventsEntry): number => {
  const bytes = (text: string | undefined): number =>
    text === undefined ? 0 : Buffer.byteLength(text, 'utf8');
  return (
    (entry.Time ? 14 : 0) +
    bytes(entry.Source) +
    bytes(entry.DetailType) +
    bytes(entry.Detail) +
    (entry.Resources ?? []).reduce((sum, resource) => sum + bytes(resource), 0)
  );
};

/**
 * The EventBridge API under the SDK's EventBridgeClient: PutEvents onto the local buses (the
 * caller's IAM, and the bus's policy, were evaluated before: local/iam/evaluator.ts). Entries
 * fail one by one (the response says which), the request as a whole only for too many entries
 * or too many bytes, as in EventBridge.
 */
export const createEventsSimulator = (bus: LocalEventBus, faults: FaultInjector): OperationDispatch => {
  return async (operation, input) => {
    faults.beforeCall('events', operation);
    if (operation !== 'PutEvents') {
      throw new SimulatedAwsError(
        'UnknownOperationException',
        `the local EventBridge does not implement ${operation}`,
      );
    }
    const entries = (input.Entries ?? []) as readonly PutEventsEntry[];
    if (entries.length < 1 || entries.length > PUT_EVENTS_MAX_ENTRIES) {
      throw new SimulatedAwsError(
        'ValidationException',
        `1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length between 1 and ${PUT_EVENTS_MAX_ENTRIES}`,
      );
    }
    const size = entries.reduce((sum, entry) => sum + entrySize(entry), 0);
    if (size > PUT_EVENTS_MAX_BYTES) {
      throw new SimulatedAwsError(
        'ValidationException',
        `Total size of the entries in the request is over the limit (${size} bytes).`,
      );
    }
    const results = entries.map((entry) => {
      const checked = checkEntry(entry, (name) => bus.resolveBus(name));
      if (!checked.ok) return { ErrorCode: checked.code, ErrorMessage: checked.message };
      const envelope: EventEnvelope = bus.put(checked.event, checked.bus);
      return { EventId: envelope.id };
    });
    return { FailedEntryCount: results.filter((result) => 'ErrorCode' in result).length, Entries: results };
  };
};
