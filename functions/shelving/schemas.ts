import * as z from 'zod';
import { ec2InstanceStateChangeDetail, instanceIdSchema } from '../shared/schemas/aws-events';
import { CONFIRMATION_TOKEN_PATTERN, RECORD_ID_PATTERN } from './domain/requests';

/**
 * Every event detail the shelving function accepts. Lists are capped here (the settings may cap
 * them lower); a bad id names its field and no AWS call is made.
 */
const MAX_ITEMS_PER_REQUEST = 1000;

const recordIdSchema = z
  .string()
  .regex(RECORD_ID_PATTERN, 'not a shelve record id (sh-<instance hex>-<base36 time>)');
/** The value of the `warmboot:tenant` tag an operator may name. */
export const tenantSchema = z.string().regex(/^[A-Za-z0-9._:@+=-]{1,128}$/, 'not a tenant name');

const idList = <T extends z.ZodType>(item: T) =>
  z
    .array(item)
    .min(1, 'must name at least one')
    .max(MAX_ITEMS_PER_REQUEST, `at most ${MAX_ITEMS_PER_REQUEST}`);

export const shelveInstancesDetail = z
  .object({
    instanceIds: idList(instanceIdSchema),
    /**
     * When given, every instance's tenant tag must say the same, and the caller must act for it.
     * Every instance must be of a tenant the caller acts for either way (domain/tenancy.ts).
     */
    tenant: tenantSchema.optional(),
    /** Overrides the setting for this request: 0 offloads at once, -1 never automatically. */
    offloadAfterSeconds: z.number().int().min(-1).optional(),
    /** Overrides `snapshotOnShelve` for this request. */
    snapshot: z.boolean().optional(),
  })
  .strict();

export const offloadInstancesDetail = z
  .object({
    recordIds: idList(recordIdSchema).optional(),
    instanceIds: idList(instanceIdSchema).optional(),
  })
  .strict()
  .refine((detail) => detail.recordIds !== undefined || detail.instanceIds !== undefined, {
    message: 'name recordIds or instanceIds',
    path: ['recordIds'],
  });

export const unshelveInstancesDetail = z
  .object({
    recordIds: idList(recordIdSchema).optional(),
    instanceIds: idList(instanceIdSchema).optional(),
    /** Alone: every shelved record of the tenant. With ids: each must belong to it. Must be the caller's. */
    tenant: tenantSchema.optional(),
  })
  .strict()
  .refine(
    (detail) =>
      detail.recordIds !== undefined || detail.instanceIds !== undefined || detail.tenant !== undefined,
    { message: 'name recordIds, instanceIds or tenant', path: ['recordIds'] },
  );

export const deleteShelvedRecordDetail = z
  .object({
    recordId: recordIdSchema,
    /**
     * The confirmation token the unconfirmed request answered (server-issued, bound to that
     * record and its exact volumes and snapshots, short-lived). Absent: answer the plan and a token.
     */
    confirm: z
      .string()
      .regex(
        CONFIRMATION_TOKEN_PATTERN,
        'not a confirmation token: send the "confirm" the unconfirmed Delete Shelved Record answered',
      )
      .optional(),
  })
  .strict();

export const instanceStateDetail = ec2InstanceStateChangeDetail;
export const scheduledDetail = z.looseObject({});

export type ShelveInstancesDetail = z.infer<typeof shelveInstancesDetail>;
export type OffloadInstancesDetail = z.infer<typeof offloadInstancesDetail>;
export type UnshelveInstancesDetail = z.infer<typeof unshelveInstancesDetail>;
