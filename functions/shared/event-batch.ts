import type { Context } from 'aws-lambda';
import * as z from 'zod';
import { errorMessage } from './errors';
import type { DispatchResult } from './event-registry';

/**
 * The firehose path (issue 17): the EC2 state changes of a busy account reach a function through
 * its event queue, EventBridge → SQS → Lambda, in batches. This is the event the SQS event source
 * mapping passes (Lambda developer guide, "Using Lambda with Amazon SQS", example standard queue
 * message event); only the fields warmboot reads are checked.
 */
const queueRecordSchema = z.object({
  messageId: z.string().min(1),
  body: z.string(),
  eventSource: z.literal('aws:sqs'),
});
const queueBatchSchema = z.object({ Records: z.array(queueRecordSchema).min(1) });
export type QueueBatch = z.infer<typeof queueBatchSchema>;

/** The answer the mapping reads: only the listed messages return to the queue (partial batch response). */
export interface BatchItemFailures {
  readonly batchItemFailures: readonly { readonly itemIdentifier: string }[];
}

/** An SQS event source mapping's batch, as opposed to one EventBridge event or a function URL request. */
export const isQueueBatch = (event: unknown): event is QueueBatch =>
  queueBatchSchema.safeParse(event).success;

/** What the chain does with one accepted event of the batch, exactly as if a rule had delivered it alone. */
export type HandleOne<R> = (envelope: unknown, context: Context) => Promise<DispatchResult<R>>;

export interface BatchHandling<R> {
  /**
   * Whether an event of the batch is refused (and logged) before anything else: the envelope
   * check a rule delivery of its own would get. A refused event is neither looked up nor handled.
   */
  readonly refused: (envelope: unknown) => boolean;
  readonly handleOne: HandleOne<R>;
  /**
   * Runs once over the whole batch before any event is handled, so lookups the events share
   * (one DescribeInstances for every instance in the batch) are made once. A failure here is
   * logged and the events are handled anyway: each then looks up what it needs itself.
   */
  readonly prepare: (envelopes: readonly unknown[]) => Promise<void>;
  readonly log: (message: string, detail: Record<string, unknown>) => void;
}

/**
 * The events of one instance stay in the order the queue gave them and are handled one after the
 * other (a `stopped` and a `running` of one replacement must not race); different instances are
 * handled concurrently. An event names its instance in `resources` (EC2 state changes carry the
 * instance ARN there); an event without resources is a group of its own.
 */
const groupKey = (envelope: unknown, messageId: string): string => {
  const resources = (envelope as { resources?: unknown } | null)?.resources;
  return Array.isArray(resources) && typeof resources[0] === 'string' ? resources[0] : `message:${messageId}`;
};

/**
 * Handles every message of a batch and names the ones to deliver again. A message whose body is
 * not JSON can never succeed, so it is logged and dropped rather than retried until the queue's
 * dead-letter queue takes it; a message whose handling throws is reported as a failure, and so
 * are the later messages of the same instance (their order must hold on the retry). One failing
 * instance never stalls the others.
 */
export const answerQueueBatch = async <R>(
  batch: QueueBatch,
  context: Context,
  handling: BatchHandling<R>,
): Promise<BatchItemFailures> => {
  const parsed: { messageId: string; envelope: unknown }[] = [];
  for (const record of batch.Records) {
    try {
      parsed.push({ messageId: record.messageId, envelope: JSON.parse(record.body) as unknown });
    } catch (error) {
      handling.log('queue message dropped: its body is not JSON', {
        messageId: record.messageId,
        error: errorMessage(error),
      });
    }
  }
  const accepted = parsed.filter(({ envelope }) => !handling.refused(envelope));
  await handling
    .prepare(accepted.map(({ envelope }) => envelope))
    .catch((error: unknown) =>
      handling.log('batch lookup failed; each event looks up on its own', { error: errorMessage(error) }),
    );
  const groups = new Map<string, typeof parsed>();
  for (const message of accepted) {
    const key = groupKey(message.envelope, message.messageId);
    groups.set(key, [...(groups.get(key) ?? []), message]);
  }
  const failed: string[] = [];
  await Promise.all(
    [...groups.values()].map(async (messages) => {
      for (const [index, message] of messages.entries()) {
        try {
          await handling.handleOne(message.envelope, context);
        } catch (error) {
          handling.log('queue message failed; it and the later events of its instance return to the queue', {
            messageId: message.messageId,
            error: errorMessage(error),
          });
          failed.push(...messages.slice(index).map(({ messageId }) => messageId));
          return;
        }
      }
    }),
  );
  return { batchItemFailures: failed.map((itemIdentifier) => ({ itemIdentifier })) };
};
