import * as fs from 'node:fs';
import * as path from 'node:path';
import { RemovalPolicy } from 'aws-cdk-lib';
import * as eventschemas from 'aws-cdk-lib/aws-eventschemas';
import { Construct } from 'constructs';
import { SCHEDULED_EVENT } from '../functions/catalog';
import { matchesPattern } from '../functions/shared/event-pattern';
import type { WarmbootFunction } from './function';

/** The registry the Lambda console keeps shareable test events in (one schema per function). */
export const TEST_EVENT_REGISTRY = 'lambda-testevent-schemas';

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

/** The samples a function receives: those its rules (or its schedule) would deliver to it. */
export const samplesFor = (fn: WarmbootFunction, samples: readonly SampleEvent[]): SampleEvent[] =>
  samples.filter(
    ({ event }) =>
      fn.spec.patterns.some(({ pattern }) => matchesPattern(event, pattern)) ||
      (fn.spec.schedule !== undefined &&
        event.source === 'aws.events' &&
        event['detail-type'] === SCHEDULED_EVENT),
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
   * `create-registry` creates `lambda-testevent-schemas` (retained on stack deletion, since the
   * console keeps other functions' events in it too); `existing-registry` uses one that is already
   * there (the console creates it the first time anyone saves a shareable event in the Region).
   */
  readonly registry: 'create-registry' | 'existing-registry';
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
    let registryName = TEST_EVENT_REGISTRY;
    if (props.registry === 'create-registry') {
      const registry = new eventschemas.CfnRegistry(this, 'Registry', {
        registryName: TEST_EVENT_REGISTRY,
        description: 'Lambda console shareable test events',
      });
      registry.applyRemovalPolicy(RemovalPolicy.RETAIN);
      registryName = registry.attrRegistryName;
    }
    const schemas: eventschemas.CfnSchema[] = [];
    for (const fn of props.functions) {
      const mine = samplesFor(fn, samples);
      if (mine.length === 0) continue;
      const schema = new eventschemas.CfnSchema(this, fn.node.id, {
        registryName,
        schemaName: `_${fn.function.functionName}-schema`,
        type: 'OpenApi3',
        description: `Shareable test events of warmboot ${fn.spec.id}`,
        content: JSON.stringify(testEventSchemaContent(mine)),
      });
      schemas.push(schema);
    }
    this.schemas = schemas;
  }
}
