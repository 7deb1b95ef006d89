import { resolve } from 'node:path';
import { WARMBOOT } from '../../functions/catalog';
import { FAST_RESTORE_CHANGED } from '../../functions/fast-restore/schemas';
import {
  type DynamoPopularityStore,
  popularityStoreFor,
} from '../../functions/popularity/adapters/dynamodb-popularity-store';
import { loadPopularityConfig } from '../../functions/popularity/config';
import { GLOBAL_SCOPE } from '../../functions/popularity/domain/scope';
import { IMAGE_LAUNCHED } from '../../functions/popularity/schemas';
import type { LocalCloud } from '../cloud';
import { DEFAULT_TRACE_FILE, dataDir, loadTrace } from '../trace';

export interface PopularityScenarioOptions {
  /** Trace requests to replay (default 150: a few virtual hours of the Alibaba trace, ~20 s real). */
  readonly requests?: number;
  /** First request of the slice (default 0). */
  readonly from?: number;
  /** Any trace in the benchmark format (default: the Alibaba GenAI request trace). */
  readonly traceFile?: string;
  /** AZs the launches spread over, by tenant (default: the simulator's three). */
  readonly availabilityZones?: readonly string[];
  /** Top images reported (default 10). */
  readonly top?: number;
}

export interface PopularityScenarioSummary {
  readonly trace: string;
  readonly requests: number;
  readonly virtualHours: number;
  /** Highest decayed scores at the end of the replay; `model` is the trace's image id. */
  readonly topImages: readonly { model: string; image: string; score: number; launches: number }[];
  readonly topPerAz: Readonly<Record<string, readonly { model: string; score: number }[]>>;
  /** Every fast-restore change the rounds made, in order. */
  readonly fastRestoreDecisions: readonly {
    atHours: number;
    enabled: readonly string[];
    disabled: readonly string[];
    pairs: number;
    usdPerHour: number;
  }[];
  readonly fastRestoreAtEnd: readonly { model: string; availabilityZone: string; state: string }[];
  /** Invocations that failed (each was retried by the bus). */
  readonly handlerErrors: number;
}

/** A stable tenant → AZ mapping, so one tenant's launches stay in one AZ as a placement would. */
const zoneOf = (tenant: string | undefined, zones: readonly string[]): string => {
  let hash = 0;
  for (const char of tenant ?? '') hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return zones[hash % zones.length] as string;
};

const HOUR = 3_600_000;
/** Events between two clock advances: the replay settles per batch, not per request. */
const SETTLE_EVERY_MS = 5 * 60_000;

/**
 * Replays a slice of a launch trace as `Image Launched` events on virtual time, through the real
 * popularity and fast-restore handlers. Each trace image (a GenAI base model) is served from its
 * own AMI, so the AMIs of the hottest models earn fast snapshot restore in their AZ within the
 * budget, and lose it once they cool down. Expects `popularity` and `fastRestore` deployed.
 */
export async function runPopularityScenario(
  cloud: LocalCloud,
  options: PopularityScenarioOptions = {},
): Promise<PopularityScenarioSummary> {
  const traceFile = options.traceFile ?? resolve(dataDir(), DEFAULT_TRACE_FILE);
  const trace = loadTrace(traceFile);
  const from = options.from ?? 0;
  const slice = trace.requests.slice(from, from + (options.requests ?? 150));
  const zones = options.availabilityZones ?? cloud.ec2.availabilityZones;
  const firstS = slice[0]?.timeS ?? 0;

  // One AMI per model, 30 GiB root (a base model image).
  const amiOf = new Map<string, string>();
  for (const request of slice)
    if (!amiOf.has(request.image))
      amiOf.set(request.image, cloud.ec2.registerImage({ name: `model-${request.image}`, rootSizeGiB: 30 }));
  const modelOf = new Map([...amiOf].map(([model, ami]) => [ami, model]));
  const snapshotModel = new Map(
    cloud.ec2
      .images()
      .flatMap((image) => image.blockDevices.map((device) => [device.snapshotId, image.imageId])),
  );

  const startedAt = cloud.clock.now();
  const decisions: PopularityScenarioSummary['fastRestoreDecisions'][number][] = [];
  const pairName = (pair: { snapshotId?: unknown; availabilityZone?: unknown }) =>
    `${modelOf.get(snapshotModel.get(String(pair.snapshotId)) ?? '') ?? String(pair.snapshotId)}@${String(pair.availabilityZone)}`;
  const unsubscribe = cloud.bus.onEvent((event) => {
    if (event['detail-type'] !== FAST_RESTORE_CHANGED) return;
    const detail = event.detail as {
      enabled?: { ok: boolean; snapshotId: string; availabilityZone: string }[];
      disabled?: { ok: boolean; snapshotId: string; availabilityZone: string }[];
      pairs?: number;
      usdPerHour?: number;
    };
    decisions.push({
      atHours: Math.round(((cloud.clock.now() - startedAt) / HOUR) * 100) / 100,
      enabled: (detail.enabled ?? []).filter((pair) => pair.ok).map(pairName),
      disabled: (detail.disabled ?? []).filter((pair) => pair.ok).map(pairName),
      pairs: detail.pairs ?? 0,
      usdPerHour: detail.usdPerHour ?? 0,
    });
  });

  try {
    cloud.startSchedules();
    let settledUntil = startedAt;
    for (const request of slice) {
      const due = startedAt + (request.timeS - firstS) * 1000;
      if (due - settledUntil >= SETTLE_EVERY_MS) {
        await cloud.settleFor(due - cloud.clock.now());
        settledUntil = due;
      }
      // Straight onto the request bus, as the operator's authorized PutEvents would put it: a
      // trace replays thousands of launches, each with its own time.
      cloud.bus.put(
        {
          source: WARMBOOT,
          detailType: IMAGE_LAUNCHED,
          detail: { image: amiOf.get(request.image), availabilityZone: zoneOf(request.tenant, zones) },
          time: Math.max(due, cloud.clock.now()),
        },
        cloud.bus.busName('requests'),
      );
    }
    await cloud.settleFor(SETTLE_EVERY_MS);

    const store = popularityReader(cloud);
    const now = cloud.clock.now();
    const top = await cloud.run(() => store.topK(GLOBAL_SCOPE, options.top ?? 10, now));
    const perAz = await cloud.run(async () =>
      Object.fromEntries(
        await Promise.all(
          zones.map(async (zone) => [
            zone,
            (await store.topK({ kind: 'az', az: zone }, 3, now)).map((entry) => ({
              model: modelOf.get(entry.image) ?? entry.image,
              score: round(entry.score),
            })),
          ]),
        ),
      ),
    );
    return {
      trace: traceFile,
      requests: slice.length,
      virtualHours: round((now - startedAt) / HOUR),
      topImages: top.map((entry) => ({
        model: modelOf.get(entry.image) ?? entry.image,
        image: entry.image,
        score: round(entry.score),
        launches: entry.launches,
      })),
      topPerAz: perAz,
      fastRestoreDecisions: decisions,
      fastRestoreAtEnd: cloud.ec2
        .fastRestores()
        .filter((pair) => pair.state !== 'disabled')
        .map((pair) => ({
          model: modelOf.get(snapshotModel.get(pair.snapshotId) ?? '') ?? pair.snapshotId,
          availabilityZone: pair.availabilityZone,
          state: pair.state,
        })),
      handlerErrors: cloud.bus.stats('popularity').errors + cloud.bus.stats('fastRestore').errors,
    };
  } finally {
    unsubscribe();
  }
}

const round = (value: number): number => Math.round(value * 1000) / 1000;

/** Reads popularity with the deployed function's own settings. */
const popularityReader = (cloud: LocalCloud): DynamoPopularityStore => {
  const runtime = cloud.runtime('popularity');
  return popularityStoreFor(runtime, loadPopularityConfig(runtime.env));
};
