import * as z from 'zod';
import { AMI_ID_PATTERN, regex } from '../shared/aws-ids';

/** Operator event `warmboot` / `Plan Fast Restore`: run a round now; `dryRun` only reports it. */
export const PLAN_FAST_RESTORE = 'Plan Fast Restore';
export const planFastRestoreSchema = z.strictObject({
  dryRun: z.boolean().default(false),
});

/** Published after a round changed something (`warmboot.fact` / `Fast Restore Changed`). */
export const FAST_RESTORE_CHANGED = 'Fast Restore Changed';

const amiId = regex(AMI_ID_PATTERN);
export const isAmiId = (image: string): boolean => amiId.test(image);

/*
 * The AWS events fast restore reads (EBS Fast Snapshot Restore State-change Notification,
 * Scheduled Event) are parsed with the shared schemas in shared/schemas/aws-events.ts.
 */
