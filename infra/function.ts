import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Aspects, Duration, type IAspect, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as eventSources from 'aws-cdk-lib/aws-lambda-event-sources';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct, type IConstruct } from 'constructs';
import {
  deployedPattern,
  type FunctionId,
  type FunctionSpec,
  patternBus,
  REQUEST_REJECTED,
  RULE_DELIVERY_ALIAS,
  WARMBOOT_FACT,
} from '../functions/catalog';
import { FACTS_BUS_ENV } from '../functions/shared/adapters/facts';
import type { EventPattern } from '../functions/shared/event-pattern';
import {
  FUNCTION_URL_ALIAS,
  REQUEST_CALLERS_ENV,
  type RequestCallers,
} from '../functions/shared/function-url';
import { TABLES, type TableId, tableEnvVar } from '../functions/shared/tables';
import type { WarmbootBuses } from './buses';
import type { WarmbootData } from './data';
import { LAMBDA_RESOURCE_POLICY_MAX_BYTES, urlPolicyBytes, urlPrincipals } from './request-urls';

/**
 * Repository root (entries live at `<root>/functions/<folder>/index.ts`), or the installed
 * package's root: the package's build is `<root>/dist/index.js`, one folder deep like this file.
 */
export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Whether this module runs as the built package (`dist/index.js`, `npm run build`) rather than
 * from the TypeScript sources (tsx, vitest).
 */
const RUNS_AS_PACKAGE = !fileURLToPath(import.meta.url).endsWith('.ts');

/** Where the package carries each function's bundle: `dist/lambda/<folder>/index.mjs`. */
export const packagedBundleDirectory = (id: FunctionId): string =>
  path.join(PROJECT_ROOT, 'dist', 'lambda', functionFolder(id));

/** Catalog id → folder: `imageCache` → `image-cache`. */
export const functionFolder = (id: FunctionId): string => id.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/**
 * Reserved concurrency for accounts with room for it, as the README recommends; nothing reserves
 * it by default. Lambda keeps at least 100 of the account's concurrency unreserved, so reserving
 * these 102 fails `cdk deploy` in any account whose quota is under 202 — a new account's is often
 * 10 or 50 (Lambda developer guide, "Configuring reserved concurrency"). Correctness never depends
 * on it: the fault suites run every function with unbounded parallel invocations. What it buys is
 * a blast-radius cap, a floor for the synchronous claim and placement paths, and for shelving one
 * invocation at a time (the account budget keeps parallel ones to their share of EC2's buckets).
 */
export const RECOMMENDED_RESERVED_CONCURRENCY: Readonly<Record<FunctionId, number>> = {
  popularity: 50,
  imageCache: 5,
  fastRestore: 1,
  placement: 20,
  pools: 5,
  claim: 20,
  shelving: 1,
};

/** An account root (`arn:aws:iam::<account>:root`): a Lambda permission names the account by its id. */
const ACCOUNT_ROOT = /^arn:[^:]+:iam::(\d{12}):root$/;

/** Lambda rejects environments over 4 KB (sum of keys and values). */
const LAMBDA_ENV_LIMIT_BYTES = 4096;
/** Upper bound for a token (table or bus name) in the estimate: DynamoDB names are ≤ 255 chars. */
const TOKEN_BYTES_ESTIMATE = 255;

/**
 * `readUpdate`: read, plus UpdateItem only (no Put, Delete or BatchWrite) — placement adds to its
 * own advised-weight counters in the image cache's table and must not be able to replace or delete
 * the cache's items; every EC2-calling function reserves on the account budget's buckets.
 */
export type TableAccess = 'read' | 'readUpdate' | 'readWrite';

const TABLE_READ_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:BatchGetItem',
  'dynamodb:Query',
  'dynamodb:ConditionCheckItem',
  'dynamodb:DescribeTable',
];
const TABLE_WRITES: Readonly<Record<TableAccess, readonly string[]>> = {
  read: [],
  readUpdate: ['dynamodb:UpdateItem'],
  readWrite: ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'],
};

export interface WarmbootFunctionProps {
  /** The catalog entry: id, description, event patterns, schedule and tables. */
  readonly spec: FunctionSpec;
  /** The tables; the function gets `<TABLE>_TABLE` for every table its catalog entry lists. */
  readonly data: WarmbootData;
  /**
   * The default, request and facts buses: each rule goes on the bus of its pattern's source
   * (`patternBus`); the function publishes to the facts bus (`FACTS_BUS_NAME`).
   */
  readonly buses: WarmbootBuses;
  /**
   * Settings variables, each serialized as JSON (`POPULARITY_SETTINGS`, `HOST_GROUPS`, …).
   * @default - none
   */
  readonly settings?: Readonly<Record<string, unknown>>;
  /** @default logs.RetentionDays.THREE_MONTHS */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Reserved concurrency; see RECOMMENDED_RESERVED_CONCURRENCY for values and why.
   * @default - none (the function draws on the account's unreserved concurrency)
   */
  readonly reservedConcurrency?: number;
  /** Alarm notifications. @default - alarms without actions (visible on the dashboard) */
  readonly alarmTopic?: sns.ITopic;
}

/**
 * One warmboot Lambda function and everything that exists for it alone: role, log group, the
 * EventBridge rules of its catalog patterns and schedule, its dead-letter queue, its alarms.
 *
 * Permissions are added with `allow(sid, reason, …)`: every statement has a Sid and a reason, and
 * each wildcard the statement needs is acknowledged for cdk-nag with that reason. A wildcard
 * without a reason fails synth.
 */
export class WarmbootFunction extends Construct {
  readonly spec: FunctionSpec;
  readonly function: nodejs.NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  /**
   * One queue for both failure paths; both deliver the original EventBridge event, so one redrive
   * procedure (PutEvents of the body) serves both: EventBridge could not invoke the function
   * (rule target DLQ) or the function failed after its async retries (Lambda DLQ).
   */
  readonly deadLetterQueue: sqs.Queue;
  /**
   * What every rule and schedule invokes: the function through its `rules` alias, so the handler
   * can tell a rule delivery from a direct invoke (functions/shared/envelope.ts).
   */
  readonly ruleAlias: lambda.Alias;
  /**
   * Where the rules of the catalog's `batched` patterns deliver (every EC2 state change of the
   * account): the function reads it in batches through an SQS event source mapping on the rule
   * alias (functions/shared/event-batch.ts). Undefined for a function without such patterns.
   */
  readonly eventQueue?: sqs.Queue;
  readonly rules: readonly events.Rule[];
  readonly alarms: readonly cloudwatch.Alarm[];
  /**
   * The IAM-authenticated entry point for operator and admin requests (`serveRequestsByUrl`): a
   * function URL on the `requests` alias. Undefined for a function that takes no requests.
   */
  requestUrl?: lambda.FunctionUrl;

  private readonly data: WarmbootData;
  private readonly buses: WarmbootBuses;
  private readonly reasons = new Map<string, string>();
  private readonly tableAccess = new Map<TableId, TableAccess>();
  /** The size of the environment as estimated at construction (the 4 KB check). */
  private environmentBytes = 0;

  constructor(scope: Construct, id: string, props: WarmbootFunctionProps) {
    super(scope, id);
    const { spec } = props;
    // Timeout and memory come from the catalog, which the local bus enforces too.
    this.spec = spec;
    this.data = props.data;
    this.buses = props.buses;

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? logs.RetentionDays.THREE_MONTHS,
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `warmboot ${spec.id}: ${spec.description}`.slice(0, 1000),
    });
    // Instead of the AWSLambdaBasicExecutionRole managed policy (Resource "*"): this log group only.
    this.logGroup.grantWrite(this.role);

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetters', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });

    const environment = this.environment(props);
    this.function = new nodejs.NodejsFunction(this, 'Handler', {
      ...handlerCode(spec.id),
      description: spec.description.slice(0, 256),
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: spec.memoryMb,
      timeout: Duration.seconds(spec.timeoutSeconds),
      ...(props.reservedConcurrency !== undefined
        ? { reservedConcurrentExecutions: props.reservedConcurrency }
        : {}),
      role: this.role,
      logGroup: this.logGroup,
      tracing: lambda.Tracing.ACTIVE,
      environment,
      deadLetterQueue: this.deadLetterQueue,
      // Async invocations (every EventBridge delivery): handlers are idempotent per event id.
      retryAttempts: 2,
      maxEventAge: Duration.hours(1),
      // The rule alias points at the version of each deploy; the one it pointed at before is
      // deleted once the alias moved, instead of piling up against the code storage quota.
      currentVersionOptions: { removalPolicy: RemovalPolicy.DESTROY },
    });

    Validations.of(this.function).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        'nodejs22.x is the project runtime: the esbuild target (node22), Powertools 2.x and the locked SDK are ' +
        'tested on it; moving runtimes is a deliberate, tested change, not a side effect of a CDK or cdk-nag bump',
    });
    this.grantTable('idempotency', 'readWrite');
    this.ruleAlias = new lambda.Alias(this, 'RuleAlias', {
      aliasName: RULE_DELIVERY_ALIAS,
      version: this.function.currentVersion,
      description: 'What the EventBridge rules and schedules invoke; a direct invoke uses the function',
      // Async invoke config is per qualifier: the rules' deliveries get the same as the function.
      retryAttempts: 2,
      maxEventAge: Duration.hours(1),
    });
    this.eventQueue = this.createEventQueue(spec);
    this.rules = this.createRules(spec);
    this.alarms = this.createAlarms(props.alarmTopic);

    Aspects.of(this).add(new AcknowledgeJustifiedWildcards(this));
  }

  /**
   * Adds one policy statement. `reason` says why the statement is as wide as it is; it becomes the
   * cdk-nag acknowledgement of every wildcard in the statement.
   */
  allow(sid: string, reason: string, statement: Omit<iam.PolicyStatementProps, 'sid' | 'effect'>): void {
    if (this.reasons.has(sid)) throw new Error(`${this.node.path}: duplicate policy statement id ${sid}`);
    this.reasons.set(sid, reason);
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({ ...statement, sid, effect: iam.Effect.ALLOW }));
  }

  /** Whether a statement with this id was added (capabilities share helpers that add once). */
  hasStatement(sid: string): boolean {
    return this.reasons.has(sid);
  }

  /** Read, or read and write, one table and its GSIs (named, not `index/*`). */
  grantTable(id: TableId, access: TableAccess): void {
    const optional = this.spec.optionalTables?.includes(id) === true;
    if (!this.spec.tables.includes(id) && !optional) {
      throw new Error(`${this.node.path}: table ${id} is not in the catalog entry of ${this.spec.id}`);
    }
    const table = this.data.table(id);
    if (optional) this.function.addEnvironment(tableEnvVar(id), table.tableName);
    const indexes = TABLES[id].indexes.map((index) => `${table.tableArn}/index/${index.name}`);
    this.tableAccess.set(id, access);
    this.allow(`${pascalCase(id)}Table${pascalCase(access)}`, `${id} table`, {
      actions: [...TABLE_READ_ACTIONS, ...TABLE_WRITES[access]],
      resources: [table.tableArn, ...indexes],
    });
  }

  /**
   * PutEvents on the facts bus only, only with source `warmboot.fact` and only the detail-types
   * the catalog says the function publishes (plus `Request Rejected`, the shared chain's answer
   * to an invalid request): the read-only placement role cannot emit `Delete Shelved Record`.
   */
  grantPublish(): void {
    this.allow('PublishWarmbootFacts', 'warmboot facts on the facts bus', {
      actions: ['events:PutEvents'],
      resources: [this.buses.factsBusArn],
      // events:source and events:detail-type are multivalued (Service Authorization Reference:
      // ArrayOfString, one value per entry), and a multivalued key matches only under a set
      // operator (IAM User Guide, "Single-valued vs. multivalued context keys"): plain
      // StringEquals never matches it. Null keeps a request without the key from satisfying
      // ForAllValues vacuously.
      conditions: {
        'ForAllValues:StringEquals': {
          'events:source': [WARMBOOT_FACT],
          'events:detail-type': [...new Set([...this.spec.publishes, REQUEST_REJECTED])].sort(),
        },
        Null: { 'events:source': 'false', 'events:detail-type': 'false' },
      },
    });
  }

  /**
   * The IAM-authenticated entry point (functions/shared/function-url.ts): a function URL with auth
   * type AWS_IAM on a `requests` alias of the deployed version, and a resource policy admitting
   * exactly `callers`' principals. Since October 2025 a new function URL needs both
   * `lambda:InvokeFunctionUrl` and `lambda:InvokeFunction` (Lambda developer guide, "Control access
   * to Lambda function URLs"), so each principal gets two statements: the first only for a URL whose
   * auth type is AWS_IAM (`lambda:FunctionUrlAuthType`), the second only for invocations through a
   * function URL (`lambda:InvokedViaFunctionUrl`), so neither lets anyone invoke the alias directly.
   * The callers also go to the function as REQUEST_CALLERS: within the account, a principal whose
   * own IAM policy allows both actions gets through without the resource policy, and only the
   * function can refuse it.
   */
  serveRequestsByUrl(callers: RequestCallers): void {
    if (this.requestUrl) throw new Error(`${this.node.path}: the request URL exists already`);
    const value = JSON.stringify(callers);
    const bytes = this.environmentBytes + REQUEST_CALLERS_ENV.length + Buffer.byteLength(value);
    if (bytes > LAMBDA_ENV_LIMIT_BYTES) {
      throw new Error(
        `${this.spec.id}: with its ${callers.operators.length} operators and ${callers.admins.length} admins ` +
          `(REQUEST_CALLERS, ${Buffer.byteLength(value)} bytes) the environment is about ${bytes} bytes, over ` +
          "Lambda's 4 KB limit: name fewer operators, tenants or admins (an account root covers a whole account)",
      );
    }
    const principals = urlPrincipals(callers);
    const policyBytes = urlPolicyBytes(principals);
    if (policyBytes > LAMBDA_RESOURCE_POLICY_MAX_BYTES) {
      throw new Error(
        `${this.spec.id}: the function URL's resource policy for ${principals.length} principals would be about ` +
          `${policyBytes} bytes, over Lambda's 20 KB limit: name fewer operators or admins`,
      );
    }
    this.function.addEnvironment(REQUEST_CALLERS_ENV, value);
    this.environmentBytes = bytes;
    const alias = new lambda.Alias(this, 'RequestAlias', {
      aliasName: FUNCTION_URL_ALIAS,
      version: this.function.currentVersion,
      description: 'What the IAM-authenticated function URL invokes (operator and admin requests)',
    });
    this.requestUrl = new lambda.FunctionUrl(this, 'RequestUrl', {
      function: alias,
      authType: lambda.FunctionUrlAuthType.AWS_IAM,
    });
    for (const principal of principals) {
      // Ids from the principal, not its position: reordering the settings changes no resource.
      const id = createHash('sha256').update(principal).digest('hex').slice(0, 12);
      const who = ACCOUNT_ROOT.exec(principal)?.[1] ?? principal;
      alias.addPermission(`InvokeUrl${id}`, {
        principal: /^\d{12}$/.test(who) ? new iam.AccountPrincipal(who) : new iam.ArnPrincipal(who),
        action: 'lambda:InvokeFunctionUrl',
        functionUrlAuthType: lambda.FunctionUrlAuthType.AWS_IAM,
      });
      alias.addPermission(`InvokeViaUrl${id}`, {
        principal: /^\d{12}$/.test(who) ? new iam.AccountPrincipal(who) : new iam.ArnPrincipal(who),
        action: 'lambda:InvokeFunction',
        invokedViaFunctionUrl: true,
      });
    }
  }

  /** Catalog tables the function was never granted: it would fail at its first call. */
  missingTableGrants(): TableId[] {
    return this.spec.tables.filter((id) => !this.tableAccess.has(id));
  }

  /** The reason registered for a statement id (used by the acknowledgement aspect). */
  reasonFor(sid: string | undefined): string | undefined {
    return sid === undefined ? undefined : this.reasons.get(sid);
  }

  private environment(props: WarmbootFunctionProps): Record<string, string> {
    const environment: Record<string, string> = {};
    for (const table of new Set<TableId>([...props.spec.tables, 'idempotency'])) {
      environment[tableEnvVar(table)] = props.data.table(table).tableName;
    }
    environment[FACTS_BUS_ENV] = props.buses.factsBus.eventBusName;
    for (const [name, value] of Object.entries(props.settings ?? {})) {
      environment[name] = JSON.stringify(value);
    }
    const bytes = Object.entries(environment).reduce(
      (sum, [key, value]) =>
        sum + key.length + (Token.isUnresolved(value) ? TOKEN_BYTES_ESTIMATE : Buffer.byteLength(value)),
      0,
    );
    if (bytes > LAMBDA_ENV_LIMIT_BYTES) {
      throw new Error(
        `${props.spec.id}: environment is about ${bytes} bytes, over Lambda's 4 KB limit; ` +
          'shorten the settings (fewer or smaller pools / host groups)',
      );
    }
    this.environmentBytes = bytes;
    return environment;
  }

  /**
   * The firehose path (issue 17): a batched pattern's rule puts its events on this queue, and one
   * invocation takes up to `batch.size` of them. The queue's visibility timeout is six times the
   * function timeout, as the Lambda developer guide asks of a queue a function reads ("Using
   * Lambda with Amazon SQS"); a message that failed five receives moves to the function's
   * dead-letter queue, whose bodies are EventBridge events like the rest (one redrive procedure).
   * Only the listed failures of a batch return (ReportBatchItemFailures); the mapping runs at
   * most `batch.maxConcurrency` batches at once.
   */
  private createEventQueue(spec: FunctionSpec): sqs.Queue | undefined {
    if (!spec.patterns.some(({ batched }) => batched)) return undefined;
    if (!spec.batch)
      throw new Error(`${this.node.path}: ${spec.id} has batched patterns but no batch settings`);
    const queue = new sqs.Queue(this, 'Events', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(6 * spec.timeoutSeconds),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: 5 },
    });
    this.ruleAlias.addEventSource(
      new eventSources.SqsEventSource(queue, {
        batchSize: spec.batch.size,
        maxBatchingWindow: Duration.seconds(spec.batch.windowSeconds),
        maxConcurrency: spec.batch.maxConcurrency,
        reportBatchItemFailures: true,
      }),
    );
    return queue;
  }

  private createRules(spec: FunctionSpec): events.Rule[] {
    const target = () =>
      new targets.LambdaFunction(this.ruleAlias, {
        deadLetterQueue: this.deadLetterQueue,
        retryAttempts: 8,
        maxEventAge: Duration.hours(2),
      });
    const queueTarget = (queue: sqs.Queue) =>
      new targets.SqsQueue(queue, {
        deadLetterQueue: this.deadLetterQueue,
        retryAttempts: 8,
        maxEventAge: Duration.hours(2),
      });
    // AWS services deliver their events only to the account's default bus (EventBridge API
    // reference, EventBus: "Your account's default event bus receives events from AWS services"),
    // so their rules stay there; operator requests are ruled on the request bus and facts on the
    // facts bus. Every pattern also matches only this account's events.
    const account = Stack.of(this).account;
    const rules = spec.patterns.map(
      ({ id, pattern, batched }) =>
        new events.Rule(this, id, {
          eventBus: this.buses.bus(patternBus(pattern)),
          description: `warmboot ${spec.id}: ${id}`,
          eventPattern: toCdkEventPattern(deployedPattern(pattern, account)),
          targets: [batched && this.eventQueue ? queueTarget(this.eventQueue) : target()],
        }),
    );
    if (spec.schedule) {
      // Schedules are level-triggered reconciles; they heal any lost event (docs/invariants.md).
      rules.push(
        new events.Rule(this, 'Schedule', {
          description: `warmboot ${spec.id}: reconcile`,
          schedule: events.Schedule.expression(spec.schedule),
          targets: [target()],
        }),
      );
    }
    return rules;
  }

  private createAlarms(topic: sns.ITopic | undefined): cloudwatch.Alarm[] {
    const deadLetters = new cloudwatch.Alarm(this, 'DeadLettersAlarm', {
      alarmDescription: `warmboot ${this.spec.id}: events in the dead-letter queue (redrive with PutEvents)`,
      metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(1),
        statistic: cloudwatch.Stats.MAXIMUM,
      }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    const errors = new cloudwatch.Alarm(this, 'ErrorsAlarm', {
      alarmDescription: `warmboot ${this.spec.id}: handler errors in two consecutive 5-minute periods`,
      metric: this.function.metricErrors({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 2,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    const alarms = [deadLetters, errors];
    if (this.eventQueue) {
      // The batches fall behind the account's state changes: popularity lags, hosts join late.
      alarms.push(
        new cloudwatch.Alarm(this, 'EventQueueAgeAlarm', {
          alarmDescription: `warmboot ${this.spec.id}: the oldest queued EC2 event is over 5 minutes old`,
          metric: this.eventQueue.metricApproximateAgeOfOldestMessage({
            period: Duration.minutes(1),
            statistic: cloudwatch.Stats.MAXIMUM,
          }),
          threshold: 300,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          evaluationPeriods: 3,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
      );
    }
    if (topic) for (const alarm of alarms) alarm.addAlarmAction(new cloudwatchActions.SnsAction(topic));
    return alarms;
  }
}

/**
 * The function's code. From the sources, NodejsFunction bundles `functions/<folder>/index.ts` with
 * the local esbuild. The package instead carries the bundles its build made exactly that way
 * (infra/build-package.ts): an app that installs it needs neither esbuild nor warmboot's sources,
 * tsconfig and lockfile to synthesize, and deploys the very bundles the package was built with.
 */
export const handlerCode = (
  id: FunctionId,
): Pick<
  nodejs.NodejsFunctionProps,
  'code' | 'entry' | 'handler' | 'projectRoot' | 'depsLockFilePath' | 'bundling'
> => {
  if (!RUNS_AS_PACKAGE) {
    return {
      entry: path.join(PROJECT_ROOT, 'functions', functionFolder(id), 'index.ts'),
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: path.join(PROJECT_ROOT, 'package-lock.json'),
      bundling: localBundling(),
    };
  }
  const directory = packagedBundleDirectory(id);
  if (!fs.existsSync(path.join(directory, 'index.mjs'))) {
    throw new Error(`${directory}/index.mjs is missing: the package was packed without \`npm run build\``);
  }
  return { code: lambda.Code.fromAsset(directory), handler: 'index.handler' };
};

/**
 * esbuild from node_modules, never Docker: NodejsFunction silently falls back to a Docker build
 * when it cannot find esbuild, which would make synth depend on a daemon and a registry.
 */
const localBundling = (): nodejs.BundlingOptions => {
  try {
    createRequire(import.meta.url).resolve('esbuild');
  } catch (error) {
    throw new Error('esbuild is not installed (npm ci): warmboot bundles locally, never in Docker', {
      cause: error,
    });
  }
  return {
    forceDockerBundling: false,
    format: nodejs.OutputFormat.ESM,
    target: 'node22',
    minify: true,
    sourceMap: true,
    sourcesContent: false,
    mainFields: ['module', 'main'],
    // Bundle the pinned AWS SDK too: the code runs with the versions it was tested with.
    externalModules: [],
    // Some bundled CommonJS dependencies call require(); ESM output has none without this.
    banner:
      "import { createRequire as warmbootCreateRequire } from 'node:module'; const require = warmbootCreateRequire(import.meta.url);",
    tsconfig: path.join(PROJECT_ROOT, 'tsconfig.json'),
  };
};

const PATTERN_KEYS: Readonly<Record<string, keyof events.EventPattern>> = {
  version: 'version',
  id: 'id',
  'detail-type': 'detailType',
  source: 'source',
  account: 'account',
  time: 'time',
  region: 'region',
  resources: 'resources',
  detail: 'detail',
};

/**
 * The catalog pattern (EventBridge JSON keys) as the CDK `EventPattern` (camelCase keys), which
 * CDK renders back to exactly the catalog JSON. Tests assert the round trip.
 */
export const toCdkEventPattern = (pattern: EventPattern): events.EventPattern => {
  const converted: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(pattern)) {
    const cdkKey = PATTERN_KEYS[key];
    if (!cdkKey) throw new Error(`event pattern key ${key} has no CDK equivalent`);
    converted[cdkKey] = value;
  }
  return converted as events.EventPattern;
};

const pascalCase = (id: string): string => id.charAt(0).toUpperCase() + id.slice(1);

/**
 * Runs once the construct tree is complete (aspects run before validation plugins): resolves the
 * role's policy, finds every wildcard the way cdk-nag's AwsSolutions-IAM5 reports it, and
 * acknowledges it with the reason of the statement that needs it.
 */
class AcknowledgeJustifiedWildcards implements IAspect {
  constructor(private readonly owner: WarmbootFunction) {}

  visit(node: IConstruct): void {
    if (node !== this.owner) return;
    const policy = this.owner.role.node.tryFindChild('DefaultPolicy') as iam.Policy | undefined;
    if (!policy) return;
    const document = Stack.of(node).resolve(policy.document) as { Statement?: ResolvedStatement[] };
    const findings = new Map<string, Set<string>>();
    for (const statement of document.Statement ?? []) {
      if (statement.Effect !== 'Allow') continue;
      const wildcards = [
        ...asArray(statement.Action)
          .filter((action) => action.includes('*'))
          .map((action) => `Action::${action}`),
        ...asArray(statement.Resource)
          .map(flattenReference)
          .filter((resource) => resource.includes('*'))
          .map((resource) => `Resource::${resource}`),
      ];
      if (wildcards.length === 0) continue;
      const reason = this.owner.reasonFor(statement.Sid) ?? builtInReason(statement);
      if (!reason) {
        throw new Error(
          `${this.owner.node.path}: policy statement ${JSON.stringify(statement)} has a wildcard and no reason`,
        );
      }
      for (const wildcard of wildcards) {
        const reasons = findings.get(wildcard) ?? new Set<string>();
        reasons.add(statement.Sid ? `${statement.Sid}: ${reason}` : reason);
        findings.set(wildcard, reasons);
      }
    }
    for (const [finding, reasons] of findings) {
      Validations.of(this.owner.role).acknowledge({
        id: `AwsSolutions-IAM5[${finding}]`,
        reason: [...reasons].join(' | '),
      });
    }
  }
}

interface ResolvedStatement {
  readonly Sid?: string;
  readonly Effect: string;
  readonly Action: string | string[];
  readonly Resource: unknown;
}

const asArray = <T>(value: T | T[] | undefined): T[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

/** Statements CDK adds on its own (not through `allow`). */
const builtInReason = (statement: ResolvedStatement): string | undefined =>
  asArray(statement.Action).every((action) => action.startsWith('xray:'))
    ? 'Active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions'
    : undefined;

/** The same flattening cdk-nag applies before it names an IAM5 finding (`<Logical.Arn>`). */
const flattenReference = (reference: unknown): string => {
  if (reference === undefined) return '';
  if (typeof reference === 'string') return reference.replace(/\${/g, '<').replace(/}/g, '>');
  const node = reference as Record<string, unknown>;
  if (Array.isArray(node['Fn::Join'])) {
    const [delimiter, items] = node['Fn::Join'] as [string, unknown[]];
    return items.map(flattenReference).join(delimiter);
  }
  if (node['Fn::Sub'] !== undefined) return flattenReference(node['Fn::Sub']);
  if (Array.isArray(node['Fn::GetAtt'])) {
    const [resource, attribute] = node['Fn::GetAtt'] as [unknown, unknown];
    return `<${flattenReference(resource)}.${flattenReference(attribute)}>`;
  }
  if (node['Fn::ImportValue'] !== undefined) return flattenReference(node['Fn::ImportValue']);
  if (node.Ref !== undefined) return `<${flattenReference(node.Ref)}>`;
  return JSON.stringify(reference);
};
