import { RunInstancesCommand } from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { invocationScope } from '../../../local/faults';
import { createCloud } from './ec2-harness';

/**
 * The fault behind security review C4: a batch RunInstances that capacity lets launch only part
 * of (API_RunInstances: between MinCount and MaxCount), then the handler dies right after its
 * next call. The token stays bound to the short reservation (ec2-api-idempotency).
 */
describe('a batch launch that comes back short, then a crash', () => {
  it('launches one instance, binds the token to that reservation, and kills the invocation after its next call', async () => {
    const cloud = await createCloud();
    cloud.faults.partialLaunchThenCrash();
    const input = {
      ImageId: cloud.imageId,
      InstanceType: 'm7i.large' as const,
      MinCount: 1,
      MaxCount: 3,
      ClientToken: 'batch-1',
    };
    const scope = { functionId: 'shelving', invocationId: 'inv-1', awsCalls: 0, killed: false };

    const first = await invocationScope.run(scope, () =>
      cloud.run(() => cloud.ec2Client.send(new RunInstancesCommand(input))),
    );
    // Its next call still goes through (it records what it got); the one after is where it died.
    const recorded = await invocationScope.run(scope, () =>
      cloud.run(() => cloud.ec2Client.send(new RunInstancesCommand(input))),
    );
    const dead = await invocationScope
      .run(scope, () => cloud.run(() => cloud.ec2Client.send(new RunInstancesCommand(input))))
      .catch((error: unknown) => error);
    const again = await cloud.run(() => cloud.ec2Client.send(new RunInstancesCommand(input)));

    expect(first.Instances).toHaveLength(1);
    expect(recorded.Instances).toHaveLength(1);
    expect(dead).toMatchObject({ name: 'HandlerKilledError' });
    expect(scope.killed).toBe(true);
    // A re-issue with the same token gets the short reservation back, and launches nothing.
    expect(again.Instances?.map((instance) => instance.InstanceId)).toEqual(
      first.Instances?.map((instance) => instance.InstanceId),
    );
    expect(cloud.ec2.instances().filter((instance) => instance.clientToken === 'batch-1')).toHaveLength(1);
  });
});
