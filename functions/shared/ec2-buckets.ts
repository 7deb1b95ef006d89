/**
 * EC2's API token buckets, as the EC2 developer guide's "Request throttling for the Amazon EC2
 * API" (https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html) publishes them.
 * Pure data and classification: which buckets a call draws on and how many tokens it takes.
 *
 * - "each API is evaluated individually, and you are throttled on the number of requests you make
 *   on a per-API basis": every action has its own request bucket; its category only sets the
 *   bucket's size ("Limits are applied to individual API actions, not API action categories").
 * - "Unfiltered and unpaginated non-mutating actions": seven Describe actions, "when requested
 *   without specifying either pagination or a filter, use tokens from a smaller token bucket".
 * - "Resource rate limiting": RunInstances, StartInstances, StopInstances and TerminateInstances
 *   also draw on a resource bucket that "depletes based on the number of resources that are
 *   impacted by the request".
 * - Console non-mutating actions are the console's own bucket; warmboot never calls as the console.
 */
export interface BucketLimits {
  /** "Bucket maximum capacity" (the burst). */
  readonly capacity: number;
  /** "Bucket refill rate", tokens per second. */
  readonly refillPerSecond: number;
}

/** One bucket a call draws on, and how many of its tokens the call takes. */
export interface BucketCharge {
  /** The bucket's name, unique per account and Region: the action, qualified for the smaller and resource buckets. */
  readonly bucket: string;
  readonly limits: BucketLimits;
  readonly tokens: number;
}

const limits = (capacity: number, refillPerSecond: number): BucketLimits => ({ capacity, refillPerSecond });

/** "Non-mutating actions": `Describe*`, `List*`, `Search*`, `Get*` not in another category. */
export const NON_MUTATING = limits(100, 20);
/** "Unfiltered and unpaginated non-mutating actions". */
export const UNFILTERED_UNPAGINATED = limits(50, 10);
/** "Mutating actions": all mutating actions not resource-intensive or uncategorized. */
export const MUTATING = limits(50, 5);
/** "Resource-intensive actions". */
export const RESOURCE_INTENSIVE = limits(50, 5);

const UNFILTERED_UNPAGINATED_ACTIONS: ReadonlySet<string> = new Set([
  'DescribeInstances',
  'DescribeInstanceStatus',
  'DescribeNetworkInterfaces',
  'DescribeSecurityGroups',
  'DescribeSnapshots',
  'DescribeSpotInstanceRequests',
  'DescribeVolumes',
]);

const RESOURCE_INTENSIVE_ACTIONS: ReadonlySet<string> = new Set([
  'AcceptVpcPeeringConnection',
  'AuthorizeSecurityGroupIngress',
  'CancelSpotInstanceRequests',
  'CreateKeyPair',
  'CreateVpcPeeringConnection',
  'DeleteVpcPeeringConnection',
  'RejectVpcPeeringConnection',
  'RevokeSecurityGroupIngress',
  'RequestSpotInstances',
]);

/**
 * "Uncategorized actions": their own bucket sizes "even though by definition they fit in one of
 * the other categories". The whole published table, so an EC2 call added later gets its
 * documented bucket, not a category's larger one.
 */
const UNCATEGORIZED: Readonly<Record<string, readonly [number, number]>> = {
  AcceptVpcEndpointConnections: [10, 1],
  AdvertiseByoipCidr: [1, 0.1],
  AssignIpv6Addresses: [100, 5],
  AssignPrivateIpAddresses: [100, 5],
  AssignPrivateNatGatewayAddress: [10, 1],
  AssociateCapacityReservationBillingOwner: [1, 0.5],
  AssociateEnclaveCertificateIamRole: [10, 1],
  AssociateIamInstanceProfile: [100, 5],
  AssociateNatGatewayAddress: [10, 1],
  AttachVerifiedAccessTrustProvider: [10, 2],
  AuthorizeClientVpnIngress: [5, 2],
  CancelDeclarativePoliciesReport: [1, 1],
  CopyImage: [100, 1],
  CreateClientVpnRoute: [5, 2],
  CreateCoipCidr: [5, 1],
  CreateCoipPool: [5, 1],
  CreateDefaultSubnet: [1, 1],
  CreateDefaultVpc: [1, 1],
  CreateLaunchTemplateVersion: [100, 5],
  CreateNatGateway: [10, 1],
  CreateNetworkInterface: [100, 5],
  CreateRestoreImageTask: [50, 0.1],
  CreateSnapshot: [100, 5],
  CreateSnapshots: [100, 5],
  CreateSpotDatafeedSubscription: [50, 3],
  CreateStoreImageTask: [50, 0.1],
  CreateSubnetCidrReservation: [5, 1],
  CreateTags: [100, 10],
  CreateVerifiedAccessEndpoint: [20, 4],
  CreateVerifiedAccessGroup: [10, 2],
  CreateVerifiedAccessInstance: [10, 2],
  CreateVerifiedAccessTrustProvider: [10, 2],
  CreateVolume: [100, 5],
  CreateVpcEndpoint: [4, 0.3],
  CreateVpcEndpointServiceConfiguration: [10, 1],
  DeleteClientVpnRoute: [5, 2],
  DeleteCoipCidr: [5, 1],
  DeleteCoipPool: [5, 1],
  DeleteCoipPoolPermission: [5, 1],
  DeleteNatGateway: [10, 1],
  DeleteNetworkInterface: [100, 5],
  DeleteSnapshot: [100, 5],
  DeleteSpotDatafeedSubscription: [50, 3],
  DeleteSubnetCidrReservation: [5, 1],
  DeleteQueuedReservedInstances: [5, 5],
  DeleteTags: [100, 10],
  DeleteVerifiedAccessEndpoint: [20, 4],
  DeleteVerifiedAccessGroup: [10, 2],
  DeleteVerifiedAccessInstance: [10, 2],
  DeleteVerifiedAccessTrustProvider: [10, 2],
  DeleteVolume: [100, 5],
  DeleteVpcEndpoints: [4, 0.3],
  DeleteVpcEndpointServiceConfigurations: [10, 1],
  DeprovisionByoipCidr: [1, 0.1],
  DeregisterImage: [100, 5],
  DescribeAggregateIdFormat: [10, 10],
  DescribeByoipCidrs: [1, 0.5],
  DescribeCapacityBlockExtensionOfferings: [10, 0.15],
  DescribeCapacityBlockOfferings: [10, 0.15],
  DescribeDeclarativePoliciesReports: [5, 5],
  DescribeHostReservations: [5, 2],
  DescribeHostReservationOfferings: [5, 2],
  DescribeIdentityIdFormat: [10, 10],
  DescribeIdFormat: [10, 10],
  DescribeInstanceTopology: [1, 1],
  DescribeMovingAddresses: [1, 1],
  DescribePrincipalIdFormat: [10, 10],
  DescribeReservedInstancesOfferings: [10, 10],
  DescribeSecurityGroupReferences: [20, 5],
  DescribeSpotDatafeedSubscription: [100, 13],
  DescribeSpotFleetInstances: [100, 5],
  DescribeSpotFleetRequestHistory: [100, 5],
  DescribeSpotFleetRequests: [50, 3],
  DescribeStaleSecurityGroups: [20, 5],
  DescribeStoreImageTasks: [50, 0.5],
  DescribeVerifiedAccessInstanceLoggingConfigurations: [10, 2],
  DetachVerifiedAccessTrustProvider: [10, 2],
  DisableFastLaunch: [5, 2],
  DisableImageBlockPublicAccess: [1, 0.1],
  DisableSnapshotBlockPublicAccess: [1, 0.1],
  DisassociateCapacityReservationBillingOwner: [1, 0.5],
  DisassociateEnclaveCertificateIamRole: [10, 1],
  DisassociateIamInstanceProfile: [100, 5],
  DisassociateNatGatewayAddress: [10, 1],
  EnableFastLaunch: [5, 2],
  EnableImageBlockPublicAccess: [1, 0.1],
  EnableSnapshotBlockPublicAccess: [1, 0.1],
  GetAssociatedEnclaveCertificateIamRoles: [10, 1],
  GetDeclarativePoliciesReportSummary: [5, 5],
  GetHostReservationPurchasePreview: [5, 2],
  ModifyImageAttribute: [100, 5],
  ModifyInstanceMetadataDefaults: [2, 2],
  ModifyInstanceMetadataOptions: [100, 5],
  ModifyLaunchTemplate: [100, 5],
  ModifyNetworkInterfaceAttribute: [100, 5],
  ModifySnapshotAttribute: [100, 5],
  ModifyVerifiedAccessEndpoint: [20, 4],
  ModifyVerifiedAccessEndpointPolicy: [20, 4],
  ModifyVerifiedAccessGroup: [10, 2],
  ModifyVerifiedAccessGroupPolicy: [20, 4],
  ModifyVerifiedAccessInstance: [10, 2],
  ModifyVerifiedAccessInstanceLoggingConfiguration: [10, 2],
  ModifyVerifiedAccessTrustProvider: [10, 2],
  ModifyVpcEndpoint: [4, 0.3],
  ModifyVpcEndpointServiceConfiguration: [10, 1],
  MoveAddressToVpc: [1, 1],
  ProvisionByoipCidr: [1, 0.1],
  PurchaseCapacityBlock: [10, 0.15],
  PurchaseCapacityBlockExtension: [10, 0.15],
  PurchaseHostReservation: [5, 2],
  PurchaseReservedInstancesOffering: [5, 5],
  RejectVpcEndpointConnections: [10, 1],
  RestoreAddressToClassic: [1, 1],
  RevokeClientVpnIngress: [5, 2],
  RunInstances: [5, 2],
  StartDeclarativePoliciesReport: [1, 1],
  StartInstances: [5, 2],
  TerminateInstances: [100, 5],
  UnassignPrivateIpAddresses: [100, 5],
  UnassignPrivateNatGatewayAddress: [10, 1],
  WithdrawByoipCidr: [1, 0.1],
};

/** "Resource token bucket sizes and refill rates". */
const RESOURCE_BUCKETS: Readonly<Record<string, BucketLimits>> = {
  RunInstances: limits(1000, 2),
  TerminateInstances: limits(1000, 20),
  StartInstances: limits(1000, 2),
  StopInstances: limits(1000, 20),
};

const NON_MUTATING_PREFIX = /^(Describe|List|Search|Get)[A-Z]/;

const present = (value: unknown): boolean =>
  value !== undefined && !(Array.isArray(value) && value.length === 0);

/** Whether a call of one of the seven actions has neither a filter (`Filters`) nor pagination (`MaxResults`, `NextToken`). */
const unfilteredUnpaginated = (action: string, input: Readonly<Record<string, unknown>>): boolean =>
  UNFILTERED_UNPAGINATED_ACTIONS.has(action) &&
  !present(input.Filters) &&
  !present(input.MaxResults) &&
  !present(input.NextToken);

/** A list of ids or names (`InstanceIds`, `VolumeIds`, `GroupNames`, …) narrowing the answer. */
const namesResources = (input: Readonly<Record<string, unknown>>): boolean =>
  Object.entries(input).some(([key, value]) => /(Ids|Names)$/.test(key) && present(value));

/** The request bucket's size of `action` (its category's, or its own where the table lists it). */
export const requestLimitsOf = (action: string): BucketLimits => {
  const own = UNCATEGORIZED[action];
  if (own) return limits(own[0], own[1]);
  if (RESOURCE_INTENSIVE_ACTIONS.has(action)) return RESOURCE_INTENSIVE;
  return NON_MUTATING_PREFIX.test(action) ? NON_MUTATING : MUTATING;
};

/** The resource bucket of the four instance-lifecycle actions; undefined for every other action. */
export const resourceLimitsOf = (action: string): BucketLimits | undefined => RESOURCE_BUCKETS[action];

/**
 * The resources a call impacts: RunInstances may launch up to MaxCount (counted in full, since
 * how many launch is known only after), the others act on their InstanceIds.
 */
const resourceCount = (action: string, input: Readonly<Record<string, unknown>>): number => {
  if (action === 'RunInstances') return typeof input.MaxCount === 'number' ? input.MaxCount : 1;
  return Array.isArray(input.InstanceIds) ? input.InstanceIds.length : 0;
};

/**
 * The request buckets one call draws on. The page does not say whether a list of ids counts as a
 * filter, so a call with ids and neither filter nor pagination takes a token from both the
 * action's bucket and the smaller one: within either reading, as the local cloud
 * (local/ec2/throttling.ts) refuses it under both.
 */
const requestChargesOf = (action: string, input: Readonly<Record<string, unknown>>): BucketCharge[] => {
  const own: BucketCharge = { bucket: action, limits: requestLimitsOf(action), tokens: 1 };
  if (!unfilteredUnpaginated(action, input)) return [own];
  const smaller: BucketCharge = { bucket: `${action}.unfiltered`, limits: UNFILTERED_UNPAGINATED, tokens: 1 };
  return namesResources(input) ? [own, smaller] : [smaller];
};

/** Every bucket one call of `action` with `input` draws on, with the tokens it takes from each. */
export const chargesOf = (action: string, input: Readonly<Record<string, unknown>>): BucketCharge[] => {
  const requests = requestChargesOf(action, input);
  const resource = resourceLimitsOf(action);
  const count = resource ? resourceCount(action, input) : 0;
  return resource && count > 0
    ? [...requests, { bucket: `${action}.resources`, limits: resource, tokens: count }]
    : requests;
};
