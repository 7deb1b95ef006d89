import { describe, expect, it } from 'vitest';
import { fastRestoreSettingsSchema } from '../../../functions/fast-restore/config';
import { reconcilePairs } from '../../../functions/fast-restore/domain/reconcile';
import { isAmiId, planFastRestoreSchema } from '../../../functions/fast-restore/schemas';
import { popularitySettingsSchema } from '../../../functions/popularity/config';
import { parseOrThrow } from '../../../functions/shared/event-registry';
import { fastSnapshotRestoreStateChangeDetail } from '../../../functions/shared/schemas/aws-events';
import { awsSampleEvent, sampleEvent } from '../../support/events';

const sample = sampleEvent('fast-restore/plan-fast-restore.json');
/** AWS's published EBS Fast Snapshot Restore State-change Notification (test/fixtures/aws/README.md). */
const awsStateChange = awsSampleEvent('ebs-fast-snapshot-restore-state-change.json');

describe('fast restore inputs', () => {
  it('the console sample is a warmboot Plan Fast Restore that parses with the handler schema', () => {
    expect(sample.source).toBe('warmboot');
    expect(sample['detail-type']).toBe('Plan Fast Restore');
    expect(planFastRestoreSchema.parse(sample.detail)).toEqual({ dryRun: true });
  });

  it('names the offending field of a bad request', () => {
    expect(() => parseOrThrow(planFastRestoreSchema, { dryRun: 'yes' }, 'detail')).toThrow(
      expect.objectContaining({ field: 'detail.dryRun' }),
    );
  });

  it("parses AWS's EBS state-change sample with the schema the handler routes it with, and refuses a forged snapshot id", () => {
    const detail = awsStateChange.detail;
    expect(fastSnapshotRestoreStateChangeDetail.parse(detail)).toMatchObject({
      'snapshot-id': 'snap-1234567890abcdef0',
      state: 'optimizing',
      zone: 'us-east-1a',
    });
    expect(() =>
      parseOrThrow(
        fastSnapshotRestoreStateChangeDetail,
        { ...detail, 'snapshot-id': 'snap-1;reboot' },
        'detail',
      ),
    ).toThrow(expect.objectContaining({ field: 'detail.snapshot-id' }));
  });

  it('acts on AMIs only', () => {
    expect(isAmiId('ami-0123456789abcdef0')).toBe(true);
    expect(isAmiId('nginx:1.27')).toBe(false);
  });

  it('settings default to a safe budget and reject nonsense', () => {
    const settings = fastRestoreSettingsSchema.parse({});
    expect(settings.maxPairs * settings.usdPerPairHour).toBeLessThanOrEqual(settings.maxUsdPerHour);
    expect(fastRestoreSettingsSchema.safeParse({ maxPairs: -1 }).success).toBe(false);
    expect(popularitySettingsSchema.parse({})).toMatchObject({ halfLifeHours: 24, shards: 8, topK: 20 });
    expect(popularitySettingsSchema.safeParse({ halfLifeHours: 0 }).success).toBe(false);
  });
});

describe('reconcilePairs', () => {
  it('trusts EC2 for states and treats a pair EC2 no longer lists as disabled', () => {
    const { current, corrections } = reconcilePairs(
      [
        { snapshotId: 'snap-a', availabilityZone: 'us-east-1a', managed: true, state: 'enabling' },
        { snapshotId: 'snap-b', availabilityZone: 'us-east-1a', managed: true, state: 'enabled' },
      ],
      [
        { snapshotId: 'snap-a', availabilityZone: 'us-east-1a', state: 'enabled' },
        { snapshotId: 'snap-c', availabilityZone: 'us-east-1a', state: 'enabled' },
      ],
    );
    expect(corrections).toEqual([
      { snapshotId: 'snap-a', availabilityZone: 'us-east-1a', state: 'enabled' },
      { snapshotId: 'snap-b', availabilityZone: 'us-east-1a', state: 'disabled' },
    ]);
    expect(current.find((pair) => pair.snapshotId === 'snap-c')).toMatchObject({ managed: false });
  });
});
