import * as z from 'zod';
import { hostGroupNameSchema } from '../image-cache/config';
import { imageIdSchema } from '../image-cache/schemas';
import { availabilityZoneSchema, instanceIdSchema } from '../shared/schemas/aws-events';

/** `warmboot` / Advise Placement: where to put `count` instances of `imageId` in a host group. */
export const advisePlacementDetail = z.strictObject({
  imageId: imageIdSchema,
  count: z.number().int().min(1).max(1000),
  hostGroup: hostGroupNameSchema,
  azs: z.array(availabilityZoneSchema).min(1).max(32).optional(),
  /** Free instance slots per host, when the caller knows them; hosts not listed are unlimited. */
  freeSlots: z.record(instanceIdSchema, z.number().int().min(0)).optional(),
});
export type AdvisePlacementDetail = z.infer<typeof advisePlacementDetail>;
