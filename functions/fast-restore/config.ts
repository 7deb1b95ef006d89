import * as z from 'zod';
import { envJson, envString, loadConfig } from '../shared/config';

/** Fast snapshot restore costs 0.75 USD per snapshot-AZ-hour (docs/ec2-timings.md). */
const FSR_USD_PER_PAIR_HOUR = 0.75;
/**
 * FSR is billed per minute a pair is enabled, with a minimum of one hour per enable (EBS User
 * Guide, "Configure fast snapshot restore"): a pair disabled earlier costs that hour anyway.
 */
const FSR_BILLING_MINIMUM_MINUTES = 60;

/**
 * Fast-restore settings. The infra team validates the CDK context `fastRestore` with this schema
 * and passes the result as the JSON environment variable `FAST_RESTORE_SETTINGS`.
 */
export const fastRestoreSettingsSchema = z
  .object({
    /** At most this many snapshot-AZ pairs enabled at once (AWS allows 5 per Region by default). */
    maxPairs: z.number().int().min(0).max(1000).default(5),
    /** At most this spend on fast snapshot restore, USD per hour. */
    maxUsdPerHour: z.number().min(0).default(3.75),
    /** Consider the top N AMIs per AZ by decayed launch score. */
    topPerAz: z.number().int().min(1).max(100).default(3),
    /** A pair whose AMI left the top set stays enabled this long before it is disabled. */
    cooldownMinutes: z
      .number()
      .int()
      .min(0)
      .max(7 * 24 * 60)
      .default(120),
    /** AMIs below this decayed score are never worth enabling. */
    minScore: z.number().min(0).default(1),
    /**
     * An AMI whose pairs are on keeps them unless a challenger scores this many times higher:
     * FSR is billed per hour, so swapping near-equals back and forth only costs money.
     */
    hysteresis: z.number().min(1).default(1.5),
    /**
     * A pair warmboot enabled stays at least this long before a challenger may take its place or
     * a cool-down may end it: disabling it earlier saves nothing (FSR's one-hour billing minimum)
     * and re-enabling elsewhere pays another hour. Never below the billing minimum.
     */
    minHoldMinutes: z
      .number()
      .int()
      .min(FSR_BILLING_MINIMUM_MINUTES)
      .max(7 * 24 * 60)
      .default(FSR_BILLING_MINIMUM_MINUTES),
    /** Cost of one snapshot-AZ pair, USD per hour. */
    usdPerPairHour: z.number().positive().default(FSR_USD_PER_PAIR_HOUR),
    /**
     * Accounts besides this one whose snapshots FSR may be enabled on (security review H4): a
     * popular AMI of anyone else (a public AMI an `Image Launched` names) never spends the budget.
     * Default: none, only this account's snapshots.
     */
    allowedSnapshotOwners: z
      .array(z.string().regex(/^[0-9]{12}$/, 'a 12-digit account id'))
      .max(50)
      .default([]),
  })
  .strict();

export type FastRestoreSettings = z.infer<typeof fastRestoreSettingsSchema>;

export const FAST_RESTORE_SETTINGS_ENV = 'FAST_RESTORE_SETTINGS';

/** Variable names follow tableEnvVar() in shared/tables.ts. */
const fastRestoreEnvSchema = z.object({
  IMAGE_CACHE_TABLE: envString,
  [FAST_RESTORE_SETTINGS_ENV]: envJson(fastRestoreSettingsSchema).default(
    fastRestoreSettingsSchema.parse({}),
  ),
});

export interface FastRestoreConfig {
  /** Popularity is read through popularity's own config (its table and settings). */
  readonly tables: { readonly imageCache: string };
  readonly settings: FastRestoreSettings;
}

/** Reads the function's environment; fails the cold start naming the missing variable. */
export const loadFastRestoreConfig = (
  env: Readonly<Record<string, string | undefined>>,
): FastRestoreConfig => {
  const parsed = loadConfig(fastRestoreEnvSchema, { ...env });
  return {
    tables: { imageCache: parsed.IMAGE_CACHE_TABLE },
    settings: parsed.FAST_RESTORE_SETTINGS,
  };
};
