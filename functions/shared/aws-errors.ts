import {
  CapacityError,
  ConditionFailedError,
  DependencyError,
  EncryptionKeyError,
  falseIfConditionFailed,
  IncorrectStateError,
  NotFoundError,
  ThrottledError,
  TransactionConflictError,
  WarmbootError,
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
  | 'encryption-key'
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
  // AttachVolume of an encrypted volume whose KMS key EC2 cannot use for the caller (no kms:*
  // permission on it, or the key disabled): the code EC2 answers in reported cases.
  if (code === 'CustomerKeyHasBeenRevoked') return 'encryption-key';
  if (INTERNAL.has(code)) return 'internal';
  if (code.startsWith('Invalid') || code === 'ValidationException' || code === 'MissingParameter') {
    return 'invalid-parameter';
  }
  return 'unknown';
};

/**
 * An instance's state reason (API_StateReason) when EC2 ended its launch or start because it could
 * not use an encrypted volume's KMS key: `Client.InternalError` ("Client error on launch", the
 * caller lacks the KMS permissions: re:Post knowledge center "kms-iam-ec2-permission") or
 * `Client.InvalidKMSKey.*` (the key is disabled, pending deletion or gone).
 */
export const isEncryptionKeyStateReason = (code: string | undefined): boolean =>
  code === 'Client.InternalError' || (code?.startsWith('Client.InvalidKMSKey') ?? false);

export const isThrottled = (error: unknown): boolean => classifyAwsError(error) === 'throttled';

/** The SDK error a typed error was translated from (callAws keeps it as the cause), or the error itself. */
const sdkCauseOf = (error: unknown): unknown =>
  error instanceof WarmbootError && error.cause !== undefined ? error.cause : error;

/**
 * DescribeInstances refused an instance id it does not know: `InvalidInstanceID.NotFound` (EC2 is
 * eventually consistent right after a launch, and forgets terminated instances after about an
 * hour) or `InvalidInstanceID.Malformed` (EC2 API reference, "Error codes"). For an AWS event
 * about that instance there is nothing to act on, so callers treat it as absent, not as a failure
 * to retry. Only for reads: a destructive call must never take a malformed id for a gone instance.
 */
export const isUnknownInstance = (error: unknown): boolean => {
  const code = awsErrorCode(sdkCauseOf(error));
  return code === 'InvalidInstanceID.NotFound' || code === 'InvalidInstanceID.Malformed';
};

/**
 * RunInstances asked for a private IPv4 address that another network interface holds
 * (`InvalidIPAddress.InUse`, EC2 API reference "Error codes"): the launch can go ahead without it.
 */
export const isAddressInUse = (error: unknown): boolean =>
  awsErrorCode(sdkCauseOf(error)) === 'InvalidIPAddress.InUse';

/** Worth another attempt later (by a reconcile or a retry), as opposed to a permanent refusal. */
export const isTransient = (error: unknown): boolean => {
  const kind = classifyAwsError(error);
  return kind === 'throttled' || kind === 'internal' || kind === 'transaction-conflict';
};

/**
 * Whether a failed mutating call may still have taken effect, so that a retry must repeat it
 * with the same client token rather than make a new request. EC2's retry recommendations for
 * idempotent requests (ec2-api-idempotency, "Retry recommendations"): a 400-series answer means
 * the request was refused as it stands; a 500-series one is a server-side issue after which the
 * request is repeated; a timeout or a lost connection says nothing either way. Throttling
 * (RequestLimitExceeded, HTTP 503) is a refusal before any work (ec2-api-throttling). Takes the
 * typed error (its SDK cause) or the SDK error itself; a warmboot error with no SDK cause was
 * raised before any call, so nothing happened.
 */
export const mayHaveTakenEffect = (error: unknown): boolean => {
  let sdkError = error;
  while (sdkError instanceof WarmbootError) sdkError = sdkError.cause;
  if (sdkError === undefined) return false;
  const kind = classifyAwsError(sdkError);
  if (kind === 'throttled') return false;
  if (kind === 'internal') return true;
  const status = (sdkError as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata?.httpStatusCode;
  return typeof status !== 'number' || status >= 500;
};

/** The typed error of each kind; every other kind is a DependencyError. */
const TYPED_ERRORS: Partial<
  Record<AwsErrorKind, new (message: string, options: { cause: unknown }) => WarmbootError>
> = {
  'not-found': NotFoundError,
  throttled: ThrottledError,
  'insufficient-capacity': CapacityError,
  'incorrect-state': IncorrectStateError,
  'conditional-check-failed': ConditionFailedError,
  'transaction-conflict': TransactionConflictError,
  'encryption-key': EncryptionKeyError,
};

/** Translate an SDK exception into the typed error the domain understands, keeping the cause. */
export const translateAwsError = (operation: string, error: unknown): WarmbootError => {
  const code = awsErrorCode(error);
  const message = `${operation} failed: ${code}: ${error instanceof Error ? error.message : String(error)}`;
  const TypedError = TYPED_ERRORS[classifyAwsError(error)] ?? DependencyError;
  return new TypedError(message, { cause: error });
};

/** Run an SDK call and translate any failure. Adapters wrap every call with this. */
export const callAws = async <T>(operation: string, call: () => Promise<T>): Promise<T> => {
  try {
    return await call();
  } catch (error) {
    throw translateAwsError(operation, error);
  }
};

/**
 * A conditional DynamoDB write through callAws, with the one convention every store follows:
 * true when written, false when its condition failed (someone else changed the item first,
 * `ConditionFailedError`); anything else, a transaction conflict included, is thrown typed.
 */
export const conditionalWrite = (operation: string, call: () => Promise<unknown>): Promise<boolean> =>
  callAws(operation, call).then(() => true, falseIfConditionFailed);

/**
 * A conditional DynamoDB write that asked for the item its condition found
 * (`ReturnValuesOnConditionCheckFailure: 'ALL_OLD'`): the answer when written, else the item as
 * it stands, in DynamoDB's typed form (`{ N: '5' }`, even through the document client; undefined:
 * there is none), so the caller decides again without reading it first.
 * Anything but a failed condition is thrown typed, as conditionalWrite does.
 */
export const conditionalWriteOrFound = async <Answer>(
  operation: string,
  call: () => Promise<Answer>,
): Promise<
  | { readonly written: true; readonly answer: Answer }
  | { readonly written: false; readonly found: Readonly<Record<string, unknown>> | undefined }
> => {
  try {
    return { written: true, answer: await callAws(operation, call) };
  } catch (error) {
    falseIfConditionFailed(error);
    return { written: false, found: (sdkCauseOf(error) as { Item?: Record<string, unknown> }).Item };
  }
};
