import type { SQSEvent } from 'aws-lambda';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  EC2_STATE_CHANGE,
  FUNCTION_IDS,
  type FunctionId,
  SCHEDULED_EVENT,
  SSM_COMMAND_STATUS,
} from '../../../functions/catalog';
import {
  type EventEnvelope,
  type FunctionTarget,
  type InvocationRecord,
  LocalEventBus,
  type LocalEventBusOptions,
} from '../../../local/bus';
import { VirtualClock } from '../../../local/clock';
import { FaultInjector, invocationScope } from '../../../local/faults';
import { awsSampleEvent } from '../../support/events';

const REQUESTS = 'warmboot-requests';
const FACTS = 'warmboot-facts';

const ec2State = (state: string, instanceId = 'i-1234567890abcdef0') => ({
  source: 'aws.ec2',
  detailType: EC2_STATE_CHANGE,
  detail: { ...awsSampleEvent('ec2-instance-state-change.json').detail, 'instance-id': instanceId, state },
  resources: [`arn:aws:ec2:us-east-1:123456789012:instance/${instanceId}`],
});

interface Delivery {
  readonly functionId: FunctionId;
  readonly event: EventEnvelope;
  readonly at: number;
}

/** An operator's Image Launched request: popularity receives it by an async invoke, not through its queue. */
const imageLaunched = (image: string) => ({
  source: 'warmboot',
  detailType: 'Image Launched',
  detail: { image, availabilityZone: 'us-east-1a', count: 1 },
});

/** The events a function received: the event itself, or each message's event of a queue batch. */
const eventsOf = (event: EventEnvelope | SQSEvent): EventEnvelope[] =>
  'Records' in event ? event.Records.map((record) => JSON.parse(record.body) as EventEnvelope) : [event];

/** The longest a queued EC2 event can take to reach its function: delivery, then a 20 s long poll. */
const QUEUED_MS = 21_000;

describe('the local EventBridge bus', () => {
  let clock: VirtualClock;
  let bus: LocalEventBus;
  let delivered: Delivery[];
  const start = Date.UTC(2026, 0, 5, 8, 0, 0);

  const recording =
    (functionId: FunctionId): FunctionTarget =>
    async (event) => {
      for (const one of eventsOf(event)) delivered.push({ functionId, event: one, at: clock.now() });
    };

  const deliveredTo = (functionId: FunctionId): EventEnvelope[] =>
    delivered.filter((delivery) => delivery.functionId === functionId).map((delivery) => delivery.event);

  /** A bus of the test account and Region on the test's clock; `options` add to it. */
  const busWith = (options: Partial<LocalEventBusOptions>) =>
    new LocalEventBus({ clock, region: 'us-east-1', accountId: '123456789012', ...options });

  beforeEach(() => {
    clock = new VirtualClock(start);
    bus = busWith({ seed: 7 });
    delivered = [];
  });

  const deployAll = (): void => {
    for (const functionId of FUNCTION_IDS) bus.register(functionId, recording(functionId));
  };

  describe('routing with the catalog patterns', () => {
    beforeEach(deployAll);

    it('delivers an EC2 running event to every function with a matching rule, and no other', async () => {
      bus.put(ec2State('running'));
      await clock.advanceBy(QUEUED_MS);

      expect(delivered.map((delivery) => delivery.functionId).sort()).toEqual(
        ['imageCache', 'pools', 'popularity', 'shelving'].sort(),
      );
    });

    it('delivers shutting-down only to pools, and pending to nobody', async () => {
      bus.put(ec2State('shutting-down'));
      bus.put(ec2State('pending'));
      await clock.advanceBy(QUEUED_MS);

      expect(delivered.map((delivery) => [delivery.functionId, delivery.event.detail.state])).toEqual([
        ['pools', 'shutting-down'],
      ]);
    });

    it('routes SSM command results by document-name prefix', async () => {
      const sample = awsSampleEvent('ssm-command-invocation-status-change.json');
      for (const documentName of ['Warmboot-ImageFetch', 'Warmboot-PoolInitialize', 'AWS-RunShellScript']) {
        bus.put({
          source: sample.source,
          detailType: SSM_COMMAND_STATUS,
          detail: { ...sample.detail, 'document-name': documentName },
        });
      }
      await clock.advanceBy(1_000);

      expect(
        delivered.map((delivery) => [delivery.functionId, delivery.event.detail['document-name']]),
      ).toEqual([
        ['imageCache', 'Warmboot-ImageFetch'],
        ['pools', 'Warmboot-PoolInitialize'],
      ]);
    });

    it('routes an ECS task only once it runs, and operator requests by detail-type', async () => {
      const ecs = awsSampleEvent('ecs-task-state-change.json');
      bus.put({ source: ecs.source, detailType: ecs['detail-type'], detail: ecs.detail });
      bus.put({
        source: ecs.source,
        detailType: ecs['detail-type'],
        detail: { ...ecs.detail, lastStatus: 'STOPPED' },
      });
      bus.put({ source: 'warmboot', detailType: 'Request Server', detail: { pool: 'web' } }, REQUESTS);
      await clock.advanceBy(QUEUED_MS);

      // The request is invoked after the delivery latency; the queued ECS event after a long poll.
      expect(delivered.map((delivery) => delivery.functionId)).toEqual(['claim', 'popularity']);
    });

    it('wraps the event in the EventBridge envelope, timed on the virtual clock', async () => {
      await clock.advanceBy(1_234);
      const envelope = bus.put(ec2State('running'));

      expect(envelope).toMatchObject({
        version: '0',
        'detail-type': EC2_STATE_CHANGE,
        source: 'aws.ec2',
        account: '123456789012',
        region: 'us-east-1',
        time: '2026-01-05T08:00:01Z',
        resources: ['arn:aws:ec2:us-east-1:123456789012:instance/i-1234567890abcdef0'],
        detail: { 'instance-id': 'i-1234567890abcdef0', state: 'running' },
      });
      expect(envelope.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    });

    it('delivers asynchronously, after the delivery latency', async () => {
      bus.put({ source: 'warmboot.fact', detailType: 'Server Claimed', detail: { pool: 'web' } }, FACTS);
      bus.put(imageLaunched('web'), REQUESTS);
      expect(delivered).toEqual([]);

      await clock.advanceBy(499);
      expect(delivered).toEqual([]);
      await clock.advanceBy(1);
      expect(delivered.map((delivery) => [delivery.functionId, delivery.at])).toEqual([
        ['pools', start + 500],
        ['popularity', start + 500],
      ]);
    });

    it('lets observers watch every event, routed or not', () => {
      const seen: string[] = [];
      const stop = bus.onEvent((event) => seen.push(event['detail-type']));
      bus.put({ source: 'warmboot.fact', detailType: 'Server Ready', detail: {} }, FACTS);
      stop();
      bus.put({ source: 'warmboot.fact', detailType: 'Instance Unshelved', detail: {} }, FACTS);

      expect(seen).toEqual(['Server Ready']);
    });

    it('runs each invocation in its own invocation scope with a Lambda context, through the rule alias', async () => {
      const scopes: {
        functionId?: string;
        invocationId?: string;
        requestId: string;
        remaining: number;
        arn: string;
      }[] = [];
      bus.register('placement', async (_event, context) => {
        const scope = invocationScope.getStore();
        scopes.push({
          functionId: scope?.functionId,
          invocationId: scope?.invocationId,
          requestId: context.awsRequestId,
          remaining: context.getRemainingTimeInMillis(),
          arn: context.invokedFunctionArn,
        });
      });
      bus.put({ source: 'warmboot', detailType: 'Advise Placement', detail: {} }, REQUESTS);
      await clock.advanceBy(1_000);

      expect(scopes).toHaveLength(1);
      // The remaining time counts down from the function's own timeout (placement: 10 s).
      expect(scopes[0]).toMatchObject({ functionId: 'placement', remaining: 10_000 });
      // Every rule targets the function's rule alias; the handler tells rule deliveries by it.
      expect(scopes[0]?.arn).toBe('arn:aws:lambda:us-east-1:123456789012:function:warmboot-placement:rules');
      expect(scopes[0]?.invocationId).toBe(scopes[0]?.requestId);
    });
  });

  describe('buses', () => {
    beforeEach(deployAll);

    it('delivers an event only to the rules of the bus it was put on', async () => {
      const request = { source: 'warmboot', detailType: 'Request Server', detail: { pool: 'web' } };
      bus.put(request, 'default');
      bus.put(request, FACTS);
      await clock.advanceBy(1_000);
      expect(delivered).toEqual([]);

      bus.put(request, REQUESTS);
      await clock.advanceBy(1_000);
      expect(delivered.map((delivery) => delivery.functionId)).toEqual(['claim']);
    });

    it('routes a fact only from the facts bus, and an AWS event only from the default bus', async () => {
      const claimed = { source: 'warmboot.fact', detailType: 'Server Claimed', detail: { pool: 'web' } };
      bus.put(claimed, REQUESTS);
      bus.put(ec2State('running'), REQUESTS);
      bus.put(ec2State('running'), FACTS);
      await clock.advanceBy(QUEUED_MS);
      expect(delivered).toEqual([]);

      bus.put(claimed, FACTS);
      await clock.advanceBy(1_000);
      expect(delivered.map((delivery) => delivery.functionId)).toEqual(['pools']);
    });

    it('refuses a bus that does not exist, and resolves names and ARNs of the ones that do', () => {
      expect(() => bus.put(ec2State('running'), 'elsewhere')).toThrow(/Event bus elsewhere does not exist/);
      expect(bus.resolveBus(undefined)).toBe('default');
      expect(bus.resolveBus(`arn:aws:events:us-east-1:123456789012:event-bus/${REQUESTS}`)).toBe(REQUESTS);
      expect(bus.resolveBus(`arn:aws:events:us-east-1:210987654321:event-bus/${REQUESTS}`)).toBeUndefined();
      expect(bus.resolveBus('elsewhere')).toBeUndefined();
    });

    it('names the bus to whoever watches it', () => {
      const seen: string[] = [];
      bus.onEvent((event, name) => seen.push(`${event['detail-type']}@${name}`));
      bus.put({ source: 'warmboot.fact', detailType: 'Server Ready', detail: {} }, FACTS);
      bus.put(ec2State('running'));

      expect(seen).toEqual(['Server Ready@warmboot-facts', `${EC2_STATE_CHANGE}@default`]);
    });
  });

  describe('event faults', () => {
    beforeEach(() => bus.register('popularity', recording('popularity')));

    /** Image Launched requests: popularity's rule invokes it asynchronously, after the latency. */
    const putLaunched = (count: number): EventEnvelope[] =>
      Array.from({ length: count }, (_, index) => bus.put(imageLaunched(`image-${index}`), REQUESTS));

    it('drops the next N matching deliveries and no more', async () => {
      bus.injectFault({ match: { detailType: 'Image Launched' }, fault: { kind: 'drop' }, times: 2 });
      const events = putLaunched(3);
      await clock.advanceBy(1_000);

      expect(deliveredTo('popularity').map((event) => event.id)).toEqual([events[2]?.id]);
    });

    it('aims a fault at one function only, the delivery to its event queue included', async () => {
      bus.register('pools', recording('pools'));
      bus.injectFault({ match: { functionId: 'pools' }, fault: { kind: 'drop' } });
      bus.put(ec2State('running'));
      await clock.advanceBy(QUEUED_MS);

      expect(deliveredTo('popularity')).toHaveLength(1);
      expect(deliveredTo('pools')).toHaveLength(0);
      expect(bus.eventQueueStats('pools')?.queue.sent).toBe(0);
    });

    it('duplicates a delivery with the same event id', async () => {
      bus.injectFault({
        match: { source: 'warmboot' },
        fault: { kind: 'duplicate', afterMs: 5_000 },
        times: 1,
      });
      const [event] = putLaunched(1);
      await clock.advanceBy(10_000);

      expect(delivered.map((delivery) => [delivery.event.id, delivery.at])).toEqual([
        [event?.id, start + 500],
        [event?.id, start + 5_500],
      ]);
    });

    it('delays a delivery by the given time', async () => {
      bus.injectFault({
        match: { detailType: 'Image Launched' },
        fault: { kind: 'delay', ms: 30_000 },
        times: 1,
      });
      putLaunched(1);
      await clock.advanceBy(30_000);
      expect(delivered).toEqual([]);
      await clock.advanceBy(500);

      expect(delivered.map((delivery) => delivery.at)).toEqual([start + 30_500]);
    });

    it('matches with a predicate on the event', async () => {
      bus.injectFault({
        match: { where: (event) => event.detail.image === 'image-1' },
        fault: { kind: 'drop' },
      });
      putLaunched(3);
      await clock.advanceBy(1_000);

      expect(deliveredTo('popularity').map((event) => event.detail.image)).toEqual(['image-0', 'image-2']);
    });

    it('reorders a window of events: all delivered, not in the order they were put', async () => {
      bus.injectFault({
        match: { detailType: 'Image Launched' },
        fault: { kind: 'reorder', window: 5 },
        times: 5,
      });
      const events = putLaunched(5);
      await clock.advanceBy(1_000);

      const order = deliveredTo('popularity').map((event) => event.id);
      expect([...order].sort()).toEqual(events.map((event) => event.id).sort());
      expect(order).not.toEqual(events.map((event) => event.id));
    });

    it('releases a partly filled reorder window after its hold time', async () => {
      bus.injectFault({ match: {}, fault: { kind: 'reorder', window: 10, maxHoldMs: 2_000 } });
      putLaunched(2);
      await clock.advanceBy(2_000);
      expect(delivered).toEqual([]);
      await clock.advanceBy(500);

      expect(delivered).toHaveLength(2);
    });

    it('applies a probabilistic fault from the seeded generator, the same way every run', async () => {
      const dropsWith = async (seed: number): Promise<string[]> => {
        const seeded = busWith({ seed });
        const received: string[] = [];
        seeded.register('popularity', async (event) => {
          for (const one of eventsOf(event)) received.push(String(one.detail.image));
        });
        seeded.injectFault({ match: {}, fault: { kind: 'drop' }, probability: 0.5 });
        for (let index = 0; index < 200; index++) seeded.put(imageLaunched(`image-${index}`), REQUESTS);
        await clock.advanceBy(1_000);
        return received;
      };
      const first = await dropsWith(11);
      const again = await dropsWith(11);

      expect(first.length).toBeGreaterThan(60);
      expect(first.length).toBeLessThan(140);
      expect(again).toEqual(first);
    });
  });

  describe('Lambda as Lambda runs a function', () => {
    it("fails an invocation that runs past the function's timeout, fences it, and retries it", async () => {
      // shelving: timeoutSeconds 180 in the catalog.
      const calls: string[] = [];
      const faults = new FaultInjector();
      bus.register('shelving', async () => {
        calls.push(`start ${(clock.now() - start) / 1000}`);
        await clock.sleep(200_000);
        // Still running after the timeout: Lambda stopped it, so this must never reach AWS.
        faults.beforeCall('ec2', 'TerminateInstances');
        calls.push('terminated');
      });
      bus.put({ source: 'warmboot', detailType: 'Shelve Instances', detail: {} }, REQUESTS);
      await clock.advanceBy(15 * 60_000);

      // Each retry comes one, then two minutes after the timed-out attempt ended.
      expect(calls).toEqual(['start 0.5', 'start 240.5', 'start 540.5']);
      expect(bus.stats('shelving')).toMatchObject({
        invocations: 3,
        errors: 3,
        timeouts: 3,
        deadLettered: 1,
      });
      expect(bus.deadLetters('shelving')[0]?.error).toBe('Task timed out after 180.00 seconds');
    });

    it('runs at most the reserved concurrency at once; the rest wait in the async queue', async () => {
      const limited = busWith({ reservedConcurrency: { shelving: 1 } });
      const running: number[] = [];
      let now = 0;
      limited.register('shelving', async () => {
        now += 1;
        running.push(now);
        await clock.sleep(30_000);
        now -= 1;
      });
      for (let index = 0; index < 3; index++) {
        limited.put({ source: 'warmboot', detailType: 'Shelve Instances', detail: { index } }, REQUESTS);
      }
      await clock.advanceBy(5 * 60_000);

      expect(running).toEqual([1, 1, 1]);
      expect(limited.stats('shelving')).toMatchObject({ succeeded: 3, throttled: 2, peakConcurrency: 1 });
    });

    it('discards an event that waited past the maximum event age to the dead-letter queue', async () => {
      const limited = busWith({ reservedConcurrency: { claim: 1 }, maxEventAgeMs: 3_600_000 });
      // claim: timeoutSeconds 600. Each invocation holds the one environment for 9 minutes.
      limited.register('claim', async () => {
        await clock.sleep(540_000);
      });
      const events = Array.from({ length: 9 }, (_, index) =>
        limited.put({ source: 'warmboot', detailType: 'Request Server', detail: { index } }, REQUESTS),
      );
      await clock.advanceBy(3 * 3_600_000);

      // 0:00, 0:09, …, 0:54 run; the eighth would start at 1:03, older than an hour: discarded.
      expect(limited.stats('claim')).toMatchObject({ succeeded: 7, expired: 2, deadLettered: 2 });
      expect(limited.deadLetters('claim').map((letter) => letter.event.id)).toEqual([
        events[7]?.id,
        events[8]?.id,
      ]);
    });

    it('gives each concurrent invocation its own execution environment and reuses idle ones', async () => {
      let created = 0;
      const seen: number[] = [];
      bus.register('popularity', {
        environments: () => {
          created += 1;
          const mine = created;
          return async () => {
            seen.push(mine);
            await clock.sleep(1_000);
          };
        },
      });
      bus.put(imageLaunched('image-1'), REQUESTS);
      bus.put(imageLaunched('image-2'), REQUESTS);
      await clock.advanceBy(10_000);
      bus.put(imageLaunched('image-3'), REQUESTS);
      await clock.advanceBy(10_000);

      expect(created).toBe(2);
      expect(seen).toEqual([1, 2, 1]);
      expect(bus.stats('popularity')).toMatchObject({ environments: 2, peakConcurrency: 2 });
    });
  });

  describe('Lambda asynchronous invocation', () => {
    it('retries a failing handler after one and two minutes, then dead-letters the event', async () => {
      const attempts: number[] = [];
      bus.register('popularity', async () => {
        attempts.push(clock.now() - start);
        throw new Error('DynamoDB is down');
      });
      const event = bus.put(imageLaunched('web'), REQUESTS);
      await clock.advanceBy(10 * 60_000);

      expect(attempts).toEqual([500, 60_500, 180_500]);
      expect(bus.stats('popularity')).toMatchObject({
        invocations: 3,
        succeeded: 0,
        errors: 3,
        crashes: 0,
        retries: 2,
        deadLettered: 1,
        timeouts: 0,
        expired: 0,
      });
      expect(bus.deadLetters('popularity')).toEqual([{ event, attempts: 3, error: 'DynamoDB is down' }]);
    });

    it('stops retrying once an attempt succeeds', async () => {
      let calls = 0;
      bus.register('popularity', async () => {
        calls += 1;
        if (calls === 1) throw new Error('throttled');
        return 'ok';
      });
      bus.put(imageLaunched('web'), REQUESTS);
      await clock.advanceBy(10 * 60_000);

      expect(bus.stats('popularity')).toMatchObject({ invocations: 2, succeeded: 1, errors: 1, retries: 1 });
      expect(bus.deadLetters('popularity')).toEqual([]);
    });

    it('counts a handler killed by fault injection as a crash and retries it, even if it swallowed the kill', async () => {
      const faults = new FaultInjector();
      faults.killInvocation({ functionId: 'shelving', afterCalls: 1 });
      const outcomes: string[] = [];
      bus.onInvocation((record) => outcomes.push(record.outcome));
      bus.register('shelving', async () => {
        faults.beforeCall('ec2', 'DescribeInstances');
        try {
          faults.beforeCall('ec2', 'StopInstances');
        } catch {
          // A batch handler records per-item failures instead of throwing.
        }
        return { status: 'handled' };
      });
      bus.put({ source: 'warmboot', detailType: 'Shelve Instances', detail: {} }, REQUESTS);
      await clock.advanceBy(10 * 60_000);

      expect(outcomes).toEqual(['crashed', 'succeeded']);
      expect(bus.stats('shelving')).toMatchObject({ invocations: 2, crashes: 1, errors: 1, retries: 1 });
    });
  });

  describe('the event queue of batched patterns', () => {
    it('sends each matching EC2 event to the queue of every function with a batched rule', async () => {
      deployAll();
      bus.put(ec2State('running'));
      await clock.advanceBy(QUEUED_MS);

      for (const functionId of ['popularity', 'imageCache', 'pools', 'shelving'] as const) {
        expect(bus.eventQueueStats(functionId)?.queue, functionId).toMatchObject({ sent: 1, deleted: 1 });
      }
      expect(bus.eventQueueStats('claim')).toBeUndefined();
    });

    it('invokes the function with a batch through the rules alias, each body the event as targets receive it', async () => {
      const batches: { event: SQSEvent; arn: string }[] = [];
      const records: InvocationRecord[] = [];
      bus.onInvocation((record) => records.push(record));
      bus.register('popularity', async (event, context) => {
        batches.push({ event: event as SQSEvent, arn: context.invokedFunctionArn });
      });
      const first = bus.put(ec2State('running', 'i-00000000000000001'));
      const second = bus.put(ec2State('running', 'i-00000000000000002'));
      await clock.advanceBy(QUEUED_MS);

      const bodies = batches.flatMap(({ event }) => event.Records.map((record) => record.body));
      expect(bodies.sort()).toEqual([JSON.stringify(first), JSON.stringify(second)].sort());
      expect(batches.map(({ arn }) => arn)).toEqual(
        batches.map(() => 'arn:aws:lambda:us-east-1:123456789012:function:warmboot-popularity:rules'),
      );
      expect(records.map((record) => [record.event.id, record.outcome, record.attempt]).sort()).toEqual(
        [
          [first.id, 'succeeded', 0],
          [second.id, 'succeeded', 0],
        ].sort(),
      );
      expect(records.every((record) => record.batch?.messageId !== undefined)).toBe(true);
      expect(bus.stats('popularity').invocations).toBe(batches.length);
    });

    it('applies event faults to the delivery into the queue: a duplicate is a second message with the same event id', async () => {
      const ids: string[] = [];
      bus.register('popularity', async (event) => {
        for (const one of eventsOf(event)) ids.push(one.id);
      });
      bus.injectFault({ match: { functionId: 'popularity' }, fault: { kind: 'duplicate' } });
      const event = bus.put(ec2State('running'));
      await clock.advanceBy(QUEUED_MS);

      expect(ids).toEqual([event.id, event.id]);
      expect(bus.eventQueueStats('popularity')?.queue.sent).toBe(2);
    });

    it('dead-letters an event SQS refuses as too long, without invoking the function', async () => {
      const calls: unknown[] = [];
      bus.register('popularity', async (event) => {
        calls.push(event);
      });
      const big = ec2State('running');
      const event = bus.put({ ...big, detail: { ...big.detail, padding: 'x'.repeat(262_144) } });
      await clock.advanceBy(QUEUED_MS);

      expect(calls).toEqual([]);
      expect(bus.deadLetters('popularity')).toEqual([
        {
          event,
          attempts: 1,
          error:
            'SQS SendMessage refused the event: One or more parameters are invalid. Reason: Message must be shorter than 262144 bytes.',
        },
      ]);
      expect(bus.eventQueueStats('popularity')?.queue).toMatchObject({ sent: 0, refused: 1 });
    });

    it('dead-letters a message after five failed receives, with its last error', async () => {
      bus.register('popularity', async () => {
        throw new Error('DynamoDB is down');
      });
      const event = bus.put(ec2State('running'));
      // popularity: timeout 30 s, so the message comes back every 180 s.
      await clock.advanceBy(20 * 60_000);

      expect(bus.deadLetters('popularity')).toEqual([{ event, attempts: 5, error: 'DynamoDB is down' }]);
      expect(bus.stats('popularity')).toMatchObject({
        invocations: 5,
        errors: 5,
        retries: 4,
        deadLettered: 1,
      });
      expect(bus.eventQueueStats('popularity')).toMatchObject({
        queue: { movedToDeadLetter: 1, visible: 0, inFlight: 0 },
        deadLetterQueue: { visible: 1 },
        mapping: { batches: 5, batchSizes: [1, 1, 1, 1, 1], failedBatches: 5 },
      });
    });
  });

  describe('schedules', () => {
    it('fires each deployed function on its catalog rate as an aws.events Scheduled Event', async () => {
      bus.register('shelving', recording('shelving'));
      bus.register('pools', recording('pools'));
      bus.register('placement', recording('placement'));
      const stop = bus.startSchedules();
      await clock.advanceBy(4 * 60_000 + 1_000);
      stop();
      await clock.advanceBy(10 * 60_000);

      expect(deliveredTo('shelving')).toHaveLength(4);
      expect(deliveredTo('pools')).toHaveLength(2);
      expect(deliveredTo('placement')).toHaveLength(0);
      const sample = awsSampleEvent('scheduled-event.json');
      expect(deliveredTo('pools')[0]).toMatchObject({
        version: '0',
        source: sample.source,
        'detail-type': SCHEDULED_EVENT,
        detail: sample.detail,
        time: '2026-01-05T08:02:00Z',
        resources: ['arn:aws:events:us-east-1:123456789012:rule/warmboot-pools-schedule'],
      });
    });
  });
});
