import * as fs from 'node:fs';
import * as path from 'node:path';
import { Aws, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as eventschemas from 'aws-cdk-lib/aws-eventschemas';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { AwsCustomResource, AwsCustomResourcePolicy, PhysicalResourceId } from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { SCHEDULED_EVENT, WARMBOOT } from '../functions/catalog';
import { matchesPattern } from '../functions/shared/event-pattern';
import type { WarmbootFunction } from './function';

/** The registry the Lambda console keeps shareable test events in (one schema per function). */
export const TEST_EVENT_REGISTRY = 'lambda-testevent-schemas';

/** Construct id of the provider function CDK creates once per stack for every AwsCustomResource. */
const AWS_CUSTOM_RESOURCE_PROVIDER_ID = 'AWS679f53fac002430cb0da5b7982bd2287';

/** The Lambda console lists at most this many characters of an event name. */
const EVENT_NAME_MAX = 25;

export interface SampleEvent {
  /** Path relative to the events directory, e.g. `pools/request-server.json`. */
  readonly file: string;
  readonly event: Record<string, unknown>;
}

/** Every `*.json` under `directory`, recursively, in a stable order. */
export const readSampleEvents = (directory: string): SampleEvent[] => {
  if (!fs.existsSync(directory)) return [];
  const files = (fs.readdirSync(directory, { recursive: true }) as string[])
    .filter((file) => file.endsWith('.json'))
    .sort();
  return files.map((file) => {
    const text = fs.readFileSync(path.join(directory, file), 'utf8');
    let event: unknown;
    try {
      event = JSON.parse(text);
    } catch (error) {
      throw new Error(`events/${file}: not valid JSON`, { cause: error });
    }
    if (typeof event !== 'object' || event === null || Array.isArray(event)) {
      throw new Error(`events/${file}: expected an EventBridge event object`);
    }
    return { file, event: event as Record<string, unknown> };
  });
};

/**
 * The samples a function receives: those its rules (or its schedule) would deliver to it, and its
 * administrative requests, which arrive only by a direct invoke such as the console's test event.
 */
export const samplesFor = (fn: WarmbootFunction, samples: readonly SampleEvent[]): SampleEvent[] =>
  samples.filter(
    ({ event }) =>
      fn.spec.patterns.some(({ pattern }) => matchesPattern(event, pattern)) ||
      (fn.spec.schedule !== undefined &&
        event.source === 'aws.events' &&
        event['detail-type'] === SCHEDULED_EVENT) ||
      (event.source === WARMBOOT && (fn.spec.adminRequests ?? []).includes(String(event['detail-type']))),
  );

/** `image-cache/pin-image.json` → `pin-image`; unique within one function, ≤ 25 characters. */
const exampleNames = (samples: readonly SampleEvent[]): string[] => {
  const used = new Set<string>();
  return samples.map(({ file }) => {
    const base = path
      .basename(file, '.json')
      .replace(/[^A-Za-z0-9_-]/g, '-')
      .slice(0, EVENT_NAME_MAX);
    let name = base;
    for (let n = 2; used.has(name); n++)
      name = `${base.slice(0, EVENT_NAME_MAX - String(n).length - 1)}-${n}`;
    used.add(name);
    return name;
  });
};

/** An EventBridge event envelope, the shape of every sample. */
const EVENT_SCHEMA = {
  type: 'object',
  required: ['version', 'id', 'detail-type', 'source', 'account', 'time', 'region', 'resources', 'detail'],
  properties: {
    version: { type: 'string' },
    id: { type: 'string' },
    'detail-type': { type: 'string' },
    source: { type: 'string' },
    account: { type: 'string' },
    time: { type: 'string', format: 'date-time' },
    region: { type: 'string' },
    resources: { type: 'array', items: { type: 'string' } },
    detail: { type: 'object' },
  },
};

/**
 * The OpenAPI 3 document the Lambda console reads: `components.examples.<name>.value` is one
 * shareable test event (the layout `sam remote test-event` writes too).
 */
export const testEventSchemaContent = (samples: readonly SampleEvent[]): Record<string, unknown> => {
  const names = exampleNames(samples);
  return {
    openapi: '3.0.0',
    info: { version: '1.0.0', title: 'Event' },
    paths: {},
    components: {
      schemas: { Event: EVENT_SCHEMA },
      examples: Object.fromEntries(samples.map((sample, index) => [names[index], { value: sample.event }])),
    },
  };
};

export interface ShareableTestEventsProps {
  /** Functions whose matching samples are registered. */
  readonly functions: readonly WarmbootFunction[];
  /**
   * `ensure-registry` creates `lambda-testevent-schemas` only if the account and Region do not have
   * it yet, and never deletes it (the console keeps other functions' events in it too);
   * `existing-registry` uses one that is already there (the console creates it the first time
   * anyone saves a shareable event in the Region).
   */
  readonly registry: 'ensure-registry' | 'existing-registry';
  /** Where the samples live. */
  readonly eventsDirectory: string;
}

/**
 * Registers every sample event of `events/` as a Lambda console shareable test event of each
 * function that would receive it: one `AWS::EventSchemas::Schema` named `_<function name>-schema`
 * in the `lambda-testevent-schemas` registry.
 */
export class ShareableTestEvents extends Construct {
  readonly schemas: readonly eventschemas.CfnSchema[];

  constructor(scope: Construct, id: string, props: ShareableTestEventsProps) {
    super(scope, id);
    const samples = readSampleEvents(props.eventsDirectory);
    const ensured = props.registry === 'ensure-registry' ? this.ensureRegistry() : undefined;
    const schemas: eventschemas.CfnSchema[] = [];
    for (const fn of props.functions) {
      // Each function refuses an event of another account or Region (functions/shared/envelope.ts),
      // so the registered events carry the deployment's own, resolved by CloudFormation.
      const mine = samplesFor(fn, samples).map((sample) => ({
        ...sample,
        event: { ...sample.event, account: Aws.ACCOUNT_ID, region: Aws.REGION },
      }));
      if (mine.length === 0) continue;
      const schema = new eventschemas.CfnSchema(this, fn.node.id, {
        registryName: TEST_EVENT_REGISTRY,
        schemaName: `_${fn.function.functionName}-schema`,
        type: 'OpenApi3',
        description: `Shareable test events of warmboot ${fn.spec.id}`,
        content: Stack.of(this).toJsonString(testEventSchemaContent(mine)),
      });
      if (ensured) schema.node.addDependency(ensured);
      schemas.push(schema);
    }
    this.schemas = schemas;
  }

  /**
   * The registry has a fixed, account-wide name, so a stack that declares it as a resource fails
   * to deploy wherever anyone has ever saved a shareable test event (CloudFormation: already
   * exists), and a retained copy from a failed first deploy breaks the retry the same way. So it
   * is created by an SDK call that treats `ConflictException` (it exists) as success, and nothing
   * deletes it: other functions' test events may live in it.
   */
  private ensureRegistry(): AwsCustomResource {
    const stack = Stack.of(this);
    const registryArn = stack.formatArn({
      service: 'schemas',
      resource: 'registry',
      resourceName: TEST_EVENT_REGISTRY,
    });
    // Its own role and log group, so it needs no AWS managed policy and writes only its own logs.
    const logGroup = new logs.LogGroup(this, 'EnsureRegistryLogs', {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const role = new iam.Role(this, 'EnsureRegistryRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'Creates the lambda-testevent-schemas registry at deploy time if it is missing',
    });
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [logGroup.logGroupArn],
      }),
    );
    const ensure = new AwsCustomResource(this, 'EnsureRegistry', {
      onCreate: {
        service: 'Schemas',
        action: 'CreateRegistry',
        parameters: {
          RegistryName: TEST_EVENT_REGISTRY,
          Description: 'Lambda console shareable test events',
        },
        physicalResourceId: PhysicalResourceId.of(TEST_EVENT_REGISTRY),
        ignoreErrorCodesMatching: 'ConflictException',
      },
      policy: AwsCustomResourcePolicy.fromSdkCalls({ resources: [registryArn] }),
      role,
      logGroup,
      installLatestAwsSdk: false,
    });
    // The provider function CDK shares across AwsCustomResources of the stack (a fixed id).
    const provider = stack.node.tryFindChild(AWS_CUSTOM_RESOURCE_PROVIDER_ID);
    if (provider) {
      Validations.of(provider).acknowledge({
        id: 'AwsSolutions-L1',
        reason: "the runtime of CDK's AwsCustomResource provider is chosen and updated by aws-cdk-lib",
      });
    }
    return ensure;
  }
}
