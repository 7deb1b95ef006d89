import * as z from 'zod';
import {
  AMI_ID_PATTERN,
  AVAILABILITY_ZONE_PATTERN,
  LAUNCH_TEMPLATE_ID_PATTERN,
  regex,
  SECURITY_GROUP_ID_PATTERN,
  SUBNET_ID_PATTERN,
} from '../shared/aws-ids';
import { envJson, envString, loadConfig } from '../shared/config';
import {
  ACCOUNT_ID_PATTERN,
  BOOLEAN_PATTERN,
  CONTAINER_IMAGE_PATTERN,
  INSTANCE_PROFILE_PATTERN,
  INSTANCE_TYPE_PATTERN,
  KEY_NAME_PATTERN,
  LAUNCH_TEMPLATE_VERSION_PATTERN,
  OWNER_TAG_KEY_PATTERN,
  PACKAGE_NAME_PATTERN,
  POOL_DOCUMENT_NAME_PATTERN,
  POOL_NAME_PATTERN,
  PROTOTYPE_KEYS,
  RESERVED_TAG_KEY_PREFIX,
  ROLE_PATH_AND_NAME_PATTERN,
  SSM_PARAMETER_PATTERN,
} from './patterns';

/** An AMI id, or an SSM parameter path that resolves to the latest AMI (re-resolved every reconcile). */
export const imageRefSchema = z
  .string()
  // GetParameter `Name`: at most 2048 characters (SSM API reference); an AMI id is far shorter.
  .max(2048)
  .refine((value) => regex(AMI_ID_PATTERN).test(value) || regex(SSM_PARAMETER_PATTERN).test(value), {
    message: `must match ${AMI_ID_PATTERN} or ${SSM_PARAMETER_PATTERN}`,
  })
  .refine((value) => !value.includes('..'), { message: 'must not contain ".."' });

export const isSsmParameterRef = (image: string): boolean => image.startsWith('/');

export const poolNameSchema = z.string().regex(regex(POOL_NAME_PATTERN));
export const instanceTypeSchema = z.string().regex(regex(INSTANCE_TYPE_PATTERN));
export const availabilityZoneSchema = z.string().max(32).regex(regex(AVAILABILITY_ZONE_PATTERN));

/**
 * A string-keyed record that refuses `__proto__`, `constructor` and `prototype` keys by name
 * instead of dropping or shadowing them (security review L2): the refusal names the key.
 */
export const plainRecord = <K extends z.ZodType<string, string>, V extends z.ZodType>(key: K, value: V) =>
  z
    .unknown()
    .superRefine((input, context) => {
      if (typeof input !== 'object' || input === null) return;
      for (const name of Object.keys(input)) {
        if (PROTOTYPE_KEYS.has(name))
          context.addIssue({ code: 'custom', path: [name], message: 'reserved key name' });
      }
    })
    .pipe(z.record(key, value));

/** An owner tag key: EC2's characters, never in warmboot's or AWS's namespace in any letter case (L1). */
export const ownerTagKeySchema = z
  .string()
  .regex(regex(OWNER_TAG_KEY_PATTERN))
  .refine((key) => !RESERVED_TAG_KEY_PREFIX.test(key), {
    message: 'must not start with warmboot: or aws: (in any letter case)',
  });

/**
 * How a member is initialized once after its first boot. The document runs over SSM Run Command
 * and its parameters are checked against that document's `allowedPattern`s when the spec is
 * accepted (see validatePoolSpecDocuments), not only when the command is sent.
 */
export const initializationSchema = z.object({
  documentName: z.string().regex(regex(POOL_DOCUMENT_NAME_PATTERN)).default('Warmboot-PoolInitialize'),
  platform: z.enum(['linux', 'windows']).default('linux'),
  packages: z
    .array(z.string().regex(regex(PACKAGE_NAME_PATTERN)))
    .max(50)
    .default([]),
  containerImages: z
    .array(z.string().max(512).regex(regex(CONTAINER_IMAGE_PATTERN)))
    .max(20)
    .default([]),
  /** Run the sysprep-like generalization step (Windows: sysprep /generalize; Linux: cloud-init clean). */
  generalize: z.string().regex(regex(BOOLEAN_PATTERN)).default('false'),
  /** A member whose initialization has not succeeded after this long is retired. */
  timeoutMinutes: z.number().int().min(1).max(180).default(60),
});

export const sizingSchema = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('fixed') }),
  z.object({
    mode: z.literal('demand'),
    /** Share of requests the pool should serve from ready members (Erlang-loss target). */
    targetHitShare: z.number().min(0.5).max(0.999).default(0.95),
    /** Pools at or above this request rate keep part of their ready members running (hot tier). */
    runningTierAbovePerHour: z.number().positive().optional(),
    /**
     * Share of requests the running members should serve hot (Erlang-B on the start time);
     * default targetHitShare. A lower share keeps fewer instances running (one running member
     * costs as much as ~30 stopped members' storage).
     */
    runningTierHitShare: z.number().min(0.1).max(0.999).optional(),
    /** Minutes between two scale-down steps (one member each). */
    scaleDownCooldownMinutes: z.number().int().min(1).max(1440).default(30),
    /**
     * When a ready member above the target is retired: `at-once` (lowest idle cost), or
     * `after-break-even`: only once it has idled longer than a replacement would cost (launch +
     * initialize + stop ÷ idle price per hour: ~1.4 h Linux, ~8 h Windows-like at the default
     * prices), which wastes fewer initialized members (lower idle + refill) but holds more idle
     * storage. docs/pools.md has the measured trade-off.
     */
    retireSurplus: z.enum(['at-once', 'after-break-even']).default('at-once'),
    /** Prices for the break-even; default m7i.large on-demand us-east-1 and gp3. */
    instanceHourUsd: z.number().positive().max(1000).optional(),
    ebsGbMonthUsd: z.number().positive().max(10).optional(),
  }),
]);

export const poolSpecSchema = z
  .object({
    name: poolNameSchema,
    image: imageRefSchema,
    instanceType: instanceTypeSchema,
    /**
     * Further instance types a request may ask for (a stopped member is resized to it, or a cold
     * launch uses it); the pool's own type is always allowed. None: only the pool's type (H4).
     */
    instanceTypes: z.array(instanceTypeSchema).max(20).default([]),
    launchTemplate: z
      .object({
        id: z.string().regex(regex(LAUNCH_TEMPLATE_ID_PATTERN)),
        version: z.string().regex(regex(LAUNCH_TEMPLATE_VERSION_PATTERN)).default('$Default'),
      })
      .optional(),
    subnets: z
      .array(z.string().regex(regex(SUBNET_ID_PATTERN)))
      .min(1)
      .max(16),
    securityGroups: z
      .array(z.string().regex(regex(SECURITY_GROUP_ID_PATTERN)))
      .max(5)
      .default([]),
    instanceProfile: z.string().regex(regex(INSTANCE_PROFILE_PATTERN)).optional(),
    /**
     * The role inside `instanceProfile` (its name, with its path if any: `pools/build-role`):
     * launching with the profile needs iam:PassRole on that role, and IAM grants it only on the
     * roles configuration names. Default: the profile's own name (the IAM console names a role's
     * instance profile after the role).
     */
    instanceRole: z.string().regex(regex(ROLE_PATH_AND_NAME_PATTERN)).optional(),
    /**
     * The owner tag keys a request may set on a server of this pool; none: any key outside the
     * reserved namespaces (H5).
     */
    ownerTagKeys: z.array(ownerTagKeySchema).max(50).optional(),
    keyName: z.string().regex(regex(KEY_NAME_PATTERN)).optional(),
    volumeSizeGiB: z.number().int().min(8).max(16_384).default(30),
    initialization: initializationSchema.default(initializationSchema.parse({})),
    /** stopped: ready members are stopped (EBS cost only); running: kept running (instance cost). */
    tier: z.enum(['stopped', 'running']).default('stopped'),
    minSize: z.number().int().min(0).max(500).default(0),
    /** The pool's quota: members in any live state never exceed it. */
    maxSize: z.number().int().min(1).max(500),
    maxAgeHours: z
      .number()
      .positive()
      .max(24 * 90)
      .default(168),
    sizing: sizingSchema.default({ mode: 'fixed' }),
  })
  .refine((spec) => spec.minSize <= spec.maxSize, { message: 'must be <= maxSize', path: ['minSize'] })
  .refine((spec) => spec.instanceRole === undefined || spec.instanceProfile !== undefined, {
    message: 'names the role of instanceProfile: give instanceProfile too',
    path: ['instanceRole'],
  });

export type PoolSpec = z.infer<typeof poolSpecSchema>;
export type PoolSpecInput = z.input<typeof poolSpecSchema>;
export type Initialization = z.infer<typeof initializationSchema>;

/** An instance profile pools may launch with, and the role inside it (default: the profile's name). */
export const instanceProfileSchema = z
  .object({
    name: z.string().regex(regex(INSTANCE_PROFILE_PATTERN)),
    role: z.string().regex(regex(ROLE_PATH_AND_NAME_PATTERN)).optional(),
  })
  .strict();
export type InstanceProfile = z.infer<typeof instanceProfileSchema>;

/**
 * Owners whose AMIs warmboot may launch: `self` (this account), `amazon` (AWS's public AMIs),
 * `aws-marketplace`, `aws-backup-vault` or a 12-digit account ID, as DescribeImages `Owners` and
 * the IAM condition key `ec2:Owner` spell them. Default: this account's and AWS's.
 */
export const imageOwnersSchema = z
  .array(
    z.union([
      z.enum(['self', 'amazon', 'aws-marketplace', 'aws-backup-vault']),
      z.string().regex(regex(ACCOUNT_ID_PATTERN)),
    ]),
  )
  .min(1)
  .max(20)
  .default(['self', 'amazon']);

/**
 * What any pool may launch and how much a caller may ask of one, for deploy-time pools and pools
 * an administrator defines at run time alike (security review C2, H4). IAM says the same: the
 * RunInstances grant names only images of these owners (`ec2:Owner`) and PassRole names only the
 * roles of these profiles and of the deploy-time pools' profiles (infra/capabilities/pools.ts).
 */
export const poolPolicySchema = z
  .object({
    /** Owners whose AMIs pools may launch (imageOwnersSchema). */
    allowedImageOwners: imageOwnersSchema,
    /**
     * Instance profiles a pool defined at run time may use besides the deploy-time pools' own.
     * None: a run-time pool may use only those, or none.
     */
    instanceProfiles: z.array(instanceProfileSchema).max(20).default([]),
    /**
     * New Request Server requests one caller may make per pool and clock hour (H4); retries of a
     * request id do not count, nor does an administrator's direct invoke. One caller is a principal
     * (function URL), the tenants a request-bus operator is bound to, or every unbound request-bus
     * operator together. The cost a flood can cause is bounded by `maxSize` anyway (cold launches
     * count against it); this keeps one caller from taking every member of a shared pool.
     */
    requestsPerCallerPerHour: z.number().int().min(1).max(100_000).default(300),
  })
  .strict();
export type PoolPolicy = z.infer<typeof poolPolicySchema>;
export const POOL_POLICY_ENV = 'POOL_POLICY';

/** The role a pool's members get: what IAM must let warmboot pass (undefined: no profile). */
export const instanceRoleOf = (spec: Pick<PoolSpec, 'instanceProfile' | 'instanceRole'>) =>
  spec.instanceRole ?? spec.instanceProfile;

/**
 * The instance profiles pools may launch with: the deploy-time pools' own and the policy's; each
 * with its role. Pools defined at run time must pick one of these.
 */
export const allowedInstanceProfiles = (
  contextPools: readonly PoolSpec[],
  policy: PoolPolicy,
): InstanceProfile[] => {
  const profiles = new Map<string, InstanceProfile>();
  for (const pool of contextPools) {
    if (pool.instanceProfile === undefined) continue;
    profiles.set(pool.instanceProfile, { name: pool.instanceProfile, role: instanceRoleOf(pool) });
  }
  for (const profile of policy.instanceProfiles) {
    profiles.set(profile.name, { name: profile.name, role: profile.role ?? profile.name });
  }
  return [...profiles.values()];
};

/**
 * The instance types a request may ask of a pool: its own and the listed ones. A pool stored by
 * an earlier release has no list.
 */
export const allowedInstanceTypes = (spec: Pick<PoolSpec, 'instanceType'> & { instanceTypes?: string[] }) =>
  new Set([spec.instanceType, ...(spec.instanceTypes ?? [])]);

/** `POOL_POLICY`: the policy as JSON, all defaults when unset. */
export const poolPolicyEnv = envJson(poolPolicySchema).default(poolPolicySchema.parse({}));

/** Pools defined in CDK context arrive as the `POOLS` JSON array; each is upserted on reconcile. */
const poolsEnvSchema = z.object({
  POOLS: envJson(z.array(poolSpecSchema)).default([]),
  [POOL_POLICY_ENV]: poolPolicyEnv,
  POOLS_TABLE: envString,
});

/** What both functions of the pool model (pools and claim) read: the pools table and the pool policy. */
export interface PoolModelConfig {
  readonly tables: { readonly pools: string };
  readonly settings: { readonly policy: PoolPolicy };
}

export interface PoolsConfig extends PoolModelConfig {
  readonly settings: { readonly policy: PoolPolicy; readonly pools: readonly PoolSpec[] };
}

/** Reads the pools function's environment; fails the cold start naming the missing variable. */
export const loadPoolsConfig = (env: Readonly<Record<string, string | undefined>>): PoolsConfig => {
  const parsed = loadConfig(poolsEnvSchema, { ...env });
  return {
    tables: { pools: parsed.POOLS_TABLE },
    settings: { policy: parsed.POOL_POLICY, pools: parsed.POOLS },
  };
};
