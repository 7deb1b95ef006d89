import { z } from 'zod';

/** Operator event `warmboot` / `Plan Fast Restore`: run a round now; `dryRun` only reports it. */
export const PLAN_FAST_RESTORE = 'Plan Fast Restore';
export const planFastRestoreSchema = z.strictObject({
  dryRun: z.boolean().default(false),
});

/** Published after a round changed something (`warmboot.fact` / `Fast Restore Changed`). */
export const FAST_RESTORE_CHANGED = 'Fast Restore Changed';

export const AMI_ID_PATTERN = '^ami-[0-9a-f]{8,17}$';
export const isAmiId = (image: string): boolean => new RegExp(AMI_ID_PATTERN).test(image);

/*
 * The AWS events fast restore reads (EBS Fast Snapshot Restore State-change Notification,
 * Scheduled Event) are parsed with the shared schemas in shared/schemas/aws-events.ts.
 */
