import { ec2Error } from './errors';
import { architectureOfType } from './instance-types';

/**
 * Which instance types run which AMIs and instances, beyond architecture (instance-types.ts):
 * boot mode, the ENA driver, hibernation and one-time Spot. These are the rules a launch, a
 * resize and a stop meet on EC2, kept apart from the request handling in instances.ts.
 *
 * Sources: EC2 user guide "Boot modes" (ami-boot, instance-type-boot-mode: Graviton types are
 * UEFI only, Xen-based previous-generation types legacy BIOS only, `uefi-preferred` AMIs run on
 * either), "Enhanced networking with ENA" (Nitro types require an ENA-enabled AMI or instance),
 * "Change the instance type" (resize-limitations), "Hibernation prerequisites" (an instance enabled
 * for hibernation cannot change type) and "Stop and start Spot Instances" (only persistent Spot
 * requests can be stopped).
 */

export type BootMode = 'legacy-bios' | 'uefi';
export type ImageBootMode = BootMode | 'uefi-preferred';

/**
 * Xen-based families: legacy BIOS only, and ENA not required (t2, m4, c4 have no ENA at all; the
 * others support it). Every other x86 family is Nitro: both boot modes, ENA required. Listing the
 * older families rather than the newer ones makes an unknown new family strict (ENA required).
 */
const XEN_FAMILIES = new Set([
  't1',
  't2',
  'm1',
  'm2',
  'm3',
  'm4',
  'c1',
  'c3',
  'c4',
  'r3',
  'r4',
  'x1',
  'x1e',
  'd2',
  'i2',
  'i3',
  'p2',
  'p3',
  'g2',
  'g3',
  'g3s',
  'h1',
  'f1',
]);

const familyOf = (instanceType: string): string => instanceType.split('.')[0] ?? '';
const isXen = (instanceType: string): boolean => {
  const family = familyOf(instanceType);
  // i3.metal and p3dn are Nitro; the rest of those families are Xen.
  return XEN_FAMILIES.has(family) && !instanceType.endsWith('.metal');
};

export const supportedBootModes = (instanceType: string): readonly BootMode[] => {
  const architecture = architectureOfType(instanceType);
  if (architecture !== 'x86_64') return ['uefi'];
  return isXen(instanceType) ? ['legacy-bios'] : ['legacy-bios', 'uefi'];
};

export const requiresEna = (instanceType: string): boolean => !isXen(instanceType);

/** The boot mode an instance of this AMI gets on this type, or undefined if the type cannot boot it. */
export const bootModeOn = (imageBootMode: ImageBootMode, instanceType: string): BootMode | undefined => {
  const supported = supportedBootModes(instanceType);
  if (imageBootMode === 'uefi-preferred') return supported.includes('uefi') ? 'uefi' : 'legacy-bios';
  return supported.includes(imageBootMode) ? imageBootMode : undefined;
};

/** What an instance (or AMI) brings to a type: its boot mode and whether its OS has the ENA driver. */
export interface Bootable {
  readonly bootMode: ImageBootMode;
  readonly enaSupport: boolean;
}

const enaRequired = (instanceType: string, subject: string) =>
  ec2Error(
    'InvalidParameterCombination',
    `Enhanced networking with the Elastic Network Adapter (ENA) is required for the '${instanceType}' instance type. Ensure that ${subject} is enabled for ENA.`,
  );

/**
 * RunInstances: the ENA message is EC2's own. EC2 documents no error for a boot mode the type
 * cannot run; the simulator refuses it with InvalidParameterCombination (strict: AWS may instead
 * fail the launch later, which code would see as a launch that terminates).
 */
export const launchRefusal = (instanceType: string, image: Bootable): Error | undefined => {
  if (requiresEna(instanceType) && !image.enaSupport)
    return enaRequired(instanceType, 'you are using an AMI that');
  if (bootModeOn(image.bootMode, instanceType) === undefined)
    return ec2Error(
      'InvalidParameterCombination',
      `The instance type '${instanceType}' does not support the boot mode '${image.bootMode}' of the specified AMI.`,
    );
  return undefined;
};

/**
 * ModifyInstanceAttribute InstanceType on a stopped instance (resize-limitations). Architecture is
 * checked by the caller. The simulator refuses at the modify, not at the next start (strict: the
 * earliest point AWS could refuse), with the codes EC2 uses for the same conditions at launch;
 * hibernation's refusal code is the simulator's choice (AWS documents the rule, not the code).
 */
export const resizeRefusal = (
  instance: Bootable & { readonly instanceId: string; readonly hibernationConfigured: boolean },
  instanceType: string,
): Error | undefined => {
  if (instance.hibernationConfigured)
    return ec2Error(
      'UnsupportedOperation',
      `The instance '${instance.instanceId}' is enabled for hibernation; its instance type cannot be changed.`,
    );
  if (requiresEna(instanceType) && !instance.enaSupport)
    return enaRequired(instanceType, `your instance '${instance.instanceId}'`);
  if (bootModeOn(instance.bootMode, instanceType) === undefined)
    return ec2Error(
      'InvalidInstanceAttributeValue',
      `The instance type '${instanceType}' does not support the boot mode '${instance.bootMode}' of instance '${instance.instanceId}'.`,
    );
  return undefined;
};

/** StopInstances of an instance from a one-time Spot request (EC2's own message and code). */
export const oneTimeSpotStopRefusal = (instanceId: string): Error =>
  ec2Error(
    'UnsupportedOperation',
    `You can't stop the Spot Instance '${instanceId}' because it is associated with a one-time Spot Instance request. You can only stop Spot Instances associated with persistent Spot Instance requests.`,
  );
