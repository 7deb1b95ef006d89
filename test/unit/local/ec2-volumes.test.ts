import {
  AttachVolumeCommand,
  DeleteVolumeCommand,
  DescribeVolumesCommand,
  DetachVolumeCommand,
  StopInstancesCommand,
} from '@aws-sdk/client-ec2';
import { beforeEach, describe, expect, it } from 'vitest';
import { classifyAwsError } from '../../../functions/shared/aws-errors';
import { MAX_VOLUME_ATTACHMENTS } from '../../../local/ec2/volumes';
import { type Cloud, createCloud, createVolume, launch, ZONE_A, ZONE_B } from './ec2-harness';

let cloud: Cloud;
let instanceId: string;

const send = <T>(call: () => Promise<T>) => cloud.run(call);

/** A 10 GiB gp3 volume, once available; its id. */
const availableVolume = async (zone = ZONE_A): Promise<string> => {
  const volume = await createVolume(cloud, { AvailabilityZone: zone, Size: 10, VolumeType: 'gp3' });
  await cloud.settle();
  return volume.VolumeId ?? '';
};

const attach = (volumeId: string, device = '/dev/sdf', target = instanceId) =>
  send(() =>
    cloud.ec2Client.send(new AttachVolumeCommand({ VolumeId: volumeId, InstanceId: target, Device: device })),
  );

const rootVolumeId = () =>
  cloud.ec2
    .volumes()
    .find(
      (volume) => volume.attachment?.instanceId === instanceId && volume.attachment.device === '/dev/xvda',
    )?.volumeId;

const setup = async (latency: 'zero' | 'calibrated') => {
  cloud = await createCloud({ latency });
  instanceId = await launch(cloud, { Placement: { AvailabilityZone: ZONE_A } });
  await cloud.settle();
};

beforeEach(() => setup('zero'));

describe('EBS volumes', () => {
  it('CreateVolume goes creating → available', async () => {
    const created = await createVolume(cloud, { Size: 10 });
    expect(created.State).toBe('creating');

    await cloud.settle();

    expect(cloud.ec2.volumes().find((volume) => volume.volumeId === created.VolumeId)?.state).toBe(
      'available',
    );
  });

  it('attaching goes attaching → attached and puts the volume in use', async () => {
    const volumeId = await availableVolume();

    const attachment = await attach(volumeId);
    await cloud.settle();

    expect(attachment.State).toBe('attaching');
    const described = await send(() =>
      cloud.ec2Client.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] })),
    );
    expect(described.Volumes?.[0]).toMatchObject({
      State: 'in-use',
      Attachments: [{ InstanceId: instanceId, Device: '/dev/sdf', State: 'attached' }],
    });
  });

  it('attaching a volume across AZs fails with InvalidVolume.ZoneMismatch', async () => {
    const volumeId = await availableVolume(ZONE_B);

    await expect(attach(volumeId)).rejects.toMatchObject({ name: 'InvalidVolume.ZoneMismatch' });
  });

  it('attaching an attached volume fails with VolumeInUse', async () => {
    const volumeId = await availableVolume();
    await attach(volumeId);

    await expect(attach(volumeId, '/dev/sdg')).rejects.toMatchObject({ name: 'VolumeInUse' });
  });

  it('attaching a volume that is still creating fails with IncorrectState', async () => {
    await setup('calibrated');
    const created = await createVolume(cloud, { Size: 10 });

    const error = await attach(created.VolumeId ?? '').catch((caught: unknown) => caught);

    expect(error).toMatchObject({ name: 'IncorrectState' });
    expect(classifyAwsError(error)).toBe('incorrect-state');
  });

  it('attaching at a device name already in use fails with InvalidParameterValue', async () => {
    const volumeId = await availableVolume();

    await expect(attach(volumeId, '/dev/xvda')).rejects.toMatchObject({ name: 'InvalidParameterValue' });
  });

  it(`the ${MAX_VOLUME_ATTACHMENTS + 1}th attachment of a Nitro instance fails with AttachmentLimitExceeded`, async () => {
    // The root volume holds one slot already.
    const letters = 'fghijklmnopqrstuvwxyz'.split('').concat(['ba', 'bb', 'bc', 'bd', 'be', 'bf']);
    for (const letter of letters.slice(0, MAX_VOLUME_ATTACHMENTS - 1))
      await attach(await availableVolume(), `/dev/sd${letter}`);
    const oneTooMany = await availableVolume();

    await expect(attach(oneTooMany, '/dev/sdbz')).rejects.toMatchObject({ name: 'AttachmentLimitExceeded' });
  });

  it("detaching a running instance's root volume fails with IncorrectState, even with Force", async () => {
    const detach = send(() =>
      cloud.ec2Client.send(new DetachVolumeCommand({ VolumeId: rootVolumeId(), Force: true })),
    );

    await expect(detach).rejects.toMatchObject({ name: 'IncorrectState' });
  });

  it("a stopped instance's root volume can be detached", async () => {
    await send(() => cloud.ec2Client.send(new StopInstancesCommand({ InstanceIds: [instanceId] })));
    await cloud.settle();
    const volumeId = rootVolumeId();

    await send(() => cloud.ec2Client.send(new DetachVolumeCommand({ VolumeId: volumeId })));
    await cloud.settle();

    expect(cloud.ec2.volumes().find((volume) => volume.volumeId === volumeId)?.state).toBe('available');
  });

  it('detaching an available volume fails with IncorrectState', async () => {
    const volumeId = await availableVolume();

    const detach = send(() => cloud.ec2Client.send(new DetachVolumeCommand({ VolumeId: volumeId })));

    await expect(detach).rejects.toMatchObject({ name: 'IncorrectState' });
  });

  it('deleting an attached volume fails with VolumeInUse; detached it is deleted', async () => {
    const volumeId = await availableVolume();
    await attach(volumeId);
    const remove = () => send(() => cloud.ec2Client.send(new DeleteVolumeCommand({ VolumeId: volumeId })));

    await expect(remove()).rejects.toMatchObject({ name: 'VolumeInUse' });
    await send(() => cloud.ec2Client.send(new DetachVolumeCommand({ VolumeId: volumeId })));
    await cloud.settle();
    await remove();
    await cloud.settle();
    expect(cloud.ec2.volumes().some((volume) => volume.volumeId === volumeId)).toBe(false);
  });

  it('an unknown volume is InvalidVolume.NotFound, classified as not found', async () => {
    const error = await send(() =>
      cloud.ec2Client.send(new DescribeVolumesCommand({ VolumeIds: ['vol-0123456789abcdef0'] })),
    ).catch((caught: unknown) => caught);

    expect(error).toMatchObject({ name: 'InvalidVolume.NotFound' });
    expect(classifyAwsError(error)).toBe('not-found');
  });

  it('DescribeVolumes filters by attachment.instance-id, status and tag', async () => {
    const tagged = await createVolume(cloud, {
      Size: 5,
      TagSpecifications: [{ ResourceType: 'volume', Tags: [{ Key: 'warmboot:shelving', Value: 'true' }] }],
    });
    await cloud.settle();
    const describe = (filters: { Name: string; Values: string[] }[]) =>
      send(() => cloud.ec2Client.send(new DescribeVolumesCommand({ Filters: filters }))).then((answer) =>
        answer.Volumes?.map((volume) => volume.VolumeId),
      );

    expect(await describe([{ Name: 'attachment.instance-id', Values: [instanceId] }])).toEqual([
      rootVolumeId(),
    ]);
    expect(
      await describe([
        { Name: 'status', Values: ['available'] },
        { Name: 'tag:warmboot:shelving', Values: ['true'] },
      ]),
    ).toEqual([tagged.VolumeId]);
  });
});
