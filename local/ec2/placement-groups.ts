import type {
  CreatePlacementGroupRequest,
  CreatePlacementGroupResult,
  DeletePlacementGroupRequest,
  DescribePlacementGroupsRequest,
  DescribePlacementGroupsResult,
  Placement,
} from '@aws-sdk/client-ec2';
import { ec2Error, invalidParameterValue, requiredParameter } from './errors';
import { applyFilters, tagList, tagsFor } from './filters';
import type { Ec2Context, PlacementGroupRecord } from './state';

/**
 * Placement groups, as much as launches into them need (placement-groups, placement-strategies,
 * limitations-placement-groups; API_CreatePlacementGroup, API_DescribePlacementGroups,
 * API_DeletePlacementGroup). A name is unique per account and Region; a partition group has 1–7
 * partitions; a cluster group lives in one AZ; Dedicated Hosts cannot be in placement groups. Not
 * modelled: spread groups' limit of seven running instances per AZ, capacity per group.
 */

const MAX_PARTITIONS = 7;

const unknownGroup = (name: string) =>
  ec2Error('InvalidPlacementGroup.Unknown', `The Placement Group '${name}' is unknown.`);

const groupNamed = (ctx: Ec2Context, groupName: string): PlacementGroupRecord => {
  const group = ctx.placementGroups.get(groupName);
  if (!group) throw unknownGroup(groupName);
  return group;
};

export const createPlacementGroup = (
  ctx: Ec2Context,
  input: CreatePlacementGroupRequest,
): CreatePlacementGroupResult => {
  const groupName = requiredParameter(input.GroupName, 'GroupName');
  if (groupName.length > 255)
    throw invalidParameterValue('A placement group name is at most 255 ASCII characters');
  const strategy = input.Strategy;
  if (strategy !== 'cluster' && strategy !== 'spread' && strategy !== 'partition')
    throw invalidParameterValue(`Invalid value '${strategy}' for strategy`);
  if (input.PartitionCount !== undefined && strategy !== 'partition')
    throw ec2Error('InvalidParameterCombination', 'PartitionCount is valid only with the partition strategy');
  const partitionCount = strategy === 'partition' ? (input.PartitionCount ?? 2) : undefined;
  if (partitionCount !== undefined && (partitionCount < 1 || partitionCount > MAX_PARTITIONS))
    throw invalidParameterValue(`A partition placement group has 1 to ${MAX_PARTITIONS} partitions`);
  if (ctx.placementGroups.has(groupName))
    throw ec2Error('InvalidPlacementGroup.Duplicate', `The placement group '${groupName}' already exists.`);
  const group: PlacementGroupRecord = {
    groupName,
    groupId: ctx.ids.next('pg'),
    strategy,
    partitionCount,
    tags: tagsFor(input.TagSpecifications, 'placement-group'),
  };
  ctx.placementGroups.set(groupName, group);
  return { PlacementGroup: toSdkGroup(group) };
};

const toSdkGroup = (group: PlacementGroupRecord) => ({
  GroupName: group.groupName,
  GroupId: group.groupId,
  Strategy: group.strategy,
  State: 'available' as const,
  ...(group.partitionCount !== undefined ? { PartitionCount: group.partitionCount } : {}),
  Tags: tagList(group.tags),
});

export const describePlacementGroups = async (
  ctx: Ec2Context,
  input: DescribePlacementGroupsRequest,
): Promise<DescribePlacementGroupsResult> => {
  const byName = (input.GroupNames ?? []).map((name) => groupNamed(ctx, name));
  const byId = (input.GroupIds ?? []).map((groupId) => {
    const group = [...ctx.placementGroups.values()].find((candidate) => candidate.groupId === groupId);
    if (!group) throw unknownGroup(groupId);
    return group;
  });
  const named = [...byName, ...byId];
  const matching = applyFilters(
    named.length > 0 ? named : ctx.placementGroups.values(),
    input.Filters,
    {
      'group-name': (group) => [group.groupName],
      'group-id': (group) => [group.groupId],
      strategy: (group) => [group.strategy],
      state: () => ['available'],
    },
    (group) => group.tags,
  );
  return { PlacementGroups: matching.map(toSdkGroup) };
};

const liveMembers = (ctx: Ec2Context, groupName: string) =>
  [...ctx.instances.values()].filter(
    (instance) => instance.placementGroupName === groupName && instance.state !== 'terminated',
  );

/** API_DeletePlacementGroup: "You must terminate all instances in the placement group before you can delete it." */
export const deletePlacementGroup = (
  ctx: Ec2Context,
  input: DeletePlacementGroupRequest,
): Record<string, never> => {
  const groupName = requiredParameter(input.GroupName, 'GroupName');
  if (!ctx.placementGroups.has(groupName)) throw unknownGroup(groupName);
  if (liveMembers(ctx, groupName).length > 0)
    throw ec2Error('InvalidPlacementGroup.InUse', `The placement group '${groupName}' is in use.`);
  ctx.placementGroups.delete(groupName);
  return {};
};

/**
 * The placement group a RunInstances request names, checked: it must exist
 * (`InvalidPlacementGroup.Unknown`); a partition number needs a partition group and must be one of
 * its partitions; a cluster group's instances share one AZ; a Dedicated Host launch cannot use a
 * group. The API reference names no error code for the last three: the simulator answers
 * `InvalidParameterCombination` (a partition number out of range: `InvalidParameterValue`).
 */
export const checkPlacementGroup = (
  ctx: Ec2Context,
  placement: Placement | undefined,
  availabilityZone: string,
  tenancy: string,
): PlacementGroupRecord | undefined => {
  const groupName = placement?.GroupName;
  if (groupName === undefined || groupName === '') {
    if (placement?.PartitionNumber !== undefined)
      throw ec2Error('InvalidParameterCombination', 'PartitionNumber needs a placement group (GroupName)');
    return undefined;
  }
  const group = groupNamed(ctx, groupName);
  if (tenancy === 'host')
    throw ec2Error(
      'InvalidParameterCombination',
      'Instances on Dedicated Hosts cannot be launched into a placement group',
    );
  const partition = placement?.PartitionNumber;
  if (partition !== undefined) {
    if (group.strategy !== 'partition')
      throw ec2Error(
        'InvalidParameterCombination',
        `PartitionNumber is valid only for a partition placement group; ${groupName} is ${group.strategy}`,
      );
    if (partition < 1 || partition > (group.partitionCount ?? 0))
      throw invalidParameterValue(`Partition ${partition} does not exist in placement group ${groupName}`);
  }
  if (group.strategy === 'cluster') {
    const elsewhere = liveMembers(ctx, groupName).find(
      (member) => member.availabilityZone !== availabilityZone,
    );
    if (elsewhere)
      throw ec2Error(
        'InvalidParameterCombination',
        `Cluster placement group ${groupName} is in ${elsewhere.availabilityZone}; it cannot span Availability Zones`,
      );
  }
  return group;
};

/** The partition a new instance of a partition group lands in: the requested one, else the emptiest. */
export const partitionFor = (
  ctx: Ec2Context,
  group: PlacementGroupRecord | undefined,
  requested: number | undefined,
): number | undefined => {
  if (group?.strategy !== 'partition') return undefined;
  if (requested !== undefined) return requested;
  const members = liveMembers(ctx, group.groupName);
  let best = 1;
  for (let partition = 2; partition <= (group.partitionCount ?? 1); partition++) {
    const count = (candidate: number) =>
      members.filter((member) => member.partitionNumber === candidate).length;
    if (count(partition) < count(best)) best = partition;
  }
  return best;
};
