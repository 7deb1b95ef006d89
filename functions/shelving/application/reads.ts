import type { ShelvingEc2 } from '../adapters/ec2';
import { attributesToRead, detailsWanted } from '../domain/fidelity';
import type { Observation, ObservedInstance, ReplacementAttributes, ShelfRecord } from '../domain/types';

/**
 * The reads behind "comes back as it was" (domain/fidelity.ts decides what they are for): what a
 * shelve records of an instance beyond DescribeInstances, and what a round reads back of a
 * replacement while the saga restores it. Apart, so requests.ts and observe.ts stay skeletons.
 */

/**
 * The instances a shelve names, their volumes, and the details and AMI owners (`allowedImageOwners`
 * or not: domain/launch-policy.ts) of those it may shelve.
 */
export const describeForShelve = async (
  ec2: ShelvingEc2,
  instanceIds: readonly string[],
  allowedImageOwners: readonly string[],
) => {
  const instances = new Map(
    instanceIds.length === 0
      ? []
      : (await ec2.describeInstances(instanceIds)).map((instance) => [instance.instanceId, instance]),
  );
  const volumeIds = [...instances.values()].flatMap((instance) =>
    instance.blockDevices.map((device) => device.volumeId),
  );
  const volumes = new Map(
    volumeIds.length === 0
      ? []
      : (await ec2.describeVolumes(volumeIds)).map((volume) => [volume.volumeId, volume]),
  );
  const shelvable = [...instances.values()].filter(detailsWanted);
  const details = new Map(
    shelvable.length === 0
      ? []
      : (await ec2.describeShelveDetails(shelvable)).map((entry) => [entry.instanceId, entry]),
  );
  const imageIds = [...new Set(shelvable.map((instance) => instance.imageId))];
  const images = imageIds.length === 0 ? [] : await ec2.describeImageOwners(imageIds, allowedImageOwners);
  return { instances, volumes, details, images };
};

/**
 * What the saga restores on a replacement (domain/fidelity.ts), read only for the records that
 * restore it this round: DescribeInstanceAttribute per attribute, one DescribeAddresses for all.
 */
export const observeRestoration = async (
  ec2: ShelvingEc2,
  records: readonly ShelfRecord[],
  replacementOf: (record: ShelfRecord) => ObservedInstance | undefined,
): Promise<(record: ShelfRecord) => Pick<Observation, 'replacementAttributes' | 'elasticIp'>> => {
  const attributes = new Map<string, ReplacementAttributes>();
  const addressesWanted = new Set<string>();
  await Promise.all(
    records.map(async (record) => {
      const replacement = replacementOf(record);
      const read = attributesToRead(record, replacement);
      if (read.elasticIp && record.config.elasticIp)
        addressesWanted.add(record.config.elasticIp.allocationId);
      if (replacement && read.attributes.length > 0)
        attributes.set(
          record.recordId,
          await ec2.describeInstanceAttributes(replacement.instanceId, read.attributes),
        );
    }),
  );
  const addresses = new Map(
    addressesWanted.size === 0
      ? []
      : (await ec2.describeAddresses([...addressesWanted])).map((address) => [address.allocationId, address]),
  );
  return (record) => {
    const read = attributes.get(record.recordId);
    const allocationId = record.config.elasticIp?.allocationId;
    return {
      ...(read ? { replacementAttributes: read } : {}),
      ...(allocationId && addressesWanted.has(allocationId)
        ? { elasticIp: addresses.get(allocationId) ?? null }
        : {}),
    };
  };
};
