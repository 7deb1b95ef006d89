import { DescribeImagesCommand } from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { createCloud, createCloudWithImage, runInstances } from './ec2-harness';
import { resize, stoppedInstance } from './ec2-instance-actions';

/**
 * An instance type runs AMIs of its architecture only: RunInstances refuses a mismatch with
 * InvalidParameterValue ("The architecture 'arm64' of the specified instance type does not match
 * the architecture 'x86_64' of the specified AMI"), and a stopped instance can be resized only to
 * a type of the same architecture (resize-limitations; EC2 answers InvalidInstanceAttributeValue,
 * "Modifying the instance type from … to … is not allowed.").
 */
describe('instance type and AMI architecture', () => {
  it('launches an arm64 AMI on a Graviton type and refuses it on an x86_64 one', async () => {
    const { cloud, imageId: arm } = await createCloudWithImage('al2023-arm64', { architecture: 'arm64' });

    const graviton = await runInstances(cloud, { ImageId: arm, InstanceType: 'c7g.xlarge' });
    const intel = await runInstances(cloud, { ImageId: arm }).catch((error: unknown) => error);
    const described = await cloud.run(() =>
      cloud.ec2Client.send(new DescribeImagesCommand({ ImageIds: [arm] })),
    );

    expect(graviton.Instances?.[0]?.Architecture).toBe('arm64');
    expect(intel).toMatchObject({ name: 'InvalidParameterValue' });
    expect(String((intel as Error).message)).toContain(
      "architecture 'x86_64' of the specified instance type",
    );
    expect(described.Images?.[0]?.Architecture).toBe('arm64');
  });

  it('resizes a stopped instance within its architecture only', async () => {
    const cloud = await createCloud();
    const instanceId = await stoppedInstance(cloud);

    await resize(cloud, instanceId, 'c7i.xlarge');
    const refused = await resize(cloud, instanceId, 'm7g.large').catch((error: unknown) => error);

    expect(cloud.ec2.instance(instanceId)?.instanceType).toBe('c7i.xlarge');
    expect(refused).toMatchObject({ name: 'InvalidInstanceAttributeValue' });
  });
});
