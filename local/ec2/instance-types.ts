/**
 * The processor architecture of an instance type, as DescribeInstanceTypes reports it
 * (`ProcessorInfo.SupportedArchitectures`). The simulator keeps its own list of the Graviton
 * and Mac families rather than parsing names the way warmboot's code does, so a wrong guess in
 * the code shows up as a refusal here (EC2 user guide, "Amazon EC2 instance types": Graviton
 * families; "Amazon EC2 Mac instances": mac1 is x86_64_mac, the mac2 families arm64_mac).
 */
export type Architecture = 'x86_64' | 'arm64' | 'x86_64_mac' | 'arm64_mac';

const GRAVITON_FAMILIES = new Set([
  'a1',
  'c6g',
  'c6gd',
  'c6gn',
  'c7g',
  'c7gd',
  'c7gn',
  'c8g',
  'c8gd',
  'g5g',
  'hpc7g',
  'i4g',
  'i8g',
  'im4gn',
  'is4gen',
  'm6g',
  'm6gd',
  'm7g',
  'm7gd',
  'm8g',
  'm8gd',
  'r6g',
  'r6gd',
  'r7g',
  'r7gd',
  'r8g',
  'r8gd',
  't4g',
  'x2gd',
  'x8g',
]);

export const architectureOfType = (instanceType: string): Architecture => {
  const family = instanceType.split('.')[0] ?? '';
  if (family === 'mac1') return 'x86_64_mac';
  if (family.startsWith('mac')) return 'arm64_mac';
  return GRAVITON_FAMILIES.has(family) ? 'arm64' : 'x86_64';
};

/** The AMI architecture an instance type runs (a Mac type runs its plain architecture's macOS AMIs). */
export const imageArchitectureOf = (architecture: Architecture): 'x86_64' | 'arm64' =>
  architecture === 'arm64' || architecture === 'arm64_mac' ? 'arm64' : 'x86_64';

/**
 * Burstable performance families (burstable-performance-instances): the only types with a CPU
 * credit option. Launch default: `standard` for T2, `unlimited` for T3, T3a and T4g (API_RunInstances
 * `CreditSpecification`).
 */
const BURSTABLE_FAMILIES = new Set(['t2', 't3', 't3a', 't4g']);

export const isBurstable = (instanceType: string): boolean =>
  BURSTABLE_FAMILIES.has(instanceType.split('.')[0] ?? '');

export const defaultCpuCredits = (instanceType: string): 'standard' | 'unlimited' | undefined => {
  if (!isBurstable(instanceType)) return undefined;
  return instanceType.startsWith('t2.') ? 'standard' : 'unlimited';
};
