import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FunctionId } from '../../functions/catalog';
import { ACCOUNT_BUDGET_ENV, leaseExtra, shareOf } from '../../functions/shared/account-budget';
import { dynamoBudgetStore } from '../../functions/shared/adapters/budget-store';
import { NON_MUTATING } from '../../functions/shared/ec2-buckets';
import { AccountBudget } from '../../functions/shared/ec2-budget';
import type { Runtime } from '../../functions/shared/runtime';
import type { LocalCloud } from '../../local/cloud';
import { seededRandom } from '../../local/ec2/ids';
import { startLocalCloud } from '../support/local-cloud';

/**
 * The account budget on DynamoDB Local: every execution environment of every function reserves
 * on one item per bucket, so together they keep to the share however many of them call.
 */

/** Makes `calls` filtered DescribeInstances calls one after the other; answers when each went. */
const describing = (runtime: Runtime) => async (event: unknown) => {
  const { calls } = event as { calls: number };
  const sentAt: number[] = [];
  for (let call = 0; call < calls; call++) {
    await runtime.clients.ec2.send(
      new DescribeInstancesCommand({ Filters: [{ Name: 'tag:warmboot:budget-test', Values: ['none'] }] }),
    );
    sentAt.push(runtime.clock.now());
  }
  return sentAt;
};

const SHARE = 0.1;

describe('the account budget', () => {
  let cloud: LocalCloud;

  beforeAll(async () => {
    cloud = await startLocalCloud({
      latency: 'calibrated',
      handlers: { popularity: describing, imageCache: describing, shelving: describing },
      documents: [],
      behaviours: {},
      settings: { [ACCOUNT_BUDGET_ENV]: JSON.stringify({ share: SHARE, functions: { shelving: 0.5 } }) },
    });
  });

  afterAll(async () => {
    await cloud?.stop();
  });

  it('stores a bucket as fullAt: a restart only on a full bucket, an extension only within the debt limit, and a refusal says where it stands', async () => {
    // DynamoDB Local's latency passes on the virtual clock, which only runs inside cloud.run.
    await cloud.run(async () => {
      const store = dynamoBudgetStore(cloud.runtime('popularity').clients.documents, cloud.tables.ec2Budget);
      const key = `store-${cloud.tables.ec2Budget}#AttachVolume`;
      const now = cloud.clock.now();

      expect(await store.extend(key, 500, now, now + 10_000)).toEqual({ done: false, fullAt: undefined });
      expect(await store.restart(key, now + 1_000, now)).toEqual({ done: true });
      expect(await store.restart(key, now + 1_000, now)).toEqual({ done: false, fullAt: now + 1_000 });
      expect(await store.extend(key, 500.25, now, now + 10_000)).toEqual({
        done: true,
        fullAt: now + 1_500.25,
      });
      expect(await store.extend(key, 500, now, now + 1_000)).toEqual({ done: false, fullAt: now + 1_500.25 });
      // Once fullAt has passed the bucket is full: extending it would reserve in the past.
      expect(await store.extend(key, 500, now + 2_000, now + 10_000)).toEqual({
        done: false,
        fullAt: now + 1_500.25,
      });
      expect(await store.restart(key, now + 3_000, now + 2_000)).toEqual({ done: true });

      // An item of the first design (a level and a version, no fullAt) counts as a full bucket.
      const legacy = `legacy-${cloud.tables.ec2Budget}#AttachVolume`;
      await cloud.documents.send(
        new PutCommand({
          TableName: cloud.tables.ec2Budget,
          Item: { pk: legacy, tokens: 3, refilledAt: now, version: 7 },
        }),
      );
      expect(await store.extend(legacy, 500, now, now + 10_000)).toEqual({ done: false, fullAt: undefined });
      expect(await store.restart(legacy, now + 1_000, now)).toEqual({ done: true });
    });
  });

  it('lets 20 concurrent environments take no more than the share over a virtual minute', async () => {
    const documents = cloud.runtime('popularity').clients.documents;
    const store = dynamoBudgetStore(documents, cloud.tables.ec2Budget);
    const start = cloud.clock.now();
    const end = start + 60_000;
    const sends: number[] = [];
    const environment = (index: number) => async () => {
      const budget = new AccountBudget({
        store,
        clock: cloud.clock,
        random: seededRandom(index + 1),
        share: { share: SHARE, pool: `minute-${cloud.tables.ec2Budget}` },
      });
      for (;;) {
        await budget.acquire('DescribeHosts', { HostIds: [`h-${index}`] });
        if (cloud.clock.now() > end) return;
        sends.push(cloud.clock.now());
      }
    };

    await cloud.run(() => Promise.all(Array.from({ length: 20 }, (_, index) => environment(index)())));

    const share = shareOf(NON_MUTATING, SHARE);
    expect(sends.length).toBeLessThanOrEqual(share.capacity + share.refillPerSecond * 60);
    // And the budget is used, not starved by the contention: at least the sustained rate.
    expect(sends.length).toBeGreaterThanOrEqual(share.refillPerSecond * 60);
  });

  it('makes two functions’ EC2 calls draw on one budget, and a function with its own share on its own', async () => {
    const invoke = async (functionId: FunctionId, calls: number) =>
      (await cloud.invoke(functionId, { calls })) as number[];
    const start = cloud.clock.now();
    const share = shareOf(NON_MUTATING, SHARE);

    // popularity spends the shared burst at once (all but the refill its first call's lease holds
    // back until it expires, account-budget.ts `reservation`)...
    const popularity = await invoke('popularity', share.capacity - leaseExtra(share, 1));
    expect(Math.max(...popularity) - start).toBeLessThan(500);
    // ...so imageCache's next call waits for the shared refill,
    const imageCache = await invoke('imageCache', 1);
    expect((imageCache[0] ?? 0) - start).toBeGreaterThanOrEqual(1000 / share.refillPerSecond);
    // while shelving, with a share of its own, goes at once.
    const beforeShelving = cloud.clock.now();
    const shelving = await invoke('shelving', share.capacity);
    expect(Math.max(...shelving) - beforeShelving).toBeLessThan(500);

    const item = await cloud.documents.send(
      new GetCommand({ TableName: cloud.tables.ec2Budget, Key: { pk: 'shared#DescribeInstances' } }),
    );
    // Both functions' reservations moved the one shared item: it is full again only after both.
    expect(item.Item?.fullAt).toBeGreaterThan(imageCache[0] ?? Number.POSITIVE_INFINITY);
    expect(cloud.iam.stats().denials).toEqual({});
  });
});
