import type { EC2Client } from '@aws-sdk/client-ec2';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { ec2FastRestore } from '../../../functions/fast-restore/adapters/ec2-fast-restore';
import { DynamoFsrRecords } from '../../../functions/fast-restore/adapters/fsr-records';

/**
 * The fast-restore adapters against in-memory fakes of the one method they use (`send`): each
 * fake answers by command name, records what was sent, and throws AWS-shaped errors on demand.
 */
interface Sent {
  readonly command: string;
  readonly input: Record<string, unknown>;
}

const awsError = (name: string): Error => Object.assign(new Error(name), { name });

const fakeClient = <C>(answer: (command: string, input: Record<string, unknown>) => unknown) => {
  const sent: Sent[] = [];
  const client = {
    send: async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      const name = command.constructor.name.replace(/Command$/, '');
      sent.push({ command: name, input: command.input });
      const result = answer(name, command.input);
      if (result instanceof Error) throw result;
      return result;
    },
  } as unknown as C;
  return { client, sent };
};

describe('ec2FastRestore', () => {
  it('enables one snapshot per call with all its AZs, and reports each pair on its own', async () => {
    const { client, sent } = fakeClient<EC2Client>((_command, input) => {
      const [snapshotId] = input.SourceSnapshotIds as string[];
      if (snapshotId === 'snap-throttled') return awsError('RequestLimitExceeded');
      return {
        Successful: [{ SnapshotId: snapshotId, AvailabilityZone: 'us-east-1a', State: 'enabling' }],
        Unsuccessful: [
          {
            SnapshotId: snapshotId,
            FastSnapshotRestoreStateErrors: [
              {
                AvailabilityZone: 'us-east-1b',
                Error: { Code: 'InvalidParameterValue', Message: 'no FSR here' },
              },
            ],
          },
        ],
      };
    });
    const results = await ec2FastRestore(client, []).enable([
      { snapshotId: 'snap-a', availabilityZone: 'us-east-1a' },
      { snapshotId: 'snap-throttled', availabilityZone: 'us-east-1a' },
      { snapshotId: 'snap-a', availabilityZone: 'us-east-1b' },
    ]);
    expect(sent).toEqual([
      {
        command: 'EnableFastSnapshotRestores',
        input: { SourceSnapshotIds: ['snap-a'], AvailabilityZones: ['us-east-1a', 'us-east-1b'] },
      },
      {
        command: 'EnableFastSnapshotRestores',
        input: { SourceSnapshotIds: ['snap-throttled'], AvailabilityZones: ['us-east-1a'] },
      },
    ]);
    expect(results).toEqual([
      { snapshotId: 'snap-a', availabilityZone: 'us-east-1a', ok: true, state: 'enabling' },
      {
        snapshotId: 'snap-a',
        availabilityZone: 'us-east-1b',
        ok: false,
        error: { code: 'InvalidParameterValue', message: 'no FSR here' },
      },
      {
        snapshotId: 'snap-throttled',
        availabilityZone: 'us-east-1a',
        ok: false,
        error: expect.objectContaining({ code: 'Throttled' }),
      },
    ]);
  });

  it('disables through DisableFastSnapshotRestores', async () => {
    const { client, sent } = fakeClient<EC2Client>(() => ({
      Successful: [{ SnapshotId: 'snap-a', AvailabilityZone: 'us-east-1a', State: 'disabling' }],
    }));
    const results = await ec2FastRestore(client, []).disable([
      { snapshotId: 'snap-a', availabilityZone: 'us-east-1a' },
    ]);
    expect(sent.map((call) => call.command)).toEqual(['DisableFastSnapshotRestores']);
    expect(results).toEqual([
      { snapshotId: 'snap-a', availabilityZone: 'us-east-1a', ok: true, state: 'disabling' },
    ]);
  });

  it('reads every page of DescribeFastSnapshotRestores and drops states it does not know', async () => {
    const { client, sent } = fakeClient<EC2Client>((_command, input) =>
      input.NextToken === undefined
        ? {
            FastSnapshotRestores: [
              { SnapshotId: 'snap-a', AvailabilityZone: 'us-east-1a', State: 'optimizing' },
              { SnapshotId: 'snap-b', AvailabilityZone: 'us-east-1a', State: 'warming-up' },
            ],
            NextToken: 'page-2',
          }
        : {
            FastSnapshotRestores: [
              { SnapshotId: 'snap-c', AvailabilityZone: 'us-east-1b', State: 'enabled' },
            ],
          },
    );
    expect(await ec2FastRestore(client, []).describeFastSnapshotRestores()).toEqual([
      { snapshotId: 'snap-a', availabilityZone: 'us-east-1a', state: 'optimizing' },
      { snapshotId: 'snap-c', availabilityZone: 'us-east-1b', state: 'enabled' },
    ]);
    expect(sent.map((call) => call.input.NextToken)).toEqual([undefined, 'page-2']);
  });

  it('maps AMIs to their distinct EBS snapshots, 100 ids per call, deregistered AMIs absent', async () => {
    const { client, sent } = fakeClient<EC2Client>((command, input) => {
      const [filter] = input.Filters as { Values: string[] }[];
      const ids = filter?.Values ?? [];
      // Every snapshot here is the account's own: all usable.
      if (command === 'DescribeSnapshots') return { Snapshots: ids.map((SnapshotId) => ({ SnapshotId })) };
      if (ids.includes('ami-gone')) return awsError('InvalidAMIID.NotFound');
      return {
        Images: ids.map((imageId) => ({
          ImageId: imageId,
          BlockDeviceMappings: [
            { DeviceName: '/dev/xvda', Ebs: { SnapshotId: `snap-${imageId}` } },
            { DeviceName: '/dev/xvdb', Ebs: { SnapshotId: `snap-${imageId}` } },
            { DeviceName: '/dev/xvdc', VirtualName: 'ephemeral0' },
          ],
        })),
      };
    });
    const known = Array.from({ length: 101 }, (_, index) => `ami-${index}`);
    const snapshots = await ec2FastRestore(client, []).snapshotsOfImages(known);
    const describedImages = sent.filter((call) => call.command === 'DescribeImages');
    expect(
      describedImages.map((call) => (call.input.Filters as { Values: string[] }[])[0]?.Values.length),
    ).toEqual([100, 1]);
    expect(snapshots.get('ami-0')).toEqual(['snap-ami-0']);
    expect(snapshots.size).toBe(101);
    const withGone = await ec2FastRestore(client, []).snapshotsOfImages(['ami-gone']);
    expect(withGone.size).toBe(0);
  });

  it('keeps only the snapshots this account may enable (owned or shared), asking with RestorableByUserIds self', async () => {
    const { client, sent } = fakeClient<EC2Client>((command, input) => {
      if (command === 'DescribeSnapshots') return { Snapshots: [{ SnapshotId: 'snap-own' }] };
      const [filter] = input.Filters as { Values: string[] }[];
      return {
        Images: (filter?.Values ?? []).map((imageId) => ({
          ImageId: imageId,
          BlockDeviceMappings: [
            {
              DeviceName: '/dev/xvda',
              Ebs: { SnapshotId: imageId === 'ami-own' ? 'snap-own' : 'snap-amazon' },
            },
          ],
        })),
      };
    });

    const snapshots = await ec2FastRestore(client, []).snapshotsOfImages(['ami-own', 'ami-public']);

    expect(Object.fromEntries(snapshots)).toEqual({ 'ami-own': ['snap-own'], 'ami-public': [] });
    expect(sent.find((call) => call.command === 'DescribeSnapshots')?.input).toMatchObject({
      RestorableByUserIds: ['self'],
    });
  });
});

describe('DynamoFsrRecords', () => {
  const pair = { snapshotId: 'snap-a', availabilityZone: 'us-east-1a' };

  it('claims a pair before enabling it and starts its minimum hold then', async () => {
    const { client, sent } = fakeClient<DynamoDBDocumentClient>(() => ({}));
    await new DynamoFsrRecords(client, 'image-cache').markManaged(pair, 'ami-a', 1_000);
    const [update] = sent;
    expect(update?.input).toMatchObject({
      Key: { pk: 'FSR#snap-a', sk: 'us-east-1a' },
      ExpressionAttributeValues: expect.objectContaining({
        ':true': true,
        ':imageId': 'ami-a',
        ':now': 1_000,
      }),
    });
    expect(update?.input.UpdateExpression).toContain('enabledAt = :now');
  });

  it('lists every page of pair records with their hold start, ownership and state', async () => {
    // An item the table holds, and the record read back: every attribute as written.
    const held = {
      snapshotId: 'snap-a',
      availabilityZone: 'us-east-1a',
      managed: true,
      imageId: 'ami-a',
      state: 'enabled',
      stateAt: 2_000,
      lastWantedAt: 3_000,
      enabledAt: 1_000,
    };
    const { client } = fakeClient<DynamoDBDocumentClient>((_command, input) =>
      input.ExclusiveStartKey === undefined
        ? {
            Items: [held],
            LastEvaluatedKey: { pk: 'FSR#snap-a', sk: 'us-east-1a' },
          }
        : { Items: [{ snapshotId: 'snap-b', availabilityZone: 'us-east-1b' }] },
    );
    expect(await new DynamoFsrRecords(client, 'image-cache').list()).toEqual([
      held,
      { snapshotId: 'snap-b', availabilityZone: 'us-east-1b', managed: false },
    ]);
  });

  it('applies a state only if it is not older than the stored one; disabled releases the claim', async () => {
    let stored = 5_000;
    const { client, sent } = fakeClient<DynamoDBDocumentClient>((_command, input) => {
      const at = (input.ExpressionAttributeValues as Record<string, number>)[':at'] ?? 0;
      if (at < stored) return awsError('ConditionalCheckFailedException');
      stored = at;
      return {};
    });
    const records = new DynamoFsrRecords(client, 'image-cache');
    expect(await records.recordState(pair, 'enabled', 4_000)).toBe('stale');
    expect(await records.recordState(pair, 'disabled', 6_000)).toBe('applied');
    expect(sent.at(-1)?.input.UpdateExpression).toContain('managed = :false');
    expect(sent.at(-1)?.input.ConditionExpression).toBe('attribute_not_exists(stateAt) OR stateAt <= :at');
  });

  it('hands the plan lease to one holder at a time and surfaces other failures typed', async () => {
    let holder: string | undefined;
    let failure: Error | undefined;
    const { client } = fakeClient<DynamoDBDocumentClient>((_command, input) => {
      if (failure) return failure;
      const owner = (input.ExpressionAttributeValues as Record<string, string>)[':owner'];
      if (input.UpdateExpression === 'SET leaseUntil = :zero') {
        if (owner !== holder) return awsError('ConditionalCheckFailedException');
        holder = undefined;
        return {};
      }
      if (holder !== undefined && holder !== owner) return awsError('ConditionalCheckFailedException');
      holder = owner;
      return {};
    });
    const records = new DynamoFsrRecords(client, 'image-cache');
    expect(await records.acquirePlanLease('round-1', 0, 60_000)).toBe(true);
    expect(await records.acquirePlanLease('round-2', 0, 60_000)).toBe(false);
    await records.releasePlanLease('round-2');
    expect(await records.acquirePlanLease('round-2', 0, 60_000)).toBe(false);
    await records.releasePlanLease('round-1');
    expect(await records.acquirePlanLease('round-2', 0, 60_000)).toBe(true);
    failure = awsError('ProvisionedThroughputExceededException');
    await expect(records.acquirePlanLease('round-3', 0, 60_000)).rejects.toMatchObject({ code: 'Throttled' });
  });
});
