import * as z from 'zod';
import { type HostGroup, hostGroupsSetting } from '../image-cache/config';
import { envString, loadConfig } from '../shared/config';

/** Placement reads the image cache's groups and table (image-cache owns the cache model). */
const placementEnvSchema = z.object({
  HOST_GROUPS: hostGroupsSetting,
  IMAGE_CACHE_TABLE: envString,
});

export interface PlacementConfig {
  readonly tables: { readonly imageCache: string };
  readonly settings: { readonly hostGroups: readonly HostGroup[] };
}

/** The placement function's configuration; a missing or malformed variable fails the cold start. */
export const loadPlacementConfig = (env: Record<string, string | undefined>): PlacementConfig => {
  const parsed = loadConfig(placementEnvSchema, env);
  return { tables: { imageCache: parsed.IMAGE_CACHE_TABLE }, settings: { hostGroups: parsed.HOST_GROUPS } };
};
