import { RunInstancesCommand, type TagSpecification } from '@aws-sdk/client-ec2';
import type { LocalCloud } from '../../local/cloud';

/**
 * The tag specification of an instance warmboot manages (`warmboot:managed=true`) with the tags of
 * its capability: a tenant, a host group, a name.
 */
export const managedInstanceTags = (tags: Readonly<Record<string, string>>): TagSpecification[] => [
  {
    ResourceType: 'instance',
    Tags: [
      { Key: 'warmboot:managed', Value: 'true' },
      ...Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
    ],
  },
];

/**
 * Launches `count` managed hosts of an image-cache host group, as the account's
 * administrator launches them (through the image cache's clients, outside any invocation).
 * `instanceProfile`: the hosts' SSM agents register only with a role carrying
 * AmazonSSMManagedInstanceCore, unless the account has Default Host Management Configuration on.
 */
export const launchGroupHosts = async (
  local: LocalCloud,
  hosts: {
    readonly group: string;
    readonly imageId: string;
    /** Absent: wherever EC2 places them. */
    readonly availabilityZone?: string;
    readonly count: number;
    readonly instanceProfile?: string;
  },
): Promise<string[]> => {
  const output = await local.run(() =>
    local.runtime('imageCache').clients.ec2.send(
      new RunInstancesCommand({
        ImageId: hosts.imageId,
        InstanceType: 'g5.xlarge',
        MinCount: hosts.count,
        MaxCount: hosts.count,
        ...(hosts.availabilityZone ? { Placement: { AvailabilityZone: hosts.availabilityZone } } : {}),
        ...(hosts.instanceProfile ? { IamInstanceProfile: { Name: hosts.instanceProfile } } : {}),
        TagSpecifications: managedInstanceTags({ 'warmboot:host-group': hosts.group }),
      }),
    ),
  );
  return (output.Instances ?? []).map((instance) => instance.InstanceId ?? '');
};
