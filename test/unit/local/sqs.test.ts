import { beforeEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../local/clock';
import { IdGenerator, seededRandom } from '../../../local/ec2/ids';
import { DEFAULT_MAX_MESSAGE_BYTES, LocalQueue, type QueueOptions } from '../../../local/sqs';
import { awsSampleEvent } from '../../support/events';

interface SqsSample {
  readonly Records: readonly { readonly body: string; readonly md5OfBody: string }[];
}

const start = Date.UTC(2026, 0, 5, 8, 0, 0);

describe('the local SQS standard queue', () => {
  let clock: VirtualClock;
  let ids: IdGenerator;
  const queueWith = (options: Partial<QueueOptions> = {}) =>
    new LocalQueue({
      clock,
      ids,
      name: 'warmboot-popularity-events',
      region: 'us-east-1',
      accountId: '123456789012',
      visibilityTimeoutSeconds: 180,
      ...options,
    });

  beforeEach(() => {
    clock = new VirtualClock(start);
    ids = new IdGenerator(seededRandom(3));
  });

  it('refuses a message over 256 KiB as SQS does, and keeps nothing of it', () => {
    const queue = queueWith();
    expect(() => queue.send('x'.repeat(DEFAULT_MAX_MESSAGE_BYTES + 1), 'sender')).toThrow(
      expect.objectContaining({
        name: 'InvalidParameterValue',
        message: 'One or more parameters are invalid. Reason: Message must be shorter than 262144 bytes.',
      }),
    );
    // Bytes, not characters: 131,073 two-byte characters are over the limit too.
    expect(() => queue.send('é'.repeat(DEFAULT_MAX_MESSAGE_BYTES / 2 + 1), 'sender')).toThrow(/shorter than/);
    queue.send('x'.repeat(DEFAULT_MAX_MESSAGE_BYTES), 'sender');

    expect(queue.visible).toBe(1);
    expect(queue.stats()).toMatchObject({ sent: 1, refused: 2 });
  });

  it('returns the MD5 of the body, as in the Lambda developer guide sample', () => {
    const sample = awsSampleEvent<SqsSample>('sqs-message-batch.json').Records[0];
    const queue = queueWith();
    queue.send(sample?.body ?? '', 'sender');

    expect(queue.receive(10)[0]?.md5OfBody).toBe(sample?.md5OfBody);
  });

  it('hides a received message for the visibility timeout, then shows it again with its receive count', async () => {
    const queue = queueWith();
    const messageId = queue.send('{"id":"1"}', 'AIDAEVENTBRIDGESERVICE');
    await clock.advanceBy(2_000);
    const [first] = queue.receive(10);

    expect(first).toMatchObject({
      messageId,
      body: '{"id":"1"}',
      attributes: {
        ApproximateReceiveCount: '1',
        SentTimestamp: String(start),
        SenderId: 'AIDAEVENTBRIDGESERVICE',
        ApproximateFirstReceiveTimestamp: String(start + 2_000),
      },
    });
    expect(queue.receive(10)).toEqual([]);
    expect([queue.visible, queue.inFlight]).toEqual([0, 1]);

    await clock.advanceBy(179_999);
    expect(queue.receive(10)).toEqual([]);
    await clock.advanceBy(1);
    const [again] = queue.receive(10);

    expect(again?.attributes).toMatchObject({
      ApproximateReceiveCount: '2',
      ApproximateFirstReceiveTimestamp: String(start + 2_000),
    });
    expect(again?.receiptHandle).not.toBe(first?.receiptHandle);
    expect(queue.stats()).toMatchObject({ received: 2, returned: 1 });
  });

  it('deletes only with the latest receipt handle; an older one succeeds and deletes nothing', async () => {
    const queue = queueWith({ visibilityTimeoutSeconds: 30 });
    queue.send('a', 'sender');
    const [first] = queue.receive(1);
    await clock.advanceBy(30_000);
    const [second] = queue.receive(1);

    queue.delete(first?.receiptHandle ?? '', first?.messageId ?? '');
    expect(queue.inFlight).toBe(1);
    queue.delete(second?.receiptHandle ?? '', second?.messageId ?? '');
    await clock.advanceBy(60_000);

    expect([queue.visible, queue.inFlight]).toEqual([0, 0]);
    expect(queue.stats()).toMatchObject({ deleted: 1 });
  });

  it('moves a message to the dead-letter queue on the receive after maxReceiveCount, keeping its enqueue time', async () => {
    const deadLetterQueue = queueWith({ name: 'dlq', retentionSeconds: 3_600 });
    const moved: { body: string; receiveCount: number }[] = [];
    const queue = queueWith({
      visibilityTimeoutSeconds: 60,
      redrive: { deadLetterQueue, maxReceiveCount: 5, onMove: (message) => moved.push(message) },
    });
    queue.send('poison', 'sender');
    for (let receive = 1; receive <= 5; receive++) {
      expect(queue.receive(10).map((message) => message.attributes.ApproximateReceiveCount)).toEqual([
        String(receive),
      ]);
      await clock.advanceBy(60_000);
    }

    expect(queue.receive(10)).toEqual([]);
    expect(moved).toEqual([{ messageId: expect.any(String), body: 'poison', receiveCount: 5 }]);
    expect(deadLetterQueue.peekBodies()).toEqual(['poison']);
    // Sent 5 minutes ago: the dead-letter queue's hour runs from then, not from the move.
    await clock.advanceBy(55 * 60_000);
    expect(deadLetterQueue.receive(10)).toEqual([]);
    expect(deadLetterQueue.stats()).toMatchObject({ sent: 1, expired: 1 });
  });

  it('deletes a message that outlived the retention period (4 days by default)', async () => {
    const queue = queueWith();
    queue.send('old', 'sender');
    await clock.advanceBy(4 * 86_400_000 - 1);
    queue.send('new', 'sender');
    await clock.advanceBy(1);

    expect(queue.receive(10).map((message) => message.body)).toEqual(['new']);
    expect(queue.stats()).toMatchObject({ expired: 1 });
  });

  it('tells its listeners when messages become visible: sent, or back after the visibility timeout', async () => {
    const queue = queueWith({ visibilityTimeoutSeconds: 10 });
    const seen: number[] = [];
    queue.onVisible(() => seen.push(clock.now() - start));
    queue.send('a', 'sender');
    queue.receive(10);
    await clock.advanceBy(20_000);

    expect(seen).toEqual([0, 10_000]);
  });

  it('stops a receive at the first message its payload budget refuses, leaving it visible', () => {
    const queue = queueWith();
    for (const body of ['a', 'bb', 'ccc']) queue.send(body, 'sender');
    let budget = 3;
    const taken = queue.receive(10, (message) => {
      budget -= message.body.length;
      return budget >= 0;
    });

    expect(taken.map((message) => message.body)).toEqual(['a', 'bb']);
    expect(queue.visible).toBe(1);
  });
});
