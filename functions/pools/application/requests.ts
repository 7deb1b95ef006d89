import { NotFoundError, ValidationError } from '../../shared/errors';
import { itemErrorOf } from '../../shared/results';
import type { PoolRecord } from '../adapters/store';
import type { PoolPolicy, PoolSpec } from '../config';
import type { PoolsDependencies } from '../dependencies';
import { ImageOwnerNotAllowedError, PoolNotAllowedError, runtimePoolRefusal } from '../domain/admission';
import { initParameters } from '../schemas';
import { type ReconcileSummary, reconcileAllPools, reconcileOne, skipped } from './reconcile-round';

/** Accepts a pool spec: its init parameters must pass the document's patterns before it is stored. */
export const definePool = async (
  deps: PoolsDependencies,
  spec: PoolSpec,
  source: PoolRecord['source'],
  now: number,
): Promise<ReconcileSummary> => {
  initParameters(spec);
  // A stored definition today's rules no longer accept is exactly what this one replaces.
  const existing = await deps.store.getPool(spec.name).catch((error: unknown) => {
    if (error instanceof ValidationError) return undefined;
    throw error;
  });
  const record: PoolRecord = {
    spec,
    source,
    status: 'active',
    ...(existing?.sizing ? { sizing: existing.sizing } : {}),
  };
  await deps.store.putPool(record, now);
  return reconcileOne(deps, spec.name, now);
};

/**
 * `Define Pool` (administrators only): the pool is stored only if configuration allows it, its
 * image included, which EC2 is asked about (the image of an SSM parameter as it resolves now;
 * every later launch checks again).
 */
export const defineRuntimePool = async (
  deps: PoolsDependencies,
  spec: PoolSpec,
  contextPools: readonly PoolSpec[],
  policy: PoolPolicy,
  now: number,
): Promise<ReconcileSummary> => {
  const refusal = runtimePoolRefusal(spec, contextPools, policy);
  if (refusal) throw refusal;
  const imageId = await deps.ssm.resolveImage(spec.image);
  try {
    await deps.ec2.checkImageOwner(imageId);
  } catch (error) {
    if (!(error instanceof ImageOwnerNotAllowedError)) throw error;
    throw new PoolNotAllowedError('ImageOwnerNotAllowed', 'detail.pool.image', error.message);
  }
  return definePool(deps, spec, 'operator', now);
};

/** Stops refilling and retires every member (claims already under way finish). */
export const drainPool = async (
  deps: PoolsDependencies,
  name: string,
  now: number,
): Promise<ReconcileSummary> => {
  if (!(await deps.store.setStatus(name, 'draining', now)))
    throw new NotFoundError(`pool ${name} is not defined`);
  // The drain is recorded: the scheduled reconcile finishes it whatever this first pass meets, so
  // a failure here is answered as such, not thrown (a crash would read as a drain that was lost).
  return reconcileOne(deps, name, now).catch((error: unknown) => {
    const { code, message } = itemErrorOf(error);
    return skipped(name, `drain recorded; the scheduled reconcile finishes it (${code}: ${message})`);
  });
};

/** `Reconcile Pools`: one pool now, or every pool as the schedule does. */
export const reconcileRequested = async (
  deps: PoolsDependencies,
  pool: string | undefined,
  contextPools: readonly PoolSpec[],
  now: number,
): Promise<ReconcileSummary[]> =>
  pool === undefined ? reconcileAllPools(deps, contextPools, now) : [await reconcileOne(deps, pool, now)];
