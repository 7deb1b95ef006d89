import { EC2Client, RunInstancesCommand, type TagSpecification } from '@aws-sdk/client-ec2';
import type { FunctionId } from '../../functions/catalog';
import { OPT_IN_TAG, OPTED_IN } from '../../functions/shared/tags';
import type { LocalCloud } from '../../local/cloud';
import { attachSimulator } from '../../local/sdk-bridge';

/**
 * The tag specification of an instance an operator opted in to one capability
 * (`warmboot:shelving=true`, `warmboot:image-cache=true`) with the tags that capability reads: a
 * tenant, a host group, a name.
 */
export const optedInInstanceTags = (
  capability: keyof typeof OPT_IN_TAG,
  tags: Readonly<Record<string, string>>,
): TagSpecification[] => [
  {
    ResourceType: 'instance',
    Tags: [
      { Key: OPT_IN_TAG[capability], Value: OPTED_IN },
      ...Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
    ],
  },
];

/**
 * Launches `count` hosts of an image-cache host group, opted in to the image cache, as the account's
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
        TagSpecifications: optedInInstanceTags('imageCache', { 'warmboot:host-group': hosts.group }),
      }),
    ),
  );
  return (output.Instances ?? []).map((instance) => instance.InstanceId ?? '');
};

/**
 * Launches one m7i.large of `imageId` as the account's administrator launches it (through
 * `functionId`'s clients, outside any invocation, so no role applies) and returns its id.
 */
export const launchOneInstance = async (
  local: LocalCloud,
  functionId: FunctionId,
  imageId: string,
): Promise<string> => {
  const { Instances } = await local.run(() =>
    local
      .runtime(functionId)
      .clients.ec2.send(
        new RunInstancesCommand({ ImageId: imageId, InstanceType: 'm7i.large', MinCount: 1, MaxCount: 1 }),
      ),
  );
  const instanceId = Instances?.[0]?.InstanceId;
  if (!instanceId) throw new Error('RunInstances returned no instance');
  return instanceId;
};

/**
 * An EC2 client of someone outside warmboot (an instance's owner, an operator) on the local EC2:
 * its calls are not a deployed function's, so no warmboot role policy applies to them.
 */
export const outsideEc2Client = (name: string, local: LocalCloud): EC2Client => {
  const client = new EC2Client({
    region: 'us-east-1',
    credentials: { accessKeyId: name, secretAccessKey: name },
    endpoint: 'http://127.0.0.1:9',
    maxAttempts: 1,
  });
  attachSimulator(client, local.ec2.dispatch);
  return client;
};
