import * as z from 'zod';
import { AWS_REGION_PATTERN, regex, SNAPSHOT_ID_PATTERN } from '../shared/aws-ids';
import { envJson, envString, loadConfig } from '../shared/config';
import { HOST_GROUP_NAME_PATTERN, IMAGE_ID_PATTERN } from '../shared/names';
import { availabilityZoneSchema } from '../shared/schemas/aws-events';
import {
  BUCKET_PATTERN,
  CACHE_DIRECTORY_PATTERN,
  CONTAINER_REF_PATTERN,
  DIGEST_PATTERN,
  FORBIDDEN_REGISTRY_PATTERN,
  REGISTRY_HOST_PATTERN,
  S3_URI_PATTERN,
  SNAPSHOT_OWNER_PATTERN,
} from './patterns';

/** On a host of a group that publishes its warm list: the images it holds (domain/warm-list.ts). */
export const WARM_IMAGES_TAG = 'warmboot:warm-images';
/** Carried by every volume volume-link creates (value: the image id); marks a cache volume. */
export const CACHE_VOLUME_IMAGE_TAG = 'warmboot:image';

export const hostGroupNameSchema = z
  .string()
  .regex(regex(HOST_GROUP_NAME_PATTERN), 'lower-case letters, digits and "-", at most 63 characters');

/**
 * SSM `MaxErrors`: an absolute count or a percentage (SSM SendCommand API reference).
 * Default `10%`: one host with a full disk must not stop the rest of its batch (SSM's own default
 * of 0 would).
 */
export const MAX_ERRORS_PATTERN = '^(?:[0-9]{1,4}|[1-9]?[0-9]%|100%)$';

/**
 * `self` in `allowedRegistries`: this account's private ECR registries, in any Region
 * (`<account>.dkr.ecr.<region>.amazonaws.com`); the account is the one the function runs in.
 */
export const OWN_REGISTRY = 'self';

const registryAllowlistEntry = z
  .string()
  .max(253)
  .refine((value) => value === OWN_REGISTRY || regex(REGISTRY_HOST_PATTERN).test(value), {
    message: '"self" or a registry host[:port] as it appears in a container reference',
  })
  .refine((value) => !regex(FORBIDDEN_REGISTRY_PATTERN).test(value), {
    message: 'loopback, link-local, localhost and IP-literal registries are never allowed',
  });

/** How a group's hosts get images (application/fetch-strategies.ts); the setting is named `handler`. */
const fetchStrategyKindSchema = z.enum(['download', 'volume-link', 'auto']);
export type FetchStrategyKind = z.infer<typeof fetchStrategyKindSchema>;

/** One host group: the instances tagged `warmboot:host-group=<name>` and how their cache is run. */
export const hostGroupSchema = z.object({
  name: hostGroupNameSchema,
  /** Cache budget per host, bytes. */
  cacheBytes: z.number().int().positive(),
  /** Where the cache lives on every host; absolute, no `..`, only safe characters. */
  cacheDirectory: z
    .string()
    .max(1024)
    .regex(regex(CACHE_DIRECTORY_PATTERN), 'absolute path of [A-Za-z0-9._-] segments, no ".." or "//"'),
  handler: fetchStrategyKindSchema.default('download'),
  /** SSM MaxConcurrency for warm commands: hosts pulling at once, so the image source is not flooded. */
  warmConcurrency: z.number().int().min(1).max(50).default(10),
  maxErrors: z.string().regex(regex(MAX_ERRORS_PATTERN), 'a count (0-9999) or a percentage').default('10%'),
  /** `tag`: keep `warmboot:warm-images` on every host up to date (placement-aware schedulers read it). */
  publishWarmList: z.enum(['none', 'tag']).default('none'),
  /** Failed fetches of one image on one host before the planner stops retrying it. */
  maxFetchAttempts: z.number().int().min(1).max(20).default(5),
  /** Base of the exponential backoff between fetch attempts, ms. */
  retryBaseMs: z.number().int().min(1_000).default(60_000),
  /** A freshly warmed image is not evicted for popularity churn before this long (hysteresis), ms. */
  minResidencyMs: z
    .number()
    .int()
    .min(0)
    .default(30 * 60_000),
  /** Images below this decayed score are not worth a download. */
  minScore: z.number().min(0).default(0),
  /**
   * Hysteresis of the knapsack: a copy a host already holds competes with its value density
   * multiplied by (1 + keepMargin), so a candidate must beat it by that margin to take its place
   * (a replacement costs the candidate's bytes now and the incumbent's bytes again if it comes
   * back). 0 = no hysteresis.
   */
  keepMargin: z.number().min(0).max(100).default(3),
  /**
   * How fast extra replicas lose value: the k-th copy of an image with score s is worth s / k^p.
   * A second copy only serves launches that find the first host busy, so its value falls
   * faster than 1/k; 1 gives hot images many copies, larger values cover more distinct images.
   * The default (with keepMargin's) was chosen by a sweep on generated traces only, never on a
   * trace the benchmark's results are judged on (docs/benchmarks.md, "How the planner defaults
   * were chosen").
   */
  replicaExponent: z.number().min(0).max(8).default(5),
  /**
   * Longest a host's recorded cache goes without the inventory document re-reading its disk, ms
   * (each host is re-inventoried after a stable share of this, between half and all of it, so
   * hosts that joined together do not all report in one reconcile). Divergence the function can
   * see (a command result that contradicts the record, a claim dropped after a crash) re-inventories
   * the host at the next reconcile; this bound covers what it cannot see (files removed on the host).
   */
  inventoryIntervalMs: z
    .number()
    .int()
    .min(5 * 60_000)
    .default(60 * 60_000),
  /**
   * Container registries the group's hosts may pull from (security review H2, L4): registry hosts
   * exactly as in the reference (`ghcr.io`, `public.ecr.aws`, `docker.io` for Docker Hub), or
   * `self` for this account's private ECR. Default: `["self"]`, this account's ECR only.
   */
  allowedRegistries: z.array(registryAllowlistEntry).max(50).default([OWN_REGISTRY]),
  /** S3 buckets the group's hosts may copy images from. Default: none. */
  allowedBuckets: z
    .array(z.string().regex(regex(BUCKET_PATTERN), 'an S3 bucket name'))
    .max(50)
    .default([]),
  /**
   * Accounts whose snapshots may be linked as volumes (`self`: this account). Default: `["self"]`.
   * A snapshot must also carry the tag `warmboot:image=<image id>` (tags are the owner's and are
   * visible to it only, so a snapshot of another account must be tagged in that account's view:
   * in practice, copy it into this account).
   */
  allowedSnapshotOwners: z
    .array(z.string().regex(regex(SNAPSHOT_OWNER_PATTERN), '"self" or a 12-digit account id'))
    .max(50)
    .default(['self']),
});
export type HostGroup = z.infer<typeof hostGroupSchema>;
export type HostGroupInput = z.input<typeof hostGroupSchema>;

const imageBase = {
  id: z
    .string()
    .max(256)
    .regex(regex(IMAGE_ID_PATTERN), 'letters, digits and _:@+- separated by single . or /'),
  sizeBytes: z.number().int().positive(),
  /** EBS snapshot holding the image as a filesystem, for volume-link. */
  snapshot: z
    .object({
      snapshotId: z.string().regex(regex(SNAPSHOT_ID_PATTERN), 'an EBS snapshot id'),
      region: z.string().regex(regex(AWS_REGION_PATTERN), 'an AWS region'),
      /** AZs in which fast snapshot restore is enabled (volume creation is then fully initialized). */
      fastRestoreAzs: z.array(availabilityZoneSchema).max(32).default([]),
    })
    .optional(),
};

/** What warmboot knows about an image: where to fetch it and how to verify it. */
export const imageSpecSchema = z.discriminatedUnion('kind', [
  z.object({
    ...imageBase,
    kind: z.literal('container'),
    source: z.string().max(512).regex(regex(CONTAINER_REF_PATTERN), 'a container reference without digest'),
    digest: z.string().regex(regex(DIGEST_PATTERN), 'sha256:<64 hex>'),
  }),
  z.object({
    ...imageBase,
    kind: z.literal('s3'),
    source: z.string().max(1024).regex(regex(S3_URI_PATTERN), 's3://bucket/key'),
    digest: z.string().regex(regex(DIGEST_PATTERN), 'sha256:<64 hex>'),
  }),
]);
export type ImageSpec = z.infer<typeof imageSpecSchema>;

/** The host groups, as the imageCache and placement functions read them from `HOST_GROUPS`. */
export const hostGroupsSetting = envJson(
  z
    .array(hostGroupSchema)
    .refine((groups) => new Set(groups.map((group) => group.name)).size === groups.length, {
      message: 'host group names must be unique',
    }),
);

const imageCacheEnvSchema = z.object({
  HOST_GROUPS: hostGroupsSetting,
  IMAGE_CACHE_TABLE: envString,
  /** Set by Lambda: the Region the function runs in (volume-link compares snapshot Regions to it). */
  AWS_REGION: z.string().regex(regex(AWS_REGION_PATTERN), 'an AWS Region'),
});

export interface ImageCacheConfig {
  readonly tables: { readonly imageCache: string };
  readonly settings: { readonly hostGroups: readonly HostGroup[]; readonly region: string };
}

/** The imageCache function's configuration; a missing or malformed variable fails the cold start. */
export const loadImageCacheConfig = (env: Record<string, string | undefined>): ImageCacheConfig => {
  const parsed = loadConfig(imageCacheEnvSchema, env);
  return {
    tables: { imageCache: parsed.IMAGE_CACHE_TABLE },
    settings: { hostGroups: parsed.HOST_GROUPS, region: parsed.AWS_REGION },
  };
};
