import { buffer } from 'node:stream/consumers';
import { Logger } from '@aws-lambda-powertools/logger';
import type { LogLevel } from '@aws-lambda-powertools/logger/types';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { FUNCTIONS, type FunctionId } from '../functions/catalog';
import { createAwsClients } from '../functions/shared/aws-clients';
import { accountBudgetFromEnv, type Ec2Budget } from '../functions/shared/ec2-budget';
import { defaultRetryPolicy } from '../functions/shared/retry';
import { METRICS_NAMESPACE, type Runtime } from '../functions/shared/runtime';
import { TABLES, type TableId, tableEnvVar } from '../functions/shared/tables';
import type { VirtualClock } from './clock';
import { LOCAL_CREDENTIALS, type TableNames } from './dynamodb-local';
import { assertInvocationAlive, type FaultInjector, invocationScope } from './faults';
import { attachIam, type LocalIam } from './iam/evaluator';
import type { LatencyMode } from './latency';
import { CapturingMetrics, type EmfSink } from './metrics';
import { ClockRetryStrategy } from './retry-strategy';
import { attachSimulator, type OperationDispatch, type SdkClient } from './sdk-bridge';

/**
 * The discard port. EC2, SSM and EventBridge clients point here so that, were the simulator
 * bridge ever missing, a request would fail on this machine instead of reaching AWS.
 */
export const UNREACHABLE_ENDPOINT = 'http://127.0.0.1:9';

export interface LocalRuntimeOptions {
  readonly clock: VirtualClock;
  readonly functionId: FunctionId;
  readonly region: string;
  readonly random: () => number;
  /** The simulated services each SDK client is plugged into. */
  readonly simulators: {
    readonly ec2: OperationDispatch;
    readonly ssm: OperationDispatch;
    readonly events: OperationDispatch;
  };
  readonly dynamodbEndpoint: string;
  readonly tables: TableNames;
  /** The function's own settings (e.g. `HOST_GROUPS`); region and table names are added. */
  readonly settings?: Readonly<Record<string, string>>;
  /** Where the function's EMF metrics are kept. */
  readonly metricsSink: EmfSink;
  /** DynamoDB request latency in virtual time (see DYNAMODB_LATENCY_MS). */
  readonly latency: LatencyMode;
  /** Powertools log level; default SILENT, because a simulated fleet logs thousands of lines. */
  readonly logLevel?: LogLevel;
  /**
   * When given, every DynamoDB request is a fault point too: it counts toward `killInvocation`'s
   * `afterCalls` and `failNextCall({ service: 'dynamodb' })` can fail it. Default: DynamoDB calls
   * are only refused once the invocation was killed.
   */
  readonly dynamodbFaults?: FaultInjector;
  /** Evaluates every call of this function against its role policy (local/iam). */
  readonly iam?: LocalIam;
}

/**
 * Virtual time a DynamoDB request takes in `calibrated` mode. A documented choice, not a
 * measurement: DynamoDB answers in single-digit milliseconds. It matters because without it
 * two invocations could never overlap in virtual time, and races would never be exercised.
 */
const DYNAMODB_LATENCY_MS = 5;

const dynamodbLatencyMs = (mode: LatencyMode): number => (mode === 'calibrated' ? DYNAMODB_LATENCY_MS : 0);

/**
 * The HTTP handler of the DynamoDB client: `latencyMs` of virtual time, then real HTTP to
 * DynamoDB Local counted as I/O in flight so the virtual clock never jumps while a request is on
 * the wire. Refused once fault injection killed the invocation (a dead process sends nothing
 * more). The response body is read inside the tracked span; the deserializer would otherwise
 * read the socket untracked.
 */
export class ClockTrackedHttpHandler extends NodeHttpHandler {
  readonly #clock: VirtualClock;
  readonly #latencyMs: number;
  readonly #faults: FaultInjector | undefined;

  constructor(clock: VirtualClock, latencyMs: number, faults?: FaultInjector) {
    super();
    this.#clock = clock;
    this.#latencyMs = latencyMs;
    this.#faults = faults;
  }

  override async handle(
    ...args: Parameters<NodeHttpHandler['handle']>
  ): ReturnType<NodeHttpHandler['handle']> {
    assertInvocationAlive();
    this.#faults?.beforeCall('dynamodb', dynamodbOperation(args[0]));
    if (this.#latencyMs > 0) await this.#clock.sleep(this.#latencyMs);
    assertInvocationAlive();
    return this.#clock.trackIo(async () => {
      const { response } = await super.handle(...args);
      response.body = await buffer(response.body);
      return { response };
    });
  }
}

/** `PutItem` from the `X-Amz-Target: DynamoDB_20120810.PutItem` header of a DynamoDB request. */
const dynamodbOperation = (request: { headers: Record<string, string | undefined> }): string => {
  const target = Object.entries(request.headers).find(([name]) => name.toLowerCase() === 'x-amz-target')?.[1];
  return target?.split('.').pop() ?? 'Unknown';
};

const RELEASE_CLOCK = Symbol('warmboot.releaseClock');

/**
 * From `send()` until the signed request leaves the client, the SDK does real work the virtual
 * clock cannot see: on a client's first call it reads the shared AWS config files. Virtual time
 * holds still over that stretch; otherwise the clock could take the pause for idleness and jump
 * (or report a deadlock). Released before the transport, because retry backoff and simulated
 * latency must pass on the clock.
 */
export const holdClockWhileSending = <Input extends object, Output extends object>(
  client: SdkClient<Input, Output>,
  clock: VirtualClock,
): void => {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      let release = (): void => undefined;
      void clock.trackIo(
        () =>
          new Promise<void>((resolve) => {
            release = resolve;
          }),
      );
      (context as Record<symbol, unknown>)[RELEASE_CLOCK] = release;
      try {
        return await next(args);
      } finally {
        release();
      }
    },
    { step: 'initialize', priority: 'high', name: 'warmbootHoldClock' },
  );
  client.middlewareStack.add(
    (next, context) => async (args) => {
      (context as Record<symbol, (() => void) | undefined>)[RELEASE_CLOCK]?.();
      return next(args);
    },
    { step: 'finalizeRequest', priority: 'low', name: 'warmbootReleaseClock' },
  );
};

/** The environment a deployed function gets from its construct: every table name plus settings. */
const functionEnv = (
  region: string,
  tables: TableNames,
  settings: Readonly<Record<string, string>> = {},
): Record<string, string> => ({
  AWS_REGION: region,
  ...Object.fromEntries((Object.keys(TABLES) as TableId[]).map((id) => [tableEnvVar(id), tables[id]])),
  ...settings,
});

/**
 * The account budget, as productionRuntime() builds it, on the virtual clock and DynamoDB Local,
 * for the function's own invocations. A test or the sandbox that borrows a deployed function's
 * client outside any invocation plays another client of the account (as for IAM, attachIam), and
 * other clients are not paced by warmboot's budget.
 */
const invocationBudget = (budget: Ec2Budget): Ec2Budget => ({
  acquire: (action, input) =>
    invocationScope.getStore() ? budget.acquire(action, input) : Promise.resolve(),
  admissible: (action, withinMs) => budget.admissible(action, withinMs),
  admittedWithinMs: (action, calls) => budget.admittedWithinMs(action, calls),
});

/**
 * The local composition root: the same Runtime `productionRuntime()` builds, with the virtual
 * clock, dummy credentials, explicit local endpoints, the simulators under the EC2/SSM/EventBridge
 * clients and DynamoDB Local under the DynamoDB client.
 */
export const createLocalRuntime = (options: LocalRuntimeOptions): Runtime => {
  const { clock, functionId } = options;
  const env = functionEnv(options.region, options.tables, options.settings);
  const clientOptions = (faults: FaultInjector | undefined) => ({
    region: options.region,
    credentials: LOCAL_CREDENTIALS,
    retryStrategy: new ClockRetryStrategy(clock, defaultRetryPolicy, options.random),
    endpoints: {
      ec2: UNREACHABLE_ENDPOINT,
      ssm: UNREACHABLE_ENDPOINT,
      events: UNREACHABLE_ENDPOINT,
      dynamodb: options.dynamodbEndpoint,
    },
    dynamodbRequestHandler: new ClockTrackedHttpHandler(clock, dynamodbLatencyMs(options.latency), faults),
  });
  // The budget's own table calls go through a client the fault injector does not see: they are
  // neither failed nor killed at, nor counted as the handler's calls. Every recorded fault replay
  // names its faults and kill points by the handler's calls, and the budget adds two DynamoDB
  // calls before EC2 calls; a failing budget store is covered where it is decided (the store
  // falls back to pacing alone: test/unit/shared/account-budget.test.ts). docs/reliability.md.
  const budgetClients = createAwsClients(clientOptions(undefined));
  holdClockWhileSending(budgetClients.dynamodb, clock);
  const clients = createAwsClients(
    clientOptions(options.dynamodbFaults),
    // Only a function that calls EC2 has the budget's table (its catalog entry lists it), as deployed.
    FUNCTIONS[functionId].tables.includes('ec2Budget')
      ? () =>
          invocationBudget(
            accountBudgetFromEnv(functionId, env, budgetClients.documents, clock, options.random),
          )
      : undefined,
  );
  attachSimulator(clients.ec2, options.simulators.ec2);
  attachSimulator(clients.ssm, options.simulators.ssm);
  attachSimulator(clients.events, options.simulators.events);
  holdClockWhileSending(clients.ec2, clock);
  holdClockWhileSending(clients.ssm, clock);
  holdClockWhileSending(clients.events, clock);
  holdClockWhileSending(clients.dynamodb, clock);
  if (options.iam) {
    attachIam(clients.ec2, options.iam, functionId, 'ec2');
    attachIam(clients.ssm, options.iam, functionId, 'ssm');
    attachIam(clients.events, options.iam, functionId, 'events');
    attachIam(clients.dynamodb, options.iam, functionId, 'dynamodb');
  }
  return {
    functionName: `warmboot-${functionId}`,
    clock,
    // The local bus times each invocation out on the virtual clock (Lambda timeout); middy's early
    // timeout would fire on wall time, which a long virtual invocation may outlast.
    timeoutEarlyMs: 0,
    random: options.random,
    clients,
    logger: new Logger({ serviceName: functionId, logLevel: options.logLevel ?? 'SILENT' }),
    metrics: new CapturingMetrics(
      { namespace: METRICS_NAMESPACE, serviceName: functionId },
      options.metricsSink,
      clock,
    ),
    tracer: new Tracer({ serviceName: functionId, enabled: false }),
    idempotencyTable: options.tables.idempotency,
    env,
  };
};
