import { RunInstancesCommand } from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { GLOBAL_SCOPE } from '../../functions/popularity/domain/scope';
import type { LocalCloud } from '../../local/cloud';
import { awsSampleEvent, sampleEvent } from '../support/events';
import { localCloudPerTest } from '../support/local-cloud';
import { popularityStoreOn } from '../support/stores';

const SETTINGS = { halfLifeHours: 24, shards: 4, topK: 5 };
const sampleLaunch = sampleEvent('popularity/image-launched.json');
const awsTaskEvent = awsSampleEvent<{
  detail: { containers: Record<string, unknown>[] } & Record<string, unknown>;
}>('ecs-task-state-change.json');

const startCloud = localCloudPerTest();

const start = (): Promise<LocalCloud> =>
  startCloud({ functions: ['popularity'], settings: { POPULARITY_SETTINGS: JSON.stringify(SETTINGS) } });

/**
 * Reads the popularity table the way the cache planner does. DynamoDB requests take virtual
 * time in the local cloud, so every read runs inside `local.run`.
 */
const reader = (local: LocalCloud) => {
  const store = popularityStoreOn(local);
  return {
    recordLaunch: (...args: Parameters<typeof store.recordLaunch>) =>
      local.run(() => store.recordLaunch(...args)),
    topK: (...args: Parameters<typeof store.topK>) => local.run(() => store.topK(...args)),
    launches: (...args: Parameters<typeof store.launches>) => local.run(() => store.launches(...args)),
  };
};

const launch = (local: LocalCloud, imageId: string, count: number, zone: string, hostGroup?: string) =>
  local.run(() =>
    local.runtime('popularity').clients.ec2.send(
      new RunInstancesCommand({
        ImageId: imageId,
        InstanceType: 'm7i.large',
        MinCount: count,
        MaxCount: count,
        Placement: { AvailabilityZone: zone },
        ...(hostGroup
          ? {
              TagSpecifications: [
                { ResourceType: 'instance', Tags: [{ Key: 'warmboot:host-group', Value: hostGroup }] },
              ],
            }
          : {}),
      }),
    ),
  );

const imageLaunched = (local: LocalCloud, detail: Record<string, unknown>) =>
  local.putEvent({ source: 'warmboot', detailType: 'Image Launched', detail });

describe('popularity against DynamoDB Local and the EC2 simulator', () => {
  it('counts EC2 launches exactly per image, AZ and host group, and ranks them', async () => {
    const local = await start();
    const web = local.ec2.registerImage({ name: 'web', rootSizeGiB: 8 });
    const batch = local.ec2.registerImage({ name: 'batch', rootSizeGiB: 8 });
    await launch(local, web, 3, 'us-east-1a', 'web');
    await launch(local, web, 2, 'us-east-1b');
    await launch(local, batch, 1, 'us-east-1a');
    await local.settleFor(60_000);

    const store = reader(local);
    const now = local.clock.now();
    expect(await store.launches(GLOBAL_SCOPE, web, now)).toBe(5);
    expect(await store.launches({ kind: 'az', az: 'us-east-1a' }, web, now)).toBe(3);
    expect(await store.launches({ kind: 'hostGroup', hostGroup: 'web' }, web, now)).toBe(3);
    expect(await store.launches(GLOBAL_SCOPE, batch, now)).toBe(1);
    const top = await store.topK(GLOBAL_SCOPE, 5, now);
    expect(top.map((entry) => [entry.image, entry.launches])).toEqual([
      [web, 5],
      [batch, 1],
    ]);
    expect(top[0]?.score).toBeCloseTo(5, 2);
    // One DescribeInstances per batch, not per launch (issue 17): the running events reach
    // popularity through its event queue, and each batch describes its instances together. Before
    // the batching this was 6, one per launch (finding R8).
    const batches = local.bus.eventQueueStats('popularity')?.mapping.batches ?? 0;
    expect(batches).toBeGreaterThan(0);
    expect(batches).toBeLessThan(6);
    expect(local.ec2.stats().DescribeInstances?.calls).toBe(batches);
    expect(local.bus.deadLetters('popularity')).toEqual([]);
  });

  it('counts an event delivered twice once', async () => {
    const local = await start();
    local.bus.injectFault({
      match: { functionId: 'popularity', detailType: 'Image Launched' },
      fault: { kind: 'duplicate', afterMs: 90_000 },
    });
    await imageLaunched(local, sampleLaunch.detail);
    await local.settleFor(5 * 60_000);

    expect(local.bus.stats('popularity').invocations).toBe(2);
    const image = String(sampleLaunch.detail.image);
    expect(await reader(local).launches(GLOBAL_SCOPE, image, local.clock.now())).toBe(3);
  });

  it('counts a launch once when a retried invocation records it again (dedupe marker)', async () => {
    const local = await start();
    const store = reader(local);
    const at = local.clock.now();
    const record = { eventId: 'retried-event', at, images: [{ image: 'ami-0abcdef0123456789', count: 2 }] };
    const first = await store.recordLaunch(record);
    const second = await store.recordLaunch(record);
    expect([first.recorded, second.recorded]).toEqual([true, false]);
    expect(await store.launches(GLOBAL_SCOPE, 'ami-0abcdef0123456789', at)).toBe(2);
  });

  it('gives the same scores whatever order the launches arrive in', async () => {
    const scoresAfter = async (reorder: boolean) => {
      const local = await start();
      if (reorder)
        local.bus.injectFault({
          match: { functionId: 'popularity', detailType: 'Image Launched' },
          fault: { kind: 'reorder', window: 6 },
        });
      const hour = 3_600_000;
      const at = local.clock.now();
      const launches = [
        ['ami-0aaaaaaaaaaaaaaa1', 0],
        ['ami-0bbbbbbbbbbbbbbb2', 1],
        ['ami-0aaaaaaaaaaaaaaa1', 5],
        ['ami-0bbbbbbbbbbbbbbb2', 9],
        ['ami-0aaaaaaaaaaaaaaa1', 12],
        ['ami-0ccccccccccccccc3', 20],
      ] as const;
      // Straight onto the request bus with a chosen event time, as an operator's PutEvents may set it.
      for (const [image, hours] of launches)
        local.bus.put(
          {
            source: 'warmboot',
            detailType: 'Image Launched',
            detail: { image, availabilityZone: 'us-east-1a' },
            time: at + hours * hour,
          },
          local.bus.busName('requests'),
        );
      await local.settleFor(60_000);
      return reader(local).topK({ kind: 'az', az: 'us-east-1a' }, 3, at + 24 * hour);
    };
    const inOrder = await scoresAfter(false);
    const shuffled = await scoresAfter(true);
    expect(shuffled).toEqual(inOrder);
    expect(inOrder.map((entry) => entry.image)).toEqual([
      'ami-0aaaaaaaaaaaaaaa1',
      'ami-0bbbbbbbbbbbbbbb2',
      'ami-0ccccccccccccccc3',
    ]);
  });

  it('records every container image of an ECS task once, even when ECS reports it RUNNING twice', async () => {
    const local = await start();
    // AWS's published sample task (test/fixtures/aws/README.md), with a sidecar added.
    const [awsContainer] = awsTaskEvent.detail.containers;
    const detail = {
      ...awsTaskEvent.detail,
      containers: [
        awsContainer,
        { ...awsContainer, name: 'envoy', image: 'public.ecr.aws/appmesh/aws-appmesh-envoy:v1.29' },
      ],
    };
    // ECS delivers the same task change twice, on the default bus (nobody else may use aws.ecs).
    local.bus.put({ source: 'aws.ecs', detailType: 'ECS Task State Change', detail });
    local.bus.put({ source: 'aws.ecs', detailType: 'ECS Task State Change', detail });
    await local.settleFor(60_000);

    const top = await reader(local).topK({ kind: 'az', az: 'us-west-2c' }, 5, local.clock.now());
    expect(top.map((entry) => [entry.image, entry.launches])).toEqual([
      ['111122223333.dkr.ecr.us-west-2.amazonaws.com/hello-repository:latest', 1],
      ['public.ecr.aws/appmesh/aws-appmesh-envoy:v1.29', 1],
    ]);
  });

  it('keeps one hot image exact across shards and publishes Popularity Changed once', async () => {
    const local = await start();
    const changed: unknown[] = [];
    local.bus.onEvent((event) => {
      if (event['detail-type'] === 'Popularity Changed') changed.push(event.detail);
    });
    for (let index = 0; index < 40; index++) imageLaunched(local, { image: 'M0002', count: 25 });
    await local.settleFor(60_000);

    expect(await reader(local).launches(GLOBAL_SCOPE, 'M0002', local.clock.now())).toBe(1_000);
    const shards = await local.documents.send(
      new (await import('@aws-sdk/lib-dynamodb')).ScanCommand({
        TableName: local.tables.popularity,
        FilterExpression: 'begins_with(pk, :prefix)',
        ExpressionAttributeValues: { ':prefix': 'POP#global#M0002#' },
      }),
    );
    expect(new Set(shards.Items?.map((item) => item.pk)).size).toBe(SETTINGS.shards);
    expect(changed).toEqual([
      expect.objectContaining({ image: 'M0002', scope: { kind: 'global' }, rank: 1 }),
    ]);
  });
});
