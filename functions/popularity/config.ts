import * as z from 'zod';
import { envJson, envString, loadConfig } from '../shared/config';

/**
 * Popularity settings. The infra team validates the CDK context `popularity` with this schema
 * and passes the result to the function as the JSON environment variable `POPULARITY_SETTINGS`.
 */
export const popularitySettingsSchema = z
  .object({
    /** A launch counts half as much after this many hours (forward decay, see docs/popularity.md). */
    halfLifeHours: z
      .number()
      .positive()
      .max(24 * 365)
      .default(24),
    /**
     * Write shards per counter. A DynamoDB partition takes 1,000 WCU/s and a transactional write
     * of an item under 1 KB costs 2 WCU, so one shard absorbs ~500 launches/s of one image;
     * 8 shards leave 4x headroom over the 1,000 launches/s target.
     */
    shards: z.number().int().min(1).max(64).default(8),
    /** Size of the "top K now" list per scope. */
    topK: z.number().int().min(1).max(1000).default(20),
    /** Publish `Popularity Changed` when an image's score crosses this (decayed launches). */
    scoreThreshold: z.number().positive().default(10),
    /** At most one `Popularity Changed` per image and scope within this window. */
    changedMinIntervalSeconds: z.number().int().min(1).default(300),
    /** How long an event id is remembered for exact counting under duplicate delivery. */
    dedupeTtlHours: z
      .number()
      .int()
      .min(1)
      .max(24 * 30)
      .default(24 * 7),
    /** Instance → image lookups cached per execution environment. */
    instanceCacheSize: z.number().int().min(1).max(100_000).default(5_000),
    /**
     * Launches one caller may report with `Image Launched` per hour (security review H4); EC2 and
     * ECS events are not limited. A caller is the request's principal when AWS names it, else
     * its source (`warmboot` or `warmboot.tenant.<t>`, which the request bus policy binds).
     */
    imageLaunchedPerCallerPerHour: z.number().int().min(0).max(1_000_000).default(10_000),
  })
  .strict();

export type PopularitySettings = z.infer<typeof popularitySettingsSchema>;

export const POPULARITY_SETTINGS_ENV = 'POPULARITY_SETTINGS';

/** Variable names follow tableEnvVar() in shared/tables.ts. */
const popularityEnvSchema = z.object({
  POPULARITY_TABLE: envString,
  [POPULARITY_SETTINGS_ENV]: envJson(popularitySettingsSchema).default(popularitySettingsSchema.parse({})),
});

export interface PopularityConfig {
  readonly tables: { readonly popularity: string };
  readonly settings: PopularitySettings;
}

/** Reads the function's environment; fails the cold start naming the missing variable. */
export const loadPopularityConfig = (env: Readonly<Record<string, string | undefined>>): PopularityConfig => {
  const parsed = loadConfig(popularityEnvSchema, { ...env });
  return { tables: { popularity: parsed.POPULARITY_TABLE }, settings: parsed.POPULARITY_SETTINGS };
};
