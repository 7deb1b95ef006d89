import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { PairResult } from '../adapters/ec2-fast-restore';
import type { FsrRecordStore } from '../adapters/fsr-records';
import type { FastRestoreDependencies } from '../dependencies';
import { type AmiDemand, type CurrentPair, type FastRestorePlan, planFastRestore } from '../domain/plan';
import { reconcilePairs } from '../domain/reconcile';
import { FAST_RESTORE_CHANGED, isAmiId } from '../schemas';

export type FastRestoreRound =
  | { readonly status: 'busy' }
  | {
      readonly status: 'planned';
      readonly dryRun: boolean;
      readonly plan: FastRestorePlan;
      readonly disabled: readonly PairResult[];
      readonly enabled: readonly PairResult[];
    };

/** A round outlives no Lambda timeout; a crashed holder's lease expires after this. */
const LEASE_MS = 5 * 60_000;
/** EventBridge times have one-second precision; our own state writes use the same. */
const toSecond = (ms: number): number => ms - (ms % 1000);

/**
 * One fast-restore round: read demand and state, plan (pure), then disable before enabling.
 * Level-triggered: the schedule, the operator and `disabled` state events all run the same
 * round, which re-derives everything from popularity, DynamoDB and EC2.
 */
export const runFastRestoreRound = async (
  dependencies: FastRestoreDependencies,
  now: number,
  options: { readonly dryRun: boolean },
): Promise<FastRestoreRound> => {
  const { ec2, records, settings } = dependencies;
  const owner = `${now}-${Math.floor(dependencies.random() * 2 ** 32).toString(16)}`;
  if (!options.dryRun && !(await records.acquirePlanLease(owner, now, LEASE_MS))) return { status: 'busy' };
  try {
    const [remembered, described] = await Promise.all([records.list(), ec2.describeFastSnapshotRestores()]);
    const { current, corrections } = reconcilePairs(remembered, described);
    const demand = await demandOf(dependencies, now, current);
    const plan = planFastRestore({
      demand,
      current,
      budget: { maxPairs: settings.maxPairs, maxUsdPerHour: settings.maxUsdPerHour },
      usdPerPairHour: settings.usdPerPairHour,
      topPerAz: settings.topPerAz,
      minScore: settings.minScore,
      cooldownMs: settings.cooldownMinutes * 60_000,
      hysteresis: settings.hysteresis,
      minHoldMs: settings.minHoldMinutes * 60_000,
      now,
    });
    if (options.dryRun) return { status: 'planned', dryRun: true, plan, disabled: [], enabled: [] };

    for (const correction of corrections)
      await records.recordState(correction, correction.state, toSecond(now));
    const disabled = plan.disable.length > 0 ? await ec2.disable(plan.disable) : [];
    await recordResults(records, disabled, now);
    // Claim before enabling: if the process dies after the Enable call, the pair is still ours.
    for (const pair of plan.enable) await records.markManaged(pair, pair.imageId, now);
    const enabled = plan.enable.length > 0 ? await ec2.enable(plan.enable) : [];
    await recordResults(records, enabled, now);
    for (const pair of plan.wanted) await records.markWanted(pair, now);

    for (const failure of [...disabled, ...enabled].filter((result) => !result.ok))
      dependencies.logger.warn('fast restore change failed', { failure });
    dependencies.metrics.addMetric('FastRestorePairs', MetricUnit.Count, plan.target.pairs);
    // EMF has no currency unit: USD per hour goes out unit-less, its name says what it is.
    dependencies.metrics.addMetric('FastRestoreUsdPerHour', MetricUnit.NoUnit, plan.target.usdPerHour);
    if (disabled.length > 0 || enabled.length > 0) {
      await dependencies.facts.publish([
        {
          detailType: FAST_RESTORE_CHANGED,
          detail: {
            enabled,
            disabled,
            deferred: plan.deferred,
            pairs: plan.target.pairs,
            usdPerHour: plan.target.usdPerHour,
            at: new Date(now).toISOString(),
          },
        },
      ]);
    }
    return { status: 'planned', dryRun: false, plan, disabled, enabled };
  } finally {
    if (!options.dryRun) await records.releasePlanLease(owner);
  }
};

/**
 * The top AMIs of every AZ with their snapshots, plus the score of every AMI whose pairs warmboot
 * has on in an AZ where it is not in that top list: the planner compares incumbents with
 * challengers on score × hysteresis, so it needs the incumbents' scores too, not just their
 * absence. Only AMIs warmboot saw launched qualify.
 */
const demandOf = async (
  dependencies: FastRestoreDependencies,
  now: number,
  current: readonly CurrentPair[],
): Promise<AmiDemand[]> => {
  const zones = await dependencies.ec2.availabilityZones();
  const tops = await Promise.all(
    zones.map(async (availabilityZone) => ({
      availabilityZone,
      top: await dependencies.popularity.topK(
        { kind: 'az', az: availabilityZone },
        dependencies.settings.topPerAz,
        now,
        { where: isAmiId },
      ),
    })),
  );
  const listed = new Set(
    tops.flatMap(({ availabilityZone, top }) => top.map((entry) => `${entry.image}@${availabilityZone}`)),
  );
  const incumbents = new Map<string, { image: string; availabilityZone: string }>();
  for (const pair of current) {
    if (!pair.managed || pair.imageId === undefined || !isAmiId(pair.imageId)) continue;
    const key = `${pair.imageId}@${pair.availabilityZone}`;
    if (!listed.has(key))
      incumbents.set(key, { image: pair.imageId, availabilityZone: pair.availabilityZone });
  }
  const incumbentScores = await Promise.all(
    [...incumbents.values()].map(async ({ image, availabilityZone }) => ({
      availabilityZone,
      entry: {
        image,
        score: await dependencies.popularity.score({ kind: 'az', az: availabilityZone }, image, now),
      },
    })),
  );
  const ranked = [
    ...tops.flatMap(({ availabilityZone, top }) => top.map((entry) => ({ availabilityZone, entry }))),
    ...incumbentScores,
  ];
  const imageIds = [...new Set(ranked.map(({ entry }) => entry.image))];
  const snapshots = imageIds.length > 0 ? await dependencies.ec2.snapshotsOfImages(imageIds) : new Map();
  return ranked.map(({ availabilityZone, entry }) => ({
    imageId: entry.image,
    availabilityZone,
    score: entry.score,
    snapshotIds: snapshots.get(entry.image) ?? [],
  }));
};

const recordResults = async (records: FsrRecordStore, results: readonly PairResult[], now: number) => {
  for (const result of results) if (result.ok) await records.recordState(result, result.state, toSecond(now));
};
