import { z } from 'zod';
import {
  isSsmParameterRef,
  OPERATOR_IMAGE_PARAMETER_PREFIX,
  PUBLIC_IMAGE_PARAMETER_PREFIX,
  poolNameSchema,
  poolSpecSchema,
} from './config';

/**
 * `warmboot` / Define Pool: create or replace an operator-defined pool. Its image, if an SSM
 * parameter, must be one the deployed role may read: a public alias or one under the operator
 * prefix (a deploy-time pool's own parameter is granted by name; a run-time one cannot be).
 */
export const definePoolDetail = z.object({
  pool: poolSpecSchema.refine(
    (spec) =>
      !isSsmParameterRef(spec.image) ||
      spec.image.startsWith(PUBLIC_IMAGE_PARAMETER_PREFIX) ||
      spec.image.startsWith(OPERATOR_IMAGE_PARAMETER_PREFIX),
    {
      path: ['image'],
      message: `an SSM parameter image of a pool defined at run time must be under ${PUBLIC_IMAGE_PARAMETER_PREFIX} or ${OPERATOR_IMAGE_PARAMETER_PREFIX} (warmboot may read no other)`,
    },
  ),
});
/** `warmboot` / Drain Pool: retire every member and stop refilling. */
export const drainPoolDetail = z.object({ pool: poolNameSchema });
/** `warmboot` / Reconcile Pools: reconcile one pool now, or all of them. */
export const reconcilePoolsDetail = z.object({ pool: poolNameSchema.optional() });
/** `warmboot.fact` / Server Claimed: a claim took a member; refill at once. */
export const serverClaimedDetail = z.looseObject({ pool: poolNameSchema });
