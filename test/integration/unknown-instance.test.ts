import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { LocalCloud } from '../../local/cloud';

/**
 * EC2 sends state-change events for every instance in the account. One that DescribeInstances
 * answers with `InvalidInstanceID.NotFound` (EC2's eventual consistency right after a launch, or
 * an instance terminated long ago) is nothing to act on: a logged no-op for that event, never an
 * error that Lambda retries into the dead-letter queue and that wakes the alarm.
 */
const awsSample = JSON.parse(
  readFileSync(new URL('../fixtures/aws/ec2-instance-state-change.json', import.meta.url), 'utf8'),
) as { source: string; 'detail-type': string; resources: string[]; detail: Record<string, unknown> };

const HOST_GROUPS = [{ name: 'web', cacheBytes: 1024 ** 3, cacheDirectory: '/var/cache/warmboot' }];

let cloud: LocalCloud | undefined;
afterEach(async () => {
  await cloud?.stop();
  cloud = undefined;
});

describe('an EC2 event about an instance EC2 does not know', () => {
  it.each(['running', 'stopped'])(
    'is a no-op for popularity and the image cache (state %s)',
    async (state) => {
      cloud = await LocalCloud.start({
        dynamodbEndpoint: inject('dynamodbEndpoint'),
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
