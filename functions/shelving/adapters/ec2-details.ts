import {
  DescribeAddressesCommand,
  DescribeInstanceAttributeCommand,
  DescribeInstanceCreditSpecificationsCommand,
  DescribePlacementGroupsCommand,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { callAws } from '../../shared/aws-errors';
import { chunk } from '../domain/bulk';
import { isBurstableType } from '../domain/fidelity';
import type {
  CpuCredits,
  ElasticIp,
  InstanceDetails,
  ObservedInstance,
  PlacementGroupRef,
  ReplacementAttribute,
  ReplacementAttributes,
} from '../domain/types';
import { FILTER_VALUES_MAX } from './ec2-mapping';

/**
 * The EC2 reads behind "comes back as it was" (domain/fidelity.ts): what a shelve records of an
 * instance beyond DescribeInstances, and the attributes a round reads back of a replacement.
 */

/** DescribeInstanceAttribute, one call per attribute (the API reads one at a time). */
export const instanceAttributes =
  (client: EC2Client) =>
  async (instanceId: string, attributes: readonly ReplacementAttribute[]): Promise<ReplacementAttributes> => {
    const answers = await Promise.all(
      attributes.map(async (attribute): Promise<ReplacementAttributes> => {
        const answer = await callAws('DescribeInstanceAttribute', () =>
          client.send(new DescribeInstanceAttributeCommand({ InstanceId: instanceId, Attribute: attribute })),
        );
        switch (attribute) {
          case 'userData':
            return { userData: answer.UserData?.Value ?? null };
          case 'disableApiTermination':
            return { disableApiTermination: answer.DisableApiTermination?.Value === true };
          case 'disableApiStop':
            return { disableApiStop: answer.DisableApiStop?.Value === true };
        }
      }),
    );
    return Object.assign({}, ...answers) as ReplacementAttributes;
  };

/**
 * What a shelve records beyond DescribeInstances: the Elastic IP of the primary private address,
 * the credit option of burstable types, the placement strategy, user data and protection.
 */
export const shelveDetails = async (
  client: EC2Client,
  describeAttributes: ReturnType<typeof instanceAttributes>,
  instances: readonly ObservedInstance[],
): Promise<InstanceDetails[]> => {
  if (instances.length === 0) return [];
  const ids = instances.map((instance) => instance.instanceId);
  const privateIpOf = new Map(instances.map((instance) => [instance.instanceId, instance.privateIpAddress]));
  // The address of the primary private IP only: the one a replacement can get back with
  // AssociateAddress InstanceId (secondary addresses and interfaces are not recreated).
  const elasticIps = new Map<string, ElasticIp>();
  for (const part of chunk(ids, FILTER_VALUES_MAX)) {
    const answer = await callAws('DescribeAddresses', () =>
      client.send(new DescribeAddressesCommand({ Filters: [{ Name: 'instance-id', Values: part }] })),
    );
    for (const address of answer.Addresses ?? []) {
      if (!address.InstanceId || !address.AllocationId || !address.PublicIp) continue;
      if (address.PrivateIpAddress !== privateIpOf.get(address.InstanceId)) continue;
      elasticIps.set(address.InstanceId, {
        allocationId: address.AllocationId,
        publicIp: address.PublicIp,
      });
    }
  }
  const credits = new Map<string, CpuCredits>();
  const burstable = instances.filter((instance) => isBurstableType(instance.instanceType));
  for (const part of chunk(
    burstable.map((instance) => instance.instanceId),
    1000,
  )) {
    const answer = await callAws('DescribeInstanceCreditSpecifications', () =>
      client.send(new DescribeInstanceCreditSpecificationsCommand({ InstanceIds: part })),
    );
    for (const entry of answer.InstanceCreditSpecifications ?? []) {
      if (entry.InstanceId && (entry.CpuCredits === 'standard' || entry.CpuCredits === 'unlimited'))
        credits.set(entry.InstanceId, entry.CpuCredits);
    }
  }
  const groupNames = [
    ...new Set(
      instances.flatMap((instance) => (instance.placementGroupName ? [instance.placementGroupName] : [])),
    ),
  ];
  const strategies = new Map<string, PlacementGroupRef['strategy']>();
  if (groupNames.length > 0) {
    // By filter: a group shared from another account is absent rather than an error.
    const answer = await callAws('DescribePlacementGroups', () =>
      client.send(
        new DescribePlacementGroupsCommand({ Filters: [{ Name: 'group-name', Values: groupNames }] }),
      ),
    );
    for (const group of answer.PlacementGroups ?? []) {
      const strategy = group.Strategy;
      if (group.GroupName && (strategy === 'cluster' || strategy === 'spread' || strategy === 'partition'))
        strategies.set(group.GroupName, strategy);
    }
  }
  return Promise.all(
    instances.map(async (instance): Promise<InstanceDetails> => {
      const attributes = await describeAttributes(instance.instanceId, [
        'userData',
        'disableApiTermination',
        'disableApiStop',
      ]);
      const elasticIp = elasticIps.get(instance.instanceId);
      const cpuCredits = credits.get(instance.instanceId);
      const strategy = instance.placementGroupName ? strategies.get(instance.placementGroupName) : undefined;
      return {
        instanceId: instance.instanceId,
        ...(attributes.userData ? { userData: attributes.userData } : {}),
        disableApiTermination: attributes.disableApiTermination === true,
        disableApiStop: attributes.disableApiStop === true,
        ...(elasticIp ? { elasticIp } : {}),
        ...(cpuCredits ? { cpuCredits } : {}),
        ...(strategy ? { placementGroupStrategy: strategy } : {}),
      };
    }),
  );
};
