import {
  type EC2Client,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { callAws } from '../../shared/aws-errors';
import type { ShelvingEc2 } from './ec2';

/**
 * Stop, Start and Terminate: the calls that take many instances at once (application/execute.ts
 * batches them); the account budget counts each call's instances as well as the call.
 */
export const instancePower = (
  client: EC2Client,
): Pick<ShelvingEc2, 'stopInstances' | 'startInstances' | 'terminateInstances'> => ({
  async stopInstances(instanceIds, force) {
    await callAws('StopInstances', () =>
      client.send(new StopInstancesCommand({ InstanceIds: [...instanceIds], Force: force })),
    );
  },
  async startInstances(instanceIds) {
    await callAws('StartInstances', () =>
      client.send(new StartInstancesCommand({ InstanceIds: [...instanceIds] })),
    );
  },
  async terminateInstances(instanceIds) {
    await callAws('TerminateInstances', () =>
      client.send(new TerminateInstancesCommand({ InstanceIds: [...instanceIds] })),
    );
  },
});
