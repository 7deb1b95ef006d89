import type { Clock } from '../../functions/shared/clock';
import { TokenBucket, type TokenBucketLimits } from '../token-bucket';
import { ec2Error } from './errors';

/**
 * ec2-api-throttling: one request bucket per API (per account and Region), and for the four
 * instance-lifecycle APIs a second bucket counting instances. An empty bucket answers
 * RequestLimitExceeded. Figures from docs/ec2-timings.md.
 */
const limits = (capacity: number, refillPerSecond: number): TokenBucketLimits => ({
  capacity,
  refillPerSecond,
});

/**
 * The actions warmboot calls that the page lists under "Uncategorized actions" (their own sizes,
 * "even though by definition they fit in one of the other categories") or with a resource bucket.
 * An uncategorized action missing here gets its category's size, which is never larger.
 */
const REQUEST_LIMITS: Readonly<Record<string, TokenBucketLimits>> = {
  RunInstances: limits(5, 2),
  StartInstances: limits(5, 2),
  TerminateInstances: limits(100, 5),
  CreateVolume: limits(100, 5),
  CreateSnapshot: limits(100, 5),
  CreateSnapshots: limits(100, 5),
  DeleteSnapshot: limits(100, 5),
  DeleteVolume: limits(100, 5),
  CreateTags: limits(100, 10),
  DeleteTags: limits(100, 10),
};
const NON_MUTATING = limits(100, 20);
const UNFILTERED_UNPAGINATED = limits(50, 10);
/**
 * Every other mutating action. CreateReplaceRootVolumeTask is among them by assumption: the
 * stored copies of ec2-api-throttling do not show it in a category or with its own bucket.
 */
const OTHER_MUTATING = limits(50, 5);

const RESOURCE_LIMITS: Readonly<Record<string, TokenBucketLimits>> = {
  RunInstances: limits(1000, 2),
  StartInstances: limits(1000, 2),
  StopInstances: limits(1000, 20),
  TerminateInstances: limits(1000, 20),
};

export interface ApiStats {
  readonly calls: number;
  readonly throttled: number;
}

interface Admission {
  readonly bucket: string;
  readonly limits: TokenBucketLimits;
  readonly cost: number;
}

/**
 * The seven actions with a smaller bucket "when requested without specifying either pagination or
 * a filter" (ec2-api-throttling, "Unfiltered and unpaginated non-mutating actions"). The account
 * budget (functions/shared/ec2-buckets.ts) has the same list; the local cloud keeps its own copy
 * of the page, as for every other bucket here, so a slip in the budget's is not mirrored.
 */
const UNFILTERED_UNPAGINATED_ACTIONS: ReadonlySet<string> = new Set([
  'DescribeInstances',
  'DescribeInstanceStatus',
  'DescribeNetworkInterfaces',
  'DescribeSecurityGroups',
  'DescribeSnapshots',
  'DescribeSpotInstanceRequests',
  'DescribeVolumes',
]);

const present = (value: unknown): boolean =>
  value !== undefined && !(Array.isArray(value) && value.length === 0);

/** Neither a filter (`Filters`) nor pagination (`MaxResults`, `NextToken`). */
const isUnfilteredUnpaginated = (input: Record<string, unknown>): boolean =>
  !present(input.Filters) && !present(input.MaxResults) && !present(input.NextToken);

/** A list of ids or names (`InstanceIds`, `VolumeIds`, `GroupNames`, …) narrowing the answer. */
const namesResources = (input: Record<string, unknown>): boolean =>
  Object.entries(input).some(([key, value]) => /(Ids|Names)$/.test(key) && present(value));

const instanceCount = (operation: string, input: Record<string, unknown>): number => {
  if (operation === 'RunInstances') return typeof input.MaxCount === 'number' ? input.MaxCount : 1;
  return Array.isArray(input.InstanceIds) ? input.InstanceIds.length : 0;
};

const requestBucketOf = (operation: string): Admission => ({
  bucket: operation,
  limits: REQUEST_LIMITS[operation] ?? (operation.startsWith('Describe') ? NON_MUTATING : OTHER_MUTATING),
  cost: 1,
});

/**
 * The request buckets a call draws on. Whether a list of ids counts as a filter the page does not
 * say, so such a call (ids, no filter, no pagination) draws on both buckets: refused whenever
 * either reading of the page would refuse it, stricter than AWS under both.
 */
const requestAdmissionsFor = (operation: string, input: Record<string, unknown>): Admission[] => {
  if (!UNFILTERED_UNPAGINATED_ACTIONS.has(operation) || !isUnfilteredUnpaginated(input))
    return [requestBucketOf(operation)];
  const smaller: Admission = {
    bucket: `${operation} (unfiltered, unpaginated)`,
    limits: UNFILTERED_UNPAGINATED,
    cost: 1,
  };
  return namesResources(input) ? [requestBucketOf(operation), smaller] : [smaller];
};

const admissionsFor = (operation: string, input: Record<string, unknown>): Admission[] => {
  const requests = requestAdmissionsFor(operation, input);
  const resource = RESOURCE_LIMITS[operation];
  return resource
    ? [
        ...requests,
        { bucket: `${operation} (instances)`, limits: resource, cost: instanceCount(operation, input) },
      ]
    : requests;
};

/** The published limits of a bucket by its name (as `admissionsFor` names buckets), or undefined. */
const defaultLimitsOf = (bucket: string): TokenBucketLimits | undefined => {
  const resource = /^(\w+) \(instances\)$/.exec(bucket);
  if (resource) return RESOURCE_LIMITS[resource[1] ?? ''];
  const smaller = /^(\w+) \(unfiltered, unpaginated\)$/.exec(bucket);
  if (smaller)
    return UNFILTERED_UNPAGINATED_ACTIONS.has(smaller[1] ?? '') ? UNFILTERED_UNPAGINATED : undefined;
  if (!/^[A-Z]\w+$/.test(bucket)) return undefined;
  return REQUEST_LIMITS[bucket] ?? (bucket.startsWith('Describe') ? NON_MUTATING : OTHER_MUTATING);
};

export class Ec2Throttle {
  readonly #clock: Clock;
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #stats = new Map<string, { calls: number; throttled: number }>();
  /** Buckets whose limits the account had raised (`raise`), by bucket name. */
  readonly #raised = new Map<string, TokenBucketLimits>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /**
   * The account's raised limits for one bucket (`RunInstances`, `RunInstances (instances)`, …),
   * as AWS Support grants them: ec2-api-throttling, "Request a limit increase" (an account may ask
   * for higher bucket sizes and refill rates for its use case). The bucket starts full at the new
   * limits. Only a raise: limits below the published defaults are refused, so the simulator is
   * never laxer by accident elsewhere and never stricter than an account can be.
   */
  raise(bucket: string, raised: TokenBucketLimits): void {
    const defaults = defaultLimitsOf(bucket);
    if (!defaults) throw new Error(`no EC2 throttling bucket named '${bucket}'`);
    if (raised.capacity < defaults.capacity || raised.refillPerSecond < defaults.refillPerSecond) {
      throw new Error(
        `a raise of '${bucket}' must not go below its default ${defaults.capacity} / ${defaults.refillPerSecond} per second`,
      );
    }
    this.#raised.set(bucket, raised);
    this.#buckets.set(bucket, new TokenBucket(this.#clock, raised));
  }

  /** Counts the call and takes its tokens, or throws RequestLimitExceeded (HTTP 503). */
  admit(operation: string, input: Record<string, unknown>): void {
    const stats = this.#stats.get(operation) ?? { calls: 0, throttled: 0 };
    this.#stats.set(operation, stats);
    stats.calls += 1;
    const admissions = admissionsFor(operation, input).map((admission) => ({
      ...admission,
      tokens: this.#bucket(admission),
    }));
    // All buckets must have room before any is charged, so a refused call costs nothing.
    if (admissions.some((admission) => admission.tokens.tokens < admission.cost)) {
      stats.throttled += 1;
      throw ec2Error('RequestLimitExceeded', 'Request limit exceeded.');
    }
    for (const admission of admissions) admission.tokens.tryTake(admission.cost);
  }

  stats(): Readonly<Record<string, ApiStats>> {
    return Object.fromEntries([...this.#stats].map(([operation, stats]) => [operation, { ...stats }]));
  }

  #bucket(admission: Admission): TokenBucket {
    let bucket = this.#buckets.get(admission.bucket);
    if (!bucket) {
      bucket = new TokenBucket(this.#clock, this.#raised.get(admission.bucket) ?? admission.limits);
      this.#buckets.set(admission.bucket, bucket);
    }
    return bucket;
  }
}
