import {
  DescribeInstancesCommand,
  type EC2Client,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { EC2_STATE_CHANGE } from '../functions/catalog';
import type { PopularityReader } from '../functions/popularity/adapters/popularity-store';
import { GLOBAL_SCOPE } from '../functions/popularity/domain/scope';
import type { Clock } from '../functions/shared/clock';
import type { LocalCloud } from '../local/cloud';
import { seededRandom } from '../local/ec2/ids';

/**
 * The load of the firehose scenario, all of it through the local cloud's EC2 API: the account's
 * launch system (RunInstances at the scenario's rate, TerminateInstances after each instance's
 * lifetime), an autoscaler-like other client (DescribeInstances and RunInstances at a steady
 * rate), and the popularity lag probe (the production PopularityReader, polled).
 */

const INSTANCE_TYPE = 'm7i.large';
/** Launch calls per second of the launch system: the rate is split into this many RunInstances. */
const LAUNCH_TICKS_PER_SECOND = 10;
/** TerminateInstances takes at most this many ids per call here (a batch per second). */
const TERMINATE_BATCH = 1_000;

export interface LaunchPlan {
  readonly ratePerSecond: number;
  readonly durationMs: number;
  /** Each instance is terminated this long after its launch; undefined: never. */
  readonly lifetimeMs: number | undefined;
  /** The AMIs launched, most popular first; picked by a Zipf(1) draw per launch call. */
  readonly images: readonly string[];
  /** One subnet per AZ; launch calls take them in turn. */
  readonly subnetIds: readonly string[];
  readonly seed: number;
}

export interface LaunchRecord {
  /** Instances the launch system launched, with the image each runs. */
  readonly imageOf: Map<string, string>;
  /** Launch calls that failed after the SDK's retries (their instances never existed). */
  failedLaunchCalls: number;
  failedTerminateCalls: number;
}

/** Zipf(1) over `count` ranks: rank r is drawn with weight 1 / (r + 1). */
const zipfPicker = (count: number, random: () => number): (() => number) => {
  const cumulative: number[] = [];
  let sum = 0;
  for (let rank = 0; rank < count; rank++) {
    sum += 1 / (rank + 1);
    cumulative.push(sum);
  }
  return () => {
    const target = random() * sum;
    const index = cumulative.findIndex((value) => value >= target);
    return index < 0 ? count - 1 : index;
  };
};

/**
 * Runs the launch system for `durationMs` on the cloud's clock (call inside `cloud.run`): every
 * tenth of a second one RunInstances of a tenth of the rate (at least one instance), one image
 * per call, and once a second one TerminateInstances of the instances whose lifetime ended.
 * Fills `record` as answers arrive; resolves when every call it made has been answered.
 */
export const newLaunchRecord = (): LaunchRecord => ({
  imageOf: new Map(),
  failedLaunchCalls: 0,
  failedTerminateCalls: 0,
});

export const runLaunchSystem = async (
  cloud: LocalCloud,
  client: EC2Client,
  plan: LaunchPlan,
  record: LaunchRecord,
): Promise<void> => {
  const pick = zipfPicker(plan.images.length, seededRandom(plan.seed));
  const ticks = Math.round((plan.durationMs / 1000) * Math.min(LAUNCH_TICKS_PER_SECOND, plan.ratePerSecond));
  const tickMs = plan.durationMs / ticks;
  const calls: Promise<void>[] = [];
  const dueForTermination: { at: number; ids: string[] }[] = [];
  let launchedSoFar = 0;
  const start = cloud.clock.now();
  for (let tick = 0; tick < ticks; tick++) {
    // Whole instances per call, spread so the total matches rate × duration.
    const due = Math.round(((tick + 1) * plan.ratePerSecond * tickMs) / 1000) - launchedSoFar;
    launchedSoFar += due;
    const image = plan.images[pick()] ?? '';
    if (due > 0) {
      calls.push(
        client
          .send(
            new RunInstancesCommand({
              ImageId: image,
              InstanceType: INSTANCE_TYPE,
              SubnetId: plan.subnetIds[tick % plan.subnetIds.length],
              MinCount: due,
              MaxCount: due,
              TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'Name', Value: 'firehose' }] }],
            }),
          )
          .then(
            (answer) => {
              const ids = (answer.Instances ?? []).map((instance) => instance.InstanceId ?? '');
              for (const id of ids) record.imageOf.set(id, image);
              if (plan.lifetimeMs !== undefined)
                dueForTermination.push({ at: cloud.clock.now() + plan.lifetimeMs, ids });
            },
            () => {
              record.failedLaunchCalls += 1;
            },
          ),
      );
    }
    const nextTick = start + (tick + 1) * tickMs;
    // Once a second: terminate what is due.
    if ((tick + 1) % LAUNCH_TICKS_PER_SECOND === 0 || tick === ticks - 1) {
      const now = cloud.clock.now();
      const ids = dueForTermination.filter((entry) => entry.at <= now).flatMap((entry) => entry.ids);
      dueForTermination.splice(
        0,
        dueForTermination.length,
        ...dueForTermination.filter((entry) => entry.at > now),
      );
      for (let from = 0; from < ids.length; from += TERMINATE_BATCH) {
        calls.push(
          client
            .send(new TerminateInstancesCommand({ InstanceIds: ids.slice(from, from + TERMINATE_BATCH) }))
            .then(
              () => undefined,
              () => {
                record.failedTerminateCalls += 1;
              },
            ),
        );
      }
    }
    await cloud.clock.sleep(Math.max(0, nextTick - cloud.clock.now()));
  }
  await Promise.all(calls);
};

export interface OtherClientPlan {
  readonly describesPerSecond: number;
  readonly launchesPerSecond: number;
  readonly imageId: string;
  readonly subnetId: string;
}

/** What the other client saw, besides its attempt meter. */
export interface OtherClientRecord {
  /** Calls that still failed after the SDK's retries, by API. */
  readonly failedCalls: Map<string, number>;
  readonly launched: string[];
}

/**
 * An autoscaler-like client of the same account: DescribeInstances of its own instances (by id,
 * the 50 newest) `describesPerSecond` times a second and a one-instance RunInstances
 * `launchesPerSecond` times a second, until `stop()` is called; `done` resolves once every call
 * was answered. Its first instance is launched by `start` before the load begins.
 */
export const startOtherClient = async (
  cloud: LocalCloud,
  client: EC2Client,
  plan: OtherClientPlan,
): Promise<{ readonly record: OtherClientRecord; stop(): void; readonly done: Promise<void> }> => {
  const record: OtherClientRecord = { failedCalls: new Map(), launched: [] };
  const failed = (operation: string) => () => {
    record.failedCalls.set(operation, (record.failedCalls.get(operation) ?? 0) + 1);
  };
  const launch = () =>
    client
      .send(
        new RunInstancesCommand({
          ImageId: plan.imageId,
          InstanceType: INSTANCE_TYPE,
          SubnetId: plan.subnetId,
          MinCount: 1,
          MaxCount: 1,
          TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'Name', Value: 'autoscaler' }] }],
        }),
      )
      .then((answer) => {
        for (const instance of answer.Instances ?? []) record.launched.push(instance.InstanceId ?? '');
      }, failed('RunInstances'));
  await cloud.run(launch);
  let running = true;
  const loop = async (perSecond: number, call: () => Promise<void>): Promise<void> => {
    if (perSecond <= 0) return;
    const pending: Promise<void>[] = [];
    while (running) {
      pending.push(call());
      await cloud.clock.sleep(1000 / perSecond);
    }
    await Promise.all(pending);
  };
  const describe = () =>
    client
      .send(new DescribeInstancesCommand({ InstanceIds: record.launched.slice(-50) }))
      .then(() => undefined, failed('DescribeInstances'));
  const done = Promise.all([
    loop(plan.describesPerSecond, describe),
    loop(plan.launchesPerSecond, launch),
  ]).then(() => undefined);
  return {
    record,
    stop: () => {
      running = false;
    },
    done,
  };
};

/**
 * When each instance reached `running`, from the state-change events EC2 put on the default bus
 * (virtual time of the put, which is the transition's).
 */
export const watchRunning = (
  cloud: LocalCloud,
): { readonly runningAt: Map<string, number>; stop(): void } => {
  const runningAt = new Map<string, number>();
  const stop = cloud.bus.onEvent((event) => {
    if (event.source !== 'aws.ec2' || event['detail-type'] !== EC2_STATE_CHANGE) return;
    const detail = event.detail as { state?: string; 'instance-id'?: string };
    if (detail.state === 'running' && detail['instance-id'] && !runningAt.has(detail['instance-id']))
      runningAt.set(detail['instance-id'], cloud.clock.now());
  });
  return { runningAt, stop };
};

/**
 * Popularity lag: for each image, the k-th launch (in order of reaching `running`) is reflected
 * once the popularity record's exact launch count for the image (global scope, read with the
 * production PopularityReader) reaches k. The probe reads every image every `pollMs`, so a lag is
 * measured to within one poll interval (it is the time of the first read that shows it).
 */
export class PopularityLagProbe {
  readonly lags: number[] = [];
  readonly #reflected = new Map<string, number>();
  readonly #clock: Clock;
  readonly #reader: PopularityReader;
  readonly #images: readonly string[];

  constructor(clock: Clock, reader: PopularityReader, images: readonly string[]) {
    this.#clock = clock;
    this.#reader = reader;
    this.#images = images;
  }

  /** One read of every image; `runningTimes` is each image's sorted running times so far. */
  async poll(runningTimes: ReadonlyMap<string, readonly number[]>): Promise<void> {
    const now = this.#clock.now();
    for (const image of this.#images) {
      const times = runningTimes.get(image) ?? [];
      const counted = await this.#reader.launches(GLOBAL_SCOPE, image, now);
      let reflected = this.#reflected.get(image) ?? 0;
      while (reflected < Math.min(counted, times.length)) {
        this.lags.push(now - (times[reflected] ?? now));
        reflected += 1;
      }
      this.#reflected.set(image, reflected);
    }
  }

  /**
   * Launches that reached running but were not reflected by the last poll, each with the time it
   * has waited until `now`: a lower bound of its lag.
   */
  unreflected(runningTimes: ReadonlyMap<string, readonly number[]>, now: number): number[] {
    const waited: number[] = [];
    for (const image of this.#images)
      for (const at of (runningTimes.get(image) ?? []).slice(this.#reflected.get(image) ?? 0))
        waited.push(now - at);
    return waited;
  }
}
