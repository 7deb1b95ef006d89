import { SimulatedAwsError } from '../sdk-bridge';

/**
 * EC2 API error codes (AWSEC2/latest/APIReference/errors-overview). Client errors answer HTTP 400;
 * RequestLimitExceeded answers 503 (ec2-api-throttling), so the SDK retries it as throttling.
 */
export const ec2Error = (code: string, message: string): SimulatedAwsError =>
  new SimulatedAwsError(code, message, { httpStatusCode: code === 'RequestLimitExceeded' ? 503 : 400 });

export const notFound = (code: string, ids: readonly string[], noun: string): SimulatedAwsError =>
  ec2Error(
    code,
    ids.length === 1
      ? `The ${noun} ID '${ids[0]}' does not exist`
      : `The ${noun} IDs '${ids.join(', ')}' do not exist`,
  );

/** `notFound` for one kind of resource, as `namedOrAll` takes it (the ids it misses come later). */
export const notFoundOf =
  (code: string, noun: string) =>
  (ids: readonly string[]): SimulatedAwsError =>
    notFound(code, ids, noun);

export const missingParameter = (name: string): SimulatedAwsError =>
  ec2Error('MissingParameter', `The request must contain the parameter ${name}`);

/** A parameter the call must carry: `MissingParameter` when absent (an empty one is the caller's to judge). */
export const requiredParameter = <T>(value: T | undefined, name: string): T => {
  if (value === undefined) throw missingParameter(name);
  return value;
};

export const invalidParameterValue = (message: string): SimulatedAwsError =>
  ec2Error('InvalidParameterValue', message);
