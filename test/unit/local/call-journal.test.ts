import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateTagsCommand, DeleteVolumeCommand, StopInstancesCommand } from '@aws-sdk/client-ec2';
import { DynamoDBDocumentClient, PutCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { CallJournal, OUTSIDE } from '../../../local/call-journal';
import { invocationScope } from '../../../local/faults';
import { attachSimulator } from '../../../local/sdk-bridge';
import { type Cloud, createCloud, launch } from './ec2-harness';

/**
 * The call journal is what the call-by-call invariants judge (local/invariants.ts): it must name
 * the function that made each destructive call, show the resource as it was when the call came,
 * keep only calls that changed something, and keep the writes DynamoDB accepted.
 */

const asFunction = <T>(functionId: string, task: () => Promise<T>): Promise<T> =>
  invocationScope.run({ functionId, invocationId: `${functionId}-1`, awsCalls: 0, killed: false }, task);

const journalOf = (cloud: Cloud, tables: string[] = []) =>
  new CallJournal({ ec2: cloud.ec2, clock: cloud.clock, tables });

describe('the call journal', () => {
  it('names the calling function and shows the instance and its volumes as they were when the call came', async () => {
    const cloud = await createCloud();
    const journal = journalOf(cloud);
    const instanceId = await launch(cloud, {
      TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'warmboot:pool', Value: 'web' }] }],
    });
    await cloud.settle(60_000);

    await cloud.run(() =>
      asFunction('shelving', () =>
        cloud.ec2Client.send(new StopInstancesCommand({ InstanceIds: [instanceId] })),
      ),
    );
    // Stopping again while it stops changes nothing: not an effect.
    await cloud.run(() => cloud.ec2Client.send(new StopInstancesCommand({ InstanceIds: [instanceId] })));
    // Tags changed after the call do not change what the journal saw.
    await cloud.run(() =>
      cloud.ec2Client.send(
        new CreateTagsCommand({ Resources: [instanceId], Tags: [{ Key: 'warmboot:pool', Value: 'other' }] }),
      ),
    );

    const [root] = cloud.ec2.volumes();
    expect(journal.calls()).toEqual([
      {
        seq: 1,
        at: expect.any(Number),
        caller: 'shelving',
        operation: 'StopInstances',
        resource: {
          kind: 'instance',
          id: instanceId,
          state: 'running',
          tags: { 'warmboot:pool': 'web' },
          createdBy: OUTSIDE,
          attachedVolumes: [
            {
              volumeId: root?.volumeId,
              device: '/dev/xvda',
              deleteOnTermination: true,
              tags: {},
            },
          ],
        },
      },
    ]);
  });

  it('keeps the calls EC2 refused apart, with the error code', async () => {
    const cloud = await createCloud();
    const journal = journalOf(cloud);
    await launch(cloud);
    const root = cloud.ec2.volumes()[0]?.volumeId ?? '';

    await expect(
      cloud.run(() =>
        asFunction('pools', () => cloud.ec2Client.send(new DeleteVolumeCommand({ VolumeId: root }))),
      ),
    ).rejects.toThrow();

    expect(journal.calls()).toEqual([]);
    expect(
      journal.refused().map((call) => [call.caller, call.operation, call.resource.id, call.code]),
    ).toEqual([['pools', 'DeleteVolume', root, 'VolumeInUse']]);
  });

  it('keeps the writes DynamoDB accepted on the tables it watches, as the items written', async () => {
    const cloud = await createCloud();
    const journal = journalOf(cloud, ['shelves']);
    const dynamodb = new DynamoDBClient({
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    journal.attachWrites(dynamodb, 'shelving');
    // DynamoDB itself is not needed: every request is answered as accepted.
    attachSimulator(dynamodb, async () => ({}));
    const documents = DynamoDBDocumentClient.from(dynamodb);
    const record = { recordId: 'sh-1', step: 'shelved', volumes: [{ volumeId: 'vol-1', root: true }] };

    await asFunction('shelving', () =>
      documents.send(
        new PutCommand({ TableName: 'shelves', Item: { pk: 'SHELF#sh-1', sk: 'RECORD', record } }),
      ),
    );
    await documents.send(
      new TransactWriteCommand({
        TransactItems: [
          { Delete: { TableName: 'shelves', Key: { pk: 'SHELF#sh-1', sk: 'RECORD' } } },
          { Put: { TableName: 'pools', Item: { pk: 'POOL#web', sk: 'MEMBER#i-1', state: 'ready' } } },
        ],
      }),
    );

    expect(journal.writes().map(({ at: _at, ...write }) => write)).toEqual([
      {
        seq: 1,
        caller: 'shelving',
        table: 'shelves',
        kind: 'put',
        pk: 'SHELF#sh-1',
        sk: 'RECORD',
        item: { pk: 'SHELF#sh-1', sk: 'RECORD', record },
      },
      { seq: 2, caller: OUTSIDE, table: 'shelves', kind: 'delete', pk: 'SHELF#sh-1', sk: 'RECORD' },
    ]);
  });
});
