import { ModifyInstanceAttributeCommand, StopInstancesCommand } from '@aws-sdk/client-ec2';
import { type Cloud, launch } from './ec2-harness';

/** Instance actions the EC2 simulator tests take through the SDK client, on a cloud of ec2-harness. */

/** StopInstances of one instance; EC2's answer. */
export const stopInstance = (cloud: Cloud, instanceId: string) =>
  cloud.run(() => cloud.ec2Client.send(new StopInstancesCommand({ InstanceIds: [instanceId] })));

/** An instance of the cloud's image, launched, run and then stopped; its id. */
export const stoppedInstance = async (cloud: Cloud) => {
  const instanceId = await launch(cloud);
  await cloud.settle();
  await stopInstance(cloud, instanceId);
  await cloud.settle();
  return instanceId;
};

/** ModifyInstanceAttribute of a (stopped) instance's type; EC2's answer. */
export const resize = (cloud: Cloud, instanceId: string, instanceType: string) =>
  cloud.run(() =>
    cloud.ec2Client.send(
      new ModifyInstanceAttributeCommand({ InstanceId: instanceId, InstanceType: { Value: instanceType } }),
    ),
  );
