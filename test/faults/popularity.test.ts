import { RunInstancesCommand } from '@aws-sdk/client-ec2';
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { FUNCTIONS } from '../../functions/catalog';
import { GLOBAL_SCOPE } from '../../functions/popularity/domain/scope';
import { MAX_RECEIVE_COUNT, VISIBILITY_TIMEOUT_FACTOR } from '../../local/event-queue';
import { popularityExact } from '../../local/invariants';
import { popularityStoreOn } from '../support/stores';
import { AWS_EVENTS, operatorRequest } from './support/deliveries';
import { assertOptions, FaultTally, faultProperty, summarizeAfterAll } from './support/harness';
import { faultScheduleArbitrary, pauseArbitrary } from './support/schedule';

/**
 * Popularity under faults: EC2 launches of a few AMIs and Image Launched reports of container
 * images, delivered duplicated, late and out of order, with DescribeInstances failing and the
 * function dying between any two calls. Popularity has no reconcile (a launch is an event, not a
 * state to re-derive), so its events are never dropped here; a launch whose every delivery
 * failed ends in the dead-letter queue and is expected there instead of in the count.
 */

const MINUTE = 60_000;
const FAULT_WINDOW_MS = 5 * MINUTE;
/** What the faults hit and for how long: the functions deployed (any invocation may die), the window. */
const FAULT_SCOPE = { functions: ['popularity'], windowMs: FAULT_WINDOW_MS } as const;
/**
 * Until every launch is counted or dead-lettered: an EC2 launch reaches popularity through its
 * event queue, where a message whose batch failed returns after the visibility timeout (6 × the
 * function's timeout) and moves to the dead-letter queue on the receive after the fifth
 * (local/event-queue.ts); a minute more for the last batch.
 */
const SETTLE_MS =
  MAX_RECEIVE_COUNT * VISIBILITY_TIMEOUT_FACTOR * FUNCTIONS.popularity.timeoutSeconds * 1000 + MINUTE;
const SETTINGS = { halfLifeHours: 24, shards: 4, topK: 5 };
const CONTAINER_IMAGES = [
  '123456789012.dkr.ecr.us-east-1.amazonaws.com/inference/sdxl-base:1.0',
  'public.ecr.aws/docker/library/nginx:1.27',
] as const;

interface Launch {
  readonly kind: 'ec2' | 'reported';
  readonly image: number;
  readonly count: number;
  readonly availabilityZone: 'us-east-1a' | 'us-east-1b';
  readonly afterMs: number;
}

interface PopularityWorkload {
  readonly seed: number;
  readonly amis: number;
  readonly launches: readonly Launch[];
}

const workloadArbitrary: fc.Arbitrary<PopularityWorkload> = fc.record({
  seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
  amis: fc.integer({ min: 1, max: 3 }),
  launches: fc.array(
    fc.record({
      kind: fc.constantFrom('ec2' as const, 'reported' as const),
      image: fc.integer({ min: 0, max: 2 }),
      count: fc.integer({ min: 1, max: 3 }),
      availabilityZone: fc.constantFrom('us-east-1a' as const, 'us-east-1b' as const),
      afterMs: pauseArbitrary(60),
    }),
    { minLength: 1, maxLength: 6 },
  ),
});

const faultArbitrary = faultScheduleArbitrary({
  ...FAULT_SCOPE,
  // No reconcile re-derives a launch: its state-change events are never dropped here (see above).
  events: [{ ...AWS_EVENTS.ec2StateChange, droppable: false }, operatorRequest('Image Launched')],
  calls: [{ service: 'ec2', operation: 'DescribeInstances' }],
  maxCallsPerInvocation: 12,
});

const tally = new FaultTally('popularity', ['popularityExact', 'requestAnswered', 'onlyManaged']);

interface PopularityRun {
  readonly amis: readonly string[];
  /** Deliveries some copy of which succeeded. */
  readonly succeeded: Set<string>;
  /** Launches per image. */
  readonly distinct: Map<string, number>;
  /** Which instance or report event carried each launch. */
  readonly carriedBy: Map<string, { image: string; count: number }>;
}

const popularityProperty = faultProperty<PopularityWorkload, PopularityRun>({
  ...FAULT_SCOPE,
  cloud: () => ({
    documents: [],
    behaviours: {},
    settings: { POPULARITY_SETTINGS: JSON.stringify(SETTINGS) },
  }),
  settleMs: SETTLE_MS,
  setup: async ({ cloud, workload }) => {
    const amis = Array.from({ length: workload.amis }, (_, index) =>
      cloud.ec2.registerImage({ name: `image-${index}`, rootSizeGiB: 8 }),
    );
    const succeeded = new Set<string>();
    cloud.bus.onInvocation((record) => {
      if (record.outcome === 'succeeded') succeeded.add(record.event.id);
    });
    return { amis, succeeded, distinct: new Map(), carriedBy: new Map() };
  },
  apply: async ({ cloud, log, workload }, { amis, distinct, carriedBy }) => {
    const add = (image: string, count: number) => distinct.set(image, (distinct.get(image) ?? 0) + count);
    for (const launch of workload.launches) {
      await cloud.settleFor(launch.afterMs);
      if (launch.kind === 'reported') {
        const image = CONTAINER_IMAGES[launch.image % CONTAINER_IMAGES.length] ?? '';
        const event = await log.request('Image Launched', {
          image,
          availabilityZone: launch.availabilityZone,
          count: launch.count,
        });
        carriedBy.set(event.id, { image, count: launch.count });
        add(image, launch.count);
        continue;
      }
      const image = amis[launch.image % amis.length] ?? '';
      const answer = await cloud.run(() =>
        cloud.runtime('popularity').clients.ec2.send(
          new RunInstancesCommand({
            ImageId: image,
            InstanceType: 'm7i.large',
            MinCount: launch.count,
            MaxCount: launch.count,
            Placement: { AvailabilityZone: launch.availabilityZone },
          }),
        ),
      );
      for (const instance of answer.Instances ?? [])
        carriedBy.set(instance.InstanceId ?? '', { image, count: 1 });
      add(image, launch.count);
    }
  },
  checks: async ({ cloud }, { amis, succeeded, distinct, carriedBy }, counts) => {
    // A launch whose every delivery failed is reported in the DLQ (it may have been counted
    // before the last failure). A duplicate copy may end there while the other copy succeeded.
    const deadLettered = new Map<string, number>();
    for (const letter of cloud.bus.deadLetters('popularity')) {
      if (succeeded.has(letter.event.id)) continue;
      const key =
        letter.event.source === 'aws.ec2'
          ? String(letter.event.detail['instance-id'] ?? '')
          : letter.event.id;
      const carried = carriedBy.get(key);
      if (!carried) continue;
      deadLettered.set(carried.image, (deadLettered.get(carried.image) ?? 0) + carried.count);
      carriedBy.delete(key);
    }
    const store = popularityStoreOn(cloud);
    const now = cloud.clock.now();
    const counted = new Map<string, number>();
    for (const image of [...amis, ...CONTAINER_IMAGES]) {
      counted.set(image, await cloud.run(() => store.launches(GLOBAL_SCOPE, image, now)));
    }
    counts.observe(
      'launches',
      [...distinct.values()].reduce((sum, count) => sum + count, 0),
    );
    // The launches are the customer's, untagged: popularity reads them and must touch none (the
    // harness checks every destructive call).
    return popularityExact(distinct, counted, deadLettered);
  },
});

describe('popularity under duplicate, delayed and reordered events, throttling and crashes', () => {
  summarizeAfterAll(tally);

  it('counts every distinct launch exactly once', async () => {
    await fc.assert(popularityProperty(workloadArbitrary, faultArbitrary, tally), assertOptions());
  });
});
