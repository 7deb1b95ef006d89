import type { EventPattern } from './shared/event-pattern';
import type { TableId } from './shared/tables';

/**
 * Every warmboot function, the events it receives and the tables it uses. The CDK stack
 * deploys one Lambda, one EventBridge rule per pattern (with a DLQ) and one schedule per entry;
 * the local bus routes with the very same patterns.
 */
export interface FunctionSpec {
  /** Stable id: construct id, log group, and the folder `functions/<id>/`. */
  readonly id: FunctionId;
  readonly description: string;
  /**
   * One rule per pattern. The bus a rule sits on follows from the pattern's source
   * (`patternBus`): AWS services on the default bus, operator requests on the request bus,
   * warmboot's facts on the facts bus. Deployed, every pattern also matches only this account
   * (`deployedPattern`).
   */
  readonly patterns: readonly {
    readonly id: string;
    readonly pattern: EventPattern;
    /**
     * The rule delivers to the function's event queue, not to the function: the function receives
     * these events in batches (`batch`) through an SQS event source mapping. Set on the patterns
     * every EC2 state change of the account matches (issue 17: the firehose).
     */
    readonly batched?: true;
  }[];
  /**
   * How the event queue's source mapping batches (required when a pattern is `batched`): up to
   * `size` messages, waiting at most `windowSeconds` after the first, at most `maxConcurrency`
   * batches in flight (Lambda developer guide, "Using Lambda with Amazon SQS": batch size up to
   * 10,000 for a standard queue with a window; maximum concurrency 2–1,000).
   */
  readonly batch?: EventBatching;
  /**
   * The detail-types the function publishes as facts (source `warmboot.fact`, on the facts bus).
   * Its role may put exactly these, and `Request Rejected` (the shared chain's report), there.
   */
  readonly publishes: readonly string[];
  /** Level-triggered reconcile, as an EventBridge schedule expression. */
  readonly schedule?: string;
  /**
   * Administrative requests the function serves (ADMIN_REQUEST_TYPES): no rule delivers them;
   * they arrive only by an IAM-authenticated invoke (functions/shared/caller.ts).
   */
  readonly adminRequests?: readonly string[];
  /** Also invoked synchronously (RequestResponse) by callers who want the answer. */
  readonly synchronous?: boolean;
  /**
   * Lambda timeout: the stack deploys it and the local bus enforces it (an invocation still
   * running then fails as `Task timed out`, and Lambda's async retries follow).
   */
  readonly timeoutSeconds: number;
  readonly memoryMb: number;
  readonly tables: readonly TableId[];
  /**
   * Tables the function uses only when a setting asks for them (shelving reads the pools table
   * when pools serve unshelve): granted, and their name set, only then.
   */
  readonly optionalTables?: readonly TableId[];
}

export interface EventBatching {
  readonly size: number;
  readonly windowSeconds: number;
  readonly maxConcurrency: number;
}

/** Every warmboot function, in the order the stack and the local cloud create them. */
export const FUNCTION_IDS = [
  'popularity',
  'imageCache',
  'fastRestore',
  'placement',
  'pools',
  'claim',
  'shelving',
] as const;
export type FunctionId = (typeof FUNCTION_IDS)[number];

export const EC2_STATE_CHANGE = 'EC2 Instance State-change Notification';
export const SSM_COMMAND_STATUS = 'EC2 Command Invocation Status-change Notification';
export const ECS_TASK_STATE = 'ECS Task State Change';
export const FSR_STATE_CHANGE = 'EBS Fast Snapshot Restore State-change Notification';
export const SCHEDULED_EVENT = 'Scheduled Event';
/**
 * The source of operator requests. Only principals the request bus's policy names may put events
 * with it there (infra/buses.ts); the Lambda console sample events in `events/` carry it.
 */
export const WARMBOOT = 'warmboot';
/**
 * The source of everything warmboot publishes (facts, and the requests its functions pass each
 * other), on the facts bus, which only warmboot's own roles may write to.
 */
export const WARMBOOT_FACT = 'warmboot.fact';
/**
 * The source prefix of a request from an operator bound to tenants: `warmboot.tenant.<tenant>`.
 * The request bus's policy lets each operator put only its own tenants' sources, so the tenant a
 * request acts for is the one its source names (functions/shared/caller.ts).
 */
export const TENANT_SOURCE_PREFIX = 'warmboot.tenant.';
/** Every SSM document warmboot deploys has a name starting with this (see infra/documents). */
export const DOCUMENT_PREFIX = 'Warmboot-';
/** The shared chain's report of a request that failed validation; every function may publish it. */
export const REQUEST_REJECTED = 'Request Rejected';
/**
 * The alias every EventBridge rule (and schedule) invokes. A function invoked through it is
 * receiving a rule delivery; invoked any other way (unqualified: the console, `aws lambda
 * invoke`) it accepts only operator requests (functions/shared/envelope.ts).
 */
export const RULE_DELIVERY_ALIAS = 'rules';
/** Default names of the buses the stack creates (`requestBus.name`, `factsBus.name`). */
export const DEFAULT_REQUEST_BUS_NAME = 'warmboot-requests';
export const DEFAULT_FACTS_BUS_NAME = 'warmboot-facts';

/** An operator request the function serves: it arrives on the request bus. */
const request = (...detailTypes: string[]): EventPattern => ({
  source: [WARMBOOT, { prefix: TENANT_SOURCE_PREFIX }],
  'detail-type': detailTypes,
});

/** An EC2 instance reaching one of `states`: AWS delivers it on the default bus. */
const instanceState = (...states: string[]): EventPattern => ({
  source: ['aws.ec2'],
  'detail-type': [EC2_STATE_CHANGE],
  detail: { state: states },
});

/** A fact another warmboot function published that this one acts on: it arrives on the facts bus. */
const fact = (...detailTypes: string[]): EventPattern => ({
  source: [WARMBOOT_FACT],
  'detail-type': detailTypes,
});

/** The catalog entries; an entry's id is its key. */
const ENTRIES: Record<FunctionId, Omit<FunctionSpec, 'id'>> = {
  popularity: {
    description:
      'Records image launches (EC2 running, ECS task running, Image Launched) as decayed popularity',
    patterns: [
      {
        id: 'Ec2Running',
        batched: true,
        pattern: instanceState('running'),
      },
      {
        id: 'EcsTaskRunning',
        batched: true,
        pattern: {
          source: ['aws.ecs'],
          'detail-type': [ECS_TASK_STATE],
          detail: { lastStatus: ['RUNNING'] },
        },
      },
      { id: 'ImageLaunched', pattern: request('Image Launched') },
    ],
    publishes: ['Popularity Changed'],
    tables: ['popularity', 'ec2Budget', 'idempotency'],
    // Counting may lag: a window of 10 s gathers a busy account's launches into one describe.
    batch: { size: 1_000, windowSeconds: 10, maxConcurrency: 2 },
    timeoutSeconds: 30,
    memoryMb: 512,
  },
  imageCache: {
    description: 'Plans and applies warm images per host group: pins, warm/evict over SSM, host join/leave',
    patterns: [
      { id: 'Operator', pattern: request('Pin Image', 'Unpin Image', 'Plan Cache') },
      { id: 'Facts', pattern: fact('Popularity Changed', 'Plan Cache') },
      {
        id: 'CommandStatus',
        pattern: {
          source: ['aws.ssm'],
          'detail-type': [SSM_COMMAND_STATUS],
          detail: { 'document-name': [{ prefix: `${DOCUMENT_PREFIX}Image` }] },
        },
      },
      {
        id: 'HostState',
        batched: true,
        pattern: instanceState('running', 'stopped', 'terminated'),
      },
    ],
    adminRequests: ['Register Image'],
    publishes: ['Image Warmed', 'Image Evicted', 'Image Warm Failed'],
    schedule: 'rate(5 minutes)',
    tables: ['imageCache', 'popularity', 'ec2Budget', 'idempotency'],
    batch: { size: 1_000, windowSeconds: 10, maxConcurrency: 2 },
    timeoutSeconds: 120,
    memoryMb: 512,
  },
  fastRestore: {
    description: 'Keeps fast snapshot restore on for the AMIs launched most per AZ, within a budget',
    patterns: [
      { id: 'FsrState', pattern: { source: ['aws.ec2'], 'detail-type': [FSR_STATE_CHANGE] } },
      { id: 'Operator', pattern: request('Plan Fast Restore') },
    ],
    publishes: ['Fast Restore Changed'],
    schedule: 'rate(15 minutes)',
    tables: ['imageCache', 'popularity', 'ec2Budget', 'idempotency'],
    timeoutSeconds: 120,
    memoryMb: 256,
  },
  placement: {
    description: 'Advises which warm hosts to place instances on, spread across hosts and AZs',
    patterns: [{ id: 'Operator', pattern: request('Advise Placement') }],
    publishes: ['Placement Advised', 'Plan Cache'],
    synchronous: true,
    tables: ['imageCache', 'idempotency'],
    timeoutSeconds: 10,
    memoryMb: 512,
  },
  pools: {
    description: 'Defines, fills, initializes, sizes and retires prestarted pools',
    patterns: [
      { id: 'Operator', pattern: request('Reconcile Pools') },
      { id: 'Facts', pattern: fact('Server Claimed') },
      {
        id: 'MemberState',
        batched: true,
        pattern: instanceState('running', 'stopped', 'terminated', 'shutting-down'),
      },
      {
        id: 'InitStatus',
        pattern: {
          source: ['aws.ssm'],
          'detail-type': [SSM_COMMAND_STATUS],
          detail: { 'document-name': [{ prefix: `${DOCUMENT_PREFIX}Pool` }] },
        },
      },
    ],
    adminRequests: ['Define Pool', 'Drain Pool'],
    publishes: ['Request Server', 'Server Request Failed'],
    schedule: 'rate(2 minutes)',
    tables: ['pools', 'popularity', 'ec2Budget', 'idempotency'],
    // A member's state drives its initialization; 2 s keeps a refill prompt.
    batch: { size: 500, windowSeconds: 2, maxConcurrency: 2 },
    timeoutSeconds: 120,
    memoryMb: 512,
  },
  claim: {
    description: 'Hands out a prestarted server: claim, resize, re-own, start, personalize',
    patterns: [
      { id: 'Operator', pattern: request('Request Server') },
      // A claim the pools function resumes after its saga was interrupted.
      { id: 'Facts', pattern: fact('Request Server') },
    ],
    publishes: ['Server Ready', 'Server Claimed', 'Server Request Failed'],
    synchronous: true,
    tables: ['pools', 'popularity', 'ec2Budget', 'idempotency'],
    timeoutSeconds: 600,
    memoryMb: 512,
  },
  shelving: {
    description: 'Shelves instances keeping their volumes, offloads them, and unshelves them fast',
    patterns: [
      {
        id: 'Operator',
        pattern: request('Shelve Instances', 'Offload Instances', 'Unshelve Instances'),
      },
      {
        id: 'InstanceState',
        batched: true,
        pattern: instanceState('running', 'stopped', 'terminated'),
      },
    ],
    adminRequests: ['Delete Shelved Record'],
    publishes: ['Instance Shelved', 'Instance Offloaded', 'Instance Unshelved', 'Shelve Failed'],
    schedule: 'rate(1 minute)',
    tables: ['shelves', 'ec2Budget', 'idempotency'],
    optionalTables: ['pools'],
    // A replacement's state drives the next step of an unshelve: a short window keeps it fast.
    batch: { size: 500, windowSeconds: 1, maxConcurrency: 2 },
    timeoutSeconds: 180,
    memoryMb: 1024,
  },
};

const withId = (id: FunctionId): [FunctionId, FunctionSpec] => [id, { id, ...ENTRIES[id] }];

/** Every function's spec, by id. */
export const FUNCTIONS = Object.fromEntries(FUNCTION_IDS.map(withId)) as Record<FunctionId, FunctionSpec>;

/** Which bus a rule with this pattern sits on. */
export type BusKind = 'default' | 'requests' | 'facts';

/**
 * The bus a catalog pattern's rule belongs on, from its sources: AWS services deliver only to the
 * account's default bus (EventBridge API reference, EventBus: "Your account's default event bus
 * receives events from AWS services"), operator requests arrive on the request bus and facts on
 * the facts bus. A pattern mixing them would need two rules, so it is refused.
 */
export const patternBus = (pattern: EventPattern): BusKind => {
  const sources = Array.isArray(pattern.source)
    ? pattern.source.map((value) =>
        typeof value === 'object' && value !== null && 'prefix' in value ? `${value.prefix}*` : String(value),
      )
    : [];
  if (sources.length > 0 && sources.every((source) => source.startsWith('aws.'))) return 'default';
  if (
    sources.length > 0 &&
    sources.every((source) => source === WARMBOOT || source === `${TENANT_SOURCE_PREFIX}*`)
  )
    return 'requests';
  if (sources.length > 0 && sources.every((source) => source === WARMBOOT_FACT)) return 'facts';
  throw new Error(`event pattern ${JSON.stringify(pattern)} mixes sources of different buses`);
};

/**
 * A catalog pattern as it is deployed in `account`: it also matches only events of that account,
 * so an event another account forwards onto one of the buses never reaches a function (security
 * review C1/M5; the handlers check it again, functions/shared/envelope.ts).
 */
export const deployedPattern = (pattern: EventPattern, account: string): EventPattern => ({
  ...pattern,
  account: [account],
});

/** The detail-types operators may send a function (its request-bus rules); sorted. */
export const requestTypesOf = (spec: FunctionSpec): string[] =>
  [
    ...new Set(
      spec.patterns
        .filter(({ pattern }) => patternBus(pattern) === 'requests')
        .flatMap(({ pattern }) => (Array.isArray(pattern['detail-type']) ? pattern['detail-type'] : []))
        .map(String),
    ),
  ].sort();

/**
 * Requests that change what warmboot may do or delete data (define or drain a pool, register an
 * image, delete retained data): never events (issue 15). Only an administrator's IAM-authenticated
 * invoke carries them; the shared chain refuses them from anyone else (functions/shared/event-registry.ts).
 */
export const ADMIN_REQUEST_TYPES: ReadonlySet<string> = new Set(
  Object.values(FUNCTIONS).flatMap((spec) => spec.adminRequests ?? []),
);

/** The function that serves an administrative request, if `detailType` is one. */
export const adminRequestFunction = (detailType: string): FunctionId | undefined =>
  FUNCTION_IDS.find((id) => FUNCTIONS[id].adminRequests?.includes(detailType));

/** Every operator request type warmboot serves over the bus (what `operators[].requests` may name); sorted. */
export const REQUEST_TYPES: readonly string[] = [
  ...new Set(Object.values(FUNCTIONS).flatMap(requestTypesOf)),
].sort();
