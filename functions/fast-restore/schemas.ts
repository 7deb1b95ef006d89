import { z } from 'zod';
import { SNAPSHOT_ID_PATTERN } from '../image-cache/patterns';
import { availabilityZoneSchema } from '../popularity/schemas';
import { FSR_STATES } from './domain/plan';

/** Operator event `warmboot` / `Plan Fast Restore`: run a round now; `dryRun` only reports it. */
export const PLAN_FAST_RESTORE = 'Plan Fast Restore';
export const planFastRestoreSchema = z.strictObject({
  dryRun: z.boolean().default(false),
});

/** Published after a round changed something (`warmboot` / `Fast Restore Changed`). */
export const FAST_RESTORE_CHANGED = 'Fast Restore Changed';

export const AMI_ID_PATTERN = '^ami-[0-9a-f]{8,17}$';
export const isAmiId = (image: string): boolean => new RegExp(AMI_ID_PATTERN).test(image);

/**
 * `aws.ec2` / EBS Fast Snapshot Restore State-change Notification (EBS user guide, "EventBridge
 * for Amazon EBS"): `{ "snapshot-id", state, zone, message }`.
 */
export const fsrStateChangeSchema = z.looseObject({
  'snapshot-id': z.string().regex(new RegExp(SNAPSHOT_ID_PATTERN), 'not a snapshot id'),
  state: z.enum(FSR_STATES),
  zone: availabilityZoneSchema,
  message: z.string().optional(),
});

/** `aws.events` / Scheduled Event: the level-triggered round; its detail is empty. */
export const scheduledEventSchema = z.looseObject({});
