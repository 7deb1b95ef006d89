import {
  DeleteTagsCommand,
  DescribeInstancesCommand,
  DescribeVolumesCommand,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { classifyAwsError } from '../../../functions/shared/aws-errors';
import { createCloud, launch } from './ec2-harness';

describe('EC2 API throttling', () => {
  it('the 6th RunInstances call in one second is throttled with RequestLimitExceeded (HTTP 503)', async () => {
    const cloud = await createCloud();
    const launch = () =>
      cloud.ec2Client.send(new RunInstancesCommand({ ImageId: cloud.imageId, MinCount: 1, MaxCount: 1 }));

    const answers = await cloud.run(() => Promise.allSettled(Array.from({ length: 6 }, launch)));

    expect(answers.map((answer) => answer.status)).toEqual([...Array(5).fill('fulfilled'), 'rejected']);
    const refusal = answers[5]?.status === 'rejected' ? answers[5].reason : undefined;
    expect(refusal).toMatchObject({ name: 'RequestLimitExceeded', $metadata: { httpStatusCode: 503 } });
    expect(classifyAwsError(refusal)).toBe('throttled');
    expect(cloud.ec2.stats().RunInstances).toEqual({ calls: 6, throttled: 1 });
  });

  it('RunInstances refills 2 requests per second', async () => {
    const cloud = await createCloud();
    const launch = () =>
      cloud.run(() =>
        cloud.ec2Client.send(new RunInstancesCommand({ ImageId: cloud.imageId, MinCount: 1, MaxCount: 1 })),
      );
    for (let call = 0; call < 5; call++) await launch();

    await cloud.clock.advanceBy(500);

    await expect(launch()).resolves.toBeDefined();
    await expect(launch()).rejects.toMatchObject({ name: 'RequestLimitExceeded' });
  });

  it('instances are a second bucket: launching 1001 instances at once is throttled', async () => {
    const cloud = await createCloud();

    const launch = cloud.run(() =>
      cloud.ec2Client.send(new RunInstancesCommand({ ImageId: cloud.imageId, MinCount: 1, MaxCount: 1001 })),
    );

    await expect(launch).rejects.toMatchObject({ name: 'RequestLimitExceeded' });
  });

  it('unfiltered, unpaginated DescribeInstances has its own smaller bucket (50) than filtered calls (100)', async () => {
    const cloud = await createCloud();
    const burst = (filtered: boolean) =>
      cloud.run(() =>
        Promise.allSettled(
          Array.from({ length: 60 }, () =>
            cloud.ec2Client.send(
              new DescribeInstancesCommand(
                filtered ? { Filters: [{ Name: 'instance-state-name', Values: ['running'] }] } : {},
              ),
            ),
          ),
        ),
      );
    const refused = (answers: PromiseSettledResult<unknown>[]) =>
      answers.filter((answer) => answer.status === 'rejected').length;

    expect(refused(await burst(false))).toBe(10);
    expect(refused(await burst(true))).toBe(0);
  });

  it('a describe naming ids without filter or pagination draws on both buckets, whichever reading of the page AWS follows', async () => {
    const cloud = await createCloud();
    const instanceId = await launch(cloud);
    const byId = () => cloud.ec2Client.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
    const filtered = () =>
      cloud.ec2Client.send(
        new DescribeInstancesCommand({ Filters: [{ Name: 'instance-state-name', Values: ['running'] }] }),
      );
    const refused = (answers: PromiseSettledResult<unknown>[]) =>
      answers.filter((answer) => answer.status === 'rejected').length;

    // 60 by id: the smaller bucket (50) refuses ten.
    expect(refused(await cloud.run(() => Promise.allSettled(Array.from({ length: 60 }, byId))))).toBe(10);
    await cloud.clock.advanceBy(5_000);
    // 80 filtered and 30 by id: the 100-token bucket refuses ten, though the smaller one has room.
    const mixed = await cloud.run(() =>
      Promise.allSettled([...Array.from({ length: 80 }, filtered), ...Array.from({ length: 30 }, byId)]),
    );
    expect(refused(mixed)).toBe(10);
  });

  it('the smaller bucket covers the seven describes the page lists, DescribeVolumes among them', async () => {
    const cloud = await createCloud();
    const unfiltered = await cloud.run(() =>
      Promise.allSettled(
        Array.from({ length: 60 }, () => cloud.ec2Client.send(new DescribeVolumesCommand({}))),
      ),
    );

    expect(unfiltered.filter((answer) => answer.status === 'rejected')).toHaveLength(10);
  });

  it('DeleteTags has its uncategorized bucket, 100 refilled at 10 per second, not the mutating 50 / 5', async () => {
    const cloud = await createCloud();
    const launched = await cloud.run(() =>
      cloud.ec2Client.send(new RunInstancesCommand({ ImageId: cloud.imageId, MinCount: 1, MaxCount: 1 })),
    );
    const instanceId = launched.Instances?.[0]?.InstanceId ?? '';
    const untag = () =>
      cloud.ec2Client.send(new DeleteTagsCommand({ Resources: [instanceId], Tags: [{ Key: 'team' }] }));
    const burst = (calls: number) =>
      cloud.run(() => Promise.allSettled(Array.from({ length: calls }, untag)));
    const refused = (answers: PromiseSettledResult<unknown>[]) =>
      answers.filter((answer) => answer.status === 'rejected').length;

    expect(refused(await burst(101))).toBe(1);
    await cloud.clock.advanceBy(1_000);
    expect(refused(await burst(11))).toBe(1);
  });

  it('each API has its own bucket: throttled DescribeInstances does not throttle DescribeVolumes', async () => {
    const cloud = await createCloud();
    await cloud.run(() =>
      Promise.allSettled(
        Array.from({ length: 51 }, () => cloud.ec2Client.send(new DescribeInstancesCommand({}))),
      ),
    );

    await expect(
      cloud.run(() => cloud.ec2Client.send(new DescribeVolumesCommand({}))),
    ).resolves.toBeDefined();
  });

  it('limits AWS Support raised for the account replace the defaults, and only raises are accepted', async () => {
    const cloud = await createCloud();
    cloud.ec2.raiseApiLimits('RunInstances', { capacity: 20, refillPerSecond: 20 });
    cloud.ec2.raiseApiLimits('RunInstances (instances)', { capacity: 5_000, refillPerSecond: 1_000 });
    const launch = () =>
      cloud.ec2Client.send(new RunInstancesCommand({ ImageId: cloud.imageId, MinCount: 100, MaxCount: 100 }));

    const answers = await cloud.run(() => Promise.allSettled(Array.from({ length: 21 }, launch)));

    // 20 requests fit the raised request bucket; the 21st is refused by it, not by the instances one.
    expect(answers.filter((answer) => answer.status === 'fulfilled')).toHaveLength(20);
    expect(() =>
      cloud.ec2.raiseApiLimits('DescribeInstances', { capacity: 50, refillPerSecond: 20 }),
    ).toThrow(/must not go below its default 100/);
    expect(() => cloud.ec2.raiseApiLimits('NoSuchBucket (x)', { capacity: 1, refillPerSecond: 1 })).toThrow(
      /no EC2 throttling bucket/,
    );
  });
});
