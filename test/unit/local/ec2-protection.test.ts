import {
  ModifyInstanceAttributeCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { type Cloud, createCloud, runInstances } from './ec2-harness';

/**
 * Multi-instance Stop and Terminate are all-or-nothing: "If you specify multiple instances and the
 * request fails … none of the instances are terminated" (API_TerminateInstances). Termination and
 * stop protection are such failures (OperationNotPermitted; Stop_Start "stop protection").
 */
const launchThree = async (cloud: Cloud): Promise<string[]> => {
  const answer = await runInstances(cloud, { MinCount: 3, MaxCount: 3 });
  await cloud.settle();
  return (answer.Instances ?? []).map((instance) => instance.InstanceId ?? '');
};

describe('termination and stop protection', () => {
  it.each([
    {
      call: 'TerminateInstances naming one protected instance, terminating',
      protect: (instanceId: string) => ({ InstanceId: instanceId, DisableApiTermination: { Value: true } }),
      protectedIndex: 1,
      send: (cloud: Cloud, ids: string[]) =>
        cloud.ec2Client.send(new TerminateInstancesCommand({ InstanceIds: ids })),
    },
    {
      call: 'StopInstances naming one stop-protected instance, stopping',
      protect: (instanceId: string) => ({ InstanceId: instanceId, DisableApiStop: { Value: true } }),
      protectedIndex: 0,
      send: (cloud: Cloud, ids: string[]) =>
        cloud.ec2Client.send(new StopInstancesCommand({ InstanceIds: ids, Force: true })),
    },
  ])('refuses a $call none of them', async ({ protect, protectedIndex, send }) => {
    const cloud = await createCloud();
    const ids = await launchThree(cloud);
    await cloud.run(() =>
      cloud.ec2Client.send(new ModifyInstanceAttributeCommand(protect(ids[protectedIndex] ?? ''))),
    );

    const refused = await cloud.run(() => send(cloud, ids)).catch((error: unknown) => error);
    await cloud.settle();

    expect(refused).toMatchObject({ name: 'OperationNotPermitted' });
    expect(ids.map((id) => cloud.ec2.instance(id)?.state)).toEqual(['running', 'running', 'running']);
  });
});
