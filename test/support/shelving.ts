import { RunInstancesCommand, type TagSpecification } from '@aws-sdk/client-ec2';
import { OFFLOAD_INSTANCES, SHELVE_INSTANCES, UNSHELVE_INSTANCES } from '../../functions/shelving/handler';
import type { LocalCloud } from '../../local/cloud';
import { sampleEvent } from './events';
import { optedInInstanceTags } from './instances';
import { invokeSample } from './local-cloud';

/** The request type of each move a shelving workload makes, as the function routes it. */
export const SHELVING_REQUEST_TYPES = {
  shelve: SHELVE_INSTANCES,
  offload: OFFLOAD_INSTANCES,
  unshelve: UNSHELVE_INSTANCES,
} as const;
export type ShelvingMove = keyof typeof SHELVING_REQUEST_TYPES;

/** The AZ the shelving tests launch their instances in. */
export const SHELVING_ZONE = 'us-east-1a';

/** What the shelving function answers a request: one result per instance or record named. */
interface ShelvingAnswer {
  readonly status: string;
  readonly result: {
    readonly kind: string;
    readonly results?: readonly { readonly id: string; readonly ok: boolean; readonly recordId?: string }[];
  };
}

let sent = 0;

/**
 * A shelving request as an administrator sends it from the console: the sample
 * `events/shelving/<name>` with this detail, by a direct invoke of the shelving function.
 */
export const shelvingRequest = (
  local: LocalCloud,
  name: string,
  detail: Record<string, unknown>,
): Promise<ShelvingAnswer> =>
  invokeSample(local, 'shelving', sampleEvent(`shelving/${name}`), {
    id: `req-${++sent}`,
    detail,
  }) as Promise<ShelvingAnswer>;

/**
 * Launches `count` instances with a root and a 20 GiB data volume (deleted with the instance, as
 * RunInstances sets it), as their owner does, and lets them boot. `placement` adds to the AZ (a
 * Dedicated Host, a placement group); `tags` default to a managed instance of tenant-a named web.
 */
export const launchWithDataVolume = async (
  local: LocalCloud,
  count: number,
  options: {
    readonly placement?: Readonly<Record<string, string>>;
    readonly tags?: TagSpecification[];
    /** Base64 user data the instances launch with. */
    readonly userData?: string;
    /** The instance profile they launch with (by name). */
    readonly instanceProfile?: string;
  } = {},
): Promise<string[]> => {
  const imageId =
    local.ec2.images()[0]?.imageId ?? local.ec2.registerImage({ name: 'al2023', rootSizeGiB: 8 });
  const answer = await local.run(() =>
    local.runtime('shelving').clients.ec2.send(
      new RunInstancesCommand({
        ImageId: imageId,
        InstanceType: 'm7i.large',
        MinCount: count,
        MaxCount: count,
        Placement: { AvailabilityZone: SHELVING_ZONE, ...options.placement },
        BlockDeviceMappings: [{ DeviceName: '/dev/sdf', Ebs: { VolumeSize: 20, DeleteOnTermination: true } }],
        TagSpecifications:
          options.tags ?? optedInInstanceTags('shelving', { 'warmboot:tenant': 'tenant-a', Name: 'web' }),
        ...(options.userData ? { UserData: options.userData } : {}),
        ...(options.instanceProfile ? { IamInstanceProfile: { Name: options.instanceProfile } } : {}),
      }),
    ),
  );
  await local.settleFor(60_000);
  return (answer.Instances ?? []).map((instance) => instance.InstanceId ?? '');
};
