import { describe, expect, it } from 'vitest';
import { defineRuntimePool } from '../../../functions/pools/application/requests';
import { type PoolSpecInput, poolPolicySchema } from '../../../functions/pools/config';
import { PoolNotAllowedError } from '../../../functions/pools/domain/admission';
import { harness } from './fakes';
import { AMI, NOW, spec } from './fixtures';

/**
 * A pool an administrator defines at run time gets no more than configuration allows (security
 * review C2): never a deploy-time pool's name, only a configured instance profile, only an AMI of
 * an allowed owner. Each refusal is named and stores nothing.
 */
const contextPools = [spec({ name: 'linux-web', instanceProfile: 'web-profile' })];
const policy = poolPolicySchema.parse({ instanceProfiles: [{ name: 'build-profile', role: 'pools/build' }] });

const define = async (overrides: Partial<PoolSpecInput>, foreignImage = false) => {
  const h = harness();
  if (foreignImage) h.ec2.foreignImages.add(AMI);
  const attempt = defineRuntimePool(
    h.pools,
    spec({ name: 'runtime-pool', minSize: 0, ...overrides }),
    contextPools,
    policy,
    NOW,
  );
  return { h, attempt };
};

describe('Define Pool', () => {
  it('never replaces a deploy-time pool', async () => {
    const { h, attempt } = await define({ name: 'linux-web' });

    await expect(attempt).rejects.toMatchObject({ code: 'DeployTimePool', field: 'detail.pool.name' });
    expect(await h.store.getPool('linux-web')).toBeUndefined();
  });

  it('refuses an instance profile configuration does not name', async () => {
    const { h, attempt } = await define({ instanceProfile: 'AdministratorAccess-profile' });

    await expect(attempt).rejects.toMatchObject({
      code: 'InstanceProfileNotAllowed',
      field: 'detail.pool.instanceProfile',
    });
    expect(await h.store.getPool('runtime-pool')).toBeUndefined();
  });

  it('refuses a configured profile claimed with another role than configuration says', async () => {
    const { attempt } = await define({ instanceProfile: 'build-profile', instanceRole: 'admin' });

    await expect(attempt).rejects.toMatchObject({
      code: 'InstanceProfileNotAllowed',
      field: 'detail.pool.instanceRole',
    });
  });

  it('refuses an AMI whose owner is not allowed, naming detail.pool.image, before storing anything', async () => {
    const { h, attempt } = await define({ instanceProfile: 'build-profile' }, true);

    await expect(attempt).rejects.toBeInstanceOf(PoolNotAllowedError);
    await expect(attempt).rejects.toMatchObject({ code: 'ImageOwnerNotAllowed', field: 'detail.pool.image' });
    expect(await h.store.getPool('runtime-pool')).toBeUndefined();
    expect(h.ec2.clientTokens).toEqual([]);
  });

  it('stores a pool with a configured profile (a deploy-time pool’s or the policy’s) and an allowed AMI', async () => {
    for (const instanceProfile of ['web-profile', 'build-profile']) {
      const { h, attempt } = await define({ instanceProfile });

      await attempt;

      expect(await h.store.getPool('runtime-pool'), instanceProfile).toMatchObject({ source: 'operator' });
    }
  });
});
