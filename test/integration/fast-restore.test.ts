import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import type { LocalCloud } from '../../local/cloud';
import { sampleEvent } from '../support/events';
import { invokeSample, localCloudPerTest } from '../support/local-cloud';

const HOUR = 3_600_000;
const planSample = sampleEvent('fast-restore/plan-fast-restore.json');

const startCloud = localCloudPerTest();

const start = (fastRestore: Record<string, unknown>): Promise<LocalCloud> =>
  startCloud({
    functions: ['popularity', 'fastRestore'],
    settings: {
      POPULARITY_SETTINGS: JSON.stringify({ halfLifeHours: 1, shards: 2 }),
      FAST_RESTORE_SETTINGS: JSON.stringify({ cooldownMinutes: 30, minScore: 1, ...fastRestore }),
    },
  });

const launches = async (local: LocalCloud, image: string, availabilityZone: string, count: number) => {
  await local.putEvent({
    source: 'warmboot',
    detailType: 'Image Launched',
    detail: { image, availabilityZone, count },
  });
  await local.settleFor(10_000);
};

let planCounter = 0;
/** The console sample, as the operator would send it, with a fresh id and the clock's time. */
const plan = (local: LocalCloud) =>
  invokeSample(local, 'fastRestore', planSample, { id: `plan-${++planCounter}`, detail: { dryRun: false } });

const rootSnapshot = (local: LocalCloud, imageId: string): string =>
  local.ec2.images().find((image) => image.imageId === imageId)?.blockDevices[0]?.snapshotId ?? '';

const fsrOn = (local: LocalCloud) =>
  local.ec2
    .fastRestores()
    .filter((pair) => pair.state !== 'disabled')
    .map((pair) => `${pair.snapshotId}@${pair.availabilityZone}:${pair.state}`)
    .sort();

const trackedStates = async (local: LocalCloud) => {
  const page = await local.documents.send(
    new QueryCommand({
      TableName: local.tables.imageCache,
      IndexName: 'gsi1',
      KeyConditionExpression: 'gsi1pk = :fsr',
      ExpressionAttributeValues: { ':fsr': 'FSR' },
    }),
  );
  return (page.Items ?? []).map((item) => ({
    pair: `${item.snapshotId}@${item.availabilityZone}`,
    state: item.state,
    managed: item.managed,
  }));
};

describe('fast snapshot restore for hot AMIs', () => {
  it('enables FSR for the hot AMI in its AZ, tracks its states, and disables it a cool-down after it went cold', async () => {
    const local = await start({ maxPairs: 2, maxUsdPerHour: 1.5, topPerAz: 1 });
    const hot = local.ec2.registerImage({ name: 'hot', rootSizeGiB: 8 });
    const warm = local.ec2.registerImage({ name: 'warm', rootSizeGiB: 8 });
    const launchedAt = local.clock.now();
    await launches(local, hot, 'us-east-1a', 20);
    await launches(local, warm, 'us-east-1a', 5);

    await plan(local);
    await local.settleFor(5 * 60_000);

    const pair = `${rootSnapshot(local, hot)}@us-east-1a`;
    expect(fsrOn(local)).toEqual([`${pair}:enabled`]);
    expect(await trackedStates(local)).toEqual([{ pair, state: 'enabled', managed: true }]);
    expect(local.metrics.some((document) => JSON.stringify(document).includes('FastRestoreUsdPerHour'))).toBe(
      true,
    );

    // Half-life 1 h: 20 launches fall below minScore 1 after log2(20) ≈ 4.3 h. The schedule
    // (every 15 minutes) keeps the pair through the 30-minute cool-down, then disables it.
    local.startSchedules();
    await local.settleFor(4 * HOUR);
    expect(fsrOn(local)).toEqual([`${pair}:enabled`]);
    await local.settleFor(2 * HOUR);
    expect(fsrOn(local)).toEqual([]);
    const coldSince = launchedAt + Math.log2(20) * HOUR;
    // The cool-down counts from the last round that saw the AMI hot (rounds are 15 minutes apart).
    const disablingAt = local.ec2.fastRestores()[0]?.times.disabling ?? 0;
    expect(disablingAt - coldSince).toBeGreaterThanOrEqual(15 * 60_000);
    expect(disablingAt - coldSince).toBeLessThanOrEqual(45 * 60_000);
    expect(await trackedStates(local)).toEqual([{ pair, state: 'disabled', managed: false }]);
  });

  it("spends the budget only on this account's snapshots, not AWS's public ones (W1) nor a partner's shared ones (H4)", async () => {
    const local = await start({ maxPairs: 1, maxUsdPerHour: 0.75, topPerAz: 3 });
    // The hottest AMI is Amazon's public one: its root snapshot is Amazon's and not shared.
    const publicAmi = local.ec2.registerImage({
      name: 'al2023-public',
      rootSizeGiB: 8,
      ownerId: '137112412989',
    });
    // A partner shared its snapshots with this account, but fastRestore.allowedSnapshotOwners does not list it.
    const sharedAmi = local.ec2.registerImage({
      name: 'partner-shared',
      rootSizeGiB: 8,
      ownerId: '210987654321',
      snapshotsShared: true,
    });
    const ownAmi = local.ec2.registerImage({ name: 'own-build', rootSizeGiB: 8 });
    await launches(local, publicAmi, 'us-east-1a', 50);
    await launches(local, sharedAmi, 'us-east-1a', 20);
    await launches(local, ownAmi, 'us-east-1a', 10);

    await plan(local);
    await local.settleFor(5 * 60_000);

    expect(fsrOn(local)).toEqual([`${rootSnapshot(local, ownAmi)}@us-east-1a:enabled`]);
  });

  it('stays within the budget across AZs and never touches pairs it did not enable', async () => {
    const local = await start({ maxPairs: 5, maxUsdPerHour: 1.5, topPerAz: 1 });
    const images = ['a', 'b', 'c'].map((zone) =>
      local.ec2.registerImage({ name: `ami-${zone}`, rootSizeGiB: 8 }),
    );
    const foreign = local.ec2.registerImage({ name: 'foreign', rootSizeGiB: 8 });
    await local.run(async () => {
      const { EnableFastSnapshotRestoresCommand } = await import('@aws-sdk/client-ec2');
      await local.runtime('popularity').clients.ec2.send(
        new EnableFastSnapshotRestoresCommand({
          SourceSnapshotIds: [rootSnapshot(local, foreign)],
          AvailabilityZones: ['us-east-1c'],
        }),
      );
    });
    await launches(local, images[0] as string, 'us-east-1a', 30);
    await launches(local, images[1] as string, 'us-east-1b', 20);
    await launches(local, images[2] as string, 'us-east-1c', 10);

    await plan(local);
    await local.settleFor(5 * 60_000);

    // 1.50 USD/h at 0.75 per pair: the two hottest AZs' AMIs; the foreign pair is left alone.
    expect(fsrOn(local)).toEqual(
      [
        `${rootSnapshot(local, images[0] as string)}@us-east-1a:enabled`,
        `${rootSnapshot(local, images[1] as string)}@us-east-1b:enabled`,
        `${rootSnapshot(local, foreign)}@us-east-1c:enabled`,
      ].sort(),
    );
  });

  it('holds a pair for its first billed hour before a clearly hotter AMI takes its place', async () => {
    const local = await start({ maxPairs: 1, maxUsdPerHour: 10, topPerAz: 1 });
    const first = local.ec2.registerImage({ name: 'first', rootSizeGiB: 8 });
    const challenger = local.ec2.registerImage({ name: 'challenger', rootSizeGiB: 8 });
    await launches(local, first, 'us-east-1a', 20);
    await plan(local);
    await local.settleFor(5 * 60_000);
    const firstPair = `${rootSnapshot(local, first)}@us-east-1a`;
    expect(fsrOn(local)).toEqual([`${firstPair}:enabled`]);

    // 15 minutes after the enable a challenger scores 5× higher: disabling now would save nothing
    // (one-hour billing minimum), so the pair stays and the challenger waits for the hold.
    await local.settleFor(10 * 60_000);
    await launches(local, challenger, 'us-east-1a', 100);
    const early = await plan(local);
    expect(early).toMatchObject({
      result: {
        plan: {
          disable: [],
          enable: [],
          deferred: [{ imageId: challenger, reason: 'waiting-for-hold' }],
        },
      },
    });
    expect(fsrOn(local)).toEqual([`${firstPair}:enabled`]);

    // Past the hour: the first pair goes, and the challenger follows once it is disabled.
    await local.settleFor(50 * 60_000);
    await plan(local);
    await local.settleFor(5 * 60_000);
    expect(fsrOn(local)).toEqual([`${rootSnapshot(local, challenger)}@us-east-1a:enabled`]);
    const disablingAt = local.ec2
      .fastRestores()
      .find((pair) => pair.snapshotId === rootSnapshot(local, first))?.times.disabling;
    const enablingAt = local.ec2.fastRestores().find((pair) => pair.snapshotId === rootSnapshot(local, first))
      ?.times.enabling;
    expect((disablingAt ?? 0) - (enablingAt ?? 0)).toBeGreaterThanOrEqual(HOUR);
  });

  it('a dry run reports the plan and changes nothing', async () => {
    const local = await start({ maxPairs: 2, maxUsdPerHour: 10, topPerAz: 1 });
    const hot = local.ec2.registerImage({ name: 'hot', rootSizeGiB: 8 });
    await launches(local, hot, 'us-east-1a', 20);
    const outcome = await local.invoke('fastRestore', { ...planSample, id: 'dry-run-1' });
    expect(outcome).toMatchObject({
      status: 'handled',
      result: {
        status: 'planned',
        dryRun: true,
        plan: { enable: [{ imageId: hot, availabilityZone: 'us-east-1a' }] },
      },
    });
    expect(fsrOn(local)).toEqual([]);
  });
});
