import { z } from 'zod';
import { poolNameSchema, poolSpecSchema } from './config';

/** `warmboot` / Define Pool: create or replace an operator-defined pool. */
export const definePoolDetail = z.object({ pool: poolSpecSchema });
/** `warmboot` / Drain Pool: retire every member and stop refilling. */
export const drainPoolDetail = z.object({ pool: poolNameSchema });
/** `warmboot` / Reconcile Pools: reconcile one pool now, or all of them. */
export const reconcilePoolsDetail = z.object({ pool: poolNameSchema.optional() });
/** `warmboot` / Server Claimed: a claim took a member; refill at once. */
export const serverClaimedDetail = z.looseObject({ pool: poolNameSchema });
