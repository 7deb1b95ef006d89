import type { ModifyInstanceAttributeCommandInput } from '@aws-sdk/client-ec2';
import { WarmbootError } from './errors';

/**
 * Which instance attributes each capability changes with ModifyInstanceAttribute, defined once so
 * the two fences agree: IAM grants the call for these attributes only (infra/capabilities,
 * `ec2:Attribute` condition keys), and the adapters check the same before every call.
 */

/**
 * Every request property of ModifyInstanceAttribute that changes an attribute (EC2 API reference,
 * ModifyInstanceAttribute: "You can specify only one attribute at a time"), with the name the
 * request's `Attribute` field gives it instead (InstanceAttributeName). warmboot never sends the
 * `Attribute`/`Value` form.
 */
export const INSTANCE_ATTRIBUTES = {
  BlockDeviceMappings: 'blockDeviceMapping',
  DisableApiStop: 'disableApiStop',
  DisableApiTermination: 'disableApiTermination',
  EbsOptimized: 'ebsOptimized',
  EnaSupport: 'enaSupport',
  Groups: 'groupSet',
  InstanceInitiatedShutdownBehavior: 'instanceInitiatedShutdownBehavior',
  InstanceType: 'instanceType',
  Kernel: 'kernel',
  Ramdisk: 'ramdisk',
  SourceDestCheck: 'sourceDestCheck',
  SriovNetSupport: 'sriovNetSupport',
  UserData: 'userData',
} as const;
export type InstanceAttributeProperty = keyof typeof INSTANCE_ATTRIBUTES;
const PROPERTIES = Object.keys(INSTANCE_ATTRIBUTES) as InstanceAttributeProperty[];

/**
 * The attributes each capability's role changes:
 * - shelving restores a replacement as the shelved instance was: DeleteOnTermination of its
 *   volumes (BlockDeviceMappings), its user data and its termination and stop protection;
 * - the pool roles resize a stopped member to the type a request asks for (claim; the pools
 *   function shares the adapter).
 */
export const CHANGED_INSTANCE_ATTRIBUTES = {
  shelving: ['BlockDeviceMappings', 'DisableApiStop', 'DisableApiTermination', 'UserData'],
  pools: ['InstanceType'],
} as const satisfies Readonly<Record<string, readonly InstanceAttributeProperty[]>>;

/** A ModifyInstanceAttribute request that would change an attribute its capability does not change. */
class AttributeNotAllowedError extends WarmbootError {
  constructor(message: string) {
    super('AttributeNotAllowed', message);
    this.name = 'AttributeNotAllowedError';
  }
}

/**
 * `input`, once checked to change exactly one attribute and one of `allowed`: the check in code
 * before every ModifyInstanceAttribute call (IAM refuses the others too).
 */
export const attributeChange = (
  input: ModifyInstanceAttributeCommandInput,
  allowed: readonly InstanceAttributeProperty[],
): ModifyInstanceAttributeCommandInput => {
  const changed = PROPERTIES.filter((property) => input[property] !== undefined);
  const [only] = changed;
  if (input.Attribute !== undefined || input.Value !== undefined || changed.length !== 1 || !only) {
    throw new AttributeNotAllowedError(
      `ModifyInstanceAttribute of ${input.InstanceId} must change exactly one attribute by its own property, not ${[...changed, ...(input.Attribute ? [input.Attribute] : [])].join(', ') || 'none'}`,
    );
  }
  if (!allowed.includes(only)) {
    throw new AttributeNotAllowedError(
      `ModifyInstanceAttribute ${only} of ${input.InstanceId}: this capability changes only ${allowed.join(', ')}`,
    );
  }
  return input;
};
