import { createHash } from 'node:crypto';
import type { VirtualClock } from './clock';
import type { IdGenerator } from './ec2/ids';
import { SimulatedAwsError } from './sdk-bridge';

/**
 * SQS's default message size limit, 256 KiB. SendMessage now accepts up to 1 MiB (SQS API
 * reference, SendMessage MessageBody: "The maximum size is 1 MiB or 1,048,576 bytes") where a
 * queue's MaximumMessageSize allows it, but the attribute's default has been 262,144 bytes; the
 * stack sets none, so the local queue keeps the smaller limit (stricter when unsure).
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 262_144;
/** SQS developer guide, quotas-messages, Message retention: "By default, a message is retained for 4 days." */
export const DEFAULT_RETENTION_SECONDS = 345_600;

export interface QueueOptions {
  readonly clock: VirtualClock;
  readonly ids: IdGenerator;
  readonly name: string;
  readonly region: string;
  readonly accountId: string;
  readonly visibilityTimeoutSeconds: number;
  readonly retentionSeconds?: number;
  readonly maxMessageBytes?: number;
  /** The redrive policy: after `maxReceiveCount` receives, the next receive moves a message there. */
  readonly redrive?: {
    readonly deadLetterQueue: LocalQueue;
    readonly maxReceiveCount: number;
    /** Told of every message moved, e.g. to report it as a dead letter. */
    readonly onMove?: (moved: {
      readonly messageId: string;
      readonly body: string;
      readonly receiveCount: number;
    }) => void;
  };
}

/** A message as ReceiveMessage returns it with `AttributeNames: All`, which Lambda's pollers read. */
export interface ReceivedMessage {
  readonly messageId: string;
  readonly receiptHandle: string;
  readonly body: string;
  readonly md5OfBody: string;
  readonly attributes: {
    readonly ApproximateReceiveCount: string;
    readonly SentTimestamp: string;
    readonly SenderId: string;
    readonly ApproximateFirstReceiveTimestamp: string;
  };
}

export interface QueueStats {
  /** Messages SendMessage accepted (a dead-letter queue counts the ones moved in). */
  sent: number;
  /** SendMessage calls refused (message too long). */
  refused: number;
  /** Messages handed out by ReceiveMessage, every receive of a message counted. */
  received: number;
  deleted: number;
  /** Messages whose visibility timeout ran out before they were deleted (they are visible again). */
  returned: number;
  /** Messages moved to the dead-letter queue by the redrive policy. */
  movedToDeadLetter: number;
  /** Messages deleted by SQS because they outlived the retention period. */
  expired: number;
}

interface StoredMessage {
  readonly messageId: string;
  readonly body: string;
  readonly md5OfBody: string;
  readonly senderId: string;
  /** The enqueue time; it stays the same when the message moves to a dead-letter queue. */
  readonly sentAt: number;
  receiveCount: number;
  firstReceivedAt: number | undefined;
  /** The handle of the latest receive: only it deletes the message. */
  receiptHandle: string | undefined;
}

/** The messages one ReceiveMessage made invisible: they come back together unless deleted. */
interface ReceivedTogether {
  readonly messages: StoredMessage[];
  pending: number;
  cancel: () => void;
}

/**
 * One SQS standard queue on the virtual clock: SendMessage, ReceiveMessage (with the visibility
 * timeout, ApproximateReceiveCount and the redrive policy), DeleteMessage and retention, as Lambda's
 * event source mapping uses them (local/sqs-mapping.ts). Message order is kept, which a standard
 * queue does not promise ("best-effort ordering"); the handlers must not rely on it and do not.
 */
export class LocalQueue {
  readonly name: string;
  readonly arn: string;
  readonly visibilityTimeoutSeconds: number;
  readonly #options: QueueOptions;
  readonly #retentionMs: number;
  readonly #maxMessageBytes: number;
  /** Visible messages in order; `#head` skips the ones already taken. */
  #visible: StoredMessage[] = [];
  #head = 0;
  readonly #inFlight = new Map<string, { message: StoredMessage; together: ReceivedTogether }>();
  readonly #listeners = new Set<() => void>();
  readonly #stats: QueueStats = {
    sent: 0,
    refused: 0,
    received: 0,
    deleted: 0,
    returned: 0,
    movedToDeadLetter: 0,
    expired: 0,
  };

  constructor(options: QueueOptions) {
    this.#options = options;
    this.name = options.name;
    this.arn = `arn:aws:sqs:${options.region}:${options.accountId}:${options.name}`;
    this.visibilityTimeoutSeconds = options.visibilityTimeoutSeconds;
    this.#retentionMs = (options.retentionSeconds ?? DEFAULT_RETENTION_SECONDS) * 1000;
    this.#maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  /**
   * SendMessage. A body longer than the queue's limit is refused as SQS refuses it
   * (InvalidParameterValue: "Message must be shorter than 262144 bytes"); nothing is stored.
   */
  send(body: string, senderId: string): string {
    const bytes = Buffer.byteLength(body, 'utf8');
    if (bytes > this.#maxMessageBytes) {
      this.#stats.refused += 1;
      throw new SimulatedAwsError(
        'InvalidParameterValue',
        `One or more parameters are invalid. Reason: Message must be shorter than ${this.#maxMessageBytes} bytes.`,
      );
    }
    return this.#enqueue({
      messageId: this.#options.ids.uuid(),
      body,
      md5OfBody: createHash('md5').update(body).digest('hex'),
      senderId,
      sentAt: this.#options.clock.now(),
      receiveCount: 0,
      firstReceivedAt: undefined,
      receiptHandle: undefined,
    });
  }

  /**
   * ReceiveMessage of up to `maxMessages` visible messages, each while `fits` accepts it (the
   * poller's payload budget). Each received message is hidden for the visibility timeout (Lambda
   * developer guide, with-sqs: "the messages stay in the queue but are hidden for the length of
   * the queue's visibility timeout") and gets a new receipt handle. A message already received
   * `maxReceiveCount` times moves to the dead-letter queue instead (SQS API reference,
   * SetQueueAttributes RedrivePolicy: the queue "to which Amazon SQS moves messages after the
   * value of maxReceiveCount is exceeded"), keeping its enqueue time (setting-up-dead-letter-queue-
   * retention: "When a message is moved to a dead-letter queue, the enqueue timestamp is
   * unchanged"); one older than the retention period is deleted (quotas-messages).
   */
  receive(maxMessages: number, fits: (message: ReceivedMessage) => boolean = () => true): ReceivedMessage[] {
    const now = this.#options.clock.now();
    const taken: StoredMessage[] = [];
    const answer: ReceivedMessage[] = [];
    while (answer.length < maxMessages && this.#head < this.#visible.length) {
      const message = this.#visible[this.#head] as StoredMessage;
      if (now - message.sentAt >= this.#retentionMs) {
        this.#head += 1;
        this.#stats.expired += 1;
        continue;
      }
      const redrive = this.#options.redrive;
      if (redrive && message.receiveCount >= redrive.maxReceiveCount) {
        this.#head += 1;
        this.#stats.movedToDeadLetter += 1;
        redrive.deadLetterQueue.#enqueue({ ...message, receiptHandle: undefined });
        redrive.onMove?.({
          messageId: message.messageId,
          body: message.body,
          receiveCount: message.receiveCount,
        });
        continue;
      }
      const receiptHandle = `AQEB${this.#options.ids.uuid().replaceAll('-', '')}`;
      const received = this.#view(message, receiptHandle, message.receiveCount + 1, now);
      if (!fits(received)) break;
      this.#head += 1;
      message.receiveCount += 1;
      message.firstReceivedAt ??= now;
      message.receiptHandle = receiptHandle;
      taken.push(message);
      answer.push(received);
    }
    this.#compact();
    if (taken.length > 0) this.#hide(taken, now);
    this.#stats.received += taken.length;
    return answer;
  }

  /**
   * DeleteMessage. Only the latest receipt handle deletes (SQS API reference, DeleteMessage: "you
   * must provide the most recently received ReceiptHandle for the message (otherwise, the request
   * succeeds, but the message might not be deleted)"); here an older handle never deletes.
   */
  delete(receiptHandle: string, messageId: string): void {
    const entry = this.#inFlight.get(messageId);
    if (!entry || entry.message.receiptHandle !== receiptHandle) return;
    this.#inFlight.delete(messageId);
    this.#stats.deleted += 1;
    entry.together.pending -= 1;
    if (entry.together.pending === 0) entry.together.cancel();
  }

  /** Called whenever messages become visible (sent, or back after the visibility timeout). */
  onVisible(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** ApproximateNumberOfMessagesVisible. */
  get visible(): number {
    return this.#visible.length - this.#head;
  }

  /** ApproximateNumberOfMessagesNotVisible (received, neither deleted nor back yet). */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  stats(): Readonly<QueueStats> {
    return { ...this.#stats };
  }

  /** The bodies of the visible messages, oldest first (e.g. what sits in a dead-letter queue). */
  peekBodies(): string[] {
    return this.#visible.slice(this.#head).map((message) => message.body);
  }

  #enqueue(message: StoredMessage): string {
    this.#visible.push(message);
    this.#stats.sent += 1;
    this.#notify();
    return message.messageId;
  }

  #view(message: StoredMessage, receiptHandle: string, receiveCount: number, now: number): ReceivedMessage {
    return {
      messageId: message.messageId,
      receiptHandle,
      body: message.body,
      md5OfBody: message.md5OfBody,
      attributes: {
        ApproximateReceiveCount: String(receiveCount),
        SentTimestamp: String(message.sentAt),
        SenderId: message.senderId,
        ApproximateFirstReceiveTimestamp: String(message.firstReceivedAt ?? now),
      },
    };
  }

  /** Hides `messages` until the visibility timeout runs out; the ones not deleted by then come back. */
  #hide(messages: StoredMessage[], now: number): void {
    const together: ReceivedTogether = { messages, pending: messages.length, cancel: () => undefined };
    for (const message of messages) this.#inFlight.set(message.messageId, { message, together });
    together.cancel = this.#options.clock.at(now + this.visibilityTimeoutSeconds * 1000, () => {
      let returned = 0;
      for (const message of messages) {
        const entry = this.#inFlight.get(message.messageId);
        if (entry?.together !== together) continue;
        this.#inFlight.delete(message.messageId);
        this.#visible.push(message);
        returned += 1;
      }
      this.#stats.returned += returned;
      if (returned > 0) this.#notify();
    });
  }

  #notify(): void {
    for (const listener of this.#listeners) listener();
  }

  /** Drops the taken prefix once it dominates, so a long run does not keep every message. */
  #compact(): void {
    if (this.#head > 1_024 && this.#head * 2 > this.#visible.length) {
      this.#visible = this.#visible.slice(this.#head);
      this.#head = 0;
    }
  }
}
