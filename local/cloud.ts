import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { LogLevel } from '@aws-lambda-powertools/logger/types';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import {
  adminRequestFunction,
  FUNCTIONS,
  type FunctionId,
  RULE_DELIVERY_ALIAS,
  WARMBOOT,
} from '../functions/catalog';
import { poolPolicySchema } from '../functions/pools/config';
import { FACTS_BUS_ENV } from '../functions/shared/adapters/facts';
import { REQUEST_CALLERS_ENV } from '../functions/shared/function-url';
import type { Runtime } from '../functions/shared/runtime';
import type { CommandDocument } from '../functions/shared/ssm-document';
import { shelvingSettingsSchema } from '../functions/shelving/config';
import { factsBusPolicy, requestBusPolicy } from '../infra/bus-policies';
import type { Operator } from '../infra/config';
import { requestCallersOf } from '../infra/request-urls';
import { type EventEnvelope, LocalEventBus } from './bus';
import { CallJournal } from './call-journal';
import { VirtualClock } from './clock';
import {
  createTables,
  type DynamoDbLocal,
  deleteTables,
  LOCAL_CREDENTIALS,
  startDynamoDbLocal,
  type TableNames,
} from './dynamodb-local';
import type { SimulatorEvent } from './ec2/events';
import { IdGenerator, seededRandom } from './ec2/ids';
import { Ec2Simulator } from './ec2/simulator';
import { checkEntry, createEventsSimulator, entrySize, PUT_EVENTS_MAX_BYTES } from './events-simulator';
import { FaultInjector, HandlerKilledError, invocationScope } from './faults';
import { type FunctionHandler, functionFolder, type HandlerFactory, loadHandlerFactory } from './functions';
import { ec2ResourceState } from './iam/ec2-state';
import { ebsKeyAuthorizer, LocalIam, type OutsideCaller } from './iam/evaluator';
import { functionUrlPolicy } from './iam/function-url-policy';
import { InstanceProfiles } from './iam/instance-profiles';
import { synthesizedRolePolicies } from './iam/policy-source';
import type { IamDeployment } from './iam/policy-template';
import { KmsKeys } from './kms/keys';
import { lambdaContext } from './lambda-context';
import type { Ec2Latencies, LatencyMode } from './latency';
import type { EmfSink } from './metrics';
import { ClockTrackedHttpHandler, createLocalRuntime, holdClockWhileSending } from './runtime';
import { SimulatedAwsError } from './sdk-bridge';
import type { DocumentBehaviour } from './ssm/agent';
import { SsmSimulator } from './ssm/simulator';

export interface LocalCloudOptions {
  /** A running DynamoDB Local (tests: `inject('dynamodbEndpoint')`); absent: start one for this cloud. */
  readonly dynamodbEndpoint?: string;
  /** Simulator latencies (default `calibrated`). */
  readonly latency?: LatencyMode;
  /** EC2 figures replacing the mode's: a benchmark sweeping an assumption (e.g. `replaceRootSwapMs`). */
  readonly ec2LatencyOverrides?: Partial<Ec2Latencies>;
  /** Seeds every random choice: ids, event ids, fault probabilities, jitter (default 1). */
  readonly seed?: number;
  readonly region?: string;
  readonly accountId?: string;
  /** Functions to deploy from `functions/<folder>/handler.ts` (default none). */
  readonly functions?: readonly FunctionId[];
  /** Deploy these factories under catalog ids instead of the real handlers (test doubles). */
  readonly handlers?: Partial<Record<FunctionId, HandlerFactory>>;
  /** Function settings, given to every deployed function as environment (e.g. `{ HOST_GROUPS: '[…]' }`). */
  readonly settings?: Readonly<Record<string, string>>;
  /** SSM documents (default: every `functions/<folder>/documents.ts` `DOCUMENTS`). */
  readonly documents?: readonly CommandDocument[];
  /** What each document does on a simulated host (default: every `local/ssm/behaviours/<folder>.ts` `BEHAVIOURS`). */
  readonly behaviours?: Readonly<Record<string, DocumentBehaviour>>;
  /** Powertools log level of every function (default SILENT). */
  readonly logLevel?: LogLevel;
  /**
   * Make every DynamoDB request of the deployed functions a fault point as well: `killInvocation`
   * counts it in `afterCalls` and `failNextCall({ service: 'dynamodb' })` fails it (default false).
   */
  readonly faultsOnDynamodb?: boolean;
  /**
   * The deploy-time IAM opt-ins of this deployment. Every call of every deployed function is
   * evaluated against its role policy as the CDK app synthesizes it for these settings (host
   * groups and pool image parameters come from `settings`); see docs/iam-simulation.md.
   */
  readonly iam?: {
    readonly allowShelvedDataDeletion?: boolean;
    /**
     * The deployment's `ebsKmsKeyArns`: the customer managed keys of encrypted volumes its roles
     * may use (create them with `cloud.kms.createKey({ keyId })`; `cloud.kms.arnOf(keyId)`).
     */
    readonly ebsKmsKeyArns?: readonly string[];
  };
  /**
   * Reserved concurrency per function, as a deployment may configure it (`reservedConcurrency`):
   * the local bus then runs at most that many invocations at once and queues the rest. Default:
   * none, like the stack's default.
   */
  readonly reservedConcurrency?: Readonly<Partial<Record<FunctionId, number>>>;
  /**
   * Systems Manager's Default Host Management Configuration in the account and Region: with it on,
   * every instance's SSM agent registers without an instance profile. Default off, as in a new
   * account: an agent then registers only with an instance profile from `instanceProfiles` whose
   * role carries AmazonSSMManagedInstanceCore (local/ssm/registration.ts).
   */
  readonly defaultHostManagement?: boolean;
  /**
   * Who may send which requests over the request bus (the deployment's `operators`). Default: one
   * operator role, `role/warmboot-operator` of the cloud's account, allowed every request for
   * every tenant; it is who `putEvent` acts as unless told otherwise. `[]` is the stack's default: nobody.
   */
  readonly operators?: readonly Operator[];
  /**
   * The deployment's `admins`: role or user ARNs that may send administrative requests through
   * the functions' URLs (`invokeUrl`). Default: none, the stack's default.
   */
  readonly admins?: readonly string[];
}

/** One call of a function URL (`invokeUrl`). */
export interface UrlRequestOptions {
  /** Who signs the request: a role (it signs as a session of it), a user, or with its own IAM policies. */
  readonly as: string | OutsideCaller;
  /** The JSON the caller POSTs: `{"detail-type": …, "detail": {…}}`, or any text. */
  readonly body: unknown;
  /** Request headers (lower-case names), e.g. the idempotency key `x-warmboot-request-id`. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Default POST. */
  readonly method?: string;
}

/** What the caller of a function URL receives: the HTTP status, headers, and the body as JSON. */
export interface UrlResponse {
  readonly statusCode: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: unknown;
}

/** Options of one PutEvents call made from outside warmboot. */
export interface PutEventOptions {
  /** Who calls, with its own IAM policies (default: the cloud's operator role, with none). */
  readonly as?: OutsideCaller;
  /** The bus, by name or ARN (default: the request bus). */
  readonly bus?: string;
}

export interface PutEventInput {
  readonly source: string;
  readonly detailType: string;
  readonly detail: Record<string, unknown>;
  readonly resources?: readonly string[];
}

const DEFAULT_REGION = 'us-east-1';
/** The role the local cloud's default operator acts as (`operators` default). */
export const localOperatorArn = (accountId: string): string =>
  `arn:aws:iam::${accountId}:role/warmboot-operator`;
/**
 * The identity a principal signs a request as: a role through a session of it (STS
 * AssumeRole: `arn:aws:sts::<account>:assumed-role/<role name>/<session>`, caller id
 * `<role id>:<session>`), a user or root as itself.
 */
const signedAs = (principalArn: string): { arn: string; account: string; callerId: string } => {
  const role = /^arn:([^:]+):iam::(\d{12}):role\/(?:.*\/)?([^/]+)$/.exec(principalArn);
  const account = principalArn.split(':')[4] ?? '';
  if (role) {
    return {
      arn: `arn:${role[1]}:sts::${role[2]}:assumed-role/${role[3]}/operator-session`,
      account,
      callerId: 'AROALOCALCLOUDROLE:operator-session',
    };
  }
  return { arn: principalArn, account, callerId: 'AIDALOCALCLOUDUSER' };
};

/** The placeholder account id AWS uses in its documentation. */
const DEFAULT_ACCOUNT_ID = '123456789012';

const moduleIfPresent = async (relativePath: string): Promise<Record<string, unknown> | undefined> => {
  const url = new URL(relativePath, import.meta.url);
  if (!existsSync(fileURLToPath(url))) return undefined;
  return (await import(url.href)) as Record<string, unknown>;
};

/**
 * Every capability's SSM documents and simulated behaviours, found by convention: a capability
 * that runs commands exports `DOCUMENTS` from `functions/<folder>/documents.ts` and its host-side
 * behaviour as `BEHAVIOURS` from `local/ssm/behaviours/<folder>.ts`.
 */
const capabilityCommands = async (): Promise<{
  documents: CommandDocument[];
  behaviours: Record<string, DocumentBehaviour>;
}> => {
  const documents: CommandDocument[] = [];
  const behaviours: Record<string, DocumentBehaviour> = {};
  for (const functionId of Object.keys(FUNCTIONS) as FunctionId[]) {
    const folder = functionFolder(functionId);
    const documentModule = await moduleIfPresent(`../functions/${folder}/documents.ts`);
    documents.push(...((documentModule?.DOCUMENTS ?? []) as CommandDocument[]));
    const behaviourModule = await moduleIfPresent(`./ssm/behaviours/${folder}.ts`);
    Object.assign(behaviours, (behaviourModule?.BEHAVIOURS ?? {}) as Record<string, DocumentBehaviour>);
  }
  return { documents, behaviours };
};

/**
 * What the function settings say about IAM: the synth grants the image cache only the configured
 * host groups, the pools only the configured image parameters, and the pools and shelving only
 * their own AMI owners and instance profiles' roles (infra/capabilities).
 */
const iamSettings = (
  settings: Readonly<Record<string, string>>,
): Pick<
  IamDeployment,
  | 'hostGroups'
  | 'imageParameters'
  | 'imageOwners'
  | 'instanceRoles'
  | 'shelvingImageOwners'
  | 'shelvingInstanceRoles'
> => {
  const hostGroups = settings.HOST_GROUPS
    ? (JSON.parse(settings.HOST_GROUPS) as { name: string }[]).map((group) => group.name)
    : [];
  const pools = settings.POOLS
    ? (JSON.parse(settings.POOLS) as { image: string; instanceProfile?: string; instanceRole?: string }[])
    : [];
  const imageParameters = pools.map((pool) => pool.image).filter((image) => image.startsWith('/'));
  // The pool policy as the stack reads it: the AMI owners and the instance profiles' roles IAM grants.
  const policy = poolPolicySchema.parse(settings.POOL_POLICY ? JSON.parse(settings.POOL_POLICY) : {});
  const instanceRoles = [
    ...pools.flatMap((pool) => pool.instanceRole ?? pool.instanceProfile ?? []),
    ...policy.instanceProfiles.map((profile) => profile.role ?? profile.name),
  ];
  const shelving = shelvingSettingsSchema.parse(
    settings.SHELVING_SETTINGS ? JSON.parse(settings.SHELVING_SETTINGS) : {},
  );
  return {
    hostGroups,
    imageParameters,
    imageOwners: policy.allowedImageOwners,
    instanceRoles,
    shelvingImageOwners: shelving.allowedImageOwners,
    shelvingInstanceRoles: shelving.instanceProfiles.map((profile) => profile.role ?? profile.name),
  };
};

/** The pools SHELVING_SETTINGS lets serve unshelve (the stack then grants the pools table and their members). */
const poolsServeUnshelve = (settings: Readonly<Record<string, string>>): string[] =>
  settings.SHELVING_SETTINGS === undefined
    ? []
    : ((JSON.parse(settings.SHELVING_SETTINGS) as { unshelveFromPools?: string[] }).unshelveFromPools ?? []);

/** Whether SHELVING_SETTINGS opts in to deleting shelved data (the stack's allowShelvedDataDeletion). */
const shelvedDataDeletion = (settings: Readonly<Record<string, string>>): boolean =>
  settings.SHELVING_SETTINGS !== undefined &&
  (JSON.parse(settings.SHELVING_SETTINGS) as { allowDataDeletion?: boolean }).allowDataDeletion === true;

/**
 * The whole cloud warmboot needs, on one virtual clock: DynamoDB Local with the stack's tables,
 * the EC2 and SSM simulators, the local EventBridge with the catalog's rules, and the deployed
 * functions' handlers behind the real SDK clients.
 *
 * Time moves only while someone drives the clock: `run(task)`, `invoke()` and `settleFor()` do.
 * Call them one at a time from the test; inside `run`, `invoke` and `settleFor` join the running
 * drive instead of starting a second one.
 */
export class LocalCloud {
  readonly clock: VirtualClock;
  readonly faults: FaultInjector;
  readonly bus: LocalEventBus;
  readonly ec2: Ec2Simulator;
  /** The account's KMS keys (encrypted volumes): create, disable or look them up. */
  readonly kms: KmsKeys;
  readonly ssm: SsmSimulator;
  /** The account's IAM instance profiles (which of them let an SSM agent register). */
  readonly instanceProfiles: InstanceProfiles;
  readonly region: string;
  readonly accountId: string;
  readonly tables: TableNames;
  /** A DocumentClient on DynamoDB Local, for assertions and seeding. */
  readonly documents: DynamoDBDocumentClient;
  /** Every EMF document the deployed functions published, in order. */
  readonly metrics: EmfSink;
  /** The IAM evaluation of every deployed function's calls: `stats()`, `denials()`, `policies(fn)`. */
  readonly iam: LocalIam;
  /** Every destructive EC2 call with its caller and the resource as it was, and who-manages-what writes. */
  readonly calls: CallJournal;
  /** Who `putEvent` acts as by default: the deployment's first operator (none: the account root). */
  readonly operator: OutsideCaller;
  /** The deployment's operators and admins: who the function URLs admit (infra/request-urls.ts). */
  readonly #operators: readonly Operator[];
  readonly #admins: readonly string[];
  readonly #runtimes: ReadonlyMap<FunctionId, Runtime>;
  readonly #handlers: ReadonlyMap<FunctionId, FunctionHandler>;
  /** The client under `documents`; also creates and drops the tables. */
  readonly #admin: DynamoDBClient;
  readonly #ownDynamodb: DynamoDbLocal | undefined;
  readonly #ids: IdGenerator;
  #driving = 0;
  #stopSchedules: (() => void) | undefined;

  private constructor(parts: {
    clock: VirtualClock;
    faults: FaultInjector;
    bus: LocalEventBus;
    ec2: Ec2Simulator;
    ssm: SsmSimulator;
    instanceProfiles: InstanceProfiles;
    region: string;
    accountId: string;
    tables: TableNames;
    documents: DynamoDBDocumentClient;
    admin: DynamoDBClient;
    metrics: EmfSink;
    iam: LocalIam;
    calls: CallJournal;
    operator: OutsideCaller;
    operators: readonly Operator[];
    admins: readonly string[];
    runtimes: ReadonlyMap<FunctionId, Runtime>;
    handlers: ReadonlyMap<FunctionId, FunctionHandler>;
    ownDynamodb: DynamoDbLocal | undefined;
    random: () => number;
  }) {
    this.clock = parts.clock;
    this.faults = parts.faults;
    this.bus = parts.bus;
    this.ec2 = parts.ec2;
    this.kms = parts.ec2.kms;
    this.ssm = parts.ssm;
    this.instanceProfiles = parts.instanceProfiles;
    this.region = parts.region;
    this.accountId = parts.accountId;
    this.tables = parts.tables;
    this.documents = parts.documents;
    this.#admin = parts.admin;
    this.metrics = parts.metrics;
    this.iam = parts.iam;
    this.calls = parts.calls;
    this.operator = parts.operator;
    this.#operators = parts.operators;
    this.#admins = parts.admins;
    this.#runtimes = parts.runtimes;
    this.#handlers = parts.handlers;
    this.#ownDynamodb = parts.ownDynamodb;
    this.#ids = new IdGenerator(parts.random);
  }

  static async start(options: LocalCloudOptions = {}): Promise<LocalCloud> {
    let ownDynamodb: DynamoDbLocal | undefined;
    let dynamodbEndpoint = options.dynamodbEndpoint;
    if (dynamodbEndpoint === undefined) {
      ownDynamodb = await startDynamoDbLocal();
      dynamodbEndpoint = ownDynamodb.endpoint;
    }
    try {
      return await LocalCloud.#assemble(options, dynamodbEndpoint, ownDynamodb);
    } catch (error) {
      await ownDynamodb?.stop();
      throw error;
    }
  }

  static async #assemble(
    options: LocalCloudOptions,
    dynamodbEndpoint: string,
    ownDynamodb: DynamoDbLocal | undefined,
  ): Promise<LocalCloud> {
    const region = options.region ?? DEFAULT_REGION;
    const accountId = options.accountId ?? DEFAULT_ACCOUNT_ID;
    const latency = options.latency ?? 'calibrated';
    const seeds = seededRandom(options.seed ?? 1);
    const nextSeed = (): number => Math.floor(seeds() * 2 ** 32);
    const clock = new VirtualClock();
    const faults = new FaultInjector();

    const assertions = new DynamoDBClient({
      region,
      endpoint: dynamodbEndpoint,
      credentials: LOCAL_CREDENTIALS,
      // No latency: tests read through this client without driving the clock.
      requestHandler: new ClockTrackedHttpHandler(clock, 0),
    });
    holdClockWhileSending(assertions, clock);
    const documents = DynamoDBDocumentClient.from(assertions, {
      marshallOptions: { removeUndefinedValues: true },
    });
    // Unique per cloud: test files run in parallel processes against one DynamoDB Local.
    const tables = await createTables(assertions, `wb-${randomUUID().slice(0, 8)}`);

    const bus = new LocalEventBus({
      clock,
      region,
      accountId,
      seed: nextSeed(),
      ...(options.reservedConcurrency ? { reservedConcurrency: options.reservedConcurrency } : {}),
    });
    const emit = (event: SimulatorEvent): void => {
      bus.put(event);
    };
    const kms = new KmsKeys({ region, accountId });
    const ec2 = new Ec2Simulator({
      clock,
      region,
      accountId,
      emit,
      faults,
      latency,
      ...(options.ec2LatencyOverrides ? { latencyOverrides: options.ec2LatencyOverrides } : {}),
      random: seededRandom(nextSeed()),
      kms,
    });
    // Discovery only fills in what the options leave out.
    const discovered = options.documents && options.behaviours ? undefined : await capabilityCommands();
    const instanceProfiles = new InstanceProfiles(accountId);
    const ssm = new SsmSimulator({
      clock,
      region,
      accountId,
      ec2,
      emit,
      faults,
      documents: [...(options.documents ?? discovered?.documents ?? [])],
      behaviours: { ...(options.behaviours ?? discovered?.behaviours ?? {}) },
      latency,
      random: seededRandom(nextSeed()),
      instanceProfiles,
      defaultHostManagement: options.defaultHostManagement ?? false,
    });
    const simulators = { ec2: ec2.dispatch, ssm: ssm.dispatch, events: createEventsSimulator(bus, faults) };
    // The buses' policies, as the stack attaches them (infra/buses.ts).
    const operators = options.operators ?? [
      { principal: localOperatorArn(accountId), requests: ['*'], tenants: ['*'] },
    ];
    const admins = options.admins ?? [];
    const busArn = (name: string) => `arn:aws:events:${region}:${accountId}:event-bus/${name}`;
    const busPolicies = new Map<string, Readonly<Record<string, unknown>>>([
      [
        bus.busName('requests'),
        requestBusPolicy({ busArn: busArn(bus.busName('requests')), operators, shared: false }),
      ],
      [
        bus.busName('facts'),
        factsBusPolicy({
          busArn: busArn(bus.busName('facts')),
          writerRoleArns: (Object.keys(FUNCTIONS) as FunctionId[]).map(
            (functionId) => `arn:aws:iam::${accountId}:role/warmboot-${functionId}-role`,
          ),
        }),
      ],
    ]);
    // The tables whose records say who manages what: shelve records and pool members.
    const calls = new CallJournal({ ec2, clock, tables: [tables.shelves, tables.pools] });
    const iam = new LocalIam({
      synthesized: await synthesizedRolePolicies(),
      deployment: {
        partition: 'aws',
        region,
        accountId,
        tables,
        ...iamSettings(options.settings ?? {}),
        // The deployment setting reaches both the role (IAM) and the function (SHELVING_SETTINGS).
        allowShelvedDataDeletion:
          options.iam?.allowShelvedDataDeletion ?? shelvedDataDeletion(options.settings ?? {}),
        ebsKmsKeyArns: options.iam?.ebsKmsKeyArns ?? [],
        unshelveFromPools: poolsServeUnshelve(options.settings ?? {}),
      },
      ec2: ec2ResourceState(ec2),
      busPolicies,
    });
    kms.authorizeWith(ebsKeyAuthorizer(iam));

    const metrics: EmfSink = [];
    const runtimes = new Map<FunctionId, Runtime>();
    const handlers = new Map<FunctionId, FunctionHandler>();
    const deployed = new Set<FunctionId>([
      ...(options.functions ?? []),
      ...(Object.keys(options.handlers ?? {}) as FunctionId[]),
    ]);
    for (const functionId of deployed) {
      const factory = options.handlers?.[functionId] ?? (await loadHandlerFactory(functionId));
      // One execution environment: its own runtime (SDK clients, caches) and handler, as Lambda
      // gives each concurrent invocation its own and nothing in module scope is shared between them.
      const environment = () => {
        const runtime = createLocalRuntime({
          clock,
          functionId,
          region,
          random: seededRandom(nextSeed()),
          simulators,
          dynamodbEndpoint,
          tables,
          settings: {
            [FACTS_BUS_ENV]: bus.busName('facts'),
            // Who may call the function's URL, as the stack writes it (infra/function.ts).
            [REQUEST_CALLERS_ENV]: JSON.stringify(requestCallersOf(FUNCTIONS[functionId], operators, admins)),
            ...(options.settings ?? {}),
          },
          latency,
          metricsSink: metrics,
          ...(options.logLevel ? { logLevel: options.logLevel } : {}),
          ...(options.faultsOnDynamodb ? { dynamodbFaults: faults } : {}),
          iam,
        });
        calls.attachWrites(runtime.clients.dynamodb, functionId);
        return { runtime, handler: factory(runtime) };
      };
      // The first environment also serves synchronous invokes and lends tests its clients.
      const first = environment();
      runtimes.set(functionId, first.runtime);
      handlers.set(functionId, first.handler);
      let firstTaken = false;
      bus.register(functionId, {
        environments: () => {
          if (!firstTaken) {
            firstTaken = true;
            return first.handler;
          }
          return environment().handler;
        },
      });
    }

    return new LocalCloud({
      clock,
      faults,
      bus,
      ec2,
      ssm,
      instanceProfiles,
      region,
      accountId,
      tables,
      documents,
      admin: assertions,
      metrics,
      iam,
      calls,
      operator: { principalArn: operators[0]?.principal ?? `arn:aws:iam::${accountId}:root` },
      operators,
      admins,
      runtimes,
      handlers,
      ownDynamodb,
      random: seededRandom(nextSeed()),
    });
  }

  /** The Runtime a deployed function was built with (its SDK clients, clock, env). */
  runtime(functionId: FunctionId): Runtime {
    const runtime = this.#runtimes.get(functionId);
    if (!runtime) throw new Error(`${functionId} is not deployed in this LocalCloud (options.functions)`);
    return runtime;
  }

  /**
   * A synchronous (RequestResponse) invocation of the function itself, unqualified, through its
   * full middy chain: what the Lambda console's test event and `aws lambda invoke` do. As in
   * Lambda there is no retry: a failure, or a handler killed by fault injection, throws. Such a
   * direct invoke may carry only operator requests (functions/shared/envelope.ts).
   */
  async invoke(functionId: FunctionId, event: unknown): Promise<unknown> {
    return this.#invokeSync(functionId, event, undefined);
  }

  /**
   * An administrative request (functions/catalog.ts ADMIN_REQUEST_TYPES) as an administrator sends
   * it: a direct invoke of the function that serves it, with the envelope a console test event
   * carries. Synchronous with no retry, as `aws lambda invoke` is; the answer is the handler's.
   */
  async adminRequest(
    detailType: string,
    detail: Record<string, unknown>,
  ): Promise<{ readonly envelope: EventEnvelope; readonly answer: unknown }> {
    const functionId = adminRequestFunction(detailType);
    if (!functionId) throw new Error(`${detailType} is not an administrative request`);
    const envelope = this.bus.envelopeOf({ source: WARMBOOT, detailType, detail });
    return { envelope, answer: await this.invoke(functionId, envelope) };
  }

  /**
   * A signed HTTP request to the function's URL (auth type AWS_IAM, on its `requests` alias), as
   * `npx warmboot` or `curl --aws-sigv4` sends it. Lambda first authorizes the caller against its
   * own policies and the URL's resource policy, built from the synthesized AWS::Lambda::Permission
   * resources for this deployment's operators and admins (local/iam/function-url-policy.ts): a
   * denied caller gets 403 `{"Message":"Forbidden"}` with `x-amzn-ErrorType: AccessDeniedException`
   * and the function never runs. An allowed one reaches the handler as a payload format 2.0 event
   * whose `requestContext.authorizer.iam.userArn` is the ARN it signed as: for a role, a session of
   * it (Lambda developer guide, "Invoking Lambda function URLs", request payload). Synchronous, no
   * retry; the function's answer is returned as the caller receives it.
   */
  async invokeUrl(functionId: FunctionId, options: UrlRequestOptions): Promise<UrlResponse> {
    const caller: OutsideCaller = typeof options.as === 'string' ? { principalArn: options.as } : options.as;
    const url = this.iam.functionUrl(functionId);
    if (!url) throw new Error(`${functionId} has no function URL in the synthesized stack`);
    const functionName = `warmboot-${functionId}`;
    const targetArn = `arn:aws:lambda:${this.region}:${this.accountId}:function:${functionName}:${url.qualifier}`;
    const policy = functionUrlPolicy(
      url,
      requestCallersOf(FUNCTIONS[functionId], this.#operators, this.#admins),
      targetArn,
    );
    const denial = await this.clock.trackIo(() =>
      this.iam.functionUrlDenial(caller, { targetArn, authType: url.authType }, policy),
    );
    if (denial) {
      return {
        statusCode: 403,
        headers: { 'content-type': 'application/json', 'x-amzn-errortype': 'AccessDeniedException' },
        body: { Message: 'Forbidden' },
      };
    }
    const requestId = this.#ids.uuid();
    const body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    const now = this.clock.now();
    const signer = signedAs(caller.principalArn);
    const domain = `${requestId.replaceAll('-', '').slice(0, 32)}.lambda-url.${this.region}.on.aws`;
    const event = {
      version: '2.0',
      routeKey: '$default',
      rawPath: '/',
      rawQueryString: '',
      headers: {
        'content-type': 'application/json',
        host: domain,
        'x-amz-date': new Date(now).toISOString().replace(/[-:]|\.\d{3}/g, ''),
        ...(options.headers ?? {}),
      },
      requestContext: {
        accountId: signer.account,
        apiId: domain.split('.')[0],
        authorizer: {
          iam: {
            accessKey: 'ASIALOCALCLOUDCALLER',
            accountId: signer.account,
            callerId: signer.callerId,
            cognitoIdentity: null,
            principalOrgId: null,
            userArn: signer.arn,
            userId: signer.callerId,
          },
        },
        domainName: domain,
        domainPrefix: domain.split('.')[0],
        http: {
          method: options.method ?? 'POST',
          path: '/',
          protocol: 'HTTP/1.1',
          sourceIp: '198.51.100.7',
          userAgent: 'warmboot-local',
        },
        requestId,
        routeKey: '$default',
        stage: '$default',
        time: new Date(now).toUTCString(),
        timeEpoch: now,
      },
      body,
      isBase64Encoded: false,
    };
    const answer = (await this.#invokeSync(functionId, event, url.qualifier)) as {
      statusCode: number;
      headers?: Record<string, string>;
      body?: string;
    };
    return {
      statusCode: answer.statusCode,
      headers: answer.headers ?? {},
      body: answer.body === undefined ? undefined : (JSON.parse(answer.body) as unknown),
    };
  }

  /**
   * Invokes the function as a rule does, through its rule alias, and waits for the answer: an
   * EventBridge delivery (an AWS event, a schedule, a fact) handed over now instead of after the
   * bus's latency, for a test that must act on its outcome. No retry.
   */
  async deliverByRule(functionId: FunctionId, event: unknown): Promise<unknown> {
    return this.#invokeSync(functionId, event, RULE_DELIVERY_ALIAS);
  }

  async #invokeSync(functionId: FunctionId, event: unknown, qualifier: string | undefined): Promise<unknown> {
    const handler = this.#handlers.get(functionId);
    if (!handler) throw new Error(`${functionId} is not deployed in this LocalCloud (options.functions)`);
    const invocationId = this.#ids.uuid();
    const scope = { functionId, invocationId, awsCalls: 0, killed: false };
    const context = lambdaContext({
      functionId,
      requestId: invocationId,
      clock: this.clock,
      region: this.region,
      accountId: this.accountId,
      timeoutMs: FUNCTIONS[functionId].timeoutSeconds * 1000,
      ...(qualifier ? { qualifier } : {}),
    });
    return this.run(async () => {
      const result = await invocationScope.run(scope, () => handler(event, context));
      if (scope.killed) throw new HandlerKilledError(functionId, scope.awsCalls);
      return result;
    });
  }

  /**
   * PutEvents of one entry by a principal outside warmboot (default: the cloud's operator, on
   * the request bus), validated like EventBridge and authorized like it: the caller's own
   * policies and the bus's policy (infra/bus-policies.ts). A denied call throws
   * AccessDeniedException and puts nothing. Returns the event as targets receive it.
   */
  async putEvent(event: PutEventInput, options: PutEventOptions = {}): Promise<EventEnvelope> {
    const entry = {
      Source: event.source,
      DetailType: event.detailType,
      Detail: JSON.stringify(event.detail),
      Resources: event.resources ?? [],
      EventBusName: options.bus ?? this.bus.busName('requests'),
    };
    if (entrySize(entry) > PUT_EVENTS_MAX_BYTES)
      throw new Error(`event is over ${PUT_EVENTS_MAX_BYTES} bytes`);
    const checked = checkEntry(entry, (name) => this.bus.resolveBus(name));
    if (!checked.ok) {
      throw new SimulatedAwsError(
        checked.code,
        `PutEvents refused the event: ${checked.code}: ${checked.message}`,
      );
    }
    // Virtual time holds still while the policies are evaluated (iam-data reads files).
    await this.clock.trackIo(() =>
      this.iam.authorizeCaller(options.as ?? this.operator, 'PutEvents', { Entries: [entry] }),
    );
    return this.bus.put(checked.event, checked.bus);
  }

  /** Runs `task` to completion, moving virtual time whenever everything waits. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#driving > 0) return task();
    this.#driving += 1;
    try {
      return await this.clock.run(task);
    } finally {
      this.#driving -= 1;
    }
  }

  /** Lets `ms` of virtual time pass, delivering every event, retry and transition due in it. */
  async settleFor(ms: number): Promise<void> {
    if (this.#driving > 0) return this.clock.sleep(ms);
    this.#driving += 1;
    try {
      await this.clock.advanceBy(ms);
    } finally {
      this.#driving -= 1;
    }
  }

  /** Starts every deployed function's catalog schedule (level-triggered reconciles). */
  startSchedules(): void {
    this.#stopSchedules ??= this.bus.startSchedules();
  }

  /** Stops schedules, drops this cloud's tables, closes its clients and its own DynamoDB Local. */
  async stop(): Promise<void> {
    this.#stopSchedules?.();
    this.#stopSchedules = undefined;
    try {
      await deleteTables(this.#admin, this.tables);
    } finally {
      for (const runtime of this.#runtimes.values()) {
        for (const client of Object.values(runtime.clients)) client.destroy();
      }
      this.#admin.destroy();
      await this.#ownDynamodb?.stop();
    }
  }
}
