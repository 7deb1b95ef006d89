import { z } from 'zod';
import { envJson, envString } from '../shared/config';
import { tableEnvVar } from '../shared/tables';
import {
  AMI_ID_PATTERN,
  AVAILABILITY_ZONE_PATTERN,
  BOOLEAN_PATTERN,
  CONTAINER_IMAGE_PATTERN,
  INSTANCE_PROFILE_PATTERN,
  INSTANCE_TYPE_PATTERN,
  KEY_NAME_PATTERN,
  LAUNCH_TEMPLATE_ID_PATTERN,
  LAUNCH_TEMPLATE_VERSION_PATTERN,
  PACKAGE_NAME_PATTERN,
  POOL_DOCUMENT_NAME_PATTERN,
  POOL_NAME_PATTERN,
  regex,
  SECURITY_GROUP_ID_PATTERN,
  SSM_PARAMETER_PATTERN,
  SUBNET_ID_PATTERN,
} from './patterns';

export * from './patterns';

/** An AMI id, or an SSM parameter path that resolves to the latest AMI (re-resolved every reconcile). */
export const imageRefSchema = z
  .string()
  .refine((value) => regex(AMI_ID_PATTERN).test(value) || regex(SSM_PARAMETER_PATTERN).test(value), {
    message: `must match ${AMI_ID_PATTERN} or ${SSM_PARAMETER_PATTERN}`,
  })
  .refine((value) => !value.includes('..'), { message: 'must not contain ".."' });

export const isSsmParameterRef = (image: string): boolean => image.startsWith('/');

export const poolNameSchema = z.string().regex(regex(POOL_NAME_PATTERN));
export const instanceTypeSchema = z.string().regex(regex(INSTANCE_TYPE_PATTERN));
export const availabilityZoneSchema = z.string().regex(regex(AVAILABILITY_ZONE_PATTERN));

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
    .array(z.string().regex(regex(CONTAINER_IMAGE_PATTERN)))
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
  .refine((spec) => spec.minSize <= spec.maxSize, { message: 'must be <= maxSize', path: ['minSize'] });

export type PoolSpec = z.infer<typeof poolSpecSchema>;
export type PoolSpecInput = z.input<typeof poolSpecSchema>;
export type Initialization = z.infer<typeof initializationSchema>;

/** Pools defined in CDK context arrive as the `POOLS` JSON array; each is upserted on reconcile. */
export const poolsConfigSchema = z.object({
  POOLS: envJson(z.array(poolSpecSchema)).default([]),
  POOLS_TABLE: envString,
});
export type PoolsConfig = z.infer<typeof poolsConfigSchema>;

export const POOLS_TABLE_ENV = tableEnvVar('pools');

export const claimConfigSchema = z.object({ POOLS_TABLE: envString });
export type ClaimConfig = z.infer<typeof claimConfigSchema>;
