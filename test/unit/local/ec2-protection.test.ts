import {
  ModifyInstanceAttributeCommand,
  RunInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { type Cloud, createCloud } from './ec2-harness';

/**
 * Multi-instance Stop and Terminate are all-or-nothing: "If you specify multiple instances and the
 * request fails … none of the instances are terminated" (API_TerminateInstances). Termination and
 * stop protection are such failures (OperationNotPermitted; Stop_Start "stop protection").
 */
const launchThree = async (cloud: Cloud): Promise<string[]> => {
  const answer = await cloud.run(() =>
    cloud.ec2Client.send(
      new RunInstancesCommand({
        ImageId: cloud.imageId,
        InstanceType: 'm7i.large',
        MinCount: 3,
        MaxCount: 3,
      }),
    ),
  );
  await cloud.settle();
  return (answer.Instances ?? []).map((instance) => instance.InstanceId ?? '');
};

describe('termination and stop protection', () => {
  it('refuses a TerminateInstances naming one protected instance, terminating none of them', async () => {
    const cloud = await createCloud();
    const ids = await launchThree(cloud);
    await cloud.run(() =>
      cloud.ec2Client.send(
        new ModifyInstanceAttributeCommand({ InstanceId: ids[1], DisableApiTermination: { Value: true } }),
      ),
    );

    const refused = await cloud
      .run(() => cloud.ec2Client.send(new TerminateInstancesCommand({ InstanceIds: ids })))
      .catch((error: unknown) => error);
    await cloud.settle();

    expect(refused).toMatchObject({ name: 'OperationNotPermitted' });
    expect(ids.map((id) => cloud.ec2.instance(id)?.state)).toEqual(['running', 'running', 'running']);
  });

  it('refuses a StopInstances naming one stop-protected instance, stopping none of them', async () => {
    const cloud = await createCloud();
    const ids = await launchThree(cloud);
    await cloud.run(() =>
      cloud.ec2Client.send(
        new ModifyInstanceAttributeCommand({ InstanceId: ids[0], DisableApiStop: { Value: true } }),
      ),
    );

    const refused = await cloud
      .run(() => cloud.ec2Client.send(new StopInstancesCommand({ InstanceIds: ids, Force: true })))
      .catch((error: unknown) => error);
    await cloud.settle();

    expect(refused).toMatchObject({ name: 'OperationNotPermitted' });
    expect(ids.map((id) => cloud.ec2.instance(id)?.state)).toEqual(['running', 'running', 'running']);
  });
});
