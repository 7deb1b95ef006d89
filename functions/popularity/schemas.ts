import * as z from 'zod';
import { regex } from '../shared/aws-ids';
import { HOST_GROUP_NAME_PATTERN, IMAGE_ID_PATTERN } from '../shared/names';
import { availabilityZoneSchema } from '../shared/schemas/aws-events';

/**
 * The one image-id validator: popularity keys, fast-restore lookups and everything the cache
 * planner later sends to a host through SSM use the same pattern (shared/names.ts, also the
 * SSM documents' allowedPattern). It admits AMI ids, container references
 * (`registry/repo:tag@sha256:…`) and opaque ids, and rejects shell metacharacters, whitespace
 * and `..`, `./`, `//` (no path traversal).
 */
const IMAGE_ID_MAX_LENGTH = 255;

const imageIdSchema = z
  .string()
  .min(1, 'image id is empty')
  .max(IMAGE_ID_MAX_LENGTH, `image id longer than ${IMAGE_ID_MAX_LENGTH} characters`)
  .regex(
    regex(IMAGE_ID_PATTERN),
    'image id must be letters, digits and _:@+- separated by single . or / (no shell metacharacters, no ..)',
  );

export const isValidImageId = (value: string): boolean => imageIdSchema.safeParse(value).success;

/**
 * The AWS events popularity counts (EC2 running, ECS task RUNNING) are parsed with the one shared
 * schema per AWS event in shared/schemas/aws-events.ts, proven against AWS's published samples.
 */

export const hostGroupSchema = z
  .string()
  .regex(regex(HOST_GROUP_NAME_PATTERN), 'host group: lower-case letters, digits and -');

/** Operator event `warmboot` / `Image Launched`: launches on platforms warmboot does not watch. */
export const IMAGE_LAUNCHED = 'Image Launched';
export const imageLaunchedSchema = z.strictObject({
  image: imageIdSchema,
  availabilityZone: availabilityZoneSchema.optional(),
  hostGroup: hostGroupSchema.optional(),
  count: z.number().int().min(1).max(1000).default(1),
});
export type ImageLaunched = z.infer<typeof imageLaunchedSchema>;

const scopeSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('global') }),
  z.strictObject({ kind: z.literal('az'), az: availabilityZoneSchema }),
  z.strictObject({ kind: z.literal('hostGroup'), hostGroup: hostGroupSchema }),
]);

/** The fact popularity publishes (`warmboot.fact` / `Popularity Changed`); the cache planner parses it. */
export const POPULARITY_CHANGED = 'Popularity Changed';
export const popularityChangedSchema = z.strictObject({
  image: imageIdSchema,
  scope: scopeSchema,
  score: z.number().nonnegative(),
  /** 1-based rank in the scope's top K, null when the image crossed the threshold outside it. */
  rank: z.number().int().positive().nullable(),
  reasons: z.array(z.enum(['entered-top-k', 'crossed-threshold'])).min(1),
  at: z.iso.datetime(),
});
export type PopularityChanged = z.infer<typeof popularityChangedSchema>;
