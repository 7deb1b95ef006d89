import { RunInstancesCommand } from '@aws-sdk/client-ec2';
import type { LocalCloud } from './cloud';

/**
 * What someone outside warmboot can do with `ec2:RunInstances` and tagging rights (security review
 * H1): launch a server of their own in a pool's subnet, tagged as a ready member of that pool, under
 * the readable ClientToken warmboot's first launch once used (`<pool>-<epoch seconds>-0`). Tests and
 * fault runs plant one to show the pool never adopts, hands out or terminates it.
 */
export const plantForeignPoolMember = async (
  cloud: LocalCloud,
  target: { readonly pool: string; readonly imageId: string; readonly subnetId: string },
): Promise<string> => {
  const ec2 = cloud.runtime('pools').clients.ec2;
  const launched = await cloud.run(() =>
    ec2.send(
      new RunInstancesCommand({
        ImageId: target.imageId,
        InstanceType: 'm7i.large',
        MinCount: 1,
        MaxCount: 1,
        SubnetId: target.subnetId,
        ClientToken: `${target.pool}-${Math.floor(cloud.clock.now() / 1000)}-0`,
        TagSpecifications: [
          {
            ResourceType: 'instance',
            Tags: [
              { Key: 'warmboot:pools', Value: 'true' },
              { Key: 'warmboot:pool', Value: target.pool },
              { Key: 'warmboot:member-state', Value: 'ready' },
            ],
          },
        ],
      }),
    ),
  );
  return launched.Instances?.[0]?.InstanceId ?? '';
};
