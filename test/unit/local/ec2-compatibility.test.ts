import {
  RunInstancesCommand,
  type RunInstancesCommandInput,
  StopInstancesCommand,
} from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { type Cloud, createCloud, createCloudWithImage } from './ec2-harness';
import { resize, stopInstance } from './ec2-instance-actions';

/**
 * Which types run which AMIs and instances beyond architecture (local/ec2/compatibility.ts): ENA,
 * boot mode, hibernation and one-time Spot, as EC2 refuses them.
 */
const run = (cloud: Cloud, input: Omit<RunInstancesCommandInput, 'MinCount' | 'MaxCount'>) =>
  cloud.run(() => cloud.ec2Client.send(new RunInstancesCommand({ MinCount: 1, MaxCount: 1, ...input })));

const refusal = (promise: Promise<unknown>) => promise.then(() => undefined).catch((error: unknown) => error);

const stopped = async (cloud: Cloud, input: Omit<RunInstancesCommandInput, 'MinCount' | 'MaxCount'>) => {
  const launched = await run(cloud, input);
  const instanceId = launched.Instances?.[0]?.InstanceId ?? '';
  await cloud.settle();
  await stopInstance(cloud, instanceId);
  await cloud.settle();
  return instanceId;
};

describe('ENA: Nitro types need an ENA-enabled AMI or instance', () => {
  it('refuses to launch an AMI without ENA on a Nitro type, with EC2 own message, and launches it on a Xen type', async () => {
    const { cloud, imageId: legacy } = await createCloudWithImage('centos-6', { enaSupport: false });

    const nitro = await refusal(run(cloud, { ImageId: legacy, InstanceType: 'm5.large' }));
    const xen = await run(cloud, { ImageId: legacy, InstanceType: 't2.micro' });

    expect(nitro).toMatchObject({ name: 'InvalidParameterCombination' });
    expect(String((nitro as Error).message)).toContain(
      "Elastic Network Adapter (ENA) is required for the 'm5.large' instance type",
    );
    expect(xen.Instances?.[0]?.EnaSupport).toBe(false);
  });

  it('refuses to resize a non-ENA instance to a Nitro type', async () => {
    const { cloud, imageId: legacy } = await createCloudWithImage('centos-6', { enaSupport: false });
    const instanceId = await stopped(cloud, { ImageId: legacy, InstanceType: 't2.large' });

    await expect(resize(cloud, instanceId, 'm7i.large')).rejects.toMatchObject({
      name: 'InvalidParameterCombination',
    });
    await expect(resize(cloud, instanceId, 'm4.large')).resolves.toBeDefined();
    expect(cloud.ec2.instance(instanceId)?.instanceType).toBe('m4.large');
  });
});

describe('boot mode', () => {
  it('refuses a UEFI-only AMI on a legacy-BIOS-only type at launch and at a resize', async () => {
    const { cloud, imageId: uefi } = await createCloudWithImage('windows-uefi', {
      rootSizeGiB: 30,
      bootMode: 'uefi',
    });

    const onXen = await refusal(run(cloud, { ImageId: uefi, InstanceType: 't2.large' }));
    const instanceId = await stopped(cloud, { ImageId: uefi, InstanceType: 'm6i.large' });

    expect(onXen).toMatchObject({ name: 'InvalidParameterCombination' });
    await expect(resize(cloud, instanceId, 't2.large')).rejects.toMatchObject({
      name: 'InvalidInstanceAttributeValue',
    });
  });

  it('runs a uefi-preferred AMI on either kind of type', async () => {
    const { cloud, imageId: preferred } = await createCloudWithImage('al2023-uefi-preferred', {
      bootMode: 'uefi-preferred',
    });

    const instanceId = await stopped(cloud, { ImageId: preferred, InstanceType: 'm7i.large' });

    await expect(resize(cloud, instanceId, 't2.large')).resolves.toBeDefined();
  });
});

describe('hibernation', () => {
  it('refuses to change the type of an instance enabled for hibernation', async () => {
    const cloud = await createCloud();
    const instanceId = await stopped(cloud, {
      ImageId: cloud.imageId,
      InstanceType: 'm7i.large',
      HibernationOptions: { Configured: true },
    });

    await expect(resize(cloud, instanceId, 'm7i.xlarge')).rejects.toMatchObject({
      name: 'UnsupportedOperation',
    });
  });
});

describe('Spot', () => {
  const spot = (SpotInstanceType?: 'one-time' | 'persistent') => ({
    MarketType: 'spot' as const,
    SpotOptions: {
      ...(SpotInstanceType ? { SpotInstanceType } : {}),
      ...(SpotInstanceType === 'persistent' ? { InstanceInterruptionBehavior: 'stop' as const } : {}),
    },
  });

  it('refuses to stop a one-time Spot instance, and the whole call with it (all-or-nothing)', async () => {
    const cloud = await createCloud();
    const oneTime = await run(cloud, { ImageId: cloud.imageId, InstanceMarketOptions: spot() });
    const onDemand = await run(cloud, { ImageId: cloud.imageId });
    await cloud.settle();
    const ids = [oneTime, onDemand].map((reservation) => reservation.Instances?.[0]?.InstanceId ?? '');

    const refused = await refusal(
      cloud.run(() => cloud.ec2Client.send(new StopInstancesCommand({ InstanceIds: ids }))),
    );
    await cloud.settle();

    expect(oneTime.Instances?.[0]?.InstanceLifecycle).toBe('spot');
    expect(refused).toMatchObject({ name: 'UnsupportedOperation' });
    expect(String((refused as Error).message)).toContain('one-time Spot Instance request');
    expect(ids.map((id) => cloud.ec2.instance(id)?.state)).toEqual(['running', 'running']);
  });

  it('stops a persistent Spot instance, which needs stop or hibernate as its interruption behaviour', async () => {
    const cloud = await createCloud();
    const instanceId = await stopped(cloud, {
      ImageId: cloud.imageId,
      InstanceMarketOptions: spot('persistent'),
    });
    const terminating = await refusal(
      run(cloud, {
        ImageId: cloud.imageId,
        InstanceMarketOptions: { MarketType: 'spot', SpotOptions: { SpotInstanceType: 'persistent' } },
      }),
    );

    expect(cloud.ec2.instance(instanceId)?.state).toBe('stopped');
    expect(terminating).toMatchObject({ name: 'InvalidParameterCombination' });
  });
});
