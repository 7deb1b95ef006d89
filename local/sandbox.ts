/**
 * `npm run sandbox`: the whole of warmboot on a simulated fleet, with no AWS account.
 *
 * DynamoDB Local holds the stack's tables; the EC2/SSM simulator plays the fleet on a virtual
 * clock with measured latencies and EC2's token buckets; every function of the catalog is
 * deployed in each stage and receives the events its EventBridge rules would deliver. Three
 * stories run, each on a fresh cloud:
 *   1. images   — the Alibaba GenAI trace drives popularity, fast snapshot restore for the
 *                 hottest AMIs, warm images on a GPU host group and placement onto warm hosts;
 *   2. pools    — a Linux and a Windows-like prestarted pool serve requests from the trace;
 *   3. shelving — 50 instances (some on a Dedicated Host) are shelved, offloaded and unshelved.
 * It prints a summary and writes `.sandbox/report.html` (charts) and `.sandbox/summary.json`.
 * Exit code 1 when an invariant was broken (a retained volume lost, a request left unanswered, a
 * destructive call on what another capability or nothing manages: local/provenance.ts).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { FUNCTIONS, type FunctionId, WARMBOOT, WARMBOOT_FACT } from '../functions/catalog';
import { decayedValue, decayParameters, eraOf, launchWeight } from '../functions/popularity/domain/decay';
import { IMAGE_LAUNCHED } from '../functions/popularity/schemas';
import { LocalCloud } from './cloud';
import { startDynamoDbLocal } from './dynamodb-local';
import { describeViolation } from './invariants';
import { VirtualProgress } from './progress';
import { callProvenance, callViolations } from './provenance';
import { type Chart, type ReportTable, renderReport } from './report';
import { runImageCacheScenario } from './scenarios/image-cache';
import { poolsSettings, runPoolsScenario } from './scenarios/pools';
import { runPopularityScenario } from './scenarios/popularity';
import { runShelvingScenario, SHELVING_SCENARIO_BUDGET } from './scenarios/shelving';
import { DEFAULT_TRACE_FILE, dataDir, loadImageSizes, loadTrace, sampledSize } from './trace';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const OUTPUT_DIR = resolve(process.cwd(), '.sandbox');
const HALF_LIFE_HOURS = 6;

const HOST_GROUP = {
  name: 'gpu-serving',
  cacheBytes: 2 * 1024 ** 3,
  cacheDirectory: '/var/cache/warmboot',
  handler: 'download',
  warmConcurrency: 4,
  publishWarmList: 'tag',
  // The sandbox's images live in this (example) registry; only listed registries are pulled from.
  allowedRegistries: ['registry.example.com'] as string[],
} as const;

/** Every function, with every capability's settings: the stack as `cdk deploy` would create it. */
const wholeStack = (): { functions: FunctionId[]; settings: Record<string, string> } => ({
  functions: Object.keys(FUNCTIONS) as FunctionId[],
  settings: {
    HOST_GROUPS: JSON.stringify([HOST_GROUP]),
    POPULARITY_SETTINGS: JSON.stringify({ halfLifeHours: HALF_LIFE_HOURS, scoreThreshold: 3 }),
    FAST_RESTORE_SETTINGS: JSON.stringify({ maxPairs: 4, maxUsdPerHour: 3, cooldownMinutes: 60 }),
    ...poolsSettings(),
    ...SHELVING_SCENARIO_BUDGET,
  },
});

interface Observed {
  readonly atMs: number;
  readonly detailType: string;
  readonly detail: Record<string, unknown>;
}

/** Records the facts and requests that cross the bus, for the report. */
const observe = (
  cloud: LocalCloud,
  detailTypes: readonly string[],
): { events: Observed[]; stop: () => void } => {
  const events: Observed[] = [];
  const wanted = new Set(detailTypes);
  const stop = cloud.bus.onEvent((event) => {
    if ((event.source === WARMBOOT || event.source === WARMBOOT_FACT) && wanted.has(event['detail-type'])) {
      events.push({ atMs: cloud.clock.now(), detailType: event['detail-type'], detail: event.detail });
    }
  });
  return { events, stop };
};

const round = (value: number, digits = 3): number => Math.round(value * 10 ** digits) / 10 ** digits;

/** Decayed score of each image over time, computed with the popularity function's own decay. */
const popularitySeries = (
  launches: readonly { atMs: number; image: string }[],
  images: readonly string[],
  fromMs: number,
  toMs: number,
): { name: string; points: [number, number][] }[] => {
  const decay = decayParameters(HALF_LIFE_HOURS);
  return images.map((image) => {
    const mine = launches.filter((launch) => launch.image === image);
    const points: [number, number][] = [];
    for (let at = fromMs; at <= toMs; at += 15 * MINUTE) {
      const score = mine
        .filter((launch) => launch.atMs <= at)
        .reduce(
          (sum, launch) =>
            sum + decayedValue(launchWeight(launch.atMs, decay), eraOf(launch.atMs, decay), at, decay),
          0,
        );
      points.push([round((at - fromMs) / HOUR, 2), round(score)]);
    }
    return { name: image, points };
  });
};

/** The trace's first week is sparse; from day 6 on it carries a weekday's load (~170 requests/h). */
const BUSY_FROM_S = 6 * 86_400;
const POPULARITY_REQUESTS = 600;
const PLACEMENT_REQUESTS = 400;

/** A stage on a fresh local cloud with every function deployed, and what its DLQs and call journal say. */
const onFreshCloud = async <T extends object>(
  endpoint: string,
  seed: number,
  stage: (cloud: LocalCloud) => Promise<T>,
): Promise<T & { errors: Record<string, number>; violations: string[] }> => {
  const cloud = await LocalCloud.start({ dynamodbEndpoint: endpoint, seed, ...wholeStack() });
  try {
    const result = await stage(cloud);
    return { ...result, errors: deadLetters(cloud), violations: callChecks(cloud) };
  } finally {
    await cloud.stop();
  }
};

const imagesStage = (endpoint: string, progress: VirtualProgress) =>
  onFreshCloud(endpoint, 11, async (cloud) => {
    const trace = loadTrace(resolve(dataDir(), DEFAULT_TRACE_FILE));
    const busyFrom = Math.max(
      0,
      trace.requests.findIndex((request) => request.timeS >= BUSY_FROM_S),
    );
    const popularityRun = progress.stage('1/3 popularity + fast restore', cloud.clock, 4.5 * HOUR);
    const popularity = await runPopularityScenario(cloud, { requests: POPULARITY_REQUESTS, from: busyFrom });
    popularityRun.done(
      `${popularity.requests} launches over ${popularity.virtualHours} h; ${popularity.fastRestoreDecisions.length} fast-restore changes`,
    );

    // The host group serves the trace's base models as container images; launches of the next
    // slice are scheduled at their trace times, each asking placement where to run.
    const placementFrom = busyFrom + POPULARITY_REQUESTS;
    const slice = trace.requests.slice(placementFrom, placementFrom + PLACEMENT_REQUESTS);
    const sizes = loadImageSizes();
    const counts = new Map<string, number>();
    for (const request of slice) counts.set(request.image, (counts.get(request.image) ?? 0) + 1);
    const models = [...counts.entries()].sort((a, b) => b[1] - a[1]).map(([model]) => model);
    const refOf = (model: string): string => `registry.example.com/genai/${model.toLowerCase()}:v1`;
    const images = models.map((model) => ({
      id: refOf(model),
      kind: 'container' as const,
      source: refOf(model),
      digest: `sha256:${Buffer.from(model.padEnd(32, '0')).toString('hex').slice(0, 64).padEnd(64, '0')}`,
      sizeBytes: sampledSize(model, sizes),
    }));
    const zones = cloud.ec2.availabilityZones.slice(0, 2);
    const startedAt = cloud.clock.now();
    const firstS = slice[0]?.timeS ?? 0;
    const durationMs = ((slice.at(-1)?.timeS ?? firstS) - firstS) * 1000 + 30 * MINUTE;
    slice.forEach((request, index) => {
      const at = startedAt + 10 * MINUTE + (request.timeS - firstS) * 1000;
      const image = refOf(request.image);
      const availabilityZone = zones[index % zones.length] as string;
      // The clock holds still while each PutEvents is authorized, so both land at `at`.
      cloud.clock.at(at, () => {
        void cloud.putEvent({
          source: WARMBOOT,
          detailType: IMAGE_LAUNCHED,
          detail: { image, hostGroup: HOST_GROUP.name, availabilityZone },
        });
        void cloud.putEvent({
          source: WARMBOOT,
          detailType: 'Advise Placement',
          detail: { imageId: image, count: 1, hostGroup: HOST_GROUP.name },
        });
      });
    });
    const watched = observe(cloud, [IMAGE_LAUNCHED, 'Placement Advised']);
    const cacheRun = progress.stage('1/3 warm images + placement', cloud.clock, durationMs + 10 * MINUTE);
    const cache = await runImageCacheScenario(cloud, {
      hostGroup: HOST_GROUP,
      images,
      pins: models.slice(0, 1).map(refOf),
      durationMs: durationMs + 10 * MINUTE,
    });
    watched.stop();
    const advice = watched.events.filter((event) => event.detailType === 'Placement Advised');
    const warmAdvice = advice.filter((event) => {
      const detail = event.detail as { placements?: unknown[]; warmHosts?: unknown[] };
      return (detail.placements?.length ?? 0) > 0 && (detail.warmHosts?.length ?? 0) === 0;
    });
    const launchWarmRatio = advice.length === 0 ? 0 : warmAdvice.length / advice.length;
    cacheRun.done(
      `${advice.length} placements, ${round(launchWarmRatio * 100, 1)}% on warm hosts; ${cache.fetchCommands} fetches, ${cache.evictCommands} evictions`,
    );

    const launches = watched.events
      .filter((event) => event.detailType === IMAGE_LAUNCHED)
      .map((event) => ({ atMs: event.atMs, image: String(event.detail.image) }));
    const windowWarm: [number, number][] = [];
    for (let at = startedAt + 40 * MINUTE; at <= cloud.clock.now(); at += 15 * MINUTE) {
      const inWindow = advice.filter((event) => event.atMs > at - 30 * MINUTE && event.atMs <= at);
      const warm = inWindow.filter((event) => warmAdvice.includes(event)).length;
      if (inWindow.length > 0)
        windowWarm.push([round((at - startedAt) / HOUR, 2), round(warm / inWindow.length)]);
    }
    return {
      popularity,
      cache,
      launchWarmRatio,
      placements: advice.length,
      charts: [
        {
          kind: 'line',
          id: 'popularity',
          title: `Decayed popularity of the five most launched images (half-life ${HALF_LIFE_HOURS} h)`,
          xLabel: 'virtual hours',
          yLabel: 'score',
          series: popularitySeries(launches, models.slice(0, 5).map(refOf), startedAt, cloud.clock.now()).map(
            (series, index) => ({ ...series, name: models[index] ?? series.name }),
          ),
        },
        {
          kind: 'line',
          id: 'warm-ratio',
          title: 'Warm ratio: launches placed on a warm host (30 min window) and cache plan convergence',
          xLabel: 'virtual hours',
          yLabel: 'ratio',
          series: [
            { name: 'placed warm', points: windowWarm },
            {
              name: 'cache converged',
              points: cache.samples.map((sample) => [round(sample.atMs / HOUR, 2), round(sample.warmRatio)]),
            },
          ],
        },
      ] satisfies Chart[],
    };
  });

const poolsStage = (endpoint: string, progress: VirtualProgress) =>
  onFreshCloud(endpoint, 12, async (cloud) => {
    const run = progress.stage('2/3 prestarted pools', cloud.clock, 2.5 * HOUR);
    const pools = await runPoolsScenario(cloud, { requests: 100 });
    run.done(
      `${pools.requests} requests: ${pools.served.hot} hot, ${pools.served.warm} warm, ${pools.served.cold} cold, ${pools.failed} failed; hit ratio ${round(pools.hitRatio, 3)}`,
    );
    const poolNames = [...new Set(pools.levels.map((level) => level.pool))];
    return {
      pools,
      charts: [
        {
          kind: 'line',
          id: 'pool-levels',
          title: 'Ready members per pool',
          xLabel: 'virtual minutes',
          yLabel: 'members',
          series: poolNames.map((pool) => ({
            name: pool,
            points: pools.levels
              .filter((level) => level.pool === pool)
              .map((level) => [level.atMinutes, level.ready] as [number, number]),
          })),
        },
        {
          kind: 'histogram',
          id: 'pool-ready',
          title: 'Time to ready of requested servers, per path',
          xLabel: 'seconds (log scale)',
          bins: 24,
          logScale: true,
          series: (['hot', 'warm', 'cold'] as const).map((path) => ({
            name: path,
            values: pools.timeToReadySeconds[path],
          })),
        },
      ] satisfies Chart[],
    };
  });

const shelvingStage = (endpoint: string, progress: VirtualProgress) =>
  onFreshCloud(endpoint, 13, async (cloud) => {
    const watched = observe(cloud, ['Instance Unshelved']);
    const run = progress.stage('3/3 shelve, offload, unshelve', cloud.clock, 3 * HOUR);
    const shelving = await runShelvingScenario(cloud, { count: 50, onHost: 10 });
    watched.stop();
    const unshelved = watched.events.map((event) => ({
      path: String(event.detail.path),
      seconds: Number(event.detail.timeToReadySeconds),
    }));
    run.done(
      `${shelving.shelved} shelved, ${shelving.offloaded} offloaded, ${shelving.unshelved} unshelved (${shelving.sameHost} back on their Dedicated Host); retained volumes lost: ${shelving.retainedVolumesLost}`,
    );
    const paths = [...new Set(unshelved.map((item) => item.path))];
    return {
      shelving,
      charts: [
        {
          kind: 'line',
          id: 'unshelve-timeline',
          title: 'Unshelve of the whole tenant: instances ready over time',
          xLabel: 'virtual seconds since the request',
          yLabel: 'instances ready',
          series: paths.map((path) => ({
            name: path,
            points: unshelved
              .filter((item) => item.path === path)
              .sort((a, b) => a.seconds - b.seconds)
              .map((item, index) => [round(item.seconds, 1), index + 1] as [number, number]),
          })),
        },
        {
          kind: 'histogram',
          id: 'unshelve-ready',
          title: 'Time to ready of unshelved instances, per path',
          xLabel: 'seconds',
          series: paths.map((path) => ({
            name: path,
            values: unshelved.filter((item) => item.path === path).map((item) => item.seconds),
          })),
        },
      ] satisfies Chart[],
    };
  });

/**
 * The invariants judged call by call on the stage's call journal, with every function deployed:
 * no capability touched what another (or nothing) manages, no instance a shelve record runs as was
 * terminated, no safety snapshot deleted before its record's confirmed deletion.
 */
const callChecks = (cloud: LocalCloud): string[] =>
  callViolations(callProvenance(cloud)).map(describeViolation);

/** Events that exhausted their retries, per function: in AWS they would sit in the DLQ. */
const deadLetters = (cloud: LocalCloud): Record<string, number> =>
  Object.fromEntries(
    (Object.keys(FUNCTIONS) as FunctionId[])
      .map((id) => [id, cloud.bus.deadLetters(id).length] as const)
      .filter(([, count]) => count > 0),
  );

const printTable = (table: ReportTable): void => {
  console.log(`\n${table.title}`);
  const widths = table.columns.map((column, index) =>
    Math.max(column.length, ...table.rows.map((row) => String(row[index] ?? '').length)),
  );
  const line = (cells: readonly (string | number)[]) =>
    cells.map((cell, index) => String(cell).padStart(widths[index] ?? 0)).join('  ');
  console.log(line(table.columns));
  for (const row of table.rows) console.log(line(row));
};

async function main(): Promise<number> {
  const progress = new VirtualProgress();
  const dynamodb = await startDynamoDbLocal();
  try {
    const images = await imagesStage(dynamodb.endpoint, progress);
    const pools = await poolsStage(dynamodb.endpoint, progress);
    const shelving = await shelvingStage(dynamodb.endpoint, progress);

    const tables: ReportTable[] = [
      {
        title: 'Most popular images at the end of the replay (decayed score)',
        columns: ['model', 'score', 'launches'],
        rows: images.popularity.topImages
          .slice(0, 8)
          .map((image) => [image.model, image.score, image.launches]),
      },
      {
        title: 'Fast snapshot restore decisions',
        columns: ['virtual h', 'enabled', 'disabled', 'pairs', 'USD/h'],
        rows: images.popularity.fastRestoreDecisions.map((decision) => [
          decision.atHours,
          decision.enabled.join(' ') || '-',
          decision.disabled.join(' ') || '-',
          decision.pairs,
          decision.usdPerHour,
        ]),
      },
      {
        title: `Warm images on host group ${HOST_GROUP.name}`,
        columns: ['hosts', 'placements', 'placed warm', 'fetches', 'evictions', 'failed fetches'],
        rows: [
          [
            images.cache.hosts,
            images.placements,
            `${round(images.launchWarmRatio * 100, 1)}%`,
            images.cache.fetchCommands,
            images.cache.evictCommands,
            images.cache.failedFetches,
          ],
        ],
      },
      {
        title: 'Prestarted pools',
        columns: ['requests', 'hot', 'warm', 'cold', 'failed', 'hit ratio', 'p50 warm s', 'p50 hot s'],
        rows: [
          [
            pools.pools.requests,
            pools.pools.served.hot,
            pools.pools.served.warm,
            pools.pools.served.cold,
            pools.pools.failed,
            round(pools.pools.hitRatio),
            median(pools.pools.timeToReadySeconds.warm),
            median(pools.pools.timeToReadySeconds.hot),
          ],
        ],
      },
      {
        title: 'Shelve and unshelve (50 instances, 10 on a Dedicated Host)',
        columns: ['path', 'instances', 'mean s', 'max s'],
        rows: Object.entries(shelving.shelving.timeToReadySeconds).map(([path, stats]) => [
          path,
          stats.count,
          round(stats.mean, 1),
          round(stats.max, 1),
        ]),
      },
    ];
    for (const table of tables) printTable(table);

    const deadLettered = { ...images.errors, ...pools.errors, ...shelving.errors };
    mkdirSync(OUTPUT_DIR, { recursive: true });
    const reportFile = resolve(OUTPUT_DIR, 'report.html');
    writeFileSync(
      reportFile,
      renderReport({
        title: 'warmboot sandbox',
        subtitle:
          'The whole system on a simulated fleet: DynamoDB Local, the EC2/SSM simulator on virtual time, every function deployed behind its EventBridge rules. Trace: Alibaba cluster-trace-v2026-GenAI.',
        charts: [...images.charts, ...pools.charts, ...shelving.charts],
        tables,
      }),
    );
    writeFileSync(
      resolve(OUTPUT_DIR, 'summary.json'),
      `${JSON.stringify({ images: { ...images, charts: undefined }, pools: pools.pools, shelving: shelving.shelving, deadLettered }, null, 2)}\n`,
    );
    console.log(`\nReport: ${reportFile}`);

    const broken: string[] = [];
    if (shelving.shelving.retainedVolumesLost > 0)
      broken.push(`${shelving.shelving.retainedVolumesLost} retained volumes lost`);
    if (shelving.shelving.failed.length > 0)
      broken.push(`${shelving.shelving.failed.length} shelve records failed`);
    if (Object.keys(deadLettered).length > 0)
      broken.push(`dead-lettered events: ${JSON.stringify(deadLettered)}`);
    const callBroken = [...images.violations, ...pools.violations, ...shelving.violations];
    if (callBroken.length > 0)
      broken.push(`invariants broken by ${callBroken.length} calls:\n  ${callBroken.join('\n  ')}`);
    if (broken.length > 0) {
      console.error(`\nSandbox found problems: ${broken.join('; ')}`);
      return 1;
    }
    return 0;
  } finally {
    await dynamodb.stop();
  }
}

const median = (values: readonly number[]): number | string => {
  if (values.length === 0) return '-';
  const sorted = [...values].sort((a, b) => a - b);
  return round(sorted[Math.floor(sorted.length / 2)] ?? 0, 1);
};

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
