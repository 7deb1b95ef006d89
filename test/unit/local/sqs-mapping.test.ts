import type { Context, SQSEvent } from 'aws-lambda';
import { beforeEach, describe, expect, it } from 'vitest';
import type { EventBatching, FunctionId } from '../../../functions/catalog';
import { VirtualClock } from '../../../local/clock';
import { IdGenerator, seededRandom } from '../../../local/ec2/ids';
import { emptyStats, type FunctionStats, LambdaFunction } from '../../../local/lambda-service';
import { LocalQueue } from '../../../local/sqs';
import {
  MAX_BATCH_PAYLOAD_BYTES,
  type MessageOutcome,
  readBatchAnswer,
  SqsEventSourceMapping,
} from '../../../local/sqs-mapping';
import { awsSampleEvent } from '../../support/events';

const start = Date.UTC(2026, 0, 5, 8, 0, 0);

/** One batch the function received, when, and how it was invoked. */
interface Received {
  readonly at: number;
  readonly event: SQSEvent;
  readonly arn: string;
}

type Handler = (event: SQSEvent, context: Context) => Promise<unknown>;

describe('the SQS event source mapping', () => {
  let clock: VirtualClock;
  let ids: IdGenerator;
  let received: Received[];
  let outcomes: MessageOutcome[];
  let functionStats: FunctionStats;

  beforeEach(() => {
    clock = new VirtualClock(start);
    ids = new IdGenerator(seededRandom(5));
    received = [];
    outcomes = [];
    functionStats = emptyStats();
  });

  /**
   * A function (popularity: timeout 30 s, unless `functionId` says otherwise) behind its event
   * queue (visibility 6 × the timeout, five receives, then the dead-letter queue) and a mapping.
   */
  const deploy = (
    batching: EventBatching,
    handler: Handler = async () => undefined,
    options: { functionId?: FunctionId; timeoutSeconds?: number; reserved?: number } = {},
  ) => {
    const timeoutSeconds = options.timeoutSeconds ?? 30;
    const common = { clock, ids, region: 'us-east-1', accountId: '123456789012' };
    const deadLetterQueue = new LocalQueue({
      ...common,
      name: 'dlq',
      visibilityTimeoutSeconds: 6 * timeoutSeconds,
    });
    const queue = new LocalQueue({
      ...common,
      name: 'warmboot-popularity-events',
      visibilityTimeoutSeconds: 6 * timeoutSeconds,
      redrive: { deadLetterQueue, maxReceiveCount: 5 },
    });
    const lambda = new LambdaFunction({
      functionId: options.functionId ?? 'popularity',
      newEnvironment: () => async (event, context) => {
        received.push({ at: clock.now() - start, event: event as SQSEvent, arn: context.invokedFunctionArn });
        return handler(event as SQSEvent, context);
      },
      clock,
      region: 'us-east-1',
      accountId: '123456789012',
      ids,
      reservedConcurrency: options.reserved,
      stats: functionStats,
    });
    const mapping = new SqsEventSourceMapping({
      clock,
      region: 'us-east-1',
      queue,
      lambda,
      batching,
      functionTimeoutSeconds: timeoutSeconds,
      functionStats,
      onMessage: (outcome) => outcomes.push(outcome),
    });
    return { queue, deadLetterQueue, mapping, lambda };
  };

  const sizes = () => received.map(({ event }) => event.Records.length);
  const bodies = (batch: Received | undefined) => batch?.event.Records.map((record) => record.body) ?? [];

  it('passes records shaped as the Lambda developer guide sample, through the rules alias', async () => {
    const { queue } = deploy({ size: 10, windowSeconds: 0, maxConcurrency: 2 });
    queue.send('{"id":"e-1"}', 'AIDAEVENTBRIDGESERVICE');
    await clock.advanceBy(1_000);

    const sample = awsSampleEvent<SQSEvent>('sqs-message-batch.json').Records[0];
    const record = received[0]?.event.Records[0];
    expect(Object.keys(record ?? {}).sort()).toEqual(Object.keys(sample ?? {}).sort());
    expect(Object.keys(record?.attributes ?? {}).sort()).toEqual(
      Object.keys(sample?.attributes ?? {}).sort(),
    );
    expect(record).toMatchObject({
      body: '{"id":"e-1"}',
      messageAttributes: {},
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:warmboot-popularity-events',
      awsRegion: 'us-east-1',
      attributes: { ApproximateReceiveCount: '1', SenderId: 'AIDAEVENTBRIDGESERVICE' },
    });
    expect(received[0]?.arn).toBe('arn:aws:lambda:us-east-1:123456789012:function:warmboot-popularity:rules');
  });

  it('invokes as soon as a batch is full, spreading the messages over the free pollers', async () => {
    const { queue } = deploy({ size: 3, windowSeconds: 10, maxConcurrency: 2 });
    for (let index = 0; index < 6; index++) queue.send(`m${index}`, 'sender');
    await clock.advanceBy(100);

    expect(received.map(({ at }) => at)).toEqual([0, 0]);
    expect(sizes()).toEqual([3, 3]);
  });

  it('with little traffic, invokes 20 s after the first message even though the window is 10 s', async () => {
    const { queue } = deploy({ size: 1_000, windowSeconds: 10, maxConcurrency: 2 });
    queue.send('alone', 'sender');
    await clock.advanceBy(19_999);
    expect(received).toEqual([]);
    await clock.advanceBy(1);

    expect(received.map(({ at }) => at)).toEqual([20_000]);
  });

  it('with steady traffic, invokes each batch at the first poll after its window', async () => {
    const { queue } = deploy({ size: 1_000, windowSeconds: 10, maxConcurrency: 2 });
    for (let second = 0; second < 40; second++) {
      queue.send(`s${second}`, 'sender');
      await clock.advanceBy(1_000);
    }
    await clock.advanceBy(60_000);

    const all = received.flatMap((batch) => bodies(batch));
    expect([...all].sort()).toEqual(Array.from({ length: 40 }, (_, second) => `s${second}`).sort());
    for (const batch of received.slice(0, -2)) {
      const first = Math.min(...batch.event.Records.map((record) => Number(record.attributes.SentTimestamp)));
      // Invoked once the window has passed, on a poll that returned with the next message.
      expect(batch.at + start - first).toBeGreaterThanOrEqual(10_000);
      expect(batch.at + start - first).toBeLessThanOrEqual(12_000);
    }
  });

  it('invokes when the payload reaches 6 MB, with every record that fits and no more', async () => {
    const { queue } = deploy({ size: 1_000, windowSeconds: 300, maxConcurrency: 2 });
    // Spread over two pollers, each batch would reach 35 × 200 KB: past 6 MB.
    for (let index = 0; index < 70; index++) queue.send(`${index}`.padEnd(200_000, '.'), 'sender');
    await clock.advanceBy(100);

    const first = received[0]?.event;
    const bytes = Buffer.byteLength(JSON.stringify(first), 'utf8');
    const oneMore = Buffer.byteLength(JSON.stringify(first?.Records[0]), 'utf8') + 1;
    expect(received[0]?.at).toBe(0);
    expect(bytes).toBeLessThanOrEqual(MAX_BATCH_PAYLOAD_BYTES);
    expect(bytes + oneMore).toBeGreaterThan(MAX_BATCH_PAYLOAD_BYTES);
    // About 14 MB of messages to hash and measure: slow on a loaded machine.
  }, 60_000);

  it('runs at most MaximumConcurrency batches at once', async () => {
    let running = 0;
    let peak = 0;
    const { queue } = deploy({ size: 1, windowSeconds: 0, maxConcurrency: 2 }, async () => {
      running += 1;
      peak = Math.max(peak, running);
      await clock.sleep(5_000);
      running -= 1;
    });
    for (let index = 0; index < 10; index++) queue.send(`m${index}`, 'sender');
    await clock.advanceBy(30_000);

    expect(peak).toBe(2);
    expect(received.map(({ at }) => at)).toEqual([
      0, 0, 5_000, 5_000, 10_000, 10_000, 15_000, 15_000, 20_000, 20_000,
    ]);
  });

  it('starts with five concurrent batches and adds up to 300 a minute while messages wait', async () => {
    const { queue } = deploy(
      { size: 1, windowSeconds: 0, maxConcurrency: 1_000 },
      async () => {
        await clock.sleep(100_000);
      },
      { functionId: 'imageCache', timeoutSeconds: 120 },
    );
    for (let index = 0; index < 20; index++) queue.send(`m${index}`, 'sender');
    await clock.advanceBy(150_000);

    expect(received.filter(({ at }) => at === 0)).toHaveLength(5);
    expect(received.filter(({ at }) => at === 100_000)).toHaveLength(15);
  });

  it('deletes the handled messages and returns only the listed ones after the visibility timeout', async () => {
    const { queue } = deploy({ size: 10, windowSeconds: 1, maxConcurrency: 2 }, async (event) => {
      const failing = event.Records.filter(
        (record) => record.body === 'bad' && record.attributes.ApproximateReceiveCount === '1',
      );
      return { batchItemFailures: failing.map((record) => ({ itemIdentifier: record.messageId })) };
    });
    for (const body of ['ok-1', 'bad', 'ok-2']) queue.send(body, 'sender');
    await clock.advanceBy(10 * 60_000);

    const deliveries = (body: string) =>
      outcomes
        .filter((outcome) => outcome.body === body)
        .map((outcome) => [outcome.receiveCount, outcome.outcome]);
    expect(deliveries('ok-1')).toEqual([[1, 'succeeded']]);
    expect(deliveries('ok-2')).toEqual([[1, 'succeeded']]);
    expect(deliveries('bad')).toEqual([
      [1, 'failed'],
      [2, 'succeeded'],
    ]);
    // Received at 0, invoked after the 20 s long poll; back 180 s after the receive, again 20 s later.
    expect(received.filter((batch) => bodies(batch).includes('bad')).map(({ at }) => at)).toEqual([
      20_000, 200_000,
    ]);
    expect([queue.visible, queue.inFlight]).toEqual([0, 0]);
  });

  it('returns the whole batch when the function throws, or times out', async () => {
    let calls = 0;
    const { queue } = deploy({ size: 10, windowSeconds: 1, maxConcurrency: 2 }, async () => {
      calls += 1;
      if (calls === 1) throw new Error('DynamoDB is down');
      if (calls === 2) await clock.sleep(31_000);
      return undefined;
    });
    queue.send('a', 'sender');
    await clock.advanceBy(10 * 60_000);

    // Each batch waits out its long poll (20 s); the messages come back 180 s after each receive.
    expect(received.map(({ at }) => at)).toEqual([20_000, 200_000, 380_000]);
    expect(outcomes.map((outcome) => [outcome.receiveCount, outcome.outcome, outcome.error])).toEqual([
      [1, 'failed', 'DynamoDB is down'],
      [2, 'failed', 'Task timed out after 30.00 seconds'],
      [3, 'succeeded', undefined],
    ]);
    expect(functionStats).toMatchObject({ invocations: 3, errors: 2, timeouts: 1, succeeded: 1, retries: 2 });
  });

  it('sends a message that failed five receives to the dead-letter queue', async () => {
    const { queue, deadLetterQueue, mapping } = deploy(
      { size: 10, windowSeconds: 0, maxConcurrency: 2 },
      async () => {
        throw new Error('poison');
      },
    );
    queue.send('poison', 'sender');
    await clock.advanceBy(60 * 60_000);

    expect(received.map(({ at }) => at)).toEqual([0, 180_000, 360_000, 540_000, 720_000]);
    expect(deadLetterQueue.peekBodies()).toEqual(['poison']);
    expect(mapping.stats()).toMatchObject({ batches: 5, failedBatches: 5, messages: 5, failedMessages: 5 });
  });

  it('waits for an environment when reserved concurrency is in use, and gives the batch up at its visibility timeout', async () => {
    let calls = 0;
    const { queue, lambda, mapping } = deploy(
      { size: 1, windowSeconds: 0, maxConcurrency: 2 },
      async () => {
        calls += 1;
      },
      { reserved: 1 },
    );
    // An invocation from another source (a rule's async invoke) holds the only environment.
    const held = lambda.acquire();
    queue.send('m', 'sender');
    await clock.advanceBy(180_000);
    expect(calls).toBe(0);
    if (held) void lambda.run(held, {});
    await clock.advanceBy(60_000);

    // Given up at 180 s, it came back and waited again until the environment was free.
    expect(mapping.stats()).toMatchObject({ throttledBatches: 2, abandonedBatches: 1, batches: 1 });
    const batch = received.find(({ event }) => event.Records !== undefined);
    expect(batch?.event.Records[0]?.attributes.ApproximateReceiveCount).toBe('2');
  });

  it('refuses a mapping CreateEventSourceMapping would refuse', () => {
    expect(() => deploy({ size: 100, windowSeconds: 0, maxConcurrency: 2 })).toThrow(
      expect.objectContaining({
        name: 'InvalidParameterValueException',
        message: expect.stringMatching(/at least 1/),
      }),
    );
    expect(() => deploy({ size: 10_001, windowSeconds: 1, maxConcurrency: 2 })).toThrow(/10,000/);
    expect(() => deploy({ size: 10, windowSeconds: 301, maxConcurrency: 2 })).toThrow(/300 seconds/);
    expect(() => deploy({ size: 10, windowSeconds: 0, maxConcurrency: 1 })).toThrow(/Minimum value of 2/);
    const common = { clock, ids, region: 'us-east-1', accountId: '123456789012' };
    const queue = new LocalQueue({ ...common, name: 'short', visibilityTimeoutSeconds: 20 });
    const lambda = new LambdaFunction({
      functionId: 'popularity',
      newEnvironment: () => async () => undefined,
      ...common,
      reservedConcurrency: undefined,
      stats: functionStats,
    });
    expect(
      () =>
        new SqsEventSourceMapping({
          clock,
          region: 'us-east-1',
          queue,
          lambda,
          batching: { size: 10, windowSeconds: 0, maxConcurrency: 2 },
          functionTimeoutSeconds: 30,
          functionStats,
          onMessage: () => undefined,
        }),
    ).toThrow(/must be less than or equal to the queue's visibility timeout/);
  });
});

describe('a partial batch response', () => {
  const ids = new Set(['m-1', 'm-2']);

  it.each([
    ['no answer', undefined],
    ['a null answer', null],
    ['an empty answer', {}],
    ['an empty list', { batchItemFailures: [] }],
    ['a null list', { batchItemFailures: null }],
  ])('is a complete success for %s', (_name, answer) => {
    expect(readBatchAnswer(answer, ids)).toEqual({ ok: true, failed: new Set() });
  });

  it('names the messages to return', () => {
    expect(readBatchAnswer({ batchItemFailures: [{ itemIdentifier: 'm-2' }] }, ids)).toEqual({
      ok: true,
      failed: new Set(['m-2']),
    });
  });

  it.each([
    ['an empty itemIdentifier', { batchItemFailures: [{ itemIdentifier: '' }] }],
    ['a null itemIdentifier', { batchItemFailures: [{ itemIdentifier: null }] }],
    ['a bad key name', { batchItemFailures: [{ itemId: 'm-1' }] }],
    ['a message not in the batch', { batchItemFailures: [{ itemIdentifier: 'm-9' }] }],
    ['a list that is not a list', { batchItemFailures: 'm-1' }],
    ['an answer that is not an object', 'done'],
  ])('is a complete failure for %s', (_name, answer) => {
    expect(readBatchAnswer(answer, ids)).toMatchObject({ ok: false });
  });
});
