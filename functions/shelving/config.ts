import * as z from 'zod';
import { imageOwnersSchema, instanceProfileSchema } from '../pools/config';
import { envJson, envString, loadConfig } from '../shared/config';

/**
 * Settings of the shelving function, carried as one JSON document in `SHELVING_SETTINGS` so the
 * CDK construct can set them from typed props. Every field has a default; an empty object is valid.
 */
export const shelvingSettingsSchema = z
  .object({
    /**
     * Seconds after a shelve completes before the instance is offloaded (terminated, volumes kept),
     * like Nova's shelved_offload_time: 0 offloads immediately, -1 never offloads automatically.
     */
    offloadAfterSeconds: z.number().int().min(-1).default(3600),
    /** Snapshot every volume on shelve as the safety copy the slow unshelve path restores from. */
    snapshotOnShelve: z.boolean().default(true),
    /** Most instances per StartInstances / StopInstances / TerminateInstances / RunInstances call. */
    maxBatch: z.number().int().min(1).max(1000).default(100),
    /** Most instances one operator request may name (and one tenant-wide unshelve may resolve to). */
    maxInstancesPerRequest: z.number().int().min(1).max(5000).default(1000),
    /** Most records one reconcile round advances; the rest wait for the next schedule tick. */
    reconcileBatch: z.number().int().min(1).max(5000).default(1000),
    /** Give up waiting for a full Dedicated Host (affinity `host`) after this many seconds. */
    hostWaitSeconds: z.number().int().min(0).default(3600),
    /**
     * When the recorded AZ is unusable (DescribeAvailabilityZones says impaired or unavailable,
     * the recorded subnet is gone, or the AZ has refused the replacement for lack of capacity for
     * this many seconds), restore from the safety snapshots into another AZ of the same VPC: a
     * new subnet and private IP, said in Instance Unshelved. -1 never leaves the recorded AZ
     * (the unshelve waits for it). Instances on a Dedicated Host never move.
     */
    otherAzAfterSeconds: z.number().int().min(-1).default(900),
    /**
     * The deployment let a confirmed Delete Shelved Record delete retained data (the stack's
     * `allowShelvedDataDeletion`, which also grants DeleteVolume and DeleteSnapshot on it). Off:
     * a Delete is refused before anything is touched, saying so, instead of failing on IAM.
     */
    allowDataDeletion: z.boolean().default(false),
    /**
     * Fast path: attach the retained data volumes while the replacement still runs its fresh OS
     * (before the stop), so their AttachVolume calls overlap the stop. The fresh OS sees them as
     * hot-plugged disks and is then force-stopped; turn this off for images whose OS mounts or
     * formats disks it finds at run time.
     */
    attachDataVolumesWhileRunning: z.boolean().default(true),
    /**
     * Unshelve in place: the running replacement's root is swapped for the retained one with one
     * CreateReplaceRootVolumeTask (EC2 reboots it), instead of stop, detach, attach and start.
     * Records it cannot serve (user data, Windows, bare metal) take the stopped swap regardless.
     */
    replaceRootInPlace: z.boolean().default(true),
    /**
     * Launch each replacement with the shelved instance's private IPv4 address when it comes back
     * in its recorded subnet (an address still in use falls back to a new one, said in Instance
     * Unshelved). EC2 takes a private address only on a launch of one instance, so with this on
     * every fast-path replacement is its own RunInstances call (5 burst, 2/s) instead of one call
     * per launch configuration; off, replacements batch and get new addresses.
     */
    keepPrivateIp: z.boolean().default(true),
    /**
     * Pools whose running members an unshelve may take instead of launching a replacement (the
     * member's root is then replaced in place with the retained one): a member of the recorded
     * AMI, type, subnet, security groups and instance profile, with no volume besides its root.
     * It keeps its own private address, so this needs `keepPrivateIp` off. The pools must be
     * deployed with warmboot's pools capability.
     */
    unshelveFromPools: z.array(z.string().min(1)).max(20).default([]),
    /**
     * Instance profiles a replacement may be launched with (`{ name, role? }`, role default the
     * profile's name; security review C2). The shelving role may pass only their roles, and only
     * to EC2; a Shelve of an instance with any other profile is refused before anything is
     * stopped (InstanceProfileNotAllowed), and so is a relaunch. None: only instances without an
     * instance profile can be shelved.
     */
    instanceProfiles: z.array(instanceProfileSchema).max(20).default([]),
    /**
     * Owners whose AMIs a replacement may be launched from (as `poolPolicy.allowedImageOwners`):
     * IAM's `ec2:Owner` on the image, and a DescribeImages check at Shelve and before each
     * relaunch (ImageOwnerNotAllowed). Default `self` and `amazon`.
     */
    allowedImageOwners: imageOwnersSchema,
    /** Restore the recorded DeleteOnTermination flags once an unshelved instance is ready. */
    restoreDeleteOnTermination: z.boolean().default(true),
    /** How long a finished (unshelved or deleted) record stays readable before its TTL expires. */
    finishedRecordTtlSeconds: z
      .number()
      .int()
      .min(60)
      .default(30 * 24 * 3600),
    /**
     * How long a Shelve request's answers are remembered under its event id, so a retry or a
     * redelivery of the same event answers them again instead of shelving anew. Default 14 days:
     * longer than EventBridge (24 h) and Lambda (6 h) keep retrying, and as long as SQS keeps a
     * dead-lettered event that an operator may redrive.
     */
    requestMemorySeconds: z
      .number()
      .int()
      .min(3600)
      .default(14 * 24 * 3600),
  })
  .strict()
  .refine((settings) => settings.unshelveFromPools.length === 0 || !settings.keepPrivateIp, {
    path: ['unshelveFromPools'],
    message:
      'a pool member keeps its own private address: set keepPrivateIp to false to let unshelve take pool members',
  });

export type ShelvingSettings = z.infer<typeof shelvingSettingsSchema>;

export const defaultShelvingSettings: ShelvingSettings = shelvingSettingsSchema.parse({});

/** `tableEnvVar('shelves')`, spelled out so the schema stays typed. */
export const SHELVES_TABLE_ENV = 'SHELVES_TABLE';

/** The environment the shelving function reads at cold start (the CDK construct sets exactly these). */
const shelvingEnvSchema = z
  .object({
    SHELVES_TABLE: envString,
    /** Set by the stack only when pools serve unshelve (`unshelveFromPools`). */
    POOLS_TABLE: envString.optional(),
    SHELVING_SETTINGS: envJson(shelvingSettingsSchema).default(defaultShelvingSettings),
  })
  .refine((env) => env.SHELVING_SETTINGS.unshelveFromPools.length === 0 || env.POOLS_TABLE !== undefined, {
    path: ['POOLS_TABLE'],
    message: 'SHELVING_SETTINGS.unshelveFromPools names pools, but the function was given no pools table',
  });

export interface ShelvingConfig {
  readonly tables: { readonly shelf: string; readonly pools?: string };
  readonly settings: ShelvingSettings;
}

export const loadShelvingConfig = (env: Record<string, string | undefined>): ShelvingConfig => {
  const parsed = loadConfig(shelvingEnvSchema, env);
  const pools = parsed.SHELVING_SETTINGS.unshelveFromPools.length > 0 ? parsed.POOLS_TABLE : undefined;
  return {
    tables: { shelf: parsed.SHELVES_TABLE, ...(pools !== undefined ? { pools } : {}) },
    settings: parsed.SHELVING_SETTINGS,
  };
};
