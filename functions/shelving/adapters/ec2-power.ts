import {
  type EC2Client,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import type { ShelvingEc2 } from './ec2';
import type { Paced } from './ec2-details';

/**
 * Stop, Start and Terminate: the calls that take many instances at once (application/execute.ts
 * batches them), so the pacer counts each call's instances as well as the call.
 */
export const instancePower = (
  client: EC2Client,
  paced: Paced,
): Pick<ShelvingEc2, 'stopInstances' | 'startInstances' | 'terminateInstances'> => ({
  async stopInstances(instanceIds, force) {
    await paced('StopInstances', instanceIds.length, () =>
      client.send(new StopInstancesCommand({ InstanceIds: [...instanceIds], Force: force })),
    );
  },
  async startInstances(instanceIds) {
    await paced('StartInstances', instanceIds.length, () =>
      client.send(new StartInstancesCommand({ InstanceIds: [...instanceIds] })),
    );
  },
  async terminateInstances(instanceIds) {
    await paced('TerminateInstances', instanceIds.length, () =>
      client.send(new TerminateInstancesCommand({ InstanceIds: [...instanceIds] })),
    );
  },
});
