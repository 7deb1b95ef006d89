import { Metrics } from '@aws-lambda-powertools/metrics';
import { describe, expect, it } from 'vitest';
import type { FastRestoreEc2 } from '../../../functions/fast-restore/adapters/ec2-fast-restore';
import type { FsrRecord, FsrRecordStore } from '../../../functions/fast-restore/adapters/fsr-records';
import { runFastRestoreRound } from '../../../functions/fast-restore/application/rounds';
import { fastRestoreSettingsSchema } from '../../../functions/fast-restore/config';
import { MemoryPopularityStore } from '../../../functions/popularity/adapters/memory-popularity-store';
import { decayParameters } from '../../../functions/popularity/domain/decay';

const now = Date.UTC(2026, 0, 5, 8);
const MINUTE = 60_000;
const ZONE = 'us-east-1a';
const INCUMBENT = 'ami-0aaaaaaaaaaaaaaa1';
const CHALLENGER = 'ami-0bbbbbbbbbbbbbbb2';

/** One round over in-memory popularity, EC2 and records: the incumbent's pair is on. */
const roundWith = async (launches: Record<string, number>, enabledAt: number) => {
  const popularity = new MemoryPopularityStore({ decay: decayParameters(24), shards: 2 });
  for (const [image, count] of Object.entries(launches))
    await popularity.recordLaunch({
      eventId: image,
      at: now,
      images: [{ image, count }],
      availabilityZone: ZONE,
    });
  const record: FsrRecord = {
    snapshotId: `snap-${INCUMBENT}`,
    availabilityZone: ZONE,
    managed: true,
    imageId: INCUMBENT,
    state: 'enabled',
    // The previous round (15 minutes ago) still saw it hot.
    lastWantedAt: now - 15 * MINUTE,
    enabledAt,
  };
  const ec2: FastRestoreEc2 = {
    availabilityZones: async () => [ZONE],
    snapshotsOfImages: async (ids) => new Map(ids.map((id) => [id, [`snap-${id}`]])),
    describeFastSnapshotRestores: async () => [{ ...record, state: 'enabled' }],
    enable: async (pairs) => pairs.map((pair) => ({ ...pair, ok: true, state: 'enabling' })),
    disable: async (pairs) => pairs.map((pair) => ({ ...pair, ok: true, state: 'disabling' })),
  };
  const records: FsrRecordStore = {
    list: async () => [record],
    markManaged: async () => undefined,
    recordState: async () => 'applied',
    markWanted: async () => undefined,
    acquirePlanLease: async () => true,
    releasePlanLease: async () => undefined,
  };
  return runFastRestoreRound(
    {
      ec2,
      records,
      popularity,
      facts: { publish: async () => undefined },
      metrics: new Metrics({ namespace: 'Test', serviceName: 'fastRestore' }),
      logger: { warn: () => undefined, info: () => undefined },
      settings: fastRestoreSettingsSchema.parse({ maxPairs: 1, topPerAz: 1 }),
      clock: { now: () => now },
      random: () => 0.5,
    },
    now,
    { dryRun: true },
  );
};

describe('a fast-restore round', () => {
  it('reads the score of an incumbent outside the AZ top list, so hysteresis keeps it', async () => {
    // Top-1 of the AZ is the challenger (50), but 50 < 40 × 1.5: the incumbent stays.
    const round = await roundWith({ [INCUMBENT]: 40, [CHALLENGER]: 50 }, now - 5 * 60 * MINUTE);
    expect(round).toMatchObject({
      status: 'planned',
      plan: { disable: [], enable: [], keep: [{ imageId: INCUMBENT, reason: 'hot' }] },
    });
  });

  it('lets a clear challenger displace an incumbent whose hold is over', async () => {
    const round = await roundWith({ [INCUMBENT]: 40, [CHALLENGER]: 70 }, now - 5 * 60 * MINUTE);
    expect(round).toMatchObject({
      plan: {
        disable: [{ imageId: INCUMBENT, reason: 'outranked' }],
        deferred: [{ imageId: CHALLENGER, reason: 'waiting-for-budget' }],
      },
    });
  });

  it('makes the same challenger wait while the incumbent is in its first billed hour', async () => {
    const round = await roundWith({ [INCUMBENT]: 40, [CHALLENGER]: 70 }, now - 20 * MINUTE);
    expect(round).toMatchObject({
      plan: { disable: [], deferred: [{ imageId: CHALLENGER, reason: 'waiting-for-hold' }] },
    });
  });
});
