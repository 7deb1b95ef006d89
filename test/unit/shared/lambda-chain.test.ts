import { IdempotencyAlreadyInProgressError } from '@aws-lambda-powertools/idempotency';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import type { Context } from 'aws-lambda';
import { beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createAwsClients } from '../../../functions/shared/aws-clients';
import { systemClock } from '../../../functions/shared/clock';
import { EventRegistry, route } from '../../../functions/shared/event-registry';
import { createLambdaHandler } from '../../../functions/shared/lambda';
import type { Runtime } from '../../../functions/shared/runtime';
import { attachSimulator } from '../../../local/sdk-bridge';
import { awsSampleEvent } from '../../support/events';

const FUNCTION_ARN = 'arn:aws:lambda:us-east-1:123456789012:function:warmboot-test';
const contextOf = (invokedFunctionArn: string) =>
  ({
    functionName: 'warmboot-test',
    invokedFunctionArn,
    awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e812345678',
    getRemainingTimeInMillis: () => 30_000,
  }) as unknown as Context;
/** The console or `aws lambda invoke`: the unqualified function. */
const context = contextOf(FUNCTION_ARN);
/** An EventBridge rule: through the rule alias. */
const ruleContext = contextOf(`${FUNCTION_ARN}:rules`);

const operatorEvent = (detail: unknown) => ({
  version: '0',
  id: '9f1d6b2e-1c3a-4a53-9d5e-0a0f4c2b7e11',
  'detail-type': 'Pin Image',
  source: 'warmboot',
  account: '123456789012',
  time: '2026-01-05T08:00:00Z',
  region: 'us-east-1',
  resources: [],
  detail,
});

/** A runtime whose only AWS answer is EventBridge taking every PutEvents entry into `published`. */
const publishingRuntime = <Entry>(published: Entry[]): Runtime => {
  const clients = createAwsClients({
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    endpoints: { ec2: 'http://127.0.0.1:9', ssm: 'http://127.0.0.1:9', events: 'http://127.0.0.1:9' },
  });
  attachSimulator(clients.events, async (operation, input) => {
    if (operation === 'PutEvents') published.push(...(input.Entries as Entry[]));
    return { FailedEntryCount: 0, Entries: [] };
  });
  return {
    functionName: 'warmboot-test',
    clock: systemClock,
    random: () => 0.5,
    clients,
    logger: new Logger({ serviceName: 'test', logLevel: 'SILENT' }),
    metrics: new Metrics({ namespace: 'Test', serviceName: 'test' }),
    tracer: new Tracer({ serviceName: 'test', enabled: false }),
    env: { FACTS_BUS_NAME: 'warmboot-facts' },
  };
};

describe('the shared Lambda chain', () => {
  let published: Record<string, unknown>[];
  let runtime: Runtime;

  beforeEach(() => {
    published = [];
    runtime = publishingRuntime(published);
  });

  const pinned: string[] = [];
  const registry = new EventRegistry([
    route('warmboot', 'Pin Image', z.object({ image: z.string().regex(/^[a-z0-9:.-]+$/) }), async (event) => {
      pinned.push(event.detail.image);
      return { pinned: event.detail.image };
    }),
  ]);

  it('dispatches a registered event to its handler with the parsed detail', async () => {
    const handler = createLambdaHandler(registry, runtime, { idempotent: false });

    const outcome = await handler(operatorEvent({ image: 'nginx:1.27' }), context);

    expect(outcome).toEqual({
      status: 'handled',
      source: 'warmboot',
      detailType: 'Pin Image',
      result: { pinned: 'nginx:1.27' },
    });
  });

  it('rejects a malformed operator event naming the field and reports it back as a fact', async () => {
    const handler = createLambdaHandler(registry, runtime, { idempotent: false });

    const outcome = await handler(operatorEvent({ image: 'nginx;reboot' }), context);

    expect(outcome).toMatchObject({
      status: 'rejected',
      error: { code: 'ValidationError', field: 'detail.image' },
    });
    expect(published).toHaveLength(1);
    expect(published[0]).toMatchObject({
      EventBusName: 'warmboot-facts',
      Source: 'warmboot.fact',
      DetailType: 'Request Rejected',
    });
    expect(JSON.parse(String(published[0]?.Detail))).toMatchObject({
      requestId: '9f1d6b2e-1c3a-4a53-9d5e-0a0f4c2b7e11',
      requestType: 'Pin Image',
      error: { field: 'detail.image' },
    });
  });

  it('treats an event a rule delivers that nobody registered as a logged no-op', async () => {
    const handler = createLambdaHandler(registry, runtime, { idempotent: false });

    const outcome = await handler({ ...operatorEvent({}), 'detail-type': 'Something Else' }, ruleContext);

    expect(outcome).toEqual({ status: 'ignored', reason: 'no handler for warmboot / Something Else' });
    expect(published).toHaveLength(0);
  });

  it('rejects something that is not an EventBridge event, naming the envelope field', async () => {
    const handler = createLambdaHandler(registry, runtime, { idempotent: false });

    const outcome = await handler({ hello: 'world' }, context);

    expect(outcome).toMatchObject({
      status: 'rejected',
      error: { code: 'ValidationError', field: 'version' },
    });
  });
});

/**
 * Security review M5: the envelope decides before anything else runs. A foreign account or Region
 * is refused whatever the route; a direct invoke carries only this function's operator requests.
 */
describe('the envelope check of the shared chain', () => {
  let published: unknown[];
  let handled: string[];
  let handler: ReturnType<typeof createLambdaHandler>;

  beforeEach(() => {
    published = [];
    handled = [];
    const registry = new EventRegistry([
      route('warmboot', 'Pin Image', z.object({ image: z.string() }), async (event) => {
        handled.push(`request ${event.detail.image}`);
        return 'pinned';
      }),
      route('warmboot.fact', 'Popularity Changed', z.looseObject({}), async () => {
        handled.push('fact');
        return 'planned';
      }),
      route('aws.ec2', 'EC2 Instance State-change Notification', z.looseObject({}), async () => {
        handled.push('aws.ec2');
        return 'seen';
      }),
    ]);
    handler = createLambdaHandler(registry, publishingRuntime(published), { idempotent: false });
  });

  const event = (overrides: Record<string, unknown>) => ({
    ...operatorEvent({ image: 'nginx:1.27' }),
    ...overrides,
  });
  const ec2Event = event({
    source: 'aws.ec2',
    'detail-type': 'EC2 Instance State-change Notification',
    detail: {},
  });
  const factEvent = event({ source: 'warmboot.fact', 'detail-type': 'Popularity Changed', detail: {} });

  it('serves an operator request by direct invoke (the console test event)', async () => {
    expect(await handler(event({}), context)).toMatchObject({ status: 'handled', result: 'pinned' });
    expect(handled).toEqual(['request nginx:1.27']);
  });

  it('serves AWS events, facts and requests delivered through the rule alias', async () => {
    for (const delivered of [ec2Event, factEvent, event({})]) {
      expect(await handler(delivered, ruleContext)).toMatchObject({ status: 'handled' });
    }
    expect(handled).toEqual(['aws.ec2', 'fact', 'request nginx:1.27']);
  });

  it.each([
    ['an aws.* event', ec2Event, 'source'],
    ['a fact', factEvent, 'source'],
    [
      'a request this function does not serve',
      event({ 'detail-type': 'Delete Shelved Record' }),
      'detail-type',
    ],
    ['a schedule', event({ source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} }), 'source'],
  ])('refuses %s passed by a direct invoke, naming the field', async (_name, refused, field) => {
    const outcome = await handler(refused, context);

    expect(outcome).toMatchObject({ status: 'rejected', error: { code: 'EnvelopeRefused', field } });
    expect(handled).toEqual([]);
    expect(published).toEqual([]);
  });

  it.each([
    ['account', { account: '210987654321' }],
    ['region', { region: 'eu-west-1' }],
  ])('refuses an event of another %s, even through the rule alias', async (field, overrides) => {
    for (const refused of [event(overrides), { ...ec2Event, ...overrides }]) {
      for (const invocation of [context, ruleContext]) {
        const outcome = await handler(refused, invocation);
        expect(outcome).toMatchObject({ status: 'rejected', error: { code: 'EnvelopeRefused', field } });
      }
    }
    expect(handled).toEqual([]);
    // A caller that may not send the event does not make warmboot publish either.
    expect(published).toEqual([]);
  });

  it('refuses everything when the invocation cannot be placed (no function ARN)', async () => {
    const outcome = await handler(event({}), contextOf('not-an-arn'));

    expect(outcome).toMatchObject({ error: { field: 'context.invokedFunctionArn' } });
    expect(handled).toEqual([]);
  });
});

describe('a batch from the event queue (EventBridge → SQS → Lambda)', () => {
  type QueueBatch = { Records: ({ messageId: string; body: string } & Record<string, unknown>)[] };
  const sampleBatch = awsSampleEvent<QueueBatch>('sqs-message-batch.json');
  const stateChange = awsSampleEvent<Record<string, unknown>>('ec2-instance-state-change.json');
  const [recordShape] = sampleBatch.Records;
  /** One message per event, as the event queue's rule writes them (the body is the event's JSON). */
  const batchOf = (...bodies: (Record<string, unknown> | string)[]): QueueBatch => ({
    Records: bodies.map((body, index) => ({
      ...recordShape,
      messageId: `message-${index}`,
      body: typeof body === 'string' ? body : JSON.stringify(body),
    })) as QueueBatch['Records'],
  });
  const change = (
    instanceId: string,
    state: string,
    id: string,
    overrides: Record<string, unknown> = {},
  ) => ({
    // The published sample leaves out the envelope's `version`, which every delivered event has.
    version: '0',
    ...stateChange,
    id,
    resources: [`arn:aws:ec2:us-east-1:123456789012:instance/${instanceId}`],
    detail: { 'instance-id': instanceId, state },
    ...overrides,
  });

  let handled: string[];
  let prepared: string[][];
  let failing: Set<string>;
  let handler: ReturnType<typeof createLambdaHandler>;

  beforeEach(() => {
    handled = [];
    prepared = [];
    failing = new Set();
    const registry = new EventRegistry([
      route(
        'aws.ec2',
        'EC2 Instance State-change Notification',
        z.object({ 'instance-id': z.string().regex(/^i-[0-9a-f]+$/), state: z.string() }),
        async (event) => {
          if (failing.has(event.id)) throw new Error('RequestLimitExceeded');
          handled.push(`${event.detail['instance-id']} ${event.detail.state}`);
          return 'seen';
        },
        { prepare: async (events) => void prepared.push(events.map(({ detail }) => detail['instance-id'])) },
      ),
    ]);
    handler = createLambdaHandler(registry, publishingRuntime([]), { idempotent: false });
  });

  it('handles every message, looking the batch up once first, and names no failure', async () => {
    const outcome = await handler(
      batchOf(change('i-0000000000000000a', 'running', 'e1'), change('i-0000000000000000b', 'running', 'e2')),
      ruleContext,
    );

    expect(outcome).toEqual({ batchItemFailures: [] });
    expect(prepared).toEqual([['i-0000000000000000a', 'i-0000000000000000b']]);
    expect(handled.sort()).toEqual(['i-0000000000000000a running', 'i-0000000000000000b running']);
  });

  it('returns a failed message and the later events of its instance, and handles the other instances', async () => {
    failing.add('e1');
    const outcome = await handler(
      batchOf(
        change('i-0000000000000000a', 'stopped', 'e1'),
        change('i-0000000000000000b', 'running', 'e2'),
        change('i-0000000000000000a', 'running', 'e3'),
      ),
      ruleContext,
    );

    expect(outcome).toEqual({
      batchItemFailures: [{ itemIdentifier: 'message-0' }, { itemIdentifier: 'message-2' }],
    });
    expect(handled).toEqual(['i-0000000000000000b running']);
  });

  it("keeps the order of one instance's events within the batch", async () => {
    await handler(
      batchOf(
        change('i-0000000000000000a', 'stopped', 'e1'),
        change('i-0000000000000000a', 'pending', 'e2'),
        change('i-0000000000000000a', 'running', 'e3'),
      ),
      ruleContext,
    );

    expect(handled).toEqual([
      'i-0000000000000000a stopped',
      'i-0000000000000000a pending',
      'i-0000000000000000a running',
    ]);
  });

  it('drops a body that is not JSON, and rejects a malformed event, without returning either to the queue', async () => {
    const outcome = await handler(
      batchOf(
        'Test message.',
        change('i-$(reboot)', 'running', 'e1'),
        change('i-0000000000000000b', 'running', 'e2'),
      ),
      ruleContext,
    );

    expect(outcome).toEqual({ batchItemFailures: [] });
    expect(handled).toEqual(['i-0000000000000000b running']);
  });

  it('refuses an event of another account inside the batch alone, and leaves it out of the lookup', async () => {
    const outcome = await handler(
      batchOf(
        change('i-0000000000000000a', 'running', 'e1', { account: '210987654321' }),
        change('i-0000000000000000b', 'running', 'e2'),
      ),
      ruleContext,
    );

    expect(outcome).toEqual({ batchItemFailures: [] });
    expect(prepared).toEqual([['i-0000000000000000b']]);
    expect(handled).toEqual(['i-0000000000000000b running']);
  });

  it("refuses a whole batch passed by a direct invoke: only the rule alias's event source mapping sends one", async () => {
    const outcome = await handler(batchOf(change('i-0000000000000000a', 'running', 'e1')), context);

    expect(outcome).toMatchObject({
      status: 'rejected',
      error: { code: 'EnvelopeRefused', field: 'context.invokedFunctionArn' },
    });
    expect(handled).toEqual([]);
  });
});

describe('an event re-sent while its first attempt is still in progress', () => {
  /** DynamoDB answers the idempotency PutItem as it does for a record another attempt holds. */
  const inProgressRuntime = (): Runtime => {
    const runtime = publishingRuntime([]);
    attachSimulator(runtime.clients.dynamodb, async (operation) => {
      if (operation !== 'PutItem') throw new Error(`unexpected ${operation}`);
      throw new ConditionalCheckFailedException({
        message: 'The conditional request failed',
        $metadata: {},
        Item: {
          id: { S: 'warmboot-test#earlier' },
          status: { S: 'INPROGRESS' },
          expiration: { N: String(Math.floor(Date.now() / 1000) + 3600) },
          in_progress_expiration: { N: String(Date.now() + 60_000) },
        },
      });
    });
    return { ...runtime, idempotencyTable: 'warmboot-idempotency' };
  };
  const registry = new EventRegistry([
    route('warmboot', 'Pin Image', z.object({ image: z.string() }), async () => 'pinned'),
  ]);

  it('tells a caller waiting for the answer to send it again later, instead of crashing', async () => {
    const handler = createLambdaHandler(registry, inProgressRuntime());

    expect(await handler(operatorEvent({ image: 'nginx:1.27' }), context)).toMatchObject({
      status: 'rejected',
      error: { code: 'RequestInProgress', message: expect.stringContaining('send it again') },
    });
  });

  it('still fails a rule delivery, which Lambda retries later', async () => {
    const handler = createLambdaHandler(registry, inProgressRuntime());

    await expect(handler(operatorEvent({ image: 'nginx:1.27' }), ruleContext)).rejects.toThrow(
      IdempotencyAlreadyInProgressError,
    );
  });
});
