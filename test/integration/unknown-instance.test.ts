import { describe, expect, it } from 'vitest';
import { awsSampleEvent } from '../support/events';
import { localCloudPerTest } from '../support/local-cloud';

/**
 * EC2 sends state-change events for every instance in the account. One that DescribeInstances
 * answers with `InvalidInstanceID.NotFound` (EC2's eventual consistency right after a launch, or
 * an instance terminated long ago) is nothing to act on: a logged no-op for that event, never an
 * error that Lambda retries into the dead-letter queue and that wakes the alarm.
 */
const awsSample = awsSampleEvent('ec2-instance-state-change.json');

const HOST_GROUPS = [{ name: 'web', cacheBytes: 1024 ** 3, cacheDirectory: '/var/cache/warmboot' }];

const startCloud = localCloudPerTest();

describe('an EC2 event about an instance EC2 does not know', () => {
  it.each(['running', 'stopped'])(
    'is a no-op for popularity and the image cache (state %s)',
    async (state) => {
      const cloud = await startCloud({
        functions: ['popularity', 'imageCache'],
        settings: { HOST_GROUPS: JSON.stringify(HOST_GROUPS) },
      });

      // AWS's own sample event: its instance was never launched in this cloud.
      cloud.bus.put({
        source: awsSample.source,
        detailType: awsSample['detail-type'],
        resources: awsSample.resources,
        detail: { ...awsSample.detail, state },
      });
      await cloud.settleFor(10 * 60_000);

      expect(cloud.ec2.stats().DescribeInstances?.calls ?? 0).toBeGreaterThan(0);
      for (const functionId of ['popularity', 'imageCache'] as const) {
        expect(cloud.bus.deadLetters(functionId), functionId).toEqual([]);
        expect(cloud.bus.stats(functionId).errors, functionId).toBe(0);
      }
    },
  );
});
