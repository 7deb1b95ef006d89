import { describe, expect, it } from 'vitest';
import { dynamoShelfStore } from '../../functions/shelving/adapters/store';
import { AMAZON_SSM_MANAGED_INSTANCE_CORE } from '../../local/iam/instance-profiles';
import { localCloudPerTest } from '../support/local-cloud';
import { launchWithDataVolume, shelvingRequest } from '../support/shelving';

/**
 * Shelving relaunches only what its settings allow (issue 15): the instance profiles of
 * `shelving.instanceProfiles` (IAM lets the role pass only their roles) and AMIs of
 * `shelving.allowedImageOwners` (IAM's ec2:Owner). A Shelve that no relaunch could serve is
 * refused before anything is stopped; one that can is served, through the deployed role's IAM.
 */

const MINUTE = 60_000;
const PROFILE = 'web-server';

const startCloud = localCloudPerTest();

const start = async (shelving: Record<string, unknown> = {}) => {
  const local = await startCloud({
    functions: ['shelving'],
    settings: { SHELVING_SETTINGS: JSON.stringify({ offloadAfterSeconds: -1, ...shelving }) },
  });
  local.instanceProfiles.create(PROFILE, { managedPolicyArns: [AMAZON_SSM_MANAGED_INSTANCE_CORE] });
  return local;
};

/** The instance and its volumes exactly as launched: running, nothing of warmboot's on them. */
const untouched = (local: Awaited<ReturnType<typeof start>>, instanceId: string) => {
  const instance = local.ec2.instance(instanceId);
  const volumes = local.ec2.volumes().filter((volume) => volume.attachment?.instanceId === instanceId);
  return (
    instance?.state === 'running' &&
    volumes.length === 2 &&
    volumes.every(
      (volume) => volume.tags['warmboot:shelved'] === undefined && volume.attachment?.deleteOnTermination,
    )
  );
};

/** A Shelve of the one instance, as tenant-a sends it, once the cloud settled: its result per instance. */
const shelveOne = async (local: Awaited<ReturnType<typeof start>>, instanceId: string) => {
  const answer = await shelvingRequest(local, 'shelve.json', {
    instanceIds: [instanceId],
    tenant: 'tenant-a',
  });
  await local.settleFor(5 * MINUTE);
  return answer.result.results;
};

/** The results of a Shelve refused for `instanceId` with `code`, the message naming the setting. */
const refused = (instanceId: string, code: string, message: string) => [
  { id: instanceId, ok: false, error: { code, message: expect.stringContaining(message) } },
];

describe('a Shelve no relaunch could serve is refused before anything is stopped', () => {
  it('refuses an instance whose profile shelving.instanceProfiles does not name (none by default)', async () => {
    const local = await start();
    const [instanceId = ''] = await launchWithDataVolume(local, 1, { instanceProfile: PROFILE });

    expect(await shelveOne(local, instanceId)).toEqual(
      refused(
        instanceId,
        'InstanceProfileNotAllowed',
        `instance profile ${PROFILE} is not in shelving.instanceProfiles (none)`,
      ),
    );
    expect(untouched(local, instanceId)).toBe(true);
    expect(local.iam.stats().denied).toBe(0);
  });

  it('refuses an instance from an AMI of an owner shelving.allowedImageOwners does not name', async () => {
    const local = await start();
    // A public AMI of another account, the first image the helper launches from.
    local.ec2.registerImage({ name: 'stranger', rootSizeGiB: 8, ownerId: '210987654321' });
    const [instanceId = ''] = await launchWithDataVolume(local, 1);

    expect(await shelveOne(local, instanceId)).toEqual(
      refused(instanceId, 'ImageOwnerNotAllowed', 'shelving.allowedImageOwners (self, amazon)'),
    );
    expect(untouched(local, instanceId)).toBe(true);
  });
});

describe('a Shelve the settings allow', () => {
  it('shelves, offloads and relaunches with the configured profile, through the role’s IAM', async () => {
    const local = await start({ instanceProfiles: [{ name: PROFILE }] });
    const [instanceId = ''] = await launchWithDataVolume(local, 1, { instanceProfile: PROFILE });

    const shelved = await shelvingRequest(local, 'shelve.json', {
      instanceIds: [instanceId],
      tenant: 'tenant-a',
    });
    const recordId = shelved.result.results?.[0]?.recordId ?? '';
    await local.settleFor(5 * MINUTE);
    await shelvingRequest(local, 'offload.json', { recordIds: [recordId] });
    await local.settleFor(5 * MINUTE);
    await shelvingRequest(local, 'unshelve.json', { recordIds: [recordId], tenant: 'tenant-a' });
    await local.settleFor(10 * MINUTE);

    const [record] = await local.run(() =>
      dynamoShelfStore(local.documents, local.tables.shelves).getMany([recordId]),
    );
    expect(record?.step).toBe('unshelved');
    const replacement = local.ec2.instance(record?.unshelve?.replacementInstanceId ?? '');
    expect(replacement?.state).toBe('running');
    expect(replacement?.iamInstanceProfile).toContain(`instance-profile/${PROFILE}`);
    expect(local.iam.stats().denied).toBe(0);
  });
});
