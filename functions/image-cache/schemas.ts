import * as z from 'zod';
import { regex, VOLUME_ID_PATTERN } from '../shared/aws-ids';
import { IMAGE_ID_PATTERN } from '../shared/names';
import { instanceIdSchema } from '../shared/schemas/aws-events';
import type { CommandRecord, HostRecord, StoredEntry } from './adapters/store';
import { hostGroupNameSchema, imageSpecSchema } from './config';
import type { ReportedImage } from './domain/transitions';

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

/**
 * Most images one inventory report may list: far more than a cache holds (a host's budget over
 * the smallest image), few enough that a hostile host cannot flood the table.
 */
export const MAX_REPORTED_IMAGES = 1_000;

/** A byte count a host reported: a non-negative safe integer. */
export const reportedBytesSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

const reportedImageSchema = z.union([
  z
    .object({
      imageId: imageIdSchema,
      kind: z.enum(['container', 's3']),
      bytes: reportedBytesSchema.default(0),
    })
    .transform(({ imageId, bytes }): ReportedImage => ({ imageId, bytes, via: 'download' })),
  z
    .object({
      imageId: imageIdSchema,
      kind: z.literal('volume'),
      bytes: reportedBytesSchema.default(0),
      volumeId: z.string().regex(regex(VOLUME_ID_PATTERN)),
    })
    .transform(
      ({ imageId, bytes, volumeId }): ReportedImage => ({
        imageId,
        bytes,
        via: 'volume-link',
        volumeId,
      }),
    ),
]);

/**
 * The inventory document's `WARMBOOT_RESULT`, as untrusted input (security review M4): root on a
 * host can print anything. An item of `images` is kept only if its image id and volume id match
 * the patterns the documents use, its kind is one the documents write and its bytes are a
 * non-negative safe integer; an image listed twice counts once; at most MAX_REPORTED_IMAGES.
 * Anything else in the report (no `images`, items of another shape) reports nothing.
 */
export const inventoryReportSchema = z
  .object({ images: z.array(z.unknown()).catch([]) })
  .catch({ images: [] })
  .transform(({ images }): ReportedImage[] => {
    const accepted = new Map<string, ReportedImage>();
    for (const raw of images) {
      if (accepted.size >= MAX_REPORTED_IMAGES) break;
      const item = reportedImageSchema.safeParse(raw);
      if (item.success && !accepted.has(item.data.imageId)) accepted.set(item.data.imageId, item.data);
    }
    return [...accepted.values()];
  });

/* The imageCache table's items as read back: parsed, so a record shape change fails loudly. */

const optionalNumber = z.number().optional();

export const storedEntryItem = z.object({
  instanceId: z.string(),
  imageId: z.string(),
  state: z.enum(['fetching', 'cached', 'evicting', 'failed']),
  bytes: z.number(),
  since: z.number(),
  attempts: z.number(),
  retryAt: optionalNumber,
  commandId: z.string().optional(),
  via: z.enum(['download', 'volume-link']).optional(),
  volumeId: z.string().optional(),
  note: z.string().optional(),
  version: z.number(),
}) satisfies z.ZodType<StoredEntry>;

export const hostRecordItem = z.object({
  instanceId: z.string(),
  availabilityZone: z.string(),
  status: z.enum(['joining', 'running', 'stopped']),
  joinedAt: z.number(),
  initAttempts: optionalNumber,
  initDueAt: optionalNumber,
  joinProblem: z.literal('agent-never-registered').optional(),
  warmList: z.string().optional(),
  inventoriedAt: optionalNumber,
  inventoryDueAt: optionalNumber,
  inventoryCommandId: z.string().optional(),
  inventorySentAt: optionalNumber,
  version: z.number(),
}) satisfies z.ZodType<HostRecord>;

export const commandRecordItem = z.object({
  commandId: z.string(),
  hostGroup: z.string(),
  imageId: z.string().optional(),
  document: z.string(),
  instanceIds: z.array(z.string()),
  sentAt: z.number(),
  orphanVolumeId: z.string().optional(),
}) satisfies z.ZodType<CommandRecord>;
