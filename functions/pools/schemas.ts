import * as z from 'zod';
import { ValidationError } from '../shared/errors';
import { invalidDocumentParameter } from '../shared/ssm-document';
import type { PoolRecord } from './adapters/store';
import { isSsmParameterRef, type PoolSpec, poolNameSchema, poolSpecSchema } from './config';
import { documentNamed } from './documents';
import { CLAIM_STEPS, type ClaimRecord } from './domain/claims';
import type { LaunchIntent } from './domain/launch-intents';
import { MEMBER_STATES, type PoolMember } from './domain/lifecycle';
import { OPERATOR_IMAGE_PARAMETER_PREFIX, PUBLIC_IMAGE_PARAMETER_PREFIX } from './patterns';

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

/**
 * The init document's parameters for a spec, checked against the document's allowedPatterns.
 * Lists go as one comma-separated String (documents.ts says why); the items' own patterns
 * exclude commas, so the document's list pattern accepts exactly the lists config.ts accepts.
 */
export const initParameters = (spec: PoolSpec): Record<string, string[]> => {
  const init = spec.initialization;
  const parameters = {
    platform: [init.platform],
    packages: [init.packages.join(',')],
    containerImages: [init.containerImages.join(',')],
    generalize: [init.generalize],
  };
  const document = documentNamed(init.documentName);
  if (!document)
    throw new ValidationError('pool.initialization.documentName', `unknown document ${init.documentName}`);
  const invalid = invalidDocumentParameter(document, parameters);
  if (invalid) throw new ValidationError(`pool.initialization.${invalid.parameter}`, invalid.message);
  return parameters;
};

// What the pools table holds, parsed back into records when read (adapters/store.ts).

export const poolMemberRecord: z.ZodType<PoolMember> = z.object({
  pool: z.string(),
  instanceId: z.string(),
  origin: z.enum(['pool', 'claim']),
  state: z.enum(MEMBER_STATES),
  running: z.boolean(),
  imageId: z.string(),
  instanceType: z.string(),
  availabilityZone: z.string(),
  subnetId: z.string(),
  launchedAt: z.number(),
  stateSince: z.number(),
  version: z.number(),
  initCommandId: z.string().optional(),
  claimId: z.string().optional(),
  reason: z.string().optional(),
});

export const launchIntentRecord: z.ZodType<LaunchIntent> = z.object({
  clientToken: z.string(),
  pool: z.string(),
  subnetId: z.string(),
  count: z.number(),
  origin: z.enum(['pool', 'claim']),
  claimId: z.string().optional(),
  nonce: z.string().optional(),
  createdAt: z.number(),
  instanceId: z.string().optional(),
});

const claimErrorRecord = z.object({ code: z.string(), message: z.string() });

export const claimRecord: z.ZodType<ClaimRecord> = z.object({
  requestId: z.string(),
  step: z.enum(CLAIM_STEPS),
  pool: z.string(),
  request: z.record(z.string(), z.unknown()),
  requestSha256: z.string().optional(),
  personalizationSha256: z.string().optional(),
  requestedAt: z.number(),
  updatedAt: z.number().optional(),
  leaseUntil: z.number().optional(),
  instanceId: z.string().optional(),
  path: z.enum(['hot', 'warm', 'cold']).optional(),
  error: claimErrorRecord.optional(),
  version: z.number(),
});

/** A pool's SPEC item: the spec as config.ts accepts it, its source and status, the sizing state. */
export const poolRecord: z.ZodType<PoolRecord> = z.object({
  spec: poolSpecSchema,
  source: z.enum(['context', 'operator']),
  status: z.enum(['active', 'draining']),
  sizing: z.object({ targetSize: z.number(), runningSize: z.number(), changedAt: z.number() }).optional(),
});
