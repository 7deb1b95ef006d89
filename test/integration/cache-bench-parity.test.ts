import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { describe, expect, it } from 'vitest';
import { type FleetConfig, type Launch, simulate } from '../../bench/cache-sim';
import { type AdviceCall, BENCH_HOST_GROUP, warmbootPolicy } from '../../bench/cache-warmboot';
import type { HostInfo, VolumeLinks } from '../../functions/image-cache/adapters/ec2';
import { MemoryImageCacheStore } from '../../functions/image-cache/adapters/memory-store';
import type { CacheCommands } from '../../functions/image-cache/adapters/ssm';
import { ImageCacheService } from '../../functions/image-cache/application/image-cache';
import { hostGroupSchema } from '../../functions/image-cache/config';
import { DOCUMENT_NAMES } from '../../functions/image-cache/documents';
import type { CachePlan, PlanInput } from '../../functions/image-cache/domain/planner';
import { MemoryRecentAdviceStore } from '../../functions/placement/adapters/recent-advice';
import { createPlacementRegistry } from '../../functions/placement/handler';
import { loadTrace } from '../../local/trace';

/**
 * The benchmark's `warmboot` policy drives the pure planner directly; the Lambda path reaches it
 * through ImageCacheService (state from the store, sizes from registered images, popularity from
 * the reader, commands applied through the image handler). This test replays the decisions the
 * bench made on a slice of the Alibaba trace through the service and requires the same SSM
 * commands. Deterministic: the bench's own seeded draws are replayed, and time is the plan's `now`.
 */

const GiB = 1024 ** 3;
const SLICE = 1_500;
const CONFIG: FleetConfig = {
  hosts: 4,
  azs: 2,
  cacheBytes: GiB / 2,
  bandwidthBytesPerS: 125e6,
  slots: 4,
  holdS: 300,
  outage: { startS: Number.MAX_SAFE_INTEGER - 1, endS: Number.MAX_SAFE_INTEGER },
};

interface Captured {
  readonly input: Omit<PlanInput, 'random'>;
  readonly draws: readonly number[];
  readonly plan: CachePlan;
}

/** One run of the bench on the slice: every plan with commands, every placement request. */
const benchRun = async (): Promise<{
  plans: Captured[];
  advice: AdviceCall[];
  sizes: Record<string, number>;
}> => {
  const trace = loadTrace();
  const launches: Launch[] = trace.requests.slice(0, SLICE).map((request, index) => ({
    index,
    timeS: request.timeS,
    image: request.image,
    sizeBytes: request.sizeBytes,
  }));
  const sizes = Object.fromEntries(launches.map((launch) => [launch.image, launch.sizeBytes]));
  const captured: Captured[] = [];
  const advice: AdviceCall[] = [];
  const policy = warmbootPolicy({
    cacheBytes: CONFIG.cacheBytes,
    originS: trace.originS,
    imageSizes: sizes,
    reconcileS: 300,
    seed: 1,
    onPlan: (input, draws, plan) => {
      if (plan.commands.length > 0) captured.push({ input, draws: [...draws], plan });
    },
    onAdvice: (call) => advice.push(call),
  });
  await simulate(
    policy,
    launches,
    CONFIG,
    launches.map(() => 20),
  );
  return { plans: captured, advice, sizes };
};
const benchCaptures = benchRun();

type Decision = { action: 'fetch' | 'evict'; imageId: string; instanceIds: string[] };
const normalized = (decisions: Decision[]) =>
  decisions
    .map((decision) => ({ ...decision, instanceIds: [...decision.instanceIds].sort() }))
    .sort((a, b) => `${a.action}${a.imageId}`.localeCompare(`${b.action}${b.imageId}`));

/** The same state, through the service the imageCache Lambda runs; returns the commands it sent. */
const lambdaPath = async ({
  input,
  draws,
}: Captured): Promise<{ sent: Decision[]; plan: CachePlan['deferred'] }> => {
  const group = hostGroupSchema.parse({
    name: BENCH_HOST_GROUP,
    cacheBytes: input.group.cacheBytes,
    cacheDirectory: '/var/cache/warmboot',
    allowedRegistries: ['registry.example.com'],
  });
  const store = new MemoryImageCacheStore();
  const imageIds = new Set([
    ...input.scores.map((score) => score.imageId),
    ...input.hosts.flatMap((host) => host.entries.map((entry) => entry.imageId)),
    ...(input.requested ?? []).map((request) => request.imageId),
  ]);
  for (const id of imageIds) {
    const sizeBytes = input.imageSizes[id];
    if (sizeBytes === undefined) continue;
    await store.putImage(
      {
        id,
        kind: 'container',
        source: `registry.example.com/bench/${id.toLowerCase()}`,
        digest: `sha256:${'0'.repeat(64)}`,
        sizeBytes,
      },
      { at: 0, via: 'direct-invoke' },
      'absent',
    );
  }
  for (const host of input.hosts) {
    await store.putHost(
      group.name,
      {
        instanceId: host.instanceId,
        availabilityZone: host.availabilityZone,
        status: 'running',
        joinedAt: 0,
        inventoriedAt: 0,
      },
      'absent',
    );
    for (const entry of host.entries)
      await store.writeEntry(group.name, host.instanceId, entry.imageId, entry, 'absent');
  }
  if (input.source.consecutiveFailures > 0) await store.writeSource(group.name, input.source, 'absent');

  const sent: Decision[] = [];
  let sequence = 0;
  const commands: CacheCommands = {
    async send(document, instanceIds, parameters) {
      if (document === DOCUMENT_NAMES.fetch || document === DOCUMENT_NAMES.remove)
        sent.push({
          action: document === DOCUMENT_NAMES.fetch ? 'fetch' : 'evict',
          imageId: parameters.ImageId ?? '',
          instanceIds: [...instanceIds],
        });
      sequence += 1;
      return `cmd-${sequence}`;
    },
    invocation: async () => ({ status: 'InProgress' }),
    invocations: async () => [],
    agentsOnline: async (instanceIds) => new Set(instanceIds),
  };
  const hostInfo: HostInfo[] = input.hosts.map((host) => ({
    instanceId: host.instanceId,
    hostGroup: group.name,
    availabilityZone: host.availabilityZone,
    state: 'running',
    devices: [],
    managed: true,
  }));
  const replay = [...draws];
  const service = new ImageCacheService({
    groups: [group],
    region: 'us-east-1',
    account: '123456789012',
    store,
    hosts: {
      groupHosts: async () => hostInfo,
      host: async (instanceId) => hostInfo.find((host) => host.instanceId === instanceId),
      tagHost: async () => undefined,
    },
    commands,
    volumes: {} as VolumeLinks,
    popularity: { topImages: async () => [...input.scores] },
    facts: { publish: async () => undefined },
    clock: { now: () => input.now, sleep: async () => undefined },
    random: () => {
      const draw = replay.shift();
      if (draw === undefined) throw new Error('the Lambda path drew more random numbers than the bench');
      return draw;
    },
    logger: new Logger({ serviceName: 'parity', logLevel: 'SILENT' }),
    metrics: new Metrics({ namespace: 'Test', serviceName: 'parity' }),
  });
  const summary = await service.plan(group.name, input.requested ?? []);
  return { sent, plan: summary.deferred };
};

describe('cache benchmark parity', () => {
  it('the Lambda path sends exactly the commands the bench applied, plan after plan', async () => {
    const captured = (await benchCaptures).plans;
    const withDemand = captured.filter((item) => (item.input.requested ?? []).length > 0);
    const withEvictions = captured.filter((item) => item.plan.commands.some((c) => c.action === 'evict'));
    // The slice exercises every kind of decision: prefetches, demand admissions, evictions.
    expect(captured.length).toBeGreaterThan(20);
    expect(withDemand.length).toBeGreaterThan(0);
    expect(withEvictions.length).toBeGreaterThan(0);

    for (const item of captured) {
      const { sent, plan } = await lambdaPath(item);
      const expected = item.plan.commands.map((command) => ({
        action: command.action,
        imageId: command.imageId,
        instanceIds: [...command.instanceIds],
      }));
      expect(normalized(sent)).toEqual(normalized(expected));
      expect(plan).toEqual(item.plan.deferred);
    }
  });

  it('the placement function, over a real store, gives the advice the bench got, request after request', async () => {
    const { advice: calls, sizes } = await benchCaptures;
    // The slice exercises warm advice, cold advice that warms a host, and a host chosen over
    // others because placement advised it less recently (its own memory, not a bench input).
    expect(calls.length).toBe(SLICE);
    expect(calls.some((call) => call.advice.placements[0]?.warm)).toBe(true);
    expect(calls.some((call) => call.advice.warmHosts.length > 0)).toBe(true);
    expect(calls.some((call) => call.recentAdvice.length > 0)).toBe(true);
    const warmChoices = calls.flatMap((call) => call.advice.placements.filter((p) => p.warm));
    expect(new Set(warmChoices.map((chosen) => chosen.instanceId)).size).toBe(CONFIG.hosts);

    for (const call of calls.filter((_, index) => index % 5 === 0)) {
      const store = new MemoryImageCacheStore();
      for (const host of call.state.hosts) {
        const { version: _version, ...record } = host;
        await store.putHost(BENCH_HOST_GROUP, record, 'absent');
      }
      for (const { instanceId, version: _version, ...entry } of call.state.entries)
        await store.writeEntry(BENCH_HOST_GROUP, instanceId, entry.imageId, entry, 'absent');
      const sizeBytes = sizes[call.event.detail.imageId];
      if (sizeBytes !== undefined)
        await store.putImage(
          {
            id: call.event.detail.imageId,
            kind: 'container',
            source: `registry.example.com/bench/${call.event.detail.imageId.toLowerCase()}`,
            digest: `sha256:${'0'.repeat(64)}`,
            sizeBytes,
          },
          { at: 0, via: 'direct-invoke' },
          'absent',
        );
      const now = Date.parse(call.event.time);
      const recentAdvice = new MemoryRecentAdviceStore();
      await recentAdvice.add(
        BENCH_HOST_GROUP,
        call.recentAdvice.map((weight) => ({ ...weight, expiresAt: now + 86_400_000 })),
      );
      const registry = createPlacementRegistry({
        groups: [
          hostGroupSchema.parse({
            name: BENCH_HOST_GROUP,
            cacheBytes: CONFIG.cacheBytes,
            cacheDirectory: '/var/cache/warmboot',
          }),
        ],
        store,
        recentAdvice,
        facts: { publish: async () => undefined },
        clock: { now: () => now, sleep: async () => undefined },
      });

      const answer = await registry.dispatch(call.event);

      expect(answer.status).toBe('handled');
      expect(answer.status === 'handled' && answer.result).toEqual(call.advice);
    }
  });
});
