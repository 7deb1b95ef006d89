import { FUNCTIONS, type FunctionId } from '../functions/catalog';
import type { VirtualClock } from './clock';
import type { IdGenerator } from './ec2/ids';
import type { FunctionStats, LambdaFunction } from './lambda-service';
import { LocalQueue, type QueueStats } from './sqs';
import { type MappingStats, type MessageOutcome, SqsEventSourceMapping } from './sqs-mapping';

/**
 * The function's event queue as the stack deploys it for a function with `batched` patterns
 * (functions/catalog.ts): a standard queue whose visibility timeout is six times the function's
 * timeout (Lambda developer guide, services-sqs-configure: "set the source queue's visibility
 * timeout to at least six times the configuration timeout on your function"), redriving to a
 * dead-letter queue after five receives (with-sqs: "Set the maxReceiveCount on the queue's
 * redrive policy to at least 5 to avoid sending messages to the dead-letter queue due to
 * throttling"), and the event source mapping
 * batching it into the function's `rules` alias.
 */
export const VISIBILITY_TIMEOUT_FACTOR = 6;
export const MAX_RECEIVE_COUNT = 5;
/** The dead-letter queue keeps messages the SQS maximum, 14 days, longer than the source's 4 days
 * (setting-up-dead-letter-queue-retention: "always set the retention period of a dead-letter
 * queue to be longer than the retention period of the original queue"). */
export const DEAD_LETTER_RETENTION_SECONDS = 1_209_600;
/** Who SQS records as the sender of what a rule delivers (a placeholder id of the EventBridge service). */
export const EVENTBRIDGE_SENDER_ID = 'AIDAEVENTBRIDGESERVICE';

export interface EventQueue {
  readonly queue: LocalQueue;
  readonly deadLetterQueue: LocalQueue;
  readonly mapping: SqsEventSourceMapping;
}

/** What a benchmark or test reads of one function's event queue. */
export interface EventQueueStats {
  readonly queue: QueueStats & { readonly visible: number; readonly inFlight: number };
  readonly deadLetterQueue: QueueStats & { readonly visible: number };
  readonly mapping: MappingStats;
}

export interface EventQueueOptions {
  readonly functionId: FunctionId;
  readonly clock: VirtualClock;
  readonly ids: IdGenerator;
  readonly region: string;
  readonly accountId: string;
  readonly lambda: LambdaFunction;
  readonly functionStats: FunctionStats;
  readonly onMessage: (outcome: MessageOutcome) => void;
  readonly onDeadLetter: (moved: {
    readonly messageId: string;
    readonly body: string;
    readonly receiveCount: number;
  }) => void;
}

/** The event queue, its dead-letter queue and its source mapping for `functionId`, or none if it has no batched pattern. */
export const eventQueueOf = (options: EventQueueOptions): EventQueue | undefined => {
  const spec = FUNCTIONS[options.functionId];
  if (!spec.patterns.some((pattern) => pattern.batched)) return undefined;
  if (!spec.batch) throw new Error(`${options.functionId} has batched patterns but no catalog \`batch\``);
  const common = {
    clock: options.clock,
    ids: options.ids,
    region: options.region,
    accountId: options.accountId,
  };
  const name = `warmboot-${options.functionId}-events`;
  const deadLetterQueue = new LocalQueue({
    ...common,
    name: `${name}-dlq`,
    visibilityTimeoutSeconds: VISIBILITY_TIMEOUT_FACTOR * spec.timeoutSeconds,
    retentionSeconds: DEAD_LETTER_RETENTION_SECONDS,
  });
  const queue = new LocalQueue({
    ...common,
    name,
    visibilityTimeoutSeconds: VISIBILITY_TIMEOUT_FACTOR * spec.timeoutSeconds,
    redrive: { deadLetterQueue, maxReceiveCount: MAX_RECEIVE_COUNT, onMove: options.onDeadLetter },
  });
  const mapping = new SqsEventSourceMapping({
    clock: options.clock,
    region: options.region,
    queue,
    lambda: options.lambda,
    batching: spec.batch,
    functionTimeoutSeconds: spec.timeoutSeconds,
    functionStats: options.functionStats,
    onMessage: options.onMessage,
  });
  return { queue, deadLetterQueue, mapping };
};

export const eventQueueStats = ({ queue, deadLetterQueue, mapping }: EventQueue): EventQueueStats => ({
  queue: { ...queue.stats(), visible: queue.visible, inFlight: queue.inFlight },
  deadLetterQueue: { ...deadLetterQueue.stats(), visible: deadLetterQueue.visible },
  mapping: mapping.stats(),
});
