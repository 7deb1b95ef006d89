import {
  DescribeInstanceStatusCommand,
  DescribeInstancesCommand,
  DescribeVolumesCommand,
  DetachVolumeCommand,
  ModifyInstanceAttributeCommand,
  type RunInstancesCommandInput,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { classifyAwsError } from '../../../functions/shared/aws-errors';
import {
  type Cloud,
  createCloud,
  createCloudWithImage,
  instanceEvents,
  launch,
  runInstances,
  stateChanges,
  ZONE_A,
  ZONE_B,
} from './ec2-harness';
import { stopInstance, stoppedInstance } from './ec2-instance-actions';

const stateOf = (cloud: Cloud, instanceId: string) => cloud.ec2.instance(instanceId)?.state;

describe('EC2 instance lifecycle', () => {
  it('RunInstances answers after 4.8 s, then emits pending and running 17.8 s later', async () => {
    const cloud = await createCloud({ latency: 'calibrated' });

    const instanceId = await launch(cloud);
    await cloud.settle();

    expect(instanceEvents(cloud.events, instanceId)).toEqual([
      { state: 'pending', at: 4_800 },
      { state: 'running', at: 4_800 + 17_800 },
    ]);
    expect(cloud.events[0]).toMatchObject({
      source: 'aws.ec2',
      detailType: 'EC2 Instance State-change Notification',
      detail: { 'instance-id': instanceId, state: 'pending' },
      resources: [`arn:aws:ec2:us-east-1:123456789012:instance/${instanceId}`],
    });
    expect(Object.keys(cloud.events[0]?.detail ?? {})).toEqual(['instance-id', 'state']);
  });

  it('reports the OS as booted (status checks ok) 3.2 s after running', async () => {
    const cloud = await createCloud({ latency: 'calibrated' });
    const instanceId = await launch(cloud);
    await cloud.clock.advanceBy(17_800);
    const initializing = await cloud.run(() =>
      cloud.ec2Client.send(new DescribeInstanceStatusCommand({ InstanceIds: [instanceId] })),
    );

    await cloud.clock.advanceBy(3_200);
    const ok = await cloud.run(() =>
      cloud.ec2Client.send(new DescribeInstanceStatusCommand({ InstanceIds: [instanceId] })),
    );

    expect(initializing.InstanceStatuses?.[0]?.InstanceStatus?.Status).toBe('initializing');
    expect(ok.InstanceStatuses?.[0]?.InstanceStatus?.Status).toBe('ok');
  });

  it('StartInstances of a stopped instance answers after 1.8 s and runs 16.4 s later', async () => {
    const cloud = await createCloud({ latency: 'calibrated' });
    const instanceId = await stoppedInstance(cloud);
    const before = cloud.elapsed();

    await cloud.run(() => cloud.ec2Client.send(new StartInstancesCommand({ InstanceIds: [instanceId] })));
    await cloud.settle();

    expect(instanceEvents(cloud.events, instanceId).slice(-2)).toEqual([
      { state: 'pending', at: before + 1_800 },
      { state: 'running', at: before + 1_800 + 16_400 },
    ]);
  });

  it('a hibernated instance resumes with the measured resume timings (2.0 s + 16.3 s)', async () => {
    const cloud = await createCloud({ latency: 'calibrated' });
    const instanceId = await launch(cloud, { HibernationOptions: { Configured: true } });
    await cloud.settle();
    await cloud.run(() =>
      cloud.ec2Client.send(new StopInstancesCommand({ InstanceIds: [instanceId], Hibernate: true })),
    );
    await cloud.settle();
    const before = cloud.elapsed();

    await cloud.run(() => cloud.ec2Client.send(new StartInstancesCommand({ InstanceIds: [instanceId] })));
    await cloud.settle();

    expect(instanceEvents(cloud.events, instanceId).slice(-1)).toEqual([
      { state: 'running', at: before + 2_000 + 16_300 },
    ]);
  });

  it('stop goes stopping then stopped and keeps the EBS volumes attached', async () => {
    const cloud = await createCloud();
    const instanceId = await launch(cloud);
    await cloud.settle();

    const answer = await stopInstance(cloud, instanceId);
    await cloud.settle();

    expect(answer.StoppingInstances?.[0]).toMatchObject({
      PreviousState: { Name: 'running' },
      CurrentState: { Name: 'stopping', Code: 64 },
    });
    expect(stateChanges(cloud, instanceId)).toEqual(['pending', 'running', 'stopping', 'stopped']);
    expect(cloud.ec2.volumes().filter((volume) => volume.attachment?.instanceId === instanceId)).toHaveLength(
      1,
    );
  });

  it('stopping a stopped instance is a no-op that reports its state', async () => {
    const cloud = await createCloud();
    const instanceId = await stoppedInstance(cloud);
    const eventsBefore = cloud.events.length;

    const answer = await stopInstance(cloud, instanceId);

    expect(answer.StoppingInstances?.[0]).toMatchObject({
      PreviousState: { Name: 'stopped' },
      CurrentState: { Name: 'stopped' },
    });
    expect(cloud.events).toHaveLength(eventsBefore);
  });

  it('starting a stopping instance fails with IncorrectInstanceState', async () => {
    const cloud = await createCloud({ latency: 'calibrated' });
    const instanceId = await launch(cloud);
    await cloud.settle();
    await stopInstance(cloud, instanceId);

    const start = cloud.run(() =>
      cloud.ec2Client.send(new StartInstancesCommand({ InstanceIds: [instanceId] })),
    );

    await expect(start).rejects.toMatchObject({ name: 'IncorrectInstanceState' });
    expect(stateOf(cloud, instanceId)).toBe('stopping');
  });

  it('an instance-store-backed instance cannot be stopped (UnsupportedOperation)', async () => {
    const { cloud, imageId } = await createCloudWithImage('store', { rootDeviceType: 'instance-store' });
    const instanceId = await launch(cloud, { ImageId: imageId });
    await cloud.settle();

    await expect(stopInstance(cloud, instanceId)).rejects.toMatchObject({ name: 'UnsupportedOperation' });
  });

  it('starting a stopped instance without a root volume fails with IncorrectInstanceState', async () => {
    const cloud = await createCloud();
    const instanceId = await stoppedInstance(cloud);
    const root = cloud.ec2.volumes().find((volume) => volume.attachment?.instanceId === instanceId);
    await cloud.run(() => cloud.ec2Client.send(new DetachVolumeCommand({ VolumeId: root?.volumeId })));
    await cloud.settle();

    const start = cloud.run(() =>
      cloud.ec2Client.send(new StartInstancesCommand({ InstanceIds: [instanceId] })),
    );

    await expect(start).rejects.toMatchObject({
      name: 'IncorrectInstanceState',
      message: expect.stringContaining('root'),
    });
  });

  it('terminate deletes DeleteOnTermination volumes and keeps the others available', async () => {
    const cloud = await createCloud();
    const instanceId = await launch(cloud, {
      BlockDeviceMappings: [{ DeviceName: '/dev/sdf', Ebs: { VolumeSize: 20, DeleteOnTermination: false } }],
    });
    await cloud.settle();
    const [root, data] = ['/dev/xvda', '/dev/sdf'].map(
      (device) => cloud.ec2.volumes().find((volume) => volume.attachment?.device === device)?.volumeId,
    );

    await cloud.run(() => cloud.ec2Client.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] })));
    await cloud.settle();

    const volumes = await cloud.run(() => cloud.ec2Client.send(new DescribeVolumesCommand({})));
    expect(volumes.Volumes?.map((volume) => [volume.VolumeId, volume.State])).toEqual([[data, 'available']]);
    expect(cloud.ec2.volumes().some((volume) => volume.volumeId === root)).toBe(false);
    expect(stateChanges(cloud, instanceId).slice(-2)).toEqual(['shutting-down', 'terminated']);
  });

  it('ModifyInstanceAttribute sets DeleteOnTermination of several devices in one call, and of none when one is not attached', async () => {
    const cloud = await createCloud();
    const instanceId = await launch(cloud, {
      BlockDeviceMappings: [{ DeviceName: '/dev/sdf', Ebs: { VolumeSize: 20, DeleteOnTermination: false } }],
    });
    await cloud.settle();
    const flags = () =>
      ['/dev/xvda', '/dev/sdf'].map(
        (device) =>
          cloud.ec2.volumes().find((volume) => volume.attachment?.device === device)?.attachment
            ?.deleteOnTermination,
      );
    const modify = (devices: readonly string[], deleteOnTermination: boolean) =>
      cloud.run(() =>
        cloud.ec2Client.send(
          new ModifyInstanceAttributeCommand({
            InstanceId: instanceId,
            BlockDeviceMappings: devices.map((DeviceName) => ({
              DeviceName,
              Ebs: { DeleteOnTermination: deleteOnTermination },
            })),
          }),
        ),
      );

    await modify(['/dev/xvda', '/dev/sdf'], false);
    expect(flags()).toEqual([false, false]);

    await expect(modify(['/dev/sdf', '/dev/sdg'], true)).rejects.toMatchObject({
      name: 'InvalidParameterValue',
    });
    expect(flags()).toEqual([false, false]);
  });

  it('terminating a terminated instance is a no-op', async () => {
    const cloud = await createCloud();
    const instanceId = await launch(cloud);
    const terminate = () =>
      cloud.run(() => cloud.ec2Client.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] })));
    await terminate();
    await cloud.settle();

    const answer = await terminate();

    expect(answer.TerminatingInstances?.[0]).toMatchObject({
      PreviousState: { Name: 'terminated' },
      CurrentState: { Name: 'terminated' },
    });
  });

  it('a terminated instance stays describable for about an hour, then vanishes', async () => {
    const cloud = await createCloud();
    const instanceId = await launch(cloud);
    await cloud.run(() => cloud.ec2Client.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] })));
    const describe = () =>
      cloud.run(() => cloud.ec2Client.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] })));

    await cloud.clock.advanceBy(59 * 60_000);
    const within = await describe();
    await cloud.clock.advanceBy(2 * 60_000);

    expect(within.Reservations?.[0]?.Instances?.[0]?.State?.Name).toBe('terminated');
    await expect(describe()).rejects.toMatchObject({ name: 'InvalidInstanceID.NotFound' });
  });

  it('changing the instance type of a running instance fails with IncorrectInstanceState; stopped it works', async () => {
    const cloud = await createCloud();
    const instanceId = await launch(cloud);
    await cloud.settle();
    const resize = () =>
      cloud.run(() =>
        cloud.ec2Client.send(
          new ModifyInstanceAttributeCommand({
            InstanceId: instanceId,
            InstanceType: { Value: 'm7i.xlarge' },
          }),
        ),
      );

    await expect(resize()).rejects.toMatchObject({ name: 'IncorrectInstanceState' });
    await stopInstance(cloud, instanceId);
    await cloud.settle();
    await resize();
    expect(cloud.ec2.instance(instanceId)?.instanceType).toBe('m7i.xlarge');
  });

  it('RunInstances beyond the AZ capacity fails with InsufficientInstanceCapacity, classified as capacity', async () => {
    const cloud = await createCloud();
    cloud.ec2.setCapacity(ZONE_A, 'm7i.large', 2);
    await launch(cloud, { MaxCount: 2, MinCount: 2 });

    const error = await launch(cloud).catch((caught: unknown) => caught);

    expect(error).toMatchObject({ name: 'InsufficientInstanceCapacity' });
    expect(classifyAwsError(error)).toBe('insufficient-capacity');
  });

  it('RunInstances launches as many as fit between MinCount and MaxCount', async () => {
    const cloud = await createCloud();
    cloud.ec2.setCapacity(ZONE_A, 'm7i.large', 3);

    const reservation = await runInstances(cloud, { MaxCount: 5 });

    expect(reservation.Instances).toHaveLength(3);
  });

  it('stopped instances give their capacity back, and StartInstances beyond capacity fails', async () => {
    const cloud = await createCloud();
    cloud.ec2.setCapacity(ZONE_A, 'm7i.large', 1);
    const first = await launch(cloud);
    await cloud.settle();
    await stopInstance(cloud, first);
    await cloud.settle();
    await launch(cloud);

    const start = cloud.run(() => cloud.ec2Client.send(new StartInstancesCommand({ InstanceIds: [first] })));

    await expect(start).rejects.toMatchObject({ name: 'InsufficientInstanceCapacity' });
    expect(stateOf(cloud, first)).toBe('stopped');
  });

  it('terminating a pending instance cancels its move to running', async () => {
    const cloud = await createCloud({ latency: 'calibrated' });
    const instanceId = await launch(cloud);

    await cloud.run(() => cloud.ec2Client.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] })));
    await cloud.settle();

    expect(stateChanges(cloud, instanceId)).toEqual(['pending', 'shutting-down', 'terminated']);
  });
});

describe('DescribeInstances', () => {
  it('fails with InvalidInstanceID.NotFound for an unknown id and InvalidInstanceID.Malformed for a bad one', async () => {
    const cloud = await createCloud();
    const describe = (id: string) =>
      cloud.run(() => cloud.ec2Client.send(new DescribeInstancesCommand({ InstanceIds: [id] })));

    await expect(describe('i-0123456789abcdef0')).rejects.toMatchObject({
      name: 'InvalidInstanceID.NotFound',
    });
    await expect(describe('instance-1')).rejects.toMatchObject({ name: 'InvalidInstanceID.Malformed' });
  });

  it('filters by state, tag and availability zone', async () => {
    const cloud = await createCloud();
    const tagged = await launch(cloud, {
      TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'warmboot:pool', Value: 'web' }] }],
    });
    await launch(cloud, { Placement: { AvailabilityZone: 'us-east-1b' } });
    await cloud.settle();

    const answer = await cloud.run(() =>
      cloud.ec2Client.send(
        new DescribeInstancesCommand({
          Filters: [
            { Name: 'instance-state-name', Values: ['running'] },
            { Name: 'tag:warmboot:pool', Values: ['web'] },
            { Name: 'availability-zone', Values: ['us-east-1*'] },
          ],
        }),
      ),
    );

    expect(
      answer.Reservations?.flatMap((reservation) =>
        reservation.Instances?.map((instance) => instance.InstanceId),
      ),
    ).toEqual([tagged]);
  });

  it('pages with MaxResults and NextToken', async () => {
    const cloud = await createCloud();
    await launch(cloud, { MinCount: 7, MaxCount: 7 });
    const describe = (NextToken?: string) =>
      cloud.run(() => cloud.ec2Client.send(new DescribeInstancesCommand({ MaxResults: 5, NextToken })));

    const first = await describe();
    const second = await describe(first.NextToken);

    const count = (page: typeof first) =>
      page.Reservations?.flatMap((reservation) => reservation.Instances ?? []).length;
    expect([count(first), count(second), second.NextToken]).toEqual([5, 2, undefined]);
  });
});

/**
 * RunInstances client tokens, as "Ensuring idempotency in Amazon EC2 API requests" describes them
 * (ec2/latest/devguide/ec2-api-idempotency.html; the API Reference's Run_Instance_Idempotency.html
 * adds "A client token is valid for at least 24 hours after the termination of the instance").
 */
describe('RunInstances with a ClientToken', () => {
  const runWith = (cloud: Cloud, input: Partial<RunInstancesCommandInput> = {}) =>
    runInstances(cloud, {
      MinCount: 2,
      MaxCount: 2,
      Placement: { AvailabilityZone: ZONE_A },
      ClientToken: 'launch-1',
      ...input,
    });
  const idsOf = (reservation: { Instances?: { InstanceId?: string }[] }) =>
    (reservation.Instances ?? []).map((instance) => instance.InstanceId);

  it('a repeat returns the original reservation and instances in their current state, launching nothing', async () => {
    const cloud = await createCloud();
    const first = await runWith(cloud);
    await cloud.settle();
    const eventsBefore = cloud.events.length;

    const repeat = await runWith(cloud);

    expect(repeat.ReservationId).toBe(first.ReservationId);
    expect(idsOf(repeat)).toEqual(idsOf(first));
    expect(repeat.Instances?.map((instance) => [instance.AmiLaunchIndex, instance.State?.Name])).toEqual([
      [0, 'running'],
      [1, 'running'],
    ]);
    expect(cloud.ec2.instances()).toHaveLength(2);
    expect(cloud.events).toHaveLength(eventsBefore);
  });

  it('a repeat 25 h after the instances terminated still returns them, terminated, and launches nothing', async () => {
    const cloud = await createCloud();
    const first = await runWith(cloud);
    await cloud.settle();
    await cloud.run(() =>
      cloud.ec2Client.send(new TerminateInstancesCommand({ InstanceIds: idsOf(first) as string[] })),
    );
    await cloud.clock.advanceBy(25 * 60 * 60_000);
    expect(cloud.ec2.instances()).toHaveLength(0);

    const repeat = await runWith(cloud);

    expect(repeat.ReservationId).toBe(first.ReservationId);
    expect(idsOf(repeat)).toEqual(idsOf(first));
    expect(repeat.Instances?.map((instance) => instance.State?.Name)).toEqual(['terminated', 'terminated']);
    expect(cloud.ec2.instances()).toHaveLength(0);
  });

  it('the same token with another parameter fails with IdempotentParameterMismatch', async () => {
    const cloud = await createCloud();
    await runWith(cloud);

    const changed = runWith(cloud, { InstanceType: 'm7i.xlarge' });

    await expect(changed).rejects.toMatchObject({ name: 'IdempotentParameterMismatch' });
    expect(cloud.ec2.instances()).toHaveLength(2);
  });

  it('the same token in another AZ launches there (zonal idempotency), and without an AZ once per Region', async () => {
    const cloud = await createCloud();
    const inA = await runWith(cloud);

    const inB = await runWith(cloud, { Placement: { AvailabilityZone: ZONE_B } });
    const regional = await runWith(cloud, { Placement: undefined, ClientToken: 'regional-1' });
    const regionalAgain = await runWith(cloud, { Placement: undefined, ClientToken: 'regional-1' });

    expect(inB.ReservationId).not.toBe(inA.ReservationId);
    expect(inB.Instances?.map((instance) => instance.Placement?.AvailabilityZone)).toEqual([ZONE_B, ZONE_B]);
    expect(regionalAgain.ReservationId).toBe(regional.ReservationId);
    expect(cloud.ec2.instances()).toHaveLength(6);
  });

  it('a refused launch does not bind its token: the same request launches once capacity is back', async () => {
    const cloud = await createCloud();
    cloud.ec2.setCapacity(ZONE_A, 'm7i.large', 0);
    await expect(runWith(cloud)).rejects.toMatchObject({ name: 'InsufficientInstanceCapacity' });
    cloud.ec2.setCapacity(ZONE_A, 'm7i.large', undefined);

    const launched = await runWith(cloud);

    expect(launched.Instances).toHaveLength(2);
  });

  it('a call that took effect but answered a server error is made good by repeating it with its token', async () => {
    const cloud = await createCloud();
    cloud.faults.loseNextResponse({ service: 'ec2', operation: 'RunInstances' }, { code: 'InternalError' });

    await expect(runWith(cloud)).rejects.toMatchObject({ name: 'InternalError' });
    const launchedAnyway = cloud.ec2.instances().map((instance) => instance.instanceId);
    const repeat = await runWith(cloud);

    expect(launchedAnyway).toHaveLength(2);
    expect(idsOf(repeat)).toEqual(launchedAnyway);
    expect(cloud.ec2.instances()).toHaveLength(2);
  });

  it('a token of up to 64 ASCII characters is accepted; a longer or non-ASCII one is InvalidParameterValue', async () => {
    const cloud = await createCloud();

    const longest = await runWith(cloud, { ClientToken: 'a'.repeat(64) });
    const tooLong = runWith(cloud, { ClientToken: 'b'.repeat(65) });
    const nonAscii = runWith(cloud, { ClientToken: 'pool-é' });

    expect(longest.Instances).toHaveLength(2);
    await expect(tooLong).rejects.toMatchObject({ name: 'InvalidParameterValue' });
    await expect(nonAscii).rejects.toMatchObject({ name: 'InvalidParameterValue' });
    expect(cloud.ec2.instances()).toHaveLength(2);
  });

  it('DescribeInstances reports the token and filters by client-token', async () => {
    const cloud = await createCloud();
    const tokened = await runWith(cloud, { MinCount: 1, MaxCount: 1 });
    await launch(cloud);

    const answer = await cloud.run(() =>
      cloud.ec2Client.send(
        new DescribeInstancesCommand({ Filters: [{ Name: 'client-token', Values: ['launch-1'] }] }),
      ),
    );

    const described = answer.Reservations?.flatMap((reservation) => reservation.Instances ?? []);
    expect(described?.map((instance) => [instance.InstanceId, instance.ClientToken])).toEqual([
      [idsOf(tokened)[0], 'launch-1'],
    ]);
  });
});
