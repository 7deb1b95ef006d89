import { EC2Client } from '@aws-sdk/client-ec2';
import type { FunctionId } from '../functions/catalog';
import type { LocalCloud } from '../local/cloud';
import type { HandlerFactory } from '../local/functions';
import { ClockRetryStrategy } from '../local/retry-strategy';
import { attachSimulator, type SdkClient } from '../local/sdk-bridge';

/**
 * What the firehose scenario counts, attached to SDK clients from the bench's side only: the
 * deployed functions' clients get these meters through the `handlers` factories the bench hands
 * LocalCloud (the real handler factory, called with the real runtime, after the meters are added),
 * the other clients' through their own construction. No production code knows about them.
 */

/** Attempts (each one a request against EC2's buckets) and RequestLimitExceeded answers, per API. */
export type CallCounts = Map<string, { attempts: number; throttled: number }>;

const countAttempt = (counts: CallCounts, operation: string, throttled: boolean): void => {
  const entry = counts.get(operation) ?? { attempts: 0, throttled: 0 };
  counts.set(operation, entry);
  entry.attempts += 1;
  if (throttled) entry.throttled += 1;
};

const operationName = (context: object): string =>
  String((context as { commandName?: unknown }).commandName ?? '').replace(/Command$/, '');

/**
 * Counts every attempt the client sends: it sits in the finalize step after the SDK's retry
 * middleware, so a call the retry strategy repeats counts once per attempt, as EC2 counts it.
 */
export const meterEc2Attempts = <I extends object, O extends object>(
  client: SdkClient<I, O>,
  counts: CallCounts,
): void => {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const operation = operationName(context);
      try {
        const result = await next(args);
        countAttempt(counts, operation, false);
        return result;
      } catch (error) {
        countAttempt(counts, operation, (error as { name?: unknown }).name === 'RequestLimitExceeded');
        throw error;
      }
    },
    { step: 'finalizeRequest', priority: 'low', name: 'benchFirehoseEc2Meter' },
  );
};

const WRITE_OPERATIONS = new Set([
  'PutItem',
  'UpdateItem',
  'DeleteItem',
  'BatchWriteItem',
  'TransactWriteItems',
]);

interface ConsumedCapacity {
  readonly CapacityUnits?: number;
}

/**
 * Write capacity units per DynamoDB write: the bench asks DynamoDB Local for
 * `ReturnConsumedCapacity: TOTAL` on every write and adds up what it answers (transactions cost
 * two units per KB, as DynamoDB bills them). A write DynamoDB refused (a failed condition, a
 * cancelled transaction) answers with no capacity and is not counted, though AWS bills it.
 */
export const meterWriteUnits = <I extends object, O extends object>(
  client: SdkClient<I, O>,
  add: (units: number) => void,
): void => {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const operation = operationName(context);
      if (!WRITE_OPERATIONS.has(operation)) return next(args);
      const input = (args as { input: Record<string, unknown> }).input;
      input.ReturnConsumedCapacity = 'TOTAL';
      const result = await next(args);
      const consumed = (result as { output?: { ConsumedCapacity?: ConsumedCapacity | ConsumedCapacity[] } })
        .output?.ConsumedCapacity;
      const entries = Array.isArray(consumed) ? consumed : consumed ? [consumed] : [];
      add(entries.reduce((sum, entry) => sum + (entry.CapacityUnits ?? 0), 0));
      return result;
    },
    // Before serialization, so the request DynamoDB Local receives asks for the capacity.
    { step: 'initialize', priority: 'low', name: 'benchFirehoseWriteUnits' },
  );
};

/** Per deployed function: its EC2 attempts by API and its DynamoDB write units. */
export interface FunctionMeters {
  readonly ec2: CallCounts;
  writeUnits: number;
}

/**
 * Handler factories for `LocalCloud.start({ handlers })`: each environment's runtime gets the
 * meters, then the function's own factory builds its handler from it, unchanged.
 */
export const meteredHandlers = async (
  functionIds: readonly FunctionId[],
  loadFactory: (functionId: FunctionId) => Promise<HandlerFactory>,
): Promise<{
  readonly handlers: Partial<Record<FunctionId, HandlerFactory>>;
  readonly meters: ReadonlyMap<FunctionId, FunctionMeters>;
}> => {
  const meters = new Map<FunctionId, FunctionMeters>();
  const handlers: Partial<Record<FunctionId, HandlerFactory>> = {};
  for (const functionId of functionIds) {
    const factory = await loadFactory(functionId);
    const meter: FunctionMeters = { ec2: new Map(), writeUnits: 0 };
    meters.set(functionId, meter);
    handlers[functionId] = (runtime) => {
      const clients = runtime.clients as Partial<Record<'ec2' | 'dynamodb', SdkClient<object, object>>>;
      if (clients.ec2) meterEc2Attempts(clients.ec2, meter.ec2);
      if (clients.dynamodb)
        meterWriteUnits(clients.dynamodb, (units) => {
          meter.writeUnits += units;
        });
      return factory(runtime);
    };
  }
  return { handlers, meters };
};

/**
 * An EC2 client of another program in the account (the launch system, an autoscaler): its own
 * credentials, the SDK's standard retries on the cloud's clock, the local cloud's EC2 under it,
 * and an attempt meter. Outside every warmboot role, as such a client is.
 */
export const accountClient = (cloud: LocalCloud, name: string, counts: CallCounts): EC2Client => {
  const client = new EC2Client({
    region: cloud.region,
    credentials: {
      accessKeyId: `AKIA${name.toUpperCase().replace(/[^A-Z0-9]/g, '')}`,
      secretAccessKey: name,
    },
    endpoint: 'http://127.0.0.1:9',
    retryStrategy: new ClockRetryStrategy(cloud.clock),
  });
  attachSimulator(client, cloud.ec2.dispatch);
  meterEc2Attempts(client, counts);
  return client;
};

/** Sum of attempts and throttles over every API of `counts`, or of one API. */
export const totals = (counts: CallCounts, operation?: string): { attempts: number; throttled: number } => {
  let attempts = 0;
  let throttled = 0;
  for (const [name, entry] of counts) {
    if (operation !== undefined && name !== operation) continue;
    attempts += entry.attempts;
    throttled += entry.throttled;
  }
  return { attempts, throttled };
};

/** Counts of `after` minus `before`, per API. */
export const since = (before: CallCounts, after: CallCounts): CallCounts =>
  new Map(
    [...after].map(([api, entry]) => [
      api,
      {
        attempts: entry.attempts - (before.get(api)?.attempts ?? 0),
        throttled: entry.throttled - (before.get(api)?.throttled ?? 0),
      },
    ]),
  );

export const copyCounts = (counts: CallCounts): CallCounts =>
  new Map([...counts].map(([api, entry]) => [api, { ...entry }]));

export const throttleColumns = (prefix: string, counts: CallCounts): Record<string, number> =>
  Object.fromEntries(
    [...counts]
      .filter(([, entry]) => entry.throttled > 0)
      .map(([api, entry]) => [`${prefix} ${api}`, entry.throttled]),
  );

export const sumCounts = (all: readonly CallCounts[]): CallCounts => {
  const sum: CallCounts = new Map();
  for (const counts of all)
    for (const [api, entry] of counts) {
      const total = sum.get(api) ?? { attempts: 0, throttled: 0 };
      sum.set(api, {
        attempts: total.attempts + entry.attempts,
        throttled: total.throttled + entry.throttled,
      });
    }
  return sum;
};
