import { ValidationError, WarmbootError } from '../../shared/errors';
import { allowedInstanceProfiles, type PoolPolicy, type PoolSpec } from '../config';

/**
 * The AMI is not owned by one of `allowedImageOwners` (security review C2): an image from anyone
 * else could boot with the pool's instance profile and hand its credentials out.
 */
export class ImageOwnerNotAllowedError extends WarmbootError {
  constructor(imageId: string, owners: readonly string[]) {
    super(
      'ImageOwnerNotAllowed',
      `image ${imageId} is not owned by an allowed owner (allowedImageOwners: ${owners.join(', ')})`,
    );
    this.name = 'ImageOwnerNotAllowedError';
  }
}

/** A field of a pool an administrator defines at run time that configuration does not allow. */
export class PoolNotAllowedError extends ValidationError {
  override readonly code: string;
  constructor(code: string, field: string, message: string) {
    super(field, message);
    this.code = code;
    this.name = 'PoolNotAllowedError';
  }
}

/**
 * Why a pool defined at run time (Define Pool, an administrator's direct invoke) may not be
 * stored, or undefined. Pure; the image owner is checked against EC2 separately.
 * - A deploy-time pool is configuration: a run-time definition never replaces it (C2).
 * - Its instance profile must be one configuration names, the only roles IAM lets warmboot pass.
 */
export const runtimePoolRefusal = (
  spec: PoolSpec,
  contextPools: readonly PoolSpec[],
  policy: PoolPolicy,
): PoolNotAllowedError | undefined => {
  if (contextPools.some((pool) => pool.name === spec.name)) {
    return new PoolNotAllowedError(
      'DeployTimePool',
      'detail.pool.name',
      `pool ${spec.name} is defined at deploy time (configuration): change it there, not with Define Pool`,
    );
  }
  if (spec.instanceProfile === undefined) return undefined;
  const allowed = allowedInstanceProfiles(contextPools, policy);
  const profile = allowed.find((candidate) => candidate.name === spec.instanceProfile);
  if (!profile) {
    return new PoolNotAllowedError(
      'InstanceProfileNotAllowed',
      'detail.pool.instanceProfile',
      `${spec.instanceProfile} is not an instance profile configuration names (${allowed.map((candidate) => candidate.name).join(', ') || 'none'}): add it to poolPolicy.instanceProfiles`,
    );
  }
  if (spec.instanceRole !== undefined && spec.instanceRole !== profile.role) {
    return new PoolNotAllowedError(
      'InstanceProfileNotAllowed',
      'detail.pool.instanceRole',
      `instance profile ${profile.name} holds role ${profile.role} in configuration, not ${spec.instanceRole}`,
    );
  }
  return undefined;
};
