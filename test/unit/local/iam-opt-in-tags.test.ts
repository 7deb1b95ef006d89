import type { Tag } from '@aws-sdk/client-ec2';
import { beforeAll, describe, expect, it } from 'vitest';
import { OPT_IN_TAG, RETIRED_MANAGED_TAG } from '../../../functions/shared/tags';
import { synthesizedRolePolicies } from '../../../local/iam/policy-source';
import type { IamDeployment, SynthesizedRolePolicies } from '../../../local/iam/policy-template';
import { createCloud, createVolume, launch } from './ec2-harness';
import { localIamOn } from './iam-harness';

/**
 * One opt-in tag per capability (functions/shared/tags.ts): each role's synthesized statements name
 * only its own, so a resource opted in to one capability stays out of every other's reach, and
 * the tag every capability once shared grants nothing.
 */

let synthesized: SynthesizedRolePolicies;
beforeAll(async () => {
  // Cached under node_modules/.cache after the first synth (~30 s).
  synthesized = await synthesizedRolePolicies();
}, 180_000);

const tagged = (tags: Record<string, string>): Tag[] =>
  Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));

const setup = async (deployment: Partial<IamDeployment> = {}) => {
  const cloud = await createCloud();
  const iam = localIamOn(cloud, synthesized, { hostGroups: ['web'], ...deployment });
  const instance = (tags: Record<string, string>) =>
    launch(cloud, { TagSpecifications: [{ ResourceType: 'instance', Tags: tagged(tags) }] });
  const volume = async (tags: Record<string, string>) =>
    (
      await createVolume(cloud, {
        Size: 8,
        TagSpecifications: [{ ResourceType: 'volume', Tags: tagged(tags) }],
      })
    ).VolumeId ?? '';
  return { cloud, iam, instance, volume };
};

/** The error name the local IAM answers with, or 'allowed'. */
const outcome = (call: Promise<unknown>): Promise<string> =>
  call.then(
    () => 'allowed',
    (error: unknown) => (error as { name?: string }).name ?? String(error),
  );

const TENANT = { 'warmboot:tenant': 'tenant-a' };
const CACHE_HOST = { [OPT_IN_TAG.imageCache]: 'true', 'warmboot:host-group': 'web' };

describe('opt-in tags, one per capability, in the synthesized role policies', () => {
  it('lets shelving act on an instance opted in to shelving, not on a cache host or a pool member', async () => {
    const { iam, instance } = await setup();
    const shelvable = await instance({ [OPT_IN_TAG.shelving]: 'true', ...TENANT });
    // A host of a configured group, opted in to the image cache only (even with a tenant tag).
    const cacheHost = await instance({ ...CACHE_HOST, ...TENANT });
    const poolMember = await instance({ [OPT_IN_TAG.pools]: 'true', 'warmboot:pool': 'web', ...TENANT });
    const stop = (id: string) =>
      outcome(iam.authorize('shelving', 'ec2', 'StopInstances', { InstanceIds: [id] }));
    const terminate = (id: string) =>
      outcome(iam.authorize('shelving', 'ec2', 'TerminateInstances', { InstanceIds: [id] }));

    expect(await stop(shelvable)).toBe('allowed');
    expect(await terminate(shelvable)).toBe('allowed');
    for (const other of [cacheHost, poolMember]) {
      expect(await stop(other)).toBe('UnauthorizedOperation');
      expect(await terminate(other)).toBe('UnauthorizedOperation');
      expect(
        await outcome(
          iam.authorize('shelving', 'ec2', 'CreateTags', {
            Resources: [other],
            Tags: [{ Key: 'Name', Value: 'x' }],
          }),
        ),
      ).toBe('UnauthorizedOperation');
    }
  });

  it('lets the image cache act on an opted-in host of its group, not on one opted in to shelving only', async () => {
    const { iam, instance, volume } = await setup();
    const host = await instance(CACHE_HOST);
    // In the host group, but opted in to shelving, not to the image cache.
    const shelvable = await instance({
      [OPT_IN_TAG.shelving]: 'true',
      'warmboot:host-group': 'web',
      ...TENANT,
    });
    const link = () => volume({ ...CACHE_HOST, 'warmboot:image': 'model-a' });
    const publish = (id: string) =>
      outcome(
        iam.authorize('imageCache', 'ec2', 'CreateTags', {
          Resources: [id],
          Tags: [{ Key: 'warmboot:warm-images', Value: 'model-a' }],
        }),
      );
    const attach = async (id: string) =>
      outcome(
        iam.authorize('imageCache', 'ec2', 'AttachVolume', {
          InstanceId: id,
          VolumeId: await link(),
          Device: '/dev/sdf',
        }),
      );

    expect(await publish(host)).toBe('allowed');
    expect(await attach(host)).toBe('allowed');
    expect(await publish(shelvable)).toBe('UnauthorizedOperation');
    expect(await attach(shelvable)).toBe('UnauthorizedOperation');
    // A volume opted in to shelving, even in the group and tagged with an image, is not the cache's.
    const shelvedLike = await volume({
      [OPT_IN_TAG.shelving]: 'true',
      'warmboot:host-group': 'web',
      'warmboot:image': 'model-a',
    });
    expect(await outcome(iam.authorize('imageCache', 'ec2', 'DeleteVolume', { VolumeId: shelvedLike }))).toBe(
      'UnauthorizedOperation',
    );
  });

  it('lets the pool roles act on pool members only, not on an instance opted in to shelving with a pool tag', async () => {
    const { iam, instance } = await setup();
    const member = await instance({ [OPT_IN_TAG.pools]: 'true', 'warmboot:pool': 'web' });
    const shelvable = await instance({ [OPT_IN_TAG.shelving]: 'true', 'warmboot:pool': 'web' });
    const terminate = (id: string) =>
      outcome(iam.authorize('pools', 'ec2', 'TerminateInstances', { InstanceIds: [id] }));

    expect(await terminate(member)).toBe('allowed');
    expect(await terminate(shelvable)).toBe('UnauthorizedOperation');
  });

  it('grants nothing for the retired shared warmboot:managed=true', async () => {
    const { iam, instance } = await setup();
    const legacy = await instance({
      [RETIRED_MANAGED_TAG]: 'true',
      'warmboot:host-group': 'web',
      'warmboot:pool': 'web',
      ...TENANT,
    });
    const asShelving = await outcome(
      iam.authorize('shelving', 'ec2', 'StopInstances', { InstanceIds: [legacy] }),
    );
    const asPools = await outcome(
      iam.authorize('pools', 'ec2', 'TerminateInstances', { InstanceIds: [legacy] }),
    );
    const asCache = await outcome(
      iam.authorize('imageCache', 'ec2', 'CreateTags', {
        Resources: [legacy],
        Tags: [{ Key: 'warmboot:warm-images', Value: 'model-a' }],
      }),
    );

    expect([asShelving, asPools, asCache]).toEqual([
      'UnauthorizedOperation',
      'UnauthorizedOperation',
      'UnauthorizedOperation',
    ]);
  });

  it('lets shelving opt in members of the pools that serve unshelve, with that one tag only', async () => {
    const { iam, instance } = await setup({ unshelveFromPools: ['web'] });
    const served = await instance({ [OPT_IN_TAG.pools]: 'true', 'warmboot:pool': 'web' });
    const otherPool = await instance({ [OPT_IN_TAG.pools]: 'true', 'warmboot:pool': 'batch' });
    const tag = (id: string, key: string) =>
      outcome(
        iam.authorize('shelving', 'ec2', 'CreateTags', {
          Resources: [id],
          Tags: [{ Key: key, Value: 'true' }],
        }),
      );

    expect(await tag(served, OPT_IN_TAG.shelving)).toBe('allowed');
    expect(await tag(served, OPT_IN_TAG.imageCache)).toBe('UnauthorizedOperation');
    expect(await tag(otherPool, OPT_IN_TAG.shelving)).toBe('UnauthorizedOperation');
    // Without pools serving unshelve, not even that.
    const { iam: plain, instance: launchPlain } = await setup();
    const member = await launchPlain({ [OPT_IN_TAG.pools]: 'true', 'warmboot:pool': 'web' });
    expect(
      await outcome(
        plain.authorize('shelving', 'ec2', 'CreateTags', {
          Resources: [member],
          Tags: [{ Key: OPT_IN_TAG.shelving, Value: 'true' }],
        }),
      ),
    ).toBe('UnauthorizedOperation');
  });
});
