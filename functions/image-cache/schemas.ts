import { z } from 'zod';
import { instanceIdSchema } from '../shared/schemas/aws-events';
import { hostGroupNameSchema, imageSpecSchema } from './config';
import { IMAGE_ID_PATTERN, regex } from './patterns';

export {
  ec2InstanceStateChangeDetail,
  scheduledEventDetail,
  ssmCommandInvocationStatusDetail,
} from '../shared/schemas/aws-events';

/** The same pattern the documents' `ImageId` allowedPattern uses. */
export const imageIdSchema = z
  .string()
  .max(256)
  .regex(regex(IMAGE_ID_PATTERN), 'letters, digits and _:@+- separated by single . or /');

/**
 * `warmboot` / Register Image (administrators only): how to fetch and verify an image. A new id
 * is registered without `expectedVersion`; changing a registered one needs the version its last
 * answer gave.
 */
export const registerImageDetail = z.strictObject({
  image: imageSpecSchema,
  expectedVersion: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
});

/** `warmboot` / Pin Image: keep the image on every host of the group; never evict it. */
export const pinImageDetail = z.strictObject({
  hostGroup: hostGroupNameSchema,
  imageId: imageIdSchema,
  /** Registers the image in the same request. */
  image: imageSpecSchema.optional(),
});

export const unpinImageDetail = z.strictObject({ hostGroup: hostGroupNameSchema, imageId: imageIdSchema });

/**
 * Plan Cache: plan one group (or all) now; an operator request (`warmboot`) or placement's fact
 * (`warmboot.fact`), whose `warm` carries its explicit requests.
 */
export const planCacheDetail = z.strictObject({
  hostGroup: hostGroupNameSchema.optional(),
  warm: z
    .array(z.strictObject({ imageId: imageIdSchema, instanceIds: z.array(instanceIdSchema).min(1).max(50) }))
    .max(50)
    .optional(),
});
export type PlanCacheDetail = z.infer<typeof planCacheDetail>;

/** `warmboot.fact` / Popularity Changed: the popularity function's own schema of its fact. */
export { popularityChangedSchema as popularityChangedDetail } from '../popularity/schemas';
