import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { FUNCTION_IDS, type FunctionId } from '../functions/catalog';
import { popularityStoreFor } from '../functions/popularity/adapters/dynamodb-popularity-store';
import { loadPopularityConfig } from '../functions/popularity/config';
import { LocalCloud } from '../local/cloud';
import { startDynamoDbLocal } from '../local/dynamodb-local';
import { loadHandlerFactory } from '../local/functions';
import { type BenchArgs, BenchUsageError, type FlagSpec, flagText, numberFlag } from './args';
import {
  newLaunchRecord,
  PopularityLagProbe,
  runLaunchSystem,
  startOtherClient,
  watchRunning,
} from './firehose-load';
import {
  accountClient,
  type CallCounts,
  copyCounts,
  meteredHandlers,
  since,
  sumCounts,
  throttleColumns,
  totals,
} from './firehose-meters';
import { aimNotes, plannerRows } from './firehose-report';
import { type BenchResult, type Metrics, percentile, type Scenario } from './report';

/**
 * `npm run bench -- firehose` (issue 17 item 4; docs/benchmark-definitions.md, firehose).
 *
 * For each launch rate, a fresh local cloud with every function of the catalog deployed as the
 * sandbox deploys them (the catalog's rules and schedules, the real handlers, IAM on every call):
 * the account's launch system launches `rate` instances a second through the EC2 API for the
 * duration, while an autoscaler-like other client of the account calls DescribeInstances and
 * RunInstances at a steady rate. Every count comes from meters the bench puts on the SDK clients
 * (bench/firehose-meters.ts) and from the local bus's invocation statistics.
 */

const FLAGS = {
  rates: { name: 'rates', description: 'launches per second, comma-separated', default: '10,100,1000' },
  minutes: { name: 'minutes', description: 'virtual minutes of launching per rate', default: '10' },
  seconds: {
    name: 'seconds',
    description:
      "virtual seconds of launching per rate, replacing --minutes (a quick run); 'none': use --minutes",
    default: 'none',
  },
  drain: {
    name: 'drain-s',
    description:
      'virtual seconds measured after the last launch (the backlog drains, the clients keep calling)',
    default: '120',
  },
  lifetime: {
    name: 'lifetime-s',
    description: "each launched instance is terminated this many seconds after launch ('none': never)",
    default: '120',
  },
  images: { name: 'images', description: 'distinct AMIs launched (Zipf(1) popularity)', default: '20' },
  otherDescribes: {
    name: 'other-describes',
    description: "the other client's DescribeInstances per second (half the bucket's 20/s refill)",
    default: '10',
  },
  otherLaunches: {
    name: 'other-launches',
    description: "the other client's one-instance RunInstances per second",
    default: '0.2',
  },
  poll: { name: 'poll-s', description: 'popularity lag probe interval (virtual seconds)', default: '5' },
  seed: { name: 'seed', description: 'simulator and launch seed', default: '1' },
  plannerHosts: {
    name: 'planner-hosts',
    description: "host counts of the planner rows (bench/planner.ts), or 'none'",
    default: '1000,10000',
  },
  plannerImages: {
    name: 'planner-images',
    description: 'distinct-image counts of the planner rows',
    default: '2000,20000',
  },
} satisfies Record<string, FlagSpec>;

/** One host group, as the sandbox deploys the stack (local/sandbox.ts wholeStack). */
const SETTINGS: Record<string, string> = {
  HOST_GROUPS: JSON.stringify([
    {
      name: 'gpu-serving',
      cacheBytes: 2 * 1024 ** 3,
      cacheDirectory: '/var/cache/warmboot',
      handler: 'download',
      warmConcurrency: 4,
      publishWarmList: 'tag',
      allowedRegistries: ['registry.example.com'],
    },
  ]),
  POPULARITY_SETTINGS: JSON.stringify({ halfLifeHours: 6, scoreThreshold: 3 }),
  FAST_RESTORE_SETTINGS: JSON.stringify({ maxPairs: 4, maxUsdPerHour: 3, cooldownMinutes: 60 }),
};

interface FirehoseOptions {
  readonly rates: readonly number[];
  readonly durationMs: number;
  readonly drainMs: number;
  readonly lifetimeMs: number | undefined;
  readonly images: number;
  readonly otherDescribesPerSecond: number;
  readonly otherLaunchesPerSecond: number;
  readonly pollMs: number;
  readonly seed: number;
}

const round = (value: number, digits = 2): number => Math.round(value * 10 ** digits) / 10 ** digits;
const per1000 = (count: number, launches: number): number => round((count / Math.max(1, launches)) * 1000);

interface RateOutcome {
  readonly rows: Record<string, Metrics>;
  readonly notes: string[];
}

/** How often a long run reports its progress on stderr (wall time). */
const PROGRESS_EVERY_MS = 60_000;

const wallSeconds = (started: number): number => Math.round((performance.now() - started) / 1000);

/** One rate on a fresh cloud. */
const runRate = async (
  rate: number,
  options: FirehoseOptions,
  dynamodbEndpoint: string,
): Promise<RateOutcome> => {
  const started = performance.now();
  const functions = [...FUNCTION_IDS];
  const { handlers, meters } = await meteredHandlers(functions, loadHandlerFactory);
  const cloud = await LocalCloud.start({
    dynamodbEndpoint,
    seed: options.seed,
    latency: 'calibrated',
    functions,
    handlers,
    settings: SETTINGS,
  });
  try {
    const simulator = cloud.ec2;
    const subnetIds = simulator.availabilityZones.map((zone) =>
      simulator.addSubnet({ availabilityZone: zone }),
    );
    const images = Array.from({ length: options.images }, (_, index) =>
      simulator.registerImage({ name: `firehose-${index}`, rootSizeGiB: 8 }),
    );
    const otherImage = simulator.registerImage({ name: 'autoscaler', rootSizeGiB: 8 });
    // An account launching hundreds of instances a second has had its launch limits raised
    // (ec2-api-throttling, "Request a limit increase"); the DescribeInstances buckets keep the
    // published defaults, which is what the aims are about.
    const perSecond = rate + 10;
    simulator.raiseApiLimits('RunInstances', { capacity: 50, refillPerSecond: 20 });
    simulator.raiseApiLimits('RunInstances (instances)', {
      capacity: Math.max(1000, 2 * perSecond),
      refillPerSecond: perSecond,
    });
    simulator.raiseApiLimits('TerminateInstances (instances)', {
      capacity: Math.max(1000, 2 * perSecond),
      refillPerSecond: Math.max(20, perSecond),
    });
    const launchCounts: CallCounts = new Map();
    const otherCounts: CallCounts = new Map();
    const launcher = accountClient(cloud, 'launch-system', launchCounts);
    const other = accountClient(cloud, 'autoscaler', otherCounts);
    // The SDK reads its shared config files on a client's first call: real I/O the virtual clock
    // cannot see, so those first calls happen before the clock drives anything.
    await launcher.send(new DescribeInstancesCommand({ MaxResults: 5 }));
    await other.send(new DescribeInstancesCommand({ MaxResults: 5 }));
    const popularityRuntime = cloud.runtime('popularity');
    const probe = new PopularityLagProbe(
      cloud.clock,
      popularityStoreFor(popularityRuntime, loadPopularityConfig(popularityRuntime.env)),
      images,
    );
    cloud.startSchedules();
    const otherClient = await startOtherClient(cloud, other, {
      describesPerSecond: options.otherDescribesPerSecond,
      launchesPerSecond: options.otherLaunchesPerSecond,
      imageId: otherImage,
      subnetId: subnetIds[0] ?? '',
    });
    const running = watchRunning(cloud);

    // The measured window starts here.
    const warmbootCounts = () => sumCounts([...meters.values()].map((meter) => meter.ec2));
    const before = {
      warmboot: copyCounts(warmbootCounts()),
      other: copyCounts(otherCounts),
      launch: copyCounts(launchCounts),
      simulator: simulator.stats(),
      byFunction: new Map(
        [...meters].map(([id, meter]) => [id, { ec2: copyCounts(meter.ec2), writeUnits: meter.writeUnits }]),
      ),
      invocations: new Map(functions.map((id) => [id, cloud.bus.stats(id).invocations])),
    };
    const scheduled = new Map<FunctionId, number>();
    const stopInvocations = cloud.bus.onInvocation((record) => {
      if ((record.event as { 'detail-type'?: unknown })['detail-type'] === 'Scheduled Event')
        scheduled.set(record.functionId, (scheduled.get(record.functionId) ?? 0) + 1);
    });
    const t0 = cloud.clock.now();
    const launchRecord = newLaunchRecord();
    /** Each firehose image's running times, sorted: what the lag probe matches counts against. */
    const imageTimes = new Map<string, number[]>();
    const collectRunningTimes = () => {
      imageTimes.clear();
      for (const [id, image] of launchRecord.imageOf) {
        const at = running.runningAt.get(id);
        if (at === undefined) continue;
        const list = imageTimes.get(image) ?? [];
        list.push(at);
        imageTimes.set(image, list);
      }
      for (const list of imageTimes.values()) list.sort((a, b) => a - b);
    };
    let launchesDone = false;
    let describesAtLaunchEnd = 0;
    /** Each function's DescribeInstances attempts in the launch window. */
    const functionDescribesAtLaunchEnd = new Map<FunctionId, number>();
    /** Warmboot DescribeInstances attempts sampled every poll, for the busiest minute. */
    const describeSamples: { at: number; count: number }[] = [];
    let lastProgress = performance.now();
    const describesSoFar = () =>
      totals(since(before.warmboot, warmbootCounts()), 'DescribeInstances').attempts;
    await cloud.run(async () => {
      const poller = (async () => {
        for (;;) {
          await cloud.clock.sleep(options.pollMs);
          describeSamples.push({ at: cloud.clock.now(), count: describesSoFar() });
          collectRunningTimes();
          await probe.poll(imageTimes);
          if (performance.now() - lastProgress > PROGRESS_EVERY_MS) {
            lastProgress = performance.now();
            process.stderr.write(
              `firehose: ${rate}/s: ${round((cloud.clock.now() - t0) / 1000, 0)} s virtual, ${launchRecord.imageOf.size} launched, ${probe.lags.length} reflected, ${wallSeconds(started)} s wall\n`,
            );
          }
          if (launchesDone && cloud.clock.now() >= t0 + options.durationMs + options.drainMs) return;
        }
      })();
      await runLaunchSystem(
        cloud,
        launcher,
        {
          ratePerSecond: rate,
          durationMs: options.durationMs,
          lifetimeMs: options.lifetimeMs,
          images,
          subnetIds,
          seed: options.seed,
        },
        launchRecord,
      );
      describesAtLaunchEnd = describesSoFar();
      for (const id of functions)
        functionDescribesAtLaunchEnd.set(
          id,
          totals(
            since(before.byFunction.get(id)?.ec2 ?? new Map(), meters.get(id)?.ec2 ?? new Map()),
            'DescribeInstances',
          ).attempts,
        );
      launchesDone = true;
      await poller;
      otherClient.stop();
      await otherClient.done;
    });
    stopInvocations();
    running.stop();
    const windowS = (cloud.clock.now() - t0) / 1000;
    // The other client's first instance was launched before the window.
    const launches = launchRecord.imageOf.size + otherClient.record.launched.length - 1;
    const warmboot = since(before.warmboot, warmbootCounts());
    const otherDelta = since(before.other, otherCounts);
    const launchDelta = since(before.launch, launchCounts);
    const describes = totals(warmboot, 'DescribeInstances').attempts;
    const busiestMinute = describeSamples.reduce((best, sample) => {
      const earlier = describeSamples.find((candidate) => candidate.at >= sample.at - 60_000) ?? sample;
      const spanS = Math.max(options.pollMs, sample.at - earlier.at) / 1000;
      return Math.max(best, (sample.count - earlier.count) / spanS);
    }, 0);
    const invocationsOf = (id: FunctionId) =>
      cloud.bus.stats(id).invocations - (before.invocations.get(id) ?? 0);
    const invocations = functions.reduce((sum, id) => sum + invocationsOf(id), 0);
    const scheduledTotal = [...scheduled.values()].reduce((sum, count) => sum + count, 0);
    const writeUnitsOf = (id: FunctionId) =>
      (meters.get(id)?.writeUnits ?? 0) - (before.byFunction.get(id)?.writeUnits ?? 0);
    const writeUnits = functions.reduce((sum, id) => sum + writeUnitsOf(id), 0);
    // A launch not reflected by the end counts with the time it waited: the percentiles are then
    // lower bounds, and the aim is not met.
    const waiting = probe.unreflected(imageTimes, cloud.clock.now());
    const unreflected = waiting.length;
    const lags = [...probe.lags, ...waiting].map((lag) => lag / 1000);
    const launchS = options.durationMs / 1000;
    const describesPerSecond = round(describesAtLaunchEnd / launchS, 3);
    const busiestMinuteRate = round(busiestMinute, 3);
    const otherThrottles = totals(otherDelta).throttled;
    const lagP99 = round(percentile(lags, 99), 1);
    const invocationsPer1000 = per1000(invocations, launches);
    const label = `${rate}/s`;
    const rows: Record<string, Metrics> = {
      [label]: {
        launches,
        'describe /1k': per1000(describes, launches),
        'describe /s': describesPerSecond,
        'describe /s busiest min': busiestMinuteRate,
        'invocations /1k': invocationsPer1000,
        'scheduled invocations': scheduledTotal,
        'WCU /1k': per1000(writeUnits, launches),
        'lag p50 s': round(percentile(lags, 50), 1),
        'lag p99 s': lagP99,
        unreflected,
        'other throttled': otherThrottles,
        'warmboot throttled': totals(warmboot).throttled,
        'launch system throttled': totals(launchDelta).throttled,
        ...throttleColumns('other thr', otherDelta),
        ...throttleColumns('warmboot thr', warmboot),
        'failed launch calls': launchRecord.failedLaunchCalls,
      },
    };
    for (const id of functions) {
      const delta = since(before.byFunction.get(id)?.ec2 ?? new Map(), meters.get(id)?.ec2 ?? new Map());
      const functionDescribes = totals(delta, 'DescribeInstances').attempts;
      rows[`${label} · ${id}`] = {
        'describe /1k': per1000(functionDescribes, launches),
        'describe /s': round((functionDescribesAtLaunchEnd.get(id) ?? 0) / launchS, 3),
        'invocations /1k': per1000(invocationsOf(id), launches),
        'scheduled invocations': scheduled.get(id) ?? 0,
        'WCU /1k': per1000(writeUnitsOf(id), launches),
        'warmboot throttled': totals(delta).throttled,
      };
    }
    // Every throttle EC2 answered is attributed to one of the three clients, or the run says so.
    const simulatorThrottles = Object.entries(simulator.stats()).reduce(
      (sum, [api, stats]) => sum + stats.throttled - (before.simulator[api]?.throttled ?? 0),
      0,
    );
    const attributed = otherThrottles + totals(warmboot).throttled + totals(launchDelta).throttled;
    const notes = [
      `${label}: ${launches} launches in ${round(launchS, 0)} s + ${round(windowS - launchS, 0)} s drain; ${wallSeconds(started)} s wall time`,
      ...aimNotes(label, {
        describesPerSecond: busiestMinuteRate,
        otherThrottles,
        lagP99,
        unreflected,
        invocationsPer1000,
      }),
      ...(simulatorThrottles === attributed
        ? []
        : [`${label}: EC2 answered ${simulatorThrottles} throttles, the meters attribute ${attributed}`]),
    ];
    process.stderr.write(`firehose: ${notes[0]}\n`);
    return { rows, notes };
  } finally {
    await cloud.stop();
  }
};

const runFirehoseBench = async (
  options: FirehoseOptions,
  planner: { readonly hosts: string; readonly images: string },
): Promise<BenchResult> => {
  const policies: Record<string, Metrics> = {};
  const notes: string[] = [];
  const dynamodb = await startDynamoDbLocal();
  try {
    for (const rate of options.rates) {
      const outcome = await runRate(rate, options, dynamodb.endpoint);
      Object.assign(policies, outcome.rows);
      notes.push(...outcome.notes);
    }
  } finally {
    await dynamodb.stop();
  }
  Object.assign(policies, await plannerRows(planner.hosts, planner.images));
  notes.push(
    'launches: instances the launch system and the other client launched in the window; every per-1k figure divides by it',
    'describe: DescribeInstances attempts of the deployed functions (retries count, as EC2 counts them); /s over the launch window; busiest min: the highest rate over the trailing 60 s (shorter at the start) from the poll samples, the figure the aim is judged on',
    'invocations: every Lambda invocation of every function in the window (schedules included, also shown apart)',
    'WCU: write capacity units DynamoDB Local reports for every write of the functions (ReturnConsumedCapacity TOTAL added by the bench; refused writes not counted)',
    'lag: launch reaching running → the popularity record (global scope, PopularityReader.launches) counts it, read every --poll-s; unreflected: reached running but not counted by the end of the drain (each counts with the time it waited, so the percentiles are then lower bounds)',
    'throttled: RequestLimitExceeded answers per client (other = the autoscaler-like client, launch system = the firehose source with raised RunInstances/TerminateInstances limits)',
    'planner rows: bench/planner.ts (npm run bench -- planner), run by this scenario',
  );
  return {
    scenario: 'firehose',
    trace: null,
    policies,
    parameters: {
      rates: options.rates.join(','),
      launchSeconds: options.durationMs / 1000,
      drainSeconds: options.drainMs / 1000,
      lifetimeSeconds: options.lifetimeMs === undefined ? 'none' : options.lifetimeMs / 1000,
      images: options.images,
      otherDescribesPerSecond: options.otherDescribesPerSecond,
      otherLaunchesPerSecond: options.otherLaunchesPerSecond,
      pollSeconds: options.pollMs / 1000,
      seed: options.seed,
      latency: 'calibrated',
    },
    notes,
  };
};

const ratesFlag = (args: BenchArgs): number[] =>
  flagText(args, FLAGS.rates)
    .split(',')
    .map((part) => {
      const value = Number(part);
      if (part.trim() === '' || !Number.isFinite(value) || value <= 0)
        throw new BenchUsageError(`--${FLAGS.rates.name} must be positive numbers separated by commas`);
      return value;
    });

const optionalSeconds = (args: BenchArgs, spec: FlagSpec): number | undefined =>
  flagText(args, spec) === 'none' ? undefined : numberFlag(args, spec, { min: 1 }) * 1000;

export const firehoseScenario: Scenario = {
  name: 'firehose',
  description:
    'launch firehose on the local cloud: describe calls, throttles, invocations, write units, popularity lag; planner rows',
  flags: Object.values(FLAGS),
  run: (args: BenchArgs) => {
    const seconds = optionalSeconds(args, FLAGS.seconds);
    return runFirehoseBench(
      {
        rates: ratesFlag(args),
        durationMs: seconds ?? numberFlag(args, FLAGS.minutes, { min: 0.1 }) * 60_000,
        drainMs: numberFlag(args, FLAGS.drain, { min: 0 }) * 1000,
        lifetimeMs: optionalSeconds(args, FLAGS.lifetime),
        images: numberFlag(args, FLAGS.images, { min: 1, integer: true }),
        otherDescribesPerSecond: numberFlag(args, FLAGS.otherDescribes, { min: 0 }),
        otherLaunchesPerSecond: numberFlag(args, FLAGS.otherLaunches, { min: 0 }),
        pollMs: numberFlag(args, FLAGS.poll, { min: 0.5 }) * 1000,
        seed: numberFlag(args, FLAGS.seed, { integer: true }),
      },
      { hosts: flagText(args, FLAGS.plannerHosts), images: flagText(args, FLAGS.plannerImages) },
    );
  },
};
