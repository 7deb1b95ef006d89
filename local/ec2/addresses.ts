import type {
  AllocateAddressRequest,
  AllocateAddressResult,
  AssociateAddressRequest,
  AssociateAddressResult,
  DescribeAddressesRequest,
  DescribeAddressesResult,
  DisassociateAddressRequest,
  ReleaseAddressRequest,
} from '@aws-sdk/client-ec2';
import { ec2Error, invalidParameterValue, missingParameter, requiredParameter } from './errors';
import { applyFilters, tagList, tagsFor } from './filters';
import { isWellFormedId } from './ids';
import type { AddressRecord, Ec2Context } from './state';

/**
 * Elastic IP addresses in a VPC (elastic-ip-addresses-eip; API_AllocateAddress,
 * API_AssociateAddress, API_DisassociateAddress, API_DescribeAddresses, API_ReleaseAddress). An
 * address stays allocated to the account until released; associated with an instance it follows
 * the instance's primary private address through stops and starts, and it is disassociated (still
 * allocated) when the instance terminates, because its primary network interface goes with it.
 */

const allocationNotFound = (allocationId: string) =>
  ec2Error('InvalidAllocationID.NotFound', `The allocation ID '${allocationId}' does not exist`);

const addressOrThrow = (ctx: Ec2Context, allocationId: string | undefined): AddressRecord => {
  if (allocationId === undefined) throw missingParameter('AllocationId');
  if (!isWellFormedId('eipalloc', allocationId))
    throw ec2Error('InvalidAllocationID.Malformed', `Invalid id: "${allocationId}"`);
  const address = ctx.addresses.get(allocationId);
  if (!address) throw allocationNotFound(allocationId);
  return address;
};

/** Public addresses from 198.51.100.0/24 and 203.0.113.0/24 (RFC 5737 documentation ranges). */
const publicAddress = (index: number): string => {
  const block = index < 254 ? '198.51.100' : '203.0.113';
  if (index >= 508)
    throw ec2Error('AddressLimitExceeded', 'The maximum number of addresses has been reached.');
  return `${block}.${(index % 254) + 1}`;
};

export const allocateAddress = (ctx: Ec2Context, input: AllocateAddressRequest): AllocateAddressResult => {
  if (input.Domain !== undefined && input.Domain !== 'vpc')
    throw invalidParameterValue(`Invalid value '${input.Domain}' for domain: only vpc is supported`);
  if (input.Address !== undefined || input.PublicIpv4Pool !== undefined)
    throw invalidParameterValue('Allocating a specific address or from a BYOIP pool is not modelled');
  const allocationId = ctx.ids.next('eipalloc');
  const publicIp = publicAddress(ctx.addresses.size);
  ctx.addresses.set(allocationId, {
    allocationId,
    publicIp,
    association: undefined,
    tags: tagsFor(input.TagSpecifications, 'elastic-ip'),
  });
  return { AllocationId: allocationId, PublicIp: publicIp, Domain: 'vpc' };
};

/**
 * API_AssociateAddress with an instance id. The instance must exist and be running or stopped
 * (the API reference does not list the states; the simulator refuses the others with
 * `IncorrectInstanceState`). "Reassociation is automatic, but you can specify false to ensure the
 * operation fails if the Elastic IP address is already associated with another resource":
 * `AllowReassociation: false` on an address associated elsewhere is `Resource.AlreadyAssociated`
 * (errors-overview). Associating the address with the instance it is already on is idempotent
 * ("If you perform the operation more than once, Amazon EC2 doesn't return an error"); an address
 * the instance already had is disassociated from it and stays allocated.
 */
export const associateAddress = (ctx: Ec2Context, input: AssociateAddressRequest): AssociateAddressResult => {
  if (input.PublicIp !== undefined && input.AllocationId === undefined)
    throw invalidParameterValue(
      'EC2-Classic addresses (PublicIp alone) no longer exist; name the AllocationId',
    );
  if (input.NetworkInterfaceId !== undefined)
    throw invalidParameterValue('Associating with a network interface is not modelled by the simulator');
  const address = addressOrThrow(ctx, input.AllocationId);
  const instanceId = input.InstanceId;
  if (instanceId === undefined) throw missingParameter('InstanceId');
  const instance = ctx.instances.get(instanceId);
  if (!instance)
    throw ec2Error('InvalidInstanceID.NotFound', `The instance ID '${instanceId}' does not exist`);
  if (instance.state !== 'running' && instance.state !== 'stopped')
    throw ec2Error(
      'IncorrectInstanceState',
      `The instance '${instanceId}' is not in a valid state for this operation (${instance.state}).`,
    );
  if (input.PrivateIpAddress !== undefined && input.PrivateIpAddress !== instance.privateIpAddress)
    throw invalidParameterValue(
      `The address ${input.PrivateIpAddress} is not the primary private address of ${instanceId} (secondary addresses are not modelled)`,
    );
  const current = address.association;
  if (current?.instanceId === instanceId) return { AssociationId: current.associationId };
  if (current !== undefined && input.AllowReassociation === false)
    throw ec2Error(
      'Resource.AlreadyAssociated',
      `resource ${address.allocationId} is already associated with associate-id ${current.associationId}`,
    );
  for (const other of ctx.addresses.values()) {
    if (other.association?.instanceId === instanceId) other.association = undefined;
  }
  const associationId = ctx.ids.next('eipassoc');
  address.association = { associationId, instanceId, privateIpAddress: instance.privateIpAddress };
  return { AssociationId: associationId };
};

export const disassociateAddress = (
  ctx: Ec2Context,
  input: DisassociateAddressRequest,
): Record<string, never> => {
  const associationId = requiredParameter(input.AssociationId, 'AssociationId');
  const address = [...ctx.addresses.values()].find(
    (candidate) => candidate.association?.associationId === associationId,
  );
  if (!address)
    throw ec2Error('InvalidAssociationID.NotFound', `The association ID '${associationId}' does not exist`);
  address.association = undefined;
  return {};
};

/** API_ReleaseAddress: an address still associated cannot be released (`InvalidIPAddress.InUse`). */
export const releaseAddress = (ctx: Ec2Context, input: ReleaseAddressRequest): Record<string, never> => {
  const address = addressOrThrow(ctx, input.AllocationId);
  if (address.association) throw ec2Error('InvalidIPAddress.InUse', `Address ${address.publicIp} is in use.`);
  ctx.addresses.delete(address.allocationId);
  return {};
};

export const describeAddresses = async (
  ctx: Ec2Context,
  input: DescribeAddressesRequest,
): Promise<DescribeAddressesResult> => {
  const candidates = input.AllocationIds?.length
    ? input.AllocationIds.map((allocationId) => addressOrThrow(ctx, allocationId))
    : [...ctx.addresses.values()];
  const matching = applyFilters(
    candidates,
    input.Filters,
    {
      'allocation-id': (address) => [address.allocationId],
      'association-id': (address) => [address.association?.associationId],
      'instance-id': (address) => [address.association?.instanceId],
      'private-ip-address': (address) => [address.association?.privateIpAddress],
      'public-ip': (address) => [address.publicIp],
      domain: () => ['vpc'],
    },
    (address) => address.tags,
  );
  return {
    Addresses: matching.map((address) => ({
      AllocationId: address.allocationId,
      PublicIp: address.publicIp,
      Domain: 'vpc',
      ...(address.association
        ? {
            AssociationId: address.association.associationId,
            InstanceId: address.association.instanceId,
            PrivateIpAddress: address.association.privateIpAddress,
          }
        : {}),
      Tags: tagList(address.tags),
    })),
  };
};

/** The public address an instance shows in DescribeInstances (its Elastic IP), if any. */
export const publicAddressOf = (ctx: Ec2Context, instanceId: string): string | undefined =>
  [...ctx.addresses.values()].find((address) => address.association?.instanceId === instanceId)?.publicIp;

/** terminating-instances: the primary network interface is deleted, so its Elastic IP is disassociated. */
export const releaseAddressesOf = (ctx: Ec2Context, instanceId: string): void => {
  for (const address of ctx.addresses.values()) {
    if (address.association?.instanceId === instanceId) address.association = undefined;
  }
};
