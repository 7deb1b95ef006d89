import { RunInstancesCommand } from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { dynamoPoolStore } from '../../functions/pools/adapters/store';
import type { PoolSpecInput } from '../../functions/pools/config';
import { dynamoShelfStore } from '../../functions/shelving/adapters/store';
import type { EventEnvelope } from '../../local/bus';
import type { LocalCloud } from '../../local/cloud';
import { AMAZON_SSM_MANAGED_INSTANCE_CORE } from '../../local/iam/instance-profiles';
import { callProvenance, callViolations } from '../../local/provenance';
import { optedInInstanceTags, outsideEc2Client } from '../support/instances';
import { localCloudPerTest } from '../support/local-cloud';
import { shelvingRequest as request } from '../support/shelving';

/**
 * Pools serve unshelve (issue 19): a running member of a pool named in `unshelveFromPools` stands
 * in for the replacement launch, is handed over as a claim would be, and has its root replaced in
 * place with the retained one.
 */

const MINUTE = 60_000;
const SUBNET = 'subnet-0aaaaaaaaaaaaaaa1';
const POOL = 'web-hot';
const PROFILE = 'web-member';

const startCloud = localCloudPerTest();

const start = async (shelving: Record<string, unknown>) => {
  const local = await startCloud({
    functions: ['pools', 'claim', 'shelving'],
    settings: {
      POOL_POLICY: JSON.stringify({ instanceProfiles: [{ name: PROFILE }, { name: 'other' }] }),
      // The owner's instances have the pool's profile: shelving may relaunch with it.
      SHELVING_SETTINGS: JSON.stringify({
        offloadAfterSeconds: -1,
        instanceProfiles: [{ name: PROFILE }],
        ...shelving,
      }),
    },
  });
  local.instanceProfiles.create(PROFILE, { managedPolicyArns: [AMAZON_SSM_MANAGED_INSTANCE_CORE] });
  local.ec2.addSubnet({ subnetId: SUBNET, availabilityZone: 'us-east-1a' });
  // As deployed: the pools and shelving reconciles run on their schedules.
  local.startSchedules();
  const image = local.ec2.registerImage({ name: 'al2023-web', rootSizeGiB: 8 });
  const facts: EventEnvelope[] = [];
  local.bus.onEvent((event) => {
    if (event.source === 'warmboot.fact') facts.push(event);
  });
  return { local, image, facts };
};

const hotPool = (image: string, minSize: number): PoolSpecInput => ({
  name: POOL,
  image,
  instanceType: 'm7i.large',
  subnets: [SUBNET],
  instanceProfile: PROFILE,
  initialization: { platform: 'linux', packages: [], timeoutMinutes: 30 },
  tier: 'running',
  minSize,
  maxSize: minSize + 2,
});

/** The owner's instance: the pool's AMI, type, subnet and profile, with a data volume. */
const launchOwned = async (local: LocalCloud, image: string): Promise<string> => {
  const owner = outsideEc2Client('owner', local);
  const answer = await local.run(() =>
    owner.send(
      new RunInstancesCommand({
        ImageId: image,
        InstanceType: 'm7i.large',
        MinCount: 1,
        MaxCount: 1,
        SubnetId: SUBNET,
        IamInstanceProfile: { Name: PROFILE },
        MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1, HttpEndpoint: 'enabled' },
        BlockDeviceMappings: [{ DeviceName: '/dev/sdf', Ebs: { VolumeSize: 20, DeleteOnTermination: true } }],
        TagSpecifications: optedInInstanceTags('shelving', { 'warmboot:tenant': 'tenant-a', Name: 'web' }),
      }),
    ),
  );
  await local.settleFor(MINUTE);
  return answer.Instances?.[0]?.InstanceId ?? '';
};

const shelvedAndOffloaded = async (local: LocalCloud, instanceId: string): Promise<string> => {
  const answer = await request(local, 'shelve.json', {
    instanceIds: [instanceId],
    tenant: 'tenant-a',
    snapshot: true,
  });
  await local.settleFor(3 * MINUTE);
  const recordId = answer.result.results?.[0]?.recordId ?? '';
  await request(local, 'offload.json', { recordIds: [recordId] });
  await local.settleFor(5 * MINUTE);
  return recordId;
};

const recordOf = async (local: LocalCloud, recordId: string) =>
  (await local.run(() => dynamoShelfStore(local.documents, local.tables.shelves).getMany([recordId])))[0];
const membersOf = (local: LocalCloud) =>
  local.run(() => dynamoPoolStore(local.documents, local.tables.pools).listMembers(POOL));
const calls = (local: LocalCloud, api: string): number => local.ec2.stats()[api]?.calls ?? 0;

describe('pools serve unshelve', () => {
  it('takes a running pool member instead of launching, hands it over and replaces its root in place', async () => {
    const { local, image, facts } = await start({ keepPrivateIp: false, unshelveFromPools: [POOL] });
    const instanceId = await launchOwned(local, image);
    const recordId = await shelvedAndOffloaded(local, instanceId);
    await local.adminRequest('Define Pool', { pool: hotPool(image, 1) });
    await local.settleFor(5 * MINUTE);
    const [member] = await membersOf(local);
    expect(member).toMatchObject({ state: 'ready', running: true });
    const [shelved] = [await recordOf(local, recordId)];
    const rootId = shelved?.volumes.find((volume) => volume.root)?.volumeId ?? '';
    const launchesBefore = calls(local, 'RunInstances');

    await request(local, 'unshelve.json', { recordIds: [recordId] });
    await local.settleFor(3 * MINUTE);

    const record = await recordOf(local, recordId);
    expect(record).toMatchObject({
      step: 'unshelved',
      unshelve: { path: 'in-place', replacementInstanceId: member?.instanceId, poolMember: { pool: POOL } },
    });
    const unshelved = facts.filter((event) => event['detail-type'] === 'Instance Unshelved');
    expect(unshelved.map((event) => [event.detail.path, event.detail.pool, event.detail.instanceId])).toEqual(
      [['in-place', POOL, member?.instanceId]],
    );
    // The member is the record's now: pool tags gone, the shelving opt-in and the record's own tags on, the
    // retained root in place, no member record left.
    const server = local.ec2.instance(member?.instanceId ?? '');
    expect(server?.state).toBe('running');
    expect(server?.tags).toMatchObject({
      'warmboot:shelving': 'true',
      Name: 'web',
      'warmboot:replacement-for': recordId,
    });
    expect(
      Object.keys(server?.tags ?? {}).filter(
        (key) => key.startsWith('warmboot:pool') || key === 'warmboot:member-state',
      ),
    ).toEqual([]);
    expect(local.ec2.volume(rootId)?.attachment).toMatchObject({
      instanceId: member?.instanceId,
      device: '/dev/xvda',
    });
    expect((await membersOf(local)).map((item) => item.instanceId)).not.toContain(member?.instanceId);
    // No replacement launched by shelving (the pool refills itself: that launch is the pools').
    const launchedForRecord = local.ec2
      .instances()
      .filter((instance) => instance.tags['warmboot:replacement-batch'] !== undefined);
    expect(launchedForRecord).toEqual([]);
    expect(calls(local, 'RunInstances') - launchesBefore).toBeLessThanOrEqual(1);
    expect(local.iam.denials()).toEqual([]);
    // Every call judged by provenance: shelving changed the member only once its pool's record
    // claimed it for this unshelve, and no instance holding retained volumes was terminated.
    expect(callViolations(callProvenance(local))).toEqual([]);
  });

  it('takes a stopped member of the warm tier, starts it once handed over and replaces its root in place', async () => {
    const { local, image, facts } = await start({ keepPrivateIp: false, unshelveFromPools: [POOL] });
    const instanceId = await launchOwned(local, image);
    const recordId = await shelvedAndOffloaded(local, instanceId);
    await local.adminRequest('Define Pool', { pool: { ...hotPool(image, 1), tier: 'stopped' } });
    await local.settleFor(8 * MINUTE);
    const [member] = await membersOf(local);
    expect(member).toMatchObject({ state: 'ready', running: false });
    const memberRoot =
      local.ec2.volumes().find((volume) => volume.attachment?.instanceId === member?.instanceId)?.volumeId ??
      '';
    expect(memberRoot).not.toBe('');
    const startsBefore = calls(local, 'StartInstances');

    await request(local, 'unshelve.json', { recordIds: [recordId] });
    await local.settleFor(3 * MINUTE);

    expect(await recordOf(local, recordId)).toMatchObject({
      step: 'unshelved',
      unshelve: { path: 'in-place', replacementInstanceId: member?.instanceId, poolMember: { pool: POOL } },
    });
    const unshelved = facts.filter((event) => event['detail-type'] === 'Instance Unshelved');
    expect(unshelved.map((event) => [event.detail.path, event.detail.pool, event.detail.instanceId])).toEqual(
      [['in-place', POOL, member?.instanceId]],
    );
    expect(local.ec2.instance(member?.instanceId ?? '')?.state).toBe('running');
    expect(calls(local, 'StartInstances') - startsBefore).toBeGreaterThanOrEqual(1);
    // The member's own root went with the task (DeleteReplacedRootVolume), not by a shelving delete.
    expect(local.ec2.volume(memberRoot)).toBeUndefined();
    expect(calls(local, 'DeleteVolume')).toBe(0);
    expect(local.iam.denials()).toEqual([]);
    expect(callViolations(callProvenance(local))).toEqual([]);
  });

  it('launches as usual when no member fits (another instance profile), and never touches the member', async () => {
    const { local, image } = await start({ keepPrivateIp: false, unshelveFromPools: [POOL] });
    local.instanceProfiles.create('other', { managedPolicyArns: [AMAZON_SSM_MANAGED_INSTANCE_CORE] });
    const instanceId = await launchOwned(local, image);
    const recordId = await shelvedAndOffloaded(local, instanceId);
    await local.adminRequest('Define Pool', { pool: { ...hotPool(image, 1), instanceProfile: 'other' } });
    await local.settleFor(5 * MINUTE);
    const [member] = await membersOf(local);

    await request(local, 'unshelve.json', { recordIds: [recordId] });
    await local.settleFor(3 * MINUTE);

    const record = await recordOf(local, recordId);
    expect(record).toMatchObject({ step: 'unshelved', unshelve: { path: 'in-place' } });
    expect(record?.unshelve?.replacementInstanceId).not.toBe(member?.instanceId);
    expect(record?.unshelve?.poolMember).toBeUndefined();
    expect((await membersOf(local)).find((item) => item.instanceId === member?.instanceId)).toMatchObject({
      state: 'ready',
    });
    expect(local.iam.denials()).toEqual([]);
  });
});
