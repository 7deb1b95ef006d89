import {
  CapacityError,
  ConflictError,
  DependencyError,
  IncorrectStateError,
  NotFoundError,
  ThrottledError,
  type WarmbootError,
} from './errors';

/**
 * The one place that sorts AWS error codes. Adapters call `translateAwsError` where the SDK is
 * called; domain code only ever sees the typed errors from errors.ts.
 * Codes follow the EC2 API error-code reference (docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html),
 * the SSM API reference and the DynamoDB developer guide (Programming.Errors).
 */
export type AwsErrorKind =
  | 'not-found'
  | 'throttled'
  | 'insufficient-capacity'
  | 'incorrect-state'
  | 'conditional-check-failed'
  | 'transaction-conflict'
  | 'limit-exceeded'
  | 'invalid-parameter'
  | 'unauthorized'
  | 'internal'
  | 'unknown';

const THROTTLED = new Set([
  'RequestLimitExceeded',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
  'EC2ThrottledException',
  'LimitExceededException',
]);

const CAPACITY = new Set([
  'InsufficientInstanceCapacity',
  'InsufficientHostCapacity',
  'InsufficientCapacity',
  'InsufficientReservedInstanceCapacity',
  'InsufficientAddressCapacity',
  'InsufficientVolumeCapacity',
  'Unsupported',
]);

const INCORRECT_STATE = new Set([
  'IncorrectInstanceState',
  'IncorrectState',
  'IncorrectSpotRequestState',
  'InvalidInstanceState',
  'VolumeInUse',
  'InvalidVolume.NotAttached',
  'InvalidAttachment.NotFound',
  'InvalidVolume.ZoneMismatch',
  'InvalidInstanceId',
  'InvalidDocumentOperation',
  'InvalidInstanceInformationFilterValue',
]);

const NOT_FOUND_SUFFIX = ['.NotFound', '.Malformed.NotFound'];
const NOT_FOUND = new Set([
  'ResourceNotFoundException',
  'InvalidInstanceID.NotFound',
  'InvalidVolume.NotFound',
  'InvalidSnapshot.NotFound',
  'InvalidAMIID.NotFound',
  'InvalidAMIID.Unavailable',
  'InvalidHostID.NotFound',
  'InvalidDocument',
  'InvalidCommandId',
  'InvocationDoesNotExist',
  'ParameterNotFound',
]);

const LIMIT = new Set([
  'AttachmentLimitExceeded',
  'InstanceLimitExceeded',
  'VolumeLimitExceeded',
  'SnapshotLimitExceeded',
  'MaxSpotInstanceCountExceeded',
  'VcpuLimitExceeded',
  'ResourceLimitExceeded',
]);

const INTERNAL = new Set([
  'InternalError',
  'InternalFailure',
  'ServiceUnavailable',
  'InternalServerError',
  'Unavailable',
]);

const codeOf = (error: unknown): string | undefined => {
  if (typeof error !== 'object' || error === null) return undefined;
  const candidate = error as { name?: unknown; Code?: unknown; code?: unknown };
  if (typeof candidate.Code === 'string') return candidate.Code;
  if (typeof candidate.name === 'string' && candidate.name !== 'Error') return candidate.name;
  if (typeof candidate.code === 'string') return candidate.code;
  return undefined;
};

export const awsErrorCode = (error: unknown): string => codeOf(error) ?? 'Unknown';

export const classifyAwsError = (error: unknown): AwsErrorKind => {
  const code = codeOf(error);
  if (code === undefined) return 'unknown';
  if (code === 'ConditionalCheckFailedException') return 'conditional-check-failed';
  if (code === 'TransactionCanceledException') {
    const reasons = (error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? [];
    return reasons.some((reason) => reason.Code === 'ConditionalCheckFailed')
      ? 'conditional-check-failed'
      : 'transaction-conflict';
  }
  if (code === 'TransactionConflictException') return 'transaction-conflict';
  if (THROTTLED.has(code)) return 'throttled';
  if (CAPACITY.has(code)) return 'insufficient-capacity';
  if (INCORRECT_STATE.has(code)) return 'incorrect-state';
  if (NOT_FOUND.has(code) || NOT_FOUND_SUFFIX.some((suffix) => code.endsWith(suffix))) return 'not-found';
  if (LIMIT.has(code)) return 'limit-exceeded';
  if (code === 'UnauthorizedOperation' || code === 'AccessDeniedException' || code === 'AuthFailure') {
    return 'unauthorized';
  }
  if (INTERNAL.has(code)) return 'internal';
  if (code.startsWith('Invalid') || code === 'ValidationException' || code === 'MissingParameter') {
    return 'invalid-parameter';
  }
  return 'unknown';
};

export const isNotFound = (error: unknown): boolean => classifyAwsError(error) === 'not-found';
export const isThrottled = (error: unknown): boolean => classifyAwsError(error) === 'throttled';
export const isInsufficientCapacity = (error: unknown): boolean =>
  classifyAwsError(error) === 'insufficient-capacity';
export const isIncorrectState = (error: unknown): boolean => classifyAwsError(error) === 'incorrect-state';
export const isConditionalCheckFailed = (error: unknown): boolean =>
  classifyAwsError(error) === 'conditional-check-failed';
/** Worth another attempt later (by a reconcile or a retry), as opposed to a permanent refusal. */
export const isTransient = (error: unknown): boolean => {
  const kind = classifyAwsError(error);
  return kind === 'throttled' || kind === 'internal' || kind === 'transaction-conflict';
};

/** Translate an SDK exception into the typed error the domain understands, keeping the cause. */
export const translateAwsError = (operation: string, error: unknown): WarmbootError => {
  const code = awsErrorCode(error);
  const message = `${operation} failed: ${code}: ${error instanceof Error ? error.message : String(error)}`;
  switch (classifyAwsError(error)) {
    case 'not-found':
      return new NotFoundError(message, { cause: error });
    case 'throttled':
      return new ThrottledError(message, { cause: error });
    case 'insufficient-capacity':
      return new CapacityError(message, { cause: error });
    case 'incorrect-state':
      return new IncorrectStateError(message, { cause: error });
    case 'conditional-check-failed':
    case 'transaction-conflict':
      return new ConflictError(message, { cause: error });
    default:
      return new DependencyError(message, { cause: error });
  }
};

/** Run an SDK call and translate any failure. Adapters wrap every call with this. */
export const callAws = async <T>(operation: string, call: () => Promise<T>): Promise<T> => {
  try {
    return await call();
  } catch (error) {
    throw translateAwsError(operation, error);
  }
};
