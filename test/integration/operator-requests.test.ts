import { describe, expect, it } from 'vitest';
import { WARMBOOT, WARMBOOT_FACT } from '../../functions/catalog';
import { GLOBAL_SCOPE } from '../../functions/popularity/domain/scope';
import type { Operator } from '../../infra/config';
import type { InvocationRecord } from '../../local/bus';
import type { LocalCloud } from '../../local/cloud';
import { sampleEvent } from '../support/events';
import { localCloudPerTest, type TestCloudOptions } from '../support/local-cloud';
import { popularityStoreOn } from '../support/stores';

/**
 * Requests only from authorized callers (security review C1, H3, M5): on the local cloud, a
 * PutEvents is authorized as AWS authorizes it — the caller's own IAM policies and the bus's
 * resource policy — so a principal the deployment does not name cannot drive warmboot, whatever
 * its own IAM policy says, and warmboot's facts reach its other functions only on the facts bus.
 */

const ACCOUNT = '123456789012';
const SETTINGS = { halfLifeHours: 24, shards: 2, topK: 5, scoreThreshold: 5 };
const GROUP = 'gpu-inference';
const sample = sampleEvent<{
  'detail-type': string;
  detail: { image: string; count: number } & Record<string, unknown>;
}>('popularity/image-launched.json');

const requester = `arn:aws:iam::${ACCOUNT}:role/team/launch-reporter`;
const operators: Operator[] = [{ principal: requester, requests: ['Image Launched'], tenants: ['*'] }];

/** What many application, CI and power-user roles hold: PutEvents on every bus. */
const putEventsAnywhere = [
  {
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow' as const, Action: 'events:PutEvents', Resource: '*' }],
  },
];
const ciRole = {
  principalArn: `arn:aws:iam::${ACCOUNT}:role/ci-deployer`,
  identityPolicies: putEventsAnywhere,
};

const startCloud = localCloudPerTest();

const start = (options: Partial<TestCloudOptions> = {}): Promise<LocalCloud> =>
  startCloud({
    functions: ['popularity'],
    settings: { POPULARITY_SETTINGS: JSON.stringify(SETTINGS) },
    operators,
    ...options,
  });

const launches = (local: LocalCloud): Promise<number> =>
  local.run(() => popularityStoreOn(local).launches(GLOBAL_SCOPE, sample.detail.image, local.clock.now()));

const launched = { source: WARMBOOT, detailType: sample['detail-type'], detail: sample.detail };

const denied = async (attempt: Promise<unknown>): Promise<string> => {
  try {
    await attempt;
  } catch (error) {
    return (error as Error).name;
  }
  return 'allowed';
};

describe('operator requests on the local cloud', () => {
  it('denies a principal the deployment does not name, whatever its own IAM policy, and changes nothing', async () => {
    const local = await start();
    const invocations: InvocationRecord[] = [];
    local.bus.onInvocation((record) => invocations.push(record));

    expect(await denied(local.putEvent(launched, { as: ciRole }))).toBe('AccessDeniedException');
    // Nor by naming the bus's ARN, nor on the default bus, where no operator rule listens.
    const arn = `arn:aws:events:${local.region}:${ACCOUNT}:event-bus/${local.bus.busName('requests')}`;
    expect(await denied(local.putEvent(launched, { as: ciRole, bus: arn }))).toBe('AccessDeniedException');
    await local.putEvent(launched, { as: ciRole, bus: 'default' });
    await local.settleFor(60_000);

    expect(invocations).toEqual([]);
    expect(await launches(local)).toBe(0);
  });

  it('serves a configured operator’s request, and only the request types it was given', async () => {
    const local = await start();

    await local.putEvent(launched, { as: { principalArn: requester } });
    await local.settleFor(60_000);
    expect(await launches(local)).toBe(sample.detail.count);

    const other = { source: WARMBOOT, detailType: 'Plan Fast Restore', detail: { dryRun: true } };
    expect(await denied(local.putEvent(other, { as: { principalArn: requester } }))).toBe(
      'AccessDeniedException',
    );
    // An operator cannot pose as warmboot: facts are for warmboot's own roles.
    const forged = { source: WARMBOOT_FACT, detailType: 'Popularity Changed', detail: {} };
    expect(
      await denied(
        local.putEvent(forged, {
          as: { principalArn: requester, identityPolicies: putEventsAnywhere },
          bus: local.bus.busName('facts'),
        }),
      ),
    ).toBe('AccessDeniedException');
  });

  it('lets nobody send requests by default, while the console test event (a direct invoke) still works', async () => {
    const local = await start({ operators: [] });

    expect(await denied(local.putEvent(launched))).toBe('AccessDeniedException');
    await local.settleFor(60_000);
    expect(await launches(local)).toBe(0);

    const answer = await local.invoke('popularity', sample);
    expect(answer).toMatchObject({ status: 'handled', source: WARMBOOT, detailType: 'Image Launched' });
    expect(await launches(local)).toBe(sample.detail.count);
  });

  it('refuses a forwarded event of another account, even on the request bus', async () => {
    const local = await start();
    const foreign = { ...sample, id: 'c5b0e1f2-3a4b-4c5d-8e6f-708192a3b4c5', account: '210987654321' };

    const byRule = await local.deliverByRule('popularity', foreign);
    const direct = await local.invoke('popularity', foreign);

    for (const answer of [byRule, direct]) {
      expect(answer).toMatchObject({
        status: 'rejected',
        error: { code: 'EnvelopeRefused', field: 'account' },
      });
    }
    expect(await launches(local)).toBe(0);
  });

  it('carries a fact from the function that publishes it to the one that acts on it, on the facts bus', async () => {
    const local = await start({
      functions: ['popularity', 'imageCache'],
      settings: {
        POPULARITY_SETTINGS: JSON.stringify(SETTINGS),
        HOST_GROUPS: JSON.stringify([
          { name: GROUP, cacheBytes: 100_000_000_000, cacheDirectory: '/var/cache/wb' },
        ]),
      },
    });
    const published: { source: string; bus: string }[] = [];
    local.bus.onEvent((event, bus) => {
      if (event['detail-type'] === 'Popularity Changed') published.push({ source: event.source, bus });
    });
    const handled: InvocationRecord[] = [];
    local.bus.onInvocation((record) => {
      if (record.functionId === 'imageCache' && record.event['detail-type'] === 'Popularity Changed') {
        handled.push(record);
      }
    });

    // Enough launches in one report to cross the score threshold: popularity publishes the fact.
    await local.putEvent(
      { ...launched, detail: { ...sample.detail, hostGroup: GROUP, count: 20 } },
      { as: { principalArn: requester } },
    );
    await local.settleFor(2 * 60_000);

    expect(published).toContainEqual({ source: WARMBOOT_FACT, bus: local.bus.busName('facts') });
    expect(published.every((event) => event.bus === local.bus.busName('facts'))).toBe(true);
    expect(handled.length).toBeGreaterThan(0);
    expect(handled.map((record) => [record.outcome, (record.result as { status?: string }).status])).toEqual(
      handled.map(() => ['succeeded', 'handled']),
    );
    expect(local.iam.denials()).toEqual([]);
  });
});
