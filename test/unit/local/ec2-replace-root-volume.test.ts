import {
  AttachVolumeCommand,
  CreateReplaceRootVolumeTaskCommand,
  type CreateReplaceRootVolumeTaskCommandInput,
  CreateVolumeCommand,
  type CreateVolumeCommandInput,
  DescribeInstancesCommand,
  DescribeReplaceRootVolumeTasksCommand,
  type DescribeReplaceRootVolumeTasksCommandInput,
  StopInstancesCommand,
} from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { type Cloud, createCloud, instanceEvents, launch, ZONE_A, ZONE_B } from './ec2-harness';

/**
 * CreateReplaceRootVolumeTask with VolumeId (local/ec2/replace-root-volume.ts): the rules of
 * API_CreateReplaceRootVolumeTask and the user guide's replace-root, the task's states as
 * DescribeReplaceRootVolumeTasks shows them, and the in-place restart.
 */

const setup = async (options: Parameters<typeof createCloud>[0] = {}) => {
  const cloud = await createCloud(options);
  const instanceId = await launch(cloud, { Placement: { AvailabilityZone: ZONE_A } });
  await cloud.settle();
  return { cloud, instanceId };
};

const createVolume = async (cloud: Cloud, input: Partial<CreateVolumeCommandInput> = {}): Promise<string> => {
  const volume = await cloud.run(() =>
    cloud.ec2Client.send(new CreateVolumeCommand({ AvailabilityZone: ZONE_A, Size: 8, ...input })),
  );
  await cloud.settle();
  return volume.VolumeId ?? '';
};

const replaceRoot = (cloud: Cloud, input: Partial<CreateReplaceRootVolumeTaskCommandInput>) =>
  cloud.run(() => cloud.ec2Client.send(new CreateReplaceRootVolumeTaskCommand({ InstanceId: '', ...input })));

const tasks = async (cloud: Cloud, input: DescribeReplaceRootVolumeTasksCommandInput = {}) =>
  (await cloud.run(() => cloud.ec2Client.send(new DescribeReplaceRootVolumeTasksCommand(input))))
    .ReplaceRootVolumeTasks ?? [];

const describeInstance = async (cloud: Cloud, instanceId: string) =>
  (await cloud.run(() => cloud.ec2Client.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }))))
    .Reservations?.[0]?.Instances?.[0];

const rootOf = (cloud: Cloud, instanceId: string) =>
  cloud.ec2
    .volumes()
    .find(
      (volume) => volume.attachment?.instanceId === instanceId && volume.attachment.device === '/dev/xvda',
    );

describe('CreateReplaceRootVolumeTask with VolumeId', () => {
  it('swaps the given volume in at the root device and keeps the instance, its address and data volumes', async () => {
    const { cloud, instanceId } = await setup();
    const original = rootOf(cloud, instanceId);
    const data = await createVolume(cloud);
    await cloud.run(() =>
      cloud.ec2Client.send(
        new AttachVolumeCommand({ VolumeId: data, InstanceId: instanceId, Device: '/dev/sdf' }),
      ),
    );
    const replacement = await createVolume(cloud);
    const before = await describeInstance(cloud, instanceId);
    const eventsBefore = instanceEvents(cloud.events, instanceId).length;

    const created = await replaceRoot(cloud, { InstanceId: instanceId, VolumeId: replacement });
    expect(created.ReplaceRootVolumeTask).toMatchObject({
      InstanceId: instanceId,
      TaskState: 'pending',
      DeleteReplacedRootVolume: false,
    });
    expect(created.ReplaceRootVolumeTask?.ReplaceRootVolumeTaskId).toMatch(/^replacevol-[0-9a-f]{17}$/);
    await cloud.settle();

    const [task] = await tasks(cloud);
    expect(task).toMatchObject({ TaskState: 'succeeded', CompleteTime: expect.any(String) });
    const after = await describeInstance(cloud, instanceId);
    expect(after?.State?.Name).toBe('running');
    expect(after?.PrivateIpAddress).toBe(before?.PrivateIpAddress);
    expect(after?.BlockDeviceMappings).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          DeviceName: '/dev/xvda',
          Ebs: expect.objectContaining({ VolumeId: replacement }),
        }),
        expect.objectContaining({ DeviceName: '/dev/sdf', Ebs: expect.objectContaining({ VolumeId: data }) }),
      ]),
    );
    // Kept by default: the original root is left available for the caller to delete.
    expect(cloud.ec2.volume(original?.volumeId ?? '')).toMatchObject({
      state: 'available',
      attachment: undefined,
    });
    // A reboot is not a state change: EC2 sends no state-change notification for it.
    expect(instanceEvents(cloud.events, instanceId)).toHaveLength(eventsBefore);
  });

  it('gives the new root the original root’s DeleteOnTermination', async () => {
    const { cloud, instanceId } = await setup();
    expect(rootOf(cloud, instanceId)?.attachment?.deleteOnTermination).toBe(true);
    const replacement = await createVolume(cloud);

    await replaceRoot(cloud, { InstanceId: instanceId, VolumeId: replacement });
    await cloud.settle();

    expect(cloud.ec2.volume(replacement)?.attachment).toMatchObject({
      device: '/dev/xvda',
      state: 'attached',
      deleteOnTermination: true,
    });
  });

  it('deletes the replaced root with DeleteReplacedRootVolume', async () => {
    const { cloud, instanceId } = await setup();
    const original = rootOf(cloud, instanceId)?.volumeId ?? '';
    const replacement = await createVolume(cloud);

    await replaceRoot(cloud, {
      InstanceId: instanceId,
      VolumeId: replacement,
      DeleteReplacedRootVolume: true,
    });
    await cloud.settle();

    expect(cloud.ec2.volume(original)).toBeUndefined();
    expect((await tasks(cloud))[0]?.DeleteReplacedRootVolume).toBe(true);
  });

  it('goes pending → in-progress (OS down, still running) → succeeded once the OS is back, 20.7 s in all', async () => {
    const { cloud, instanceId } = await setup({ latency: 'calibrated' });
    const replacement = await createVolume(cloud);
    const start = cloud.clock.now();

    // cloud.run drives the clock until the answer: 0.3 s, the API call.
    const created = await replaceRoot(cloud, { InstanceId: instanceId, VolumeId: replacement });
    expect(created.ReplaceRootVolumeTask?.TaskState).toBe('pending');
    await cloud.clock.advanceBy(1_000);
    expect((await tasks(cloud))[0]?.TaskState).toBe('in-progress');
    expect(cloud.ec2.instance(instanceId)).toMatchObject({ state: 'running', osReadyAt: undefined });
    expect(rootOf(cloud, instanceId)?.attachment?.state).toBe('detaching');
    await cloud.clock.advanceBy(16_400);
    expect(rootOf(cloud, instanceId)?.volumeId).toBe(replacement);
    expect((await tasks(cloud))[0]?.TaskState).toBe('in-progress');
    await cloud.clock.advanceBy(3_000);

    expect((await tasks(cloud))[0]?.TaskState).toBe('succeeded');
    expect(cloud.ec2.instance(instanceId)?.osReadyAt).toBe(start + 20_700);
  });

  it('takes the restart latency a benchmark sets', async () => {
    const { cloud, instanceId } = await setup({
      latency: 'calibrated',
      latencyOverrides: { replaceRootSwapMs: 60_000 },
    });
    const replacement = await createVolume(cloud);
    const start = cloud.clock.now();

    await replaceRoot(cloud, { InstanceId: instanceId, VolumeId: replacement });
    await cloud.clock.advanceBy(60_000);
    expect((await tasks(cloud))[0]?.TaskState).toBe('in-progress');
    await cloud.settle();

    expect(cloud.ec2.instance(instanceId)?.osReadyAt).toBe(start + 300 + 1_000 + 60_000 + 3_000);
  });

  it('tags the task on create and filters tasks by instance and tag, a page at a time', async () => {
    const { cloud, instanceId } = await setup();
    const other = await launch(cloud, { Placement: { AvailabilityZone: ZONE_A } });
    await cloud.settle();
    for (const target of [instanceId, other]) {
      await replaceRoot(cloud, {
        InstanceId: target,
        VolumeId: await createVolume(cloud),
        TagSpecifications: [
          { ResourceType: 'replace-root-volume-task', Tags: [{ Key: 'for', Value: target }] },
        ],
      });
    }
    await cloud.settle();

    const byInstance = await tasks(cloud, { Filters: [{ Name: 'instance-id', Values: [other] }] });
    expect(byInstance.map((task) => task.InstanceId)).toEqual([other]);
    expect(byInstance[0]?.Tags).toEqual([{ Key: 'for', Value: other }]);
    expect(await tasks(cloud, { Filters: [{ Name: 'tag:for', Values: [instanceId] }] })).toHaveLength(1);
    const firstPage = await cloud.run(() =>
      cloud.ec2Client.send(new DescribeReplaceRootVolumeTasksCommand({ MaxResults: 1 })),
    );
    expect(firstPage.ReplaceRootVolumeTasks).toHaveLength(1);
    expect(firstPage.NextToken).toBeDefined();
    const id = byInstance[0]?.ReplaceRootVolumeTaskId ?? '';
    expect((await tasks(cloud, { ReplaceRootVolumeTaskIds: [id] }))[0]?.InstanceId).toBe(other);
  });

  it('refuses unknown and malformed task ids in DescribeReplaceRootVolumeTasks', async () => {
    const { cloud } = await setup();

    await expect(
      tasks(cloud, { ReplaceRootVolumeTaskIds: ['replacevol-0123456789abcdef0'] }),
    ).rejects.toMatchObject({
      name: 'InvalidReplaceRootVolumeTaskId.NotFound',
    });
    await expect(tasks(cloud, { ReplaceRootVolumeTaskIds: ['task-1'] })).rejects.toMatchObject({
      name: 'InvalidReplaceRootVolumeTaskId.Malformed',
    });
  });
});

describe('CreateReplaceRootVolumeTask ClientToken', () => {
  it('answers a repeat with the same task and creates no other', async () => {
    const { cloud, instanceId } = await setup();
    const replacement = await createVolume(cloud);
    const input = { InstanceId: instanceId, VolumeId: replacement, ClientToken: 'unshelve-rec-1' };

    const first = await replaceRoot(cloud, input);
    await cloud.settle();
    const repeat = await replaceRoot(cloud, input);

    expect(repeat.ReplaceRootVolumeTask?.ReplaceRootVolumeTaskId).toBe(
      first.ReplaceRootVolumeTask?.ReplaceRootVolumeTaskId,
    );
    expect(repeat.ReplaceRootVolumeTask?.TaskState).toBe('succeeded');
    expect(await tasks(cloud)).toHaveLength(1);
  });

  it('refuses a token longer than 64 characters', async () => {
    const { cloud, instanceId } = await setup();
    const replacement = await createVolume(cloud);

    await expect(
      replaceRoot(cloud, { InstanceId: instanceId, VolumeId: replacement, ClientToken: 'x'.repeat(65) }),
    ).rejects.toMatchObject({ name: 'InvalidParameterValue' });
  });

  it('refuses the same token with other parameters (IdempotentParameterMismatch)', async () => {
    const { cloud, instanceId } = await setup();
    const replacement = await createVolume(cloud);
    await replaceRoot(cloud, { InstanceId: instanceId, VolumeId: replacement, ClientToken: 't-1' });

    await expect(
      replaceRoot(cloud, {
        InstanceId: instanceId,
        VolumeId: replacement,
        ClientToken: 't-1',
        DeleteReplacedRootVolume: true,
      }),
    ).rejects.toMatchObject({ name: 'IdempotentParameterMismatch' });
  });
});

describe('CreateReplaceRootVolumeTask refusals', () => {
  it('needs a running instance (IncorrectInstanceState)', async () => {
    const { cloud, instanceId } = await setup();
    const replacement = await createVolume(cloud);
    await cloud.run(() => cloud.ec2Client.send(new StopInstancesCommand({ InstanceIds: [instanceId] })));
    await cloud.settle();

    await expect(replaceRoot(cloud, { InstanceId: instanceId, VolumeId: replacement })).rejects.toMatchObject(
      {
        name: 'IncorrectInstanceState',
      },
    );
  });

  it('refuses an instance store root and a metal instance that is not a Mac (UnsupportedOperation)', async () => {
    const { cloud } = await setup();
    const replacement = await createVolume(cloud);
    const instanceStore = await launch(cloud, {
      ImageId: cloud.ec2.registerImage({ name: 'store', rootSizeGiB: 8, rootDeviceType: 'instance-store' }),
      Placement: { AvailabilityZone: ZONE_A },
    });
    const metal = await launch(cloud, {
      InstanceType: 'm7i.metal-24xl',
      Placement: { AvailabilityZone: ZONE_A },
    });
    await cloud.settle();

    for (const instanceId of [instanceStore, metal]) {
      await expect(
        replaceRoot(cloud, { InstanceId: instanceId, VolumeId: replacement }),
      ).rejects.toMatchObject({
        name: 'UnsupportedOperation',
      });
    }
  });

  it('needs the volume available, unattached, in the instance’s AZ', async () => {
    // Calibrated: a new volume stays `creating` for 4 s.
    const { cloud, instanceId } = await setup({ latency: 'calibrated' });
    const elsewhere = await createVolume(cloud, { AvailabilityZone: ZONE_B });
    const attached = await createVolume(cloud);
    await cloud.run(() =>
      cloud.ec2Client.send(
        new AttachVolumeCommand({ VolumeId: attached, InstanceId: instanceId, Device: '/dev/sdf' }),
      ),
    );
    await cloud.settle();
    const creating = (
      await cloud.run(() =>
        cloud.ec2Client.send(new CreateVolumeCommand({ AvailabilityZone: ZONE_A, Size: 8 })),
      )
    ).VolumeId;

    await expect(replaceRoot(cloud, { InstanceId: instanceId, VolumeId: elsewhere })).rejects.toMatchObject({
      name: 'InvalidVolume.ZoneMismatch',
    });
    await expect(replaceRoot(cloud, { InstanceId: instanceId, VolumeId: attached })).rejects.toMatchObject({
      name: 'VolumeInUse',
    });
    await expect(replaceRoot(cloud, { InstanceId: instanceId, VolumeId: creating })).rejects.toMatchObject({
      name: 'IncorrectState',
    });
  });

  it('needs an encrypted volume when the original root is encrypted', async () => {
    const { cloud } = await setup();
    const instanceId = await launch(cloud, {
      Placement: { AvailabilityZone: ZONE_A },
      BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { Encrypted: true } }],
    });
    await cloud.settle();
    const plain = await createVolume(cloud);
    const encrypted = await createVolume(cloud, { Encrypted: true });

    await expect(replaceRoot(cloud, { InstanceId: instanceId, VolumeId: plain })).rejects.toMatchObject({
      name: 'InvalidParameterValue',
    });
    await replaceRoot(cloud, { InstanceId: instanceId, VolumeId: encrypted });
    await cloud.settle();
    expect((await tasks(cloud))[0]?.TaskState).toBe('succeeded');
  });

  it('tells malformed ids from unknown ones', async () => {
    const { cloud, instanceId } = await setup();
    const replacement = await createVolume(cloud);

    await expect(replaceRoot(cloud, { InstanceId: 'i-nope', VolumeId: replacement })).rejects.toMatchObject({
      name: 'InvalidInstanceID.Malformed',
    });
    await expect(
      replaceRoot(cloud, { InstanceId: 'i-0123456789abcdef0', VolumeId: replacement }),
    ).rejects.toMatchObject({ name: 'InvalidInstanceID.NotFound' });
    await expect(replaceRoot(cloud, { InstanceId: instanceId, VolumeId: 'vol-nope' })).rejects.toMatchObject({
      name: 'InvalidVolumeID.Malformed',
    });
    await expect(
      replaceRoot(cloud, { InstanceId: instanceId, VolumeId: 'vol-0123456789abcdef0' }),
    ).rejects.toMatchObject({ name: 'InvalidVolume.NotFound' });
  });

  it('refuses a second task while one runs on the instance', async () => {
    const { cloud, instanceId } = await setup({ latency: 'calibrated' });
    const first = await createVolume(cloud);
    const second = await createVolume(cloud);
    await replaceRoot(cloud, { InstanceId: instanceId, VolumeId: first });

    await expect(replaceRoot(cloud, { InstanceId: instanceId, VolumeId: second })).rejects.toMatchObject({
      name: 'IncorrectInstanceState',
    });
  });

  it('refuses VolumeId with SnapshotId, and the modes it does not model loudly, not as an AWS answer', async () => {
    const { cloud, instanceId } = await setup();
    const replacement = await createVolume(cloud);

    await expect(
      replaceRoot(cloud, {
        InstanceId: instanceId,
        VolumeId: replacement,
        SnapshotId: 'snap-0123456789abcdef0',
      }),
    ).rejects.toMatchObject({ name: 'InvalidParameterCombination' });
    await expect(replaceRoot(cloud, { InstanceId: instanceId })).rejects.toThrow(/not modelled/);
    await expect(replaceRoot(cloud, { InstanceId: instanceId, ImageId: cloud.imageId })).rejects.toThrow(
      /ImageId mode is not modelled/,
    );
  });
});

describe('CreateReplaceRootVolumeTask failures', () => {
  it('fails, reboots and keeps the original root when the volume is taken before the swap', async () => {
    const { cloud, instanceId } = await setup({ latency: 'calibrated' });
    const original = rootOf(cloud, instanceId)?.volumeId;
    const other = await launch(cloud, { Placement: { AvailabilityZone: ZONE_A } });
    await cloud.settle();
    const replacement = await createVolume(cloud);

    await replaceRoot(cloud, { InstanceId: instanceId, VolumeId: replacement });
    // While the task is pending (answered at 0.3 s, in progress from 1.3 s, swap due at 17.7 s).
    await cloud.run(() =>
      cloud.ec2Client.send(
        new AttachVolumeCommand({ VolumeId: replacement, InstanceId: other, Device: '/dev/sdf' }),
      ),
    );
    await cloud.clock.advanceBy(17_200);
    expect((await tasks(cloud))[0]?.TaskState).toBe('failing');
    await cloud.settle();

    expect((await tasks(cloud))[0]?.TaskState).toBe('failed');
    expect(rootOf(cloud, instanceId)).toMatchObject({
      volumeId: original,
      attachment: { state: 'attached' },
    });
    expect(cloud.ec2.instance(instanceId)).toMatchObject({ state: 'running', osReadyAt: expect.any(Number) });
  });

  it('fails when the instance is stopped while the root is being replaced', async () => {
    const { cloud, instanceId } = await setup({ latency: 'calibrated' });
    const original = rootOf(cloud, instanceId)?.volumeId;
    const replacement = await createVolume(cloud);
    await replaceRoot(cloud, { InstanceId: instanceId, VolumeId: replacement });
    await cloud.clock.advanceBy(1_200);
    expect((await tasks(cloud))[0]?.TaskState).toBe('in-progress');

    await cloud.run(() => cloud.ec2Client.send(new StopInstancesCommand({ InstanceIds: [instanceId] })));
    await cloud.settle();

    expect((await tasks(cloud))[0]?.TaskState).toBe('failed');
    expect(rootOf(cloud, instanceId)).toMatchObject({
      volumeId: original,
      attachment: { state: 'attached' },
    });
    expect(cloud.ec2.volume(replacement)?.state).toBe('available');
  });
});

describe('CreateReplaceRootVolumeTask throttling', () => {
  it('draws on the mutating-actions bucket (50, refilling 5/s), an assumption', async () => {
    const { cloud } = await setup();
    const refusals: string[] = [];
    for (let call = 0; call < 51; call += 1) {
      await replaceRoot(cloud, {
        InstanceId: 'i-0123456789abcdef0',
        VolumeId: 'vol-0123456789abcdef0',
      }).catch((error: Error) => refusals.push(error.name));
    }

    expect(refusals.slice(0, 50).every((name) => name === 'InvalidInstanceID.NotFound')).toBe(true);
    expect(refusals[50]).toBe('RequestLimitExceeded');
  });
});
