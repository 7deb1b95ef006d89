import { describe, expect, it } from 'vitest';
import {
  type AwsErrorKind,
  awsErrorCode,
  callAws,
  classifyAwsError,
  conditionalWrite,
  isEncryptionKeyStateReason,
  isTransient,
  mayHaveTakenEffect,
  translateAwsError,
} from '../../functions/shared/aws-errors';
import {
  CapacityError,
  ConflictError,
  DependencyError,
  IncorrectStateError,
  NotFoundError,
  ThrottledError,
  TransactionConflictError,
} from '../../functions/shared/errors';
import { SimulatedAwsError } from '../../local/sdk-bridge';

const aws = (code: string, extra: Record<string, unknown> = {}): Error =>
  Object.assign(new SimulatedAwsError(code, `${code} from AWS`), extra);

describe('the AWS error classifier', () => {
  it.each<[string, AwsErrorKind]>([
    ['RequestLimitExceeded', 'throttled'],
    ['ThrottlingException', 'throttled'],
    ['ProvisionedThroughputExceededException', 'throttled'],
    ['InsufficientInstanceCapacity', 'insufficient-capacity'],
    ['InsufficientHostCapacity', 'insufficient-capacity'],
    ['IncorrectInstanceState', 'incorrect-state'],
    ['VolumeInUse', 'incorrect-state'],
    ['InvalidVolume.ZoneMismatch', 'incorrect-state'],
    ['InvalidInstanceID.NotFound', 'not-found'],
    ['InvalidSnapshot.NotFound', 'not-found'],
    ['InvalidGroup.NotFound', 'not-found'],
    ['InvocationDoesNotExist', 'not-found'],
    ['ConditionalCheckFailedException', 'conditional-check-failed'],
    ['TransactionConflictException', 'transaction-conflict'],
    ['AttachmentLimitExceeded', 'limit-exceeded'],
    ['UnauthorizedOperation', 'unauthorized'],
    ['CustomerKeyHasBeenRevoked', 'encryption-key'],
    ['InternalError', 'internal'],
    ['InvalidParameterValue', 'invalid-parameter'],
    ['ValidationException', 'invalid-parameter'],
    ['SomethingNew', 'unknown'],
  ])('sorts %s as %s', (code, kind) => {
    expect(classifyAwsError(aws(code))).toBe(kind);
  });

  it('reads a state reason that says EC2 could not use an EBS encryption key (R4)', () => {
    expect(isEncryptionKeyStateReason('Client.InternalError')).toBe(true);
    expect(isEncryptionKeyStateReason('Client.InvalidKMSKey.InvalidState')).toBe(true);
    expect(isEncryptionKeyStateReason('Client.UserInitiatedShutdown')).toBe(false);
    expect(isEncryptionKeyStateReason('Server.InsufficientInstanceCapacity')).toBe(false);
    expect(isEncryptionKeyStateReason(undefined)).toBe(false);
  });

  it('reads the code from Code, then name, then code, and knows when there is none', () => {
    expect(awsErrorCode({ Code: 'VolumeInUse', name: 'Error' })).toBe('VolumeInUse');
    expect(awsErrorCode({ code: 'ECONNRESET', name: 'Error' })).toBe('ECONNRESET');
    expect(awsErrorCode('boom')).toBe('Unknown');
    expect(classifyAwsError(new Error('plain'))).toBe('unknown');
  });

  it('sorts a cancelled transaction by its cancellation reasons', () => {
    const lostRace = aws('TransactionCanceledException', {
      CancellationReasons: [{ Code: 'None' }, { Code: 'ConditionalCheckFailed' }],
    });
    const conflict = aws('TransactionCanceledException', {
      CancellationReasons: [{ Code: 'TransactionConflict' }],
    });

    expect(classifyAwsError(lostRace)).toBe('conditional-check-failed');
    expect(classifyAwsError(conflict)).toBe('transaction-conflict');
  });

  it('calls throttles, internal errors and transaction conflicts transient, and nothing permanent', () => {
    expect(
      ['RequestLimitExceeded', 'InternalError', 'TransactionConflictException'].map((code) =>
        isTransient(aws(code)),
      ),
    ).toEqual([true, true, true]);
    expect(
      ['InvalidParameterValue', 'InsufficientInstanceCapacity', 'IncorrectInstanceState'].map((code) =>
        isTransient(aws(code)),
      ),
    ).toEqual([false, false, false]);
  });

  it('translates each kind into the typed error the domain handles, keeping code and cause', () => {
    const cases: [string, new (...args: never[]) => Error][] = [
      ['InvalidVolume.NotFound', NotFoundError],
      ['RequestLimitExceeded', ThrottledError],
      ['InsufficientInstanceCapacity', CapacityError],
      ['IncorrectInstanceState', IncorrectStateError],
      ['ConditionalCheckFailedException', ConflictError],
      ['AuthFailure', DependencyError],
    ];
    for (const [code, type] of cases) {
      const cause = aws(code);
      const error = translateAwsError('StopInstances', cause);
      expect(error).toBeInstanceOf(type);
      expect(error.message).toBe(`StopInstances failed: ${code}: ${code} from AWS`);
      expect(error.cause).toBe(cause);
    }
  });

  it('callAws returns the result, or throws the translated error', async () => {
    expect(await callAws('DescribeInstances', async () => 'ok')).toBe('ok');
    await expect(
      callAws('AttachVolume', async () => {
        throw aws('VolumeInUse');
      }),
    ).rejects.toBeInstanceOf(IncorrectStateError);
  });

  it('conditionalWrite answers false for a failed condition and throws a transaction conflict', async () => {
    const failing = (error: unknown) => async () => {
      throw error;
    };
    expect(await conditionalWrite('PutItem', async () => ({}))).toBe(true);
    expect(await conditionalWrite('PutItem', failing(aws('ConditionalCheckFailedException')))).toBe(false);
    const lostRace = aws('TransactionCanceledException', {
      CancellationReasons: [{ Code: 'ConditionalCheckFailed' }, { Code: 'None' }],
    });
    expect(await conditionalWrite('TransactWriteItems', failing(lostRace))).toBe(false);
    const conflict = aws('TransactionCanceledException', {
      CancellationReasons: [{ Code: 'TransactionConflict' }],
    });
    await expect(conditionalWrite('TransactWriteItems', failing(conflict))).rejects.toBeInstanceOf(
      TransactionConflictError,
    );
  });
});

/**
 * EC2's retry recommendations for idempotent requests (ec2-api-idempotency): a 400-series answer
 * is a refusal, a 500-series one is retried with the same client token; throttling (503) is
 * refused before any work (ec2-api-throttling). A timeout says nothing, so it counts as maybe.
 */
describe('whether a failed call may have taken effect', () => {
  const timeout = Object.assign(new Error('socket hang up'), { name: 'TimeoutError' });

  it.each<[string, unknown, boolean]>([
    ['InternalError (500)', new SimulatedAwsError('InternalError', 'x', { httpStatusCode: 500 }), true],
    ['an unknown 5xx code', new SimulatedAwsError('Mystery', 'x', { httpStatusCode: 502 }), true],
    ['a timeout with no answer', timeout, true],
    [
      'RequestLimitExceeded (503)',
      new SimulatedAwsError('RequestLimitExceeded', 'x', { httpStatusCode: 503 }),
      false,
    ],
    ['InsufficientInstanceCapacity (400)', aws('InsufficientInstanceCapacity'), false],
    ['InvalidParameterValue (400)', aws('InvalidParameterValue'), false],
    ['IdempotentInstanceTerminated (400)', aws('IdempotentInstanceTerminated'), false],
  ])('%s → %s', (_label, error, expected) => {
    expect(mayHaveTakenEffect(error)).toBe(expected);
    expect(mayHaveTakenEffect(translateAwsError('RunInstances', error))).toBe(expected);
  });

  it('a warmboot refusal raised before any call took no effect', () => {
    expect(mayHaveTakenEffect(new NotFoundError('no such record'))).toBe(false);
  });
});
