import { RunInstancesCommand } from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { PopularityLagProbe } from '../../../bench/firehose-load';
import { type CallCounts, meterEc2Attempts, since, sumCounts } from '../../../bench/firehose-meters';
import type { PopularityReader } from '../../../functions/popularity/adapters/popularity-store';
import { createCloud } from '../local/ec2-harness';

/** A reader whose exact launch counts the test sets. */
const readerOf = (counts: Map<string, number>): PopularityReader => ({
  topK: async () => [],
  score: async () => 0,
  launches: async (_scope, image) => counts.get(image) ?? 0,
});

describe('firehose benchmark', () => {
  it('the EC2 meter counts every attempt and the RequestLimitExceeded answers, per API', async () => {
    const cloud = await createCloud();
    const counts: CallCounts = new Map();
    meterEc2Attempts(cloud.ec2Client, counts);
    const launch = () =>
      cloud.ec2Client.send(new RunInstancesCommand({ ImageId: cloud.imageId, MinCount: 1, MaxCount: 1 }));

    await cloud.run(() => Promise.allSettled(Array.from({ length: 6 }, launch)));

    expect(counts.get('RunInstances')).toEqual({ attempts: 6, throttled: 1 });
    expect(
      since(new Map([['RunInstances', { attempts: 2, throttled: 0 }]]), counts).get('RunInstances'),
    ).toEqual({
      attempts: 4,
      throttled: 1,
    });
    expect(sumCounts([counts, counts]).get('RunInstances')).toEqual({ attempts: 12, throttled: 2 });
  });

  it('the lag probe matches the k-th running launch of an image with the k-th count, and keeps the rest waiting', async () => {
    let now = 100_000;
    const counts = new Map([['ami-a', 1]]);
    const probe = new PopularityLagProbe({ now: () => now, sleep: async () => undefined }, readerOf(counts), [
      'ami-a',
      'ami-b',
    ]);
    const running = new Map([
      ['ami-a', [90_000, 95_000]],
      ['ami-b', [99_000]],
    ]);

    await probe.poll(running);
    expect(probe.lags).toEqual([10_000]);

    now = 110_000;
    counts.set('ami-a', 2);
    await probe.poll(running);
    expect(probe.lags).toEqual([10_000, 15_000]);
    // ami-b was never counted: it waited 11 s so far, a lower bound of its lag.
    expect(probe.unreflected(running, now)).toEqual([11_000]);
  });
});
