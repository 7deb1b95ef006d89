/**
 * Typed errors. Every error warmboot raises on purpose is one of these; SDK exceptions are
 * translated into them at the adapter boundary (see aws-errors.ts) and never leak upward.
 */
export class WarmbootError extends Error {
  /** Stable machine-readable code, carried into per-item results and published events. */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WarmbootError';
    this.code = code;
  }
}

/** Input that does not satisfy a schema. `field` is the dotted path of the first offending field. */
export class ValidationError extends WarmbootError {
  readonly field: string;
  readonly issues: readonly { field: string; message: string }[];
  constructor(field: string, message: string, issues?: readonly { field: string; message: string }[]) {
    super('ValidationError', `${field}: ${message}`);
    this.name = 'ValidationError';
    this.field = field;
    this.issues = issues ?? [{ field, message }];
  }
}

/** A required environment variable or CDK context value is missing or malformed. */
export class ConfigError extends WarmbootError {
  readonly key: string;
  constructor(key: string, message: string) {
    super('ConfigError', `${key}: ${message}`);
    this.name = 'ConfigError';
    this.key = key;
  }
}

/**
 * A WarmbootError class with a fixed code. `name` is the class's name (logs and stack traces show
 * it); it is written out because bundling may rename classes.
 */
const errorClass = (name: string, code: string) =>
  class extends WarmbootError {
    constructor(message: string, options?: { cause?: unknown }) {
      super(code, message, options);
      this.name = name;
    }
  };

export class NotFoundError extends errorClass('NotFoundError', 'NotFound') {}

/** A conditional write lost a race, or a resource is not in the state the operation needs. */
export class ConflictError extends errorClass('ConflictError', 'Conflict') {}

/**
 * A DynamoDB condition was false (ConditionalCheckFailedException, or a transaction cancelled
 * for ConditionalCheckFailed): someone else changed the item first. Final for this attempt; the
 * caller re-reads, it does not retry the same write.
 */
export class ConditionFailedError extends ConflictError {
  override name = 'ConditionFailedError';
}

/**
 * The one conditional-write convention (conditionalWrite), for a write whose error is already
 * typed (a store call, a retried one): false when its condition failed, anything else thrown again.
 */
export const falseIfConditionFailed = (error: unknown): false => {
  if (error instanceof ConditionFailedError) return false;
  throw error;
};

/**
 * A DynamoDB transaction collided with another one on an item (TransactionConflict,
 * TransactionInProgress): nothing was written and the same write may succeed when retried.
 */
export class TransactionConflictError extends ConflictError {
  override name = 'TransactionConflictError';
}

/** The operation touches a resource warmboot does not manage (missing management tags). */
export class UnmanagedResourceError extends errorClass('UnmanagedResourceError', 'UnmanagedResource') {}

/** EC2 had no capacity for the request in the chosen place. */
export class CapacityError extends errorClass('CapacityError', 'InsufficientCapacity') {}

/** A call kept being throttled after the retry budget was spent. */
export class ThrottledError extends errorClass('ThrottledError', 'Throttled') {}

/** The resource is in a state the operation cannot act on (EC2 IncorrectState family). */
export class IncorrectStateError extends errorClass('IncorrectStateError', 'IncorrectState') {}

/**
 * EC2 could not use the KMS key of an encrypted EBS volume for warmboot's role: the key is not in
 * the deployment's `ebsKmsKeyArns` (no kms:* permission on it), or it is disabled or being deleted.
 */
export class EncryptionKeyError extends errorClass('EncryptionKeyError', 'EncryptionKeyUnusable') {}

/** Any other failure of a dependency; the message keeps the AWS error code. */
export class DependencyError extends errorClass('DependencyError', 'DependencyError') {}

export const errorMessage = (error: unknown): string =>
  error instanceof Error ? error.message : String(error);
