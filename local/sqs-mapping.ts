import type { SQSEvent, SQSRecord } from 'aws-lambda';
import type { EventBatching } from '../functions/catalog';
import type { VirtualClock } from './clock';
import type { Environment, FunctionStats, LambdaFunction } from './lambda-service';
import { SimulatedAwsError } from './sdk-bridge';
import type { LocalQueue, ReceivedMessage } from './sqs';

/**
 * Lambda quotas: invocation payload "6 MB each for request and response" (synchronous); the
 * Invoke API refuses a larger request with "Request must be smaller than 6291456 bytes".
 */
export const MAX_BATCH_PAYLOAD_BYTES = 6_291_456;
/** ReceiveMessage: MaxNumberOfMessages "Valid values: 1 to 10"; WaitTimeSeconds at most 20 (long polling). */
const MESSAGES_PER_RECEIVE = 10;
const LONG_POLL_MS = 20_000;
/**
 * Lambda developer guide, services-sqs-scaling: "Lambda starts processing five batches at a
 * time with five concurrent invocations ... increases the number of processes that are reading
 * batches by up to 300 more instances per minute. The maximum number of batches that an event
 * source mapping can process simultaneously is 1,000."
 */
const INITIAL_BATCHES = 5;
const MORE_BATCHES_PER_MINUTE = 300;
const MAX_BATCHES = 1_000;
/** `{"Records":[` … `]}` around the records. */
const EVENT_OVERHEAD_BYTES = 14;

/** What became of one message of a batch invocation. */
export interface MessageOutcome {
  readonly invocationId: string;
  readonly messageId: string;
  readonly body: string;
  /** ApproximateReceiveCount of this delivery: 1 the first time. */
  readonly receiveCount: number;
  readonly batchSize: number;
  /** `succeeded`: deleted from the queue; otherwise it returns after the visibility timeout. */
  readonly outcome: 'succeeded' | 'failed' | 'crashed';
  readonly result?: unknown;
  readonly error?: string;
}

export interface MappingStats {
  /** Batch invocations, one per batch run (a throttled batch that gave up is not one). */
  batches: number;
  /** The size of every batch invoked, in order. */
  batchSizes: number[];
  /** Messages passed to the function, each delivery counted. */
  messages: number;
  /** Messages the function handled (deleted from the queue). */
  succeededMessages: number;
  /** Messages returned to the queue: listed in `batchItemFailures`, or their whole batch failed. */
  failedMessages: number;
  /** Batches Lambda read as complete failures: an error, a timeout, a crash or an invalid answer. */
  failedBatches: number;
  /** Batches that found no free environment (reserved concurrency) and waited. */
  throttledBatches: number;
  /** Throttled batches given up when their visibility timeout ran out (the messages return). */
  abandonedBatches: number;
}

export interface SqsMappingOptions {
  readonly clock: VirtualClock;
  readonly region: string;
  readonly queue: LocalQueue;
  readonly lambda: LambdaFunction;
  /** BatchSize, MaximumBatchingWindowInSeconds, ScalingConfig.MaximumConcurrency. */
  readonly batching: EventBatching;
  readonly functionTimeoutSeconds: number;
  /** The function's stats (invocations and throttles are shared with its rules' async invokes). */
  readonly functionStats: FunctionStats;
  readonly onMessage: (outcome: MessageOutcome) => void;
}

/** A poller's batch while it gathers: its window runs from the first message. */
interface Gathering {
  readonly messages: ReceivedMessage[];
  bytes: number;
  readonly startedAt: number;
  readonly windowEnd: number;
  /** When the poller's current long poll returns empty-handed. */
  pollEnd: number;
  done: boolean;
}

type BatchAnswer =
  | { readonly ok: true; readonly failed: ReadonlySet<string> }
  | { readonly ok: false; readonly error: string };

const invalid = (message: string): SimulatedAwsError =>
  new SimulatedAwsError('InvalidParameterValueException', message);

/**
 * CreateEventSourceMapping's checks for an SQS source (Lambda API reference,
 * CreateEventSourceMapping / ScalingConfig; developer guide, services-sqs-configure).
 */
const checkMapping = (batching: EventBatching, timeoutSeconds: number, queue: LocalQueue): void => {
  const { size, windowSeconds, maxConcurrency } = batching;
  if (!Number.isInteger(size) || size < 1 || size > 10_000)
    throw invalid(`BatchSize ${size}: for a standard queue "the max is 10,000"`);
  if (!Number.isInteger(windowSeconds) || windowSeconds < 0 || windowSeconds > 300)
    throw invalid(
      `MaximumBatchingWindowInSeconds ${windowSeconds}: "any value from 0 seconds to 300 seconds"`,
    );
  if (size > 10 && windowSeconds < 1)
    throw invalid(
      `BatchSize ${size}: "When you set BatchSize to a value greater than 10, you must set MaximumBatchingWindowInSeconds to at least 1"`,
    );
  if (!Number.isInteger(maxConcurrency) || maxConcurrency < 2 || maxConcurrency > 1_000)
    throw invalid(`MaximumConcurrency ${maxConcurrency}: "Minimum value of 2. Maximum value of 1000"`);
  if (timeoutSeconds > queue.visibilityTimeoutSeconds)
    throw invalid(
      `function timeout ${timeoutSeconds} s exceeds the visibility timeout of ${queue.name} (${queue.visibilityTimeoutSeconds} s): "Your function's timeout must be less than or equal to the queue's visibility timeout"`,
    );
};

/**
 * Reads a partial batch response (Lambda developer guide, services-sqs-errorhandling, success and
 * failure conditions): "an empty batchItemFailures list", "a null batchItemFailures list", "an
 * empty EventResponse" or "a null EventResponse" is a complete success; "an invalid JSON
 * response", "an empty string itemIdentifier", "a null itemIdentifier", "an itemIdentifier with
 * a bad key name" or "an itemIdentifier value with a message ID that doesn't exist" is a complete
 * failure. An answer that is not an object at all (a string, a number) is taken as invalid too:
 * stricter than the page, which does not say.
 */
export const readBatchAnswer = (answer: unknown, messageIds: ReadonlySet<string>): BatchAnswer => {
  if (answer === undefined || answer === null) return { ok: true, failed: new Set() };
  if (typeof answer !== 'object' || Array.isArray(answer))
    return { ok: false, error: 'invalid batch response: not an object' };
  const failures = (answer as { batchItemFailures?: unknown }).batchItemFailures;
  if (failures === undefined || failures === null) return { ok: true, failed: new Set() };
  if (!Array.isArray(failures))
    return { ok: false, error: 'invalid batch response: batchItemFailures is not a list' };
  const failed = new Set<string>();
  for (const failure of failures) {
    if (typeof failure !== 'object' || failure === null || !('itemIdentifier' in failure))
      return { ok: false, error: 'invalid batch response: an item has no itemIdentifier' };
    const id = (failure as { itemIdentifier: unknown }).itemIdentifier;
    if (typeof id !== 'string' || id === '')
      return { ok: false, error: 'invalid batch response: an itemIdentifier is empty or null' };
    if (!messageIds.has(id)) return { ok: false, error: `invalid batch response: ${id} is not in the batch` };
    failed.add(id);
  }
  return { ok: true, failed };
};

/**
 * An SQS event source mapping (Lambda developer guide, "Using Lambda with Amazon SQS"): pollers
 * read the function's event queue and invoke it synchronously, through its rule alias, with
 * batches of messages, "once for each batch"; a batch that succeeds is deleted; a failed one,
 * or the messages the function lists in `batchItemFailures`, stay hidden until the visibility
 * timeout runs out and are then received again (redrive to the dead-letter queue is the
 * queue's, local/sqs.ts). Everything runs on the virtual clock.
 */
export class SqsEventSourceMapping {
  readonly #options: SqsMappingOptions;
  readonly #windowMs: number;
  /** Pollers holding a batch they are still gathering, in round-robin order. */
  #gathering: Gathering[] = [];
  /** Which free poller the next receive goes to. */
  #nextPoller = 0;
  /** Batches invoked (or waiting for an environment) and not yet finished. */
  #running = 0;
  /** Since when messages have been waiting, for the scaling ramp. */
  #busySince: number | undefined;
  readonly #stats: MappingStats = {
    batches: 0,
    batchSizes: [],
    messages: 0,
    succeededMessages: 0,
    failedMessages: 0,
    failedBatches: 0,
    throttledBatches: 0,
    abandonedBatches: 0,
  };

  constructor(options: SqsMappingOptions) {
    checkMapping(options.batching, options.functionTimeoutSeconds, options.queue);
    this.#options = options;
    this.#windowMs = options.batching.windowSeconds * 1000;
    options.queue.onVisible(() => this.#poll());
    this.#poll();
  }

  stats(): Readonly<MappingStats> {
    return { ...this.#stats, batchSizes: [...this.#stats.batchSizes] };
  }

  /**
   * How many batches may be in flight: the scaling ramp (five, then up to 300 more a minute while
   * messages keep waiting, at most 1,000), never above MaximumConcurrency ("Limits the number of
   * concurrent instances that the Amazon SQS event source can invoke").
   */
  #concurrency(): number {
    const now = this.#options.clock.now();
    const minutes = this.#busySince === undefined ? 0 : Math.floor((now - this.#busySince) / 60_000);
    const ramp = Math.min(MAX_BATCHES, INITIAL_BATCHES + MORE_BATCHES_PER_MINUTE * minutes);
    return Math.min(this.#options.batching.maxConcurrency, ramp);
  }

  /**
   * The free pollers' long polls return as soon as messages are visible, each ReceiveMessage
   * taking up to ten; the messages are spread over the free pollers in turn, each gathering its
   * own batch. A batch is invoked when it is full, when its payload reaches 6 MB, or at the first
   * poll return after its window (developer guide, with-sqs: "Lambda continues to poll messages
   * from the SQS standard queue until the batch window expires, the invocation payload size
   * quota is reached, or the configured maximum batch size is reached").
   */
  #poll(): void {
    const { queue, clock } = this.#options;
    if (queue.visible > 0) this.#busySince ??= clock.now();
    for (;;) {
      const pollers = this.#concurrency() - this.#running;
      if (pollers <= 0 || queue.visible === 0) break;
      // The next poller in turn; an idle one (past the gathering ones) starts a batch.
      const index = Math.min(this.#nextPoller % pollers, this.#gathering.length);
      this.#nextPoller = index + 1;
      const batch = this.#gathering[index] ?? this.#startGathering();
      const room = Math.min(MESSAGES_PER_RECEIVE, this.#options.batching.size - batch.messages.length);
      const received = queue.receive(room, (message) => {
        const bytes = Buffer.byteLength(JSON.stringify(this.#record(message)), 'utf8') + 1;
        if (EVENT_OVERHEAD_BYTES + batch.bytes + bytes > MAX_BATCH_PAYLOAD_BYTES) return false;
        batch.bytes += bytes;
        return true;
      });
      batch.messages.push(...received);
      if (batch.messages.length === 0) {
        // Everything visible had expired or moved to the dead-letter queue: nothing to gather.
        this.#drop(batch);
        continue;
      }
      const payloadFull = received.length < room && queue.visible > 0;
      const full = batch.messages.length >= this.#options.batching.size;
      if (full || payloadFull || clock.now() >= batch.windowEnd) this.#invoke(batch);
      else batch.pollEnd = this.#pollEnd(batch);
    }
    if (queue.visible === 0 && this.#running === 0 && this.#gathering.length === 0)
      this.#busySince = undefined;
  }

  #startGathering(): Gathering {
    const now = this.#options.clock.now();
    const batch: Gathering = {
      messages: [],
      bytes: 0,
      startedAt: now,
      windowEnd: now + this.#windowMs,
      pollEnd: now,
      done: false,
    };
    this.#gathering.push(batch);
    if (this.#windowMs > 0) this.#armPollTimer(batch);
    return batch;
  }

  /**
   * A poller whose long poll finds nothing waits the full 20 s before it returns, so with little
   * traffic a batch can wait past its window (with-sqs: "If you're using a batch window and your
   * SQS queue contains very low traffic, Lambda might wait for up to 20 seconds before invoking
   * your function. This is true even if you set a batch window lower than 20 seconds."). Modelled
   * as that worst case, and never later than 20 s after the batch's first message or its window.
   */
  #pollEnd(batch: Gathering): number {
    const now = this.#options.clock.now();
    return Math.min(now + LONG_POLL_MS, Math.max(batch.windowEnd, batch.startedAt + LONG_POLL_MS));
  }

  #armPollTimer(batch: Gathering): void {
    const { clock } = this.#options;
    batch.pollEnd = this.#pollEnd(batch);
    const fire = (): void => {
      if (batch.done) return;
      if (clock.now() < batch.pollEnd) {
        clock.at(batch.pollEnd, fire);
        return;
      }
      if (clock.now() >= batch.windowEnd) {
        this.#invoke(batch);
        this.#poll();
        return;
      }
      batch.pollEnd = this.#pollEnd(batch);
      clock.at(batch.pollEnd, fire);
    };
    clock.at(batch.pollEnd, fire);
  }

  #record(message: ReceivedMessage): SQSRecord {
    return {
      messageId: message.messageId,
      receiptHandle: message.receiptHandle,
      body: message.body,
      attributes: { ...message.attributes },
      messageAttributes: {},
      md5OfBody: message.md5OfBody,
      eventSource: 'aws:sqs',
      eventSourceARN: this.#options.queue.arn,
      awsRegion: this.#options.region,
    };
  }

  /**
   * Runs a gathered batch in a free execution environment. With none free (reserved concurrency
   * in use), Lambda retries "until the message's timestamp exceeds your queue's visibility
   * timeout, at which point Lambda drops the message" (services-sqs-errorhandling, throttling):
   * the batch waits for an environment and is given up when its visibility timeout runs out.
   */
  #drop(batch: Gathering): void {
    batch.done = true;
    this.#gathering.splice(this.#gathering.indexOf(batch), 1);
  }

  #invoke(batch: Gathering): void {
    this.#drop(batch);
    this.#running += 1;
    const { lambda, clock, functionStats } = this.#options;
    const environment = lambda.acquire();
    if (environment) {
      void this.#run(batch, environment);
      return;
    }
    functionStats.throttled += 1;
    this.#stats.throttledBatches += 1;
    // The batch's first message was received when it started gathering: it reappears first.
    const hiddenUntil = batch.startedAt + this.#options.queue.visibilityTimeoutSeconds * 1000;
    let cancelWait = (): void => undefined;
    const tryAgain = (): void => {
      const free = lambda.acquire();
      if (!free) {
        cancelWait = lambda.wait(tryAgain);
        return;
      }
      cancelGiveUp();
      void this.#run(batch, free);
    };
    cancelWait = lambda.wait(tryAgain);
    const cancelGiveUp = clock.at(hiddenUntil, () => {
      cancelWait();
      this.#stats.abandonedBatches += 1;
      this.#running -= 1;
      this.#poll();
    });
  }

  async #run(batch: Gathering, environment: Environment): Promise<void> {
    const { lambda, queue, functionStats } = this.#options;
    const records = batch.messages.map((message) => this.#record(message));
    const event: SQSEvent = { Records: records };
    this.#stats.batches += 1;
    this.#stats.batchSizes.push(records.length);
    this.#stats.messages += records.length;
    if (batch.messages.some((message) => message.attributes.ApproximateReceiveCount !== '1')) {
      functionStats.retries += 1;
    }
    const attempt = await lambda.run(environment, event);
    const answer: BatchAnswer =
      attempt.outcome === 'succeeded'
        ? readBatchAnswer(attempt.result, new Set(records.map((record) => record.messageId)))
        : { ok: false, error: attempt.error ?? 'unknown' };
    if (answer.ok) functionStats.succeeded += 1;
    else {
      functionStats.errors += 1;
      this.#stats.failedBatches += 1;
      if (attempt.outcome === 'crashed') functionStats.crashes += 1;
    }
    for (const message of batch.messages) {
      const handled = answer.ok && !answer.failed.has(message.messageId);
      if (handled) {
        queue.delete(message.receiptHandle, message.messageId);
        this.#stats.succeededMessages += 1;
      } else {
        this.#stats.failedMessages += 1;
      }
      this.#options.onMessage({
        invocationId: attempt.invocationId,
        messageId: message.messageId,
        body: message.body,
        receiveCount: Number(message.attributes.ApproximateReceiveCount),
        batchSize: records.length,
        outcome: handled ? 'succeeded' : attempt.outcome === 'crashed' ? 'crashed' : 'failed',
        ...(attempt.result !== undefined ? { result: attempt.result } : {}),
        ...(handled ? {} : { error: answer.ok ? 'listed in batchItemFailures' : answer.error }),
      });
    }
    this.#running -= 1;
    this.#poll();
  }
}
