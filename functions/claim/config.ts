import * as z from 'zod';
import { POOL_POLICY_ENV, type PoolModelConfig, poolPolicyEnv } from '../pools/config';
import { envString, loadConfig } from '../shared/config';

/** The claim function reads the pool model's table and policy; the pools themselves it reads from the table. */
const claimEnvSchema = z.object({ [POOL_POLICY_ENV]: poolPolicyEnv, POOLS_TABLE: envString });

export type ClaimConfig = PoolModelConfig;

/** Reads the claim function's environment; fails the cold start naming the missing variable. */
export const loadClaimConfig = (env: Readonly<Record<string, string | undefined>>): ClaimConfig => {
  const parsed = loadConfig(claimEnvSchema, { ...env });
  return { tables: { pools: parsed.POOLS_TABLE }, settings: { policy: parsed.POOL_POLICY } };
};
