import { DescribeInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { callAws, isUnknownInstance } from '../../shared/aws-errors';
import { collectPages } from '../../shared/pagination';
import { HOST_GROUP_TAG } from '../../shared/tags';

/** What a launch needs to know about an instance; the EC2 running event carries only its id. */
export interface InstanceFacts {
  readonly instanceId: string;
  readonly imageId: string;
  readonly availabilityZone?: string | undefined;
  readonly hostGroup?: string | undefined;
}

/** The one EC2 call popularity makes. Ids EC2 does not know are absent from the answer. */
export interface InstanceDirectory {
  describe(instanceIds: readonly string[]): Promise<ReadonlyMap<string, InstanceFacts>>;
}

/** DescribeInstances takes up to 1,000 instance ids per call (EC2 API reference). */
const DESCRIBE_MAX_IDS = 1_000;

export const ec2InstanceDirectory = (ec2: EC2Client): InstanceDirectory => {
  const describeChunk = (ids: readonly string[]): Promise<InstanceFacts[]> =>
    collectPages(async (nextToken) => {
      const page = await callAws('DescribeInstances', () =>
        ec2.send(new DescribeInstancesCommand({ InstanceIds: [...ids], NextToken: nextToken })),
      );
      const instances = (page.Reservations ?? []).flatMap((reservation) => reservation.Instances ?? []);
      return {
        items: instances.flatMap((instance) =>
          instance.InstanceId && instance.ImageId
            ? [
                {
                  instanceId: instance.InstanceId,
                  imageId: instance.ImageId,
                  availabilityZone: instance.Placement?.AvailabilityZone,
                  hostGroup: instance.Tags?.find((tag) => tag.Key === HOST_GROUP_TAG)?.Value,
                },
              ]
            : [],
        ),
        nextToken: page.NextToken,
      };
    });
  const directory: InstanceDirectory = {
    async describe(instanceIds) {
      const found = new Map<string, InstanceFacts>();
      for (let start = 0; start < instanceIds.length; start += DESCRIBE_MAX_IDS) {
        const chunk = instanceIds.slice(start, start + DESCRIBE_MAX_IDS);
        let facts: InstanceFacts[];
        try {
          facts = await describeChunk(chunk);
        } catch (error) {
          // One unknown id fails the whole call (InvalidInstanceID.NotFound or .Malformed); ask
          // one by one so the known instances still resolve. A single unknown id is simply absent.
          if (!isUnknownInstance(error)) throw error;
          if (chunk.length === 1) continue;
          facts = (await Promise.all(chunk.map((id) => directory.describe([id])))).flatMap((map) => [
            ...map.values(),
          ]);
        }
        for (const fact of facts) found.set(fact.instanceId, fact);
      }
      return found;
    },
  };
  return directory;
};

interface Waiter {
  readonly resolve: (facts: InstanceFacts | undefined) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Caches resolved instances per execution environment (an instance never changes its image or
 * AZ) in a bounded LRU, and coalesces lookups that arrive together into one DescribeInstances:
 * lookups made before `gather()` resolves (the clock's next turn: a timer of 0 ms) share one
 * call, so concurrent events in one process (the local bus, a burst) cost one call, not one each.
 * Unknown instances are not cached: EC2 is eventually consistent and may know them shortly.
 */
export class CachedInstanceDirectory {
  readonly #cache = new Map<string, InstanceFacts>();
  #pending = new Map<string, Waiter[]>();

  constructor(
    private readonly directory: InstanceDirectory,
    private readonly capacity: number,
    private readonly gather: () => Promise<void>,
  ) {}

  lookup(instanceId: string): Promise<InstanceFacts | undefined> {
    const cached = this.#cache.get(instanceId);
    if (cached) {
      this.#cache.delete(instanceId);
      this.#cache.set(instanceId, cached);
      return Promise.resolve(cached);
    }
    return new Promise((resolve, reject) => {
      if (this.#pending.size === 0) void this.gather().then(() => this.#flush());
      this.#pending.set(instanceId, [...(this.#pending.get(instanceId) ?? []), { resolve, reject }]);
    });
  }

  /**
   * Resolves every instance of a queue batch at once (one DescribeInstances per 1,000 ids) and
   * caches them, so the batch's lookups that follow find them: a batch costs one call however its
   * events are interleaved with other awaits. Capacity below the batch size would evict them first.
   */
  async prefetch(instanceIds: readonly string[]): Promise<void> {
    const missing = [...new Set(instanceIds)].filter((instanceId) => !this.#cache.has(instanceId));
    if (missing.length === 0) return;
    const found = await this.directory.describe(missing);
    for (const facts of found.values()) this.#remember(facts);
  }

  async #flush(): Promise<void> {
    const waiting = this.#pending;
    this.#pending = new Map();
    try {
      const found = await this.directory.describe([...waiting.keys()]);
      for (const [instanceId, waiters] of waiting) {
        const facts = found.get(instanceId);
        if (facts) this.#remember(facts);
        for (const waiter of waiters) waiter.resolve(facts);
      }
    } catch (error) {
      for (const waiters of waiting.values()) for (const waiter of waiters) waiter.reject(error);
    }
  }

  #remember(facts: InstanceFacts): void {
    this.#cache.set(facts.instanceId, facts);
    if (this.#cache.size > this.capacity) {
      const oldest = this.#cache.keys().next();
      if (!oldest.done) this.#cache.delete(oldest.value);
    }
  }
}
