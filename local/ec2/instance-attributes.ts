import type {
  DescribeInstanceAttributeRequest,
  DescribeInstanceCreditSpecificationsRequest,
  DescribeInstanceCreditSpecificationsResult,
  InstanceAttribute,
  ModifyInstanceAttributeRequest,
  RunInstancesRequest,
} from '@aws-sdk/client-ec2';
import { ec2Error, invalidParameterValue, missingParameter, requiredParameter } from './errors';
import { describePage } from './filters';
import { defaultCpuCredits, isBurstable } from './instance-types';
import type { Ec2Context, InstanceRecord } from './state';

/**
 * Instance attributes that DescribeInstances does not show (API_DescribeInstanceAttribute) and
 * the launch parameters they come from: user data, termination and stop protection, the CPU credit
 * option of burstable instances (API_DescribeInstanceCreditSpecifications).
 */

/**
 * instancedata-add-user-data: "User data is limited to 16 KB, in raw form, before it is
 * base64-encoded", and it must be base64-encoded (RunInstances takes the encoded text).
 */
export const USER_DATA_MAX_BYTES = 16 * 1024;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const checkUserDataSize = (bytes: number): void => {
  if (bytes > USER_DATA_MAX_BYTES)
    throw invalidParameterValue(`User data is limited to ${USER_DATA_MAX_BYTES} bytes (got ${bytes})`);
};

/** RunInstances `UserData`: base64 text of at most 16 KB raw (`InvalidParameterValue` otherwise). */
export const checkLaunchUserData = (userData: string | undefined): void => {
  if (userData === undefined) return;
  if (!BASE64.test(userData)) throw invalidParameterValue('Invalid BASE64 encoding of user data');
  checkUserDataSize(Buffer.from(userData, 'base64').length);
};

/** ModifyInstanceAttribute `UserData.Value` is the raw bytes (the SDK encodes them on the wire). */
export const modifiedUserData = (value: Uint8Array): string => {
  checkUserDataSize(value.length);
  return Buffer.from(value).toString('base64');
};

/**
 * API_ModifyInstanceAttribute: "Modifies the specified attribute of the specified instance. You can
 * specify only one attribute at a time." A request naming several is refused with
 * `InvalidParameterCombination` (no code is documented: the simulator's choice).
 */
export const checkOneAttribute = (input: ModifyInstanceAttributeRequest): void => {
  const named = [
    input.Attribute,
    input.InstanceType,
    input.DisableApiTermination,
    input.DisableApiStop,
    input.UserData,
    input.BlockDeviceMappings,
    input.Groups,
    input.EbsOptimized,
    input.SourceDestCheck,
    input.InstanceInitiatedShutdownBehavior,
    input.EnaSupport,
    input.SriovNetSupport,
    input.Kernel,
    input.Ramdisk,
  ].filter((value) => value !== undefined);
  if (named.length > 1)
    throw ec2Error(
      'InvalidParameterCombination',
      'Only one attribute can be modified per ModifyInstanceAttribute call',
    );
};

/**
 * API_RunInstances `CreditSpecification`: standard or unlimited, for burstable types only ("The
 * credit option for CPU usage of the burstable performance instance"); T3 instances with host
 * tenancy support only standard. A credit option for another type is refused with
 * `InvalidParameterCombination` (no code is documented: the simulator's choice).
 */
export const launchCpuCredits = (
  input: RunInstancesRequest,
  instanceType: string,
  tenancy: string,
): 'standard' | 'unlimited' | undefined => {
  const requested = input.CreditSpecification?.CpuCredits;
  if (requested === undefined) return defaultCpuCredits(instanceType);
  if (requested !== 'standard' && requested !== 'unlimited')
    throw invalidParameterValue(`Invalid value '${requested}' for CpuCredits: standard or unlimited`);
  if (!isBurstable(instanceType))
    throw ec2Error(
      'InvalidParameterCombination',
      `The CreditSpecification parameter is not supported for instance type ${instanceType}: only burstable performance instances (T2, T3, T3a, T4g) have a credit option`,
    );
  if (tenancy === 'host' && requested === 'unlimited' && instanceType.startsWith('t3'))
    throw ec2Error(
      'InvalidParameterCombination',
      'T3 instances with host tenancy support only the standard credit option',
    );
  return requested;
};

/** The attributes the simulator answers (API_DescribeInstanceAttribute lists more). */
export const describeInstanceAttribute = async (
  ctx: Ec2Context,
  input: DescribeInstanceAttributeRequest,
): Promise<InstanceAttribute> => {
  const instanceId = requiredParameter(input.InstanceId, 'InstanceId');
  const instance = instanceOrThrow(ctx, instanceId);
  const base = { InstanceId: instanceId };
  switch (input.Attribute) {
    case undefined:
      throw missingParameter('Attribute');
    case 'userData':
      // "User data is treated as opaque data: what you specify is what you get back" (base64).
      return { ...base, UserData: instance.userData === undefined ? {} : { Value: instance.userData } };
    case 'disableApiTermination':
      return { ...base, DisableApiTermination: { Value: instance.disableApiTermination } };
    case 'disableApiStop':
      return { ...base, DisableApiStop: { Value: instance.disableApiStop } };
    case 'instanceType':
      return { ...base, InstanceType: { Value: instance.instanceType } };
    case 'instanceInitiatedShutdownBehavior':
      return { ...base, InstanceInitiatedShutdownBehavior: { Value: instance.shutdownBehavior } };
    case 'rootDeviceName':
      return { ...base, RootDeviceName: { Value: instance.rootDeviceName } };
    default:
      throw new Error(`local EC2: DescribeInstanceAttribute of '${input.Attribute}' is not modelled`);
  }
};

const instanceOrThrow = (ctx: Ec2Context, instanceId: string): InstanceRecord => {
  if (!/^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$/.test(instanceId))
    throw ec2Error('InvalidInstanceID.Malformed', `Invalid id: "${instanceId}"`);
  const instance = ctx.instances.get(instanceId);
  if (!instance)
    throw ec2Error('InvalidInstanceID.NotFound', `The instance ID '${instanceId}' does not exist`);
  return instance;
};

/**
 * API_DescribeInstanceCreditSpecifications: without instance ids, the burstable instances with the
 * unlimited option; with ids, the option of each. "If you specify an instance ID that is not valid,
 * such as an instance that is not a burstable performance instance, an error is returned": the
 * simulator answers `InvalidParameterValue` (the code is not documented). MaxResults cannot be
 * combined with instance ids.
 */
export const describeInstanceCreditSpecifications = async (
  ctx: Ec2Context,
  input: DescribeInstanceCreditSpecificationsRequest,
): Promise<DescribeInstanceCreditSpecificationsResult> => {
  const ids = input.InstanceIds ?? [];
  if (ids.length > 0 && input.MaxResults !== undefined)
    throw ec2Error(
      'InvalidParameterCombination',
      'The parameter instancesSet cannot be used with the parameter maxResults',
    );
  const candidates =
    ids.length > 0
      ? ids.map((id) => {
          const instance = instanceOrThrow(ctx, id);
          if (instance.cpuCredits === undefined)
            throw invalidParameterValue(
              `The instance ID '${id}' is not a burstable performance instance (${instance.instanceType})`,
            );
          return instance;
        })
      : [...ctx.instances.values()].filter(
          (instance) => instance.cpuCredits === 'unlimited' && instance.state !== 'terminated',
        );
  const { page, nextToken } = describePage(
    candidates,
    input,
    { 'instance-id': (instance) => [instance.instanceId] },
    (instance) => instance.tags,
  );
  return {
    InstanceCreditSpecifications: page.map((instance) => ({
      InstanceId: instance.instanceId,
      CpuCredits: instance.cpuCredits,
    })),
    NextToken: nextToken,
  };
};
