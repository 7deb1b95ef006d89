import { Metrics } from '@aws-lambda-powertools/metrics';
import { describe, expect, it } from 'vitest';
import type { InstanceFacts } from '../../../functions/popularity/adapters/instance-directory';
import {
  MemoryChangeMarkers,
  MemoryLaunchQuota,
  MemoryPopularityStore,
} from '../../../functions/popularity/adapters/memory-popularity-store';
import { RANKING_MAX_AGE_MS, RecentRanking } from '../../../functions/popularity/adapters/recent-ranking';
import type { PopularityDependencies } from '../../../functions/popularity/dependencies';
import { decayParameters } from '../../../functions/popularity/domain/decay';
import { GLOBAL_SCOPE } from '../../../functions/popularity/domain/scope';
import { createPopularityRegistry } from '../../../functions/popularity/handler';
import { imageLaunchedSchema } from '../../../functions/popularity/schemas';
import type { Fact } from '../../../functions/shared/adapters/facts';
import { awsSampleEvent, sampleEvent } from '../../support/events';

const sample = sampleEvent('popularity/image-launched.json');
const now = Date.parse(sample.time);
/** AWS's published ECS Task State Change sample (test/fixtures/aws/README.md): one Fargate task. */
const awsTaskEvent = awsSampleEvent<{
  id: string;
  time: string;
  detail: { containers: Record<string, unknown>[] } & Record<string, unknown>;
}>('ecs-task-state-change.json');

const setup = (instances: Record<string, InstanceFacts> = {}, imageLaunchedPerCallerPerHour = 10_000) => {
  const store = new MemoryPopularityStore({ decay: decayParameters(24), shards: 8 });
  const published: Fact[] = [];
  const lookups: string[] = [];
  const prefetches: string[][] = [];
  const dependencies: PopularityDependencies = {
    store,
    ranking: new RecentRanking(store, decayParameters(24), RANKING_MAX_AGE_MS),
    markers: new MemoryChangeMarkers(),
    quota: new MemoryLaunchQuota(),
    imageLaunchedPerCallerPerHour,
    facts: { publish: async (facts) => void published.push(...facts) },
    instances: {
      lookup: async (instanceId) => {
        lookups.push(instanceId);
        return instances[instanceId];
      },
      prefetch: async (instanceIds) => void prefetches.push([...instanceIds]),
    },
    logger: { warn: () => undefined, info: () => undefined },
    metrics: new Metrics({ namespace: 'Test', serviceName: 'popularity' }),
    topK: 3,
    scoreThreshold: 5,
    changedMinIntervalMs: 300_000,
    localGate: new Map(),
  };
  return { registry: createPopularityRegistry(dependencies), store, published, lookups, prefetches };
};

const operatorEvent = (detail: Record<string, unknown>, id = sample.id) => ({ ...sample, id, detail });

describe('Image Launched (operator event)', () => {
  it('the console sample parses with the handler schema', () => {
    expect(imageLaunchedSchema.safeParse(sample.detail).success).toBe(true);
  });

  it('records the sample launch with its count in every scope it names', async () => {
    const { registry, store } = setup();
    const outcome = await registry.dispatch(sample);
    expect(outcome).toMatchObject({ status: 'handled', result: { ok: true, recorded: true } });
    const image = sample.detail.image as string;
    expect(await store.launches(GLOBAL_SCOPE, image, now)).toBe(3);
    expect(await store.launches({ kind: 'az', az: 'us-east-1a' }, image, now)).toBe(3);
    expect(await store.launches({ kind: 'hostGroup', hostGroup: 'gpu-inference' }, image, now)).toBe(3);
  });

  it('counts a redelivered event once', async () => {
    const { registry, store } = setup();
    await registry.dispatch(sample);
    const second = await registry.dispatch(sample);
    expect(second).toMatchObject({ status: 'handled', result: { ok: true, recorded: false } });
    expect(await store.launches(GLOBAL_SCOPE, sample.detail.image as string, now)).toBe(3);
  });

  it.each([
    ['shell metacharacters', { image: 'nginx;rm -rf /' }, 'detail.image'],
    ['command substitution', { image: 'app$(reboot)' }, 'detail.image'],
    ['path traversal', { image: 'repo/../../etc/passwd' }, 'detail.image'],
    ['a count above 1000', { image: 'ami-0abc', count: 1001 }, 'detail.count'],
    ['a malformed AZ', { image: 'ami-0abc', availabilityZone: 'us-east-1a; ls' }, 'detail.availabilityZone'],
    ['an unknown field', { image: 'ami-0abc', imgae: 'typo' }, 'detail'],
  ])('rejects %s, naming the field, without touching the store', async (_name, detail, field) => {
    const { registry, store } = setup();
    const outcome = await registry.dispatch(operatorEvent(detail));
    expect(outcome).toMatchObject({ status: 'rejected', error: { code: 'ValidationError', field } });
    expect(await store.topK(GLOBAL_SCOPE, 10, now)).toEqual([]);
  });

  it('counts at most imageLaunchedPerCallerPerHour launches per caller and hour (H4)', async () => {
    const { registry, store } = setup({}, 5);
    const first = await registry.dispatch(operatorEvent({ image: 'ami-0abc', count: 4 }, 'q1'));
    const over = await registry.dispatch(operatorEvent({ image: 'ami-0abc', count: 2 }, 'q2'));
    const fits = await registry.dispatch(operatorEvent({ image: 'ami-0abc', count: 1 }, 'q3'));

    expect(first).toMatchObject({ result: { ok: true, recorded: true } });
    expect(over).toMatchObject({ result: { ok: false, error: { code: 'QuotaExceeded' } } });
    expect(fits).toMatchObject({ result: { ok: true, recorded: true } });
    expect(await store.launches(GLOBAL_SCOPE, 'ami-0abc', now)).toBe(5);
  });

  it('nudges the cache planner when an image enters the top K, once per interval', async () => {
    const { registry, published } = setup();
    await registry.dispatch(operatorEvent({ image: 'ami-0abc' }, 'e1'));
    await registry.dispatch(operatorEvent({ image: 'ami-0abc' }, 'e2'));
    const changed = published.filter((fact) => fact.detailType === 'Popularity Changed');
    expect(changed.map((fact) => fact.detail.scope)).toEqual([{ kind: 'global' }]);
    expect(changed[0]?.detail).toMatchObject({ image: 'ami-0abc', rank: 1, reasons: ['entered-top-k'] });
  });

  it('judges a newcomer by its fresh score against the ranking read a moment before', async () => {
    const { registry, published } = setup();
    for (const [index, image] of ['ami-1', 'ami-2', 'ami-3', 'ami-4'].entries())
      await registry.dispatch(operatorEvent({ image, count: 4 - index }, `e${index}`));
    await registry.dispatch(operatorEvent({ image: 'ami-5', count: 9 }, 'e5'));
    const entered = published
      .filter((fact) => fact.detailType === 'Popularity Changed')
      .map((fact) => [fact.detail.image, fact.detail.rank]);
    // ami-4 (1 launch) ranks 4th among the three before it: out of the top 3. ami-5 (9) ranks 1st
    // although the ranking, read when ami-1 first launched, does not hold it.
    expect(entered).toEqual([
      ['ami-1', 1],
      ['ami-2', 2],
      ['ami-3', 3],
      ['ami-5', 1],
    ]);
  });
});

describe('EC2 running', () => {
  const ec2Event = (instanceId: string, state = 'running', id = 'ec2-event-1') => ({
    version: '0',
    id,
    'detail-type': 'EC2 Instance State-change Notification',
    source: 'aws.ec2',
    account: '123456789012',
    time: sample.time,
    region: 'us-east-1',
    resources: [`arn:aws:ec2:us-east-1:123456789012:instance/${instanceId}`],
    detail: { 'instance-id': instanceId, state },
  });

  it('resolves the image, AZ and host group of the instance', async () => {
    const { registry, store } = setup({
      'i-0123456789abcdef0': {
        instanceId: 'i-0123456789abcdef0',
        imageId: 'ami-0fedcba9876543210',
        availabilityZone: 'us-east-1b',
        hostGroup: 'web',
      },
    });
    const outcome = await registry.dispatch(ec2Event('i-0123456789abcdef0'));
    expect(outcome).toMatchObject({
      result: { ok: true, recorded: true, images: ['ami-0fedcba9876543210'] },
    });
    expect(await store.launches({ kind: 'hostGroup', hostGroup: 'web' }, 'ami-0fedcba9876543210', now)).toBe(
      1,
    );
  });

  it('records nothing for an instance EC2 does not know: a logged no-op, not an error to retry', async () => {
    const { registry, store } = setup();
    const outcome = await registry.dispatch(ec2Event('i-0123456789abcdef0'));
    expect(outcome).toMatchObject({
      status: 'handled',
      result: { ok: true, recorded: false, ignored: 'instance i-0123456789abcdef0 unknown to EC2' },
    });
    expect(await store.topK(GLOBAL_SCOPE, 10, now)).toEqual([]);
  });

  it('ignores other states without calling EC2', async () => {
    const { registry, lookups } = setup();
    const outcome = await registry.dispatch(ec2Event('i-0123456789abcdef0', 'stopped'));
    expect(outcome).toMatchObject({ result: { ok: true, recorded: false, ignored: 'state stopped' } });
    expect(lookups).toEqual([]);
  });

  it('describes the running instances of a queue batch together, leaving out other states and malformed ids', async () => {
    const { registry, prefetches } = setup();
    await registry.prepare([
      ec2Event('i-0123456789abcdef0', 'running', 'e1'),
      ec2Event('i-0123456789abcdef1', 'stopped', 'e2'),
      ec2Event('i-$(reboot)', 'running', 'e3'),
      ec2Event('i-0123456789abcdef2', 'running', 'e4'),
    ]);
    expect(prefetches).toEqual([['i-0123456789abcdef0', 'i-0123456789abcdef2']]);
  });

  it('rejects a malformed instance id without calling EC2', async () => {
    const { registry, lookups } = setup();
    const outcome = await registry.dispatch(ec2Event('i-$(reboot)'));
    expect(outcome).toMatchObject({ status: 'rejected', error: { field: 'detail.instance-id' } });
    expect(lookups).toEqual([]);
  });
});

describe('ECS task running', () => {
  const [awsContainer] = awsTaskEvent.detail.containers;
  const awsImage = '111122223333.dkr.ecr.us-west-2.amazonaws.com/hello-repository:latest';
  const zone = { kind: 'az', az: 'us-west-2c' } as const;
  const taskAt = Date.parse(awsTaskEvent.time);
  /** AWS's sample as delivered again with a new event id, its containers optionally replaced. */
  const task = (id: string, containers = awsTaskEvent.detail.containers) => ({
    ...awsTaskEvent,
    id,
    detail: { ...awsTaskEvent.detail, containers },
  });
  const sidecar = (name: string, image: string) => ({ ...awsContainer, name, image });

  it("counts the image of AWS's sample task in its AZ; the task reported RUNNING twice counts once", async () => {
    const { registry, store } = setup();
    const first = await registry.dispatch(task(awsTaskEvent.id));
    expect(first).toMatchObject({
      status: 'handled',
      result: { ok: true, recorded: true, images: [awsImage] },
    });
    const second = await registry.dispatch(task('ecs-redelivered-with-new-id'));
    expect(second).toMatchObject({ status: 'handled', result: { ok: true, recorded: false } });
    expect(await store.launches(zone, awsImage, taskAt)).toBe(1);
  });

  it('counts each container image of a task once', async () => {
    const { registry, store } = setup();
    const otel = 'public.ecr.aws/aws-observability/aws-otel-collector:latest';
    const containers = [awsContainer as Record<string, unknown>, sidecar('otel', otel)];
    await registry.dispatch(task('ecs-1', containers));
    await registry.dispatch(task('ecs-2', containers));
    expect(await store.launches(zone, awsImage, taskAt)).toBe(1);
    expect(await store.launches(zone, otel, taskAt)).toBe(1);
  });

  it('skips a container with an invalid image, naming it, and counts the others', async () => {
    const { registry, store } = setup();
    const outcome = await registry.dispatch(
      task('ecs-1', [awsContainer as Record<string, unknown>, sidecar('evil', 'nginx`reboot`')]),
    );
    expect(outcome).toMatchObject({
      result: { ok: true, recorded: true, images: [awsImage], skipped: [{ container: 'evil' }] },
    });
    expect(await store.launches(GLOBAL_SCOPE, awsImage, taskAt)).toBe(1);
  });

  it('ignores a task that is not RUNNING', async () => {
    const { registry, store } = setup();
    const outcome = await registry.dispatch({
      ...awsTaskEvent,
      detail: { ...awsTaskEvent.detail, lastStatus: 'PROVISIONING' },
    });
    expect(outcome).toMatchObject({
      result: { ok: true, recorded: false, ignored: 'lastStatus PROVISIONING' },
    });
    expect(await store.topK(GLOBAL_SCOPE, 10, taskAt)).toEqual([]);
  });
});
