import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { DescribeTableCommand, DynamoDBClient, type TableDescription } from '@aws-sdk/client-dynamodb';
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { EC2_STATE_CHANGE, WARMBOOT_FACT } from '../../functions/catalog';
import { factPublisher } from '../../functions/shared/adapters/facts';
import { callAws } from '../../functions/shared/aws-errors';
import { EventRegistry, route } from '../../functions/shared/event-registry';
import { createLambdaHandler } from '../../functions/shared/lambda';
import type { Runtime } from '../../functions/shared/runtime';
import { ec2InstanceStateChangeDetail } from '../../functions/shared/schemas/aws-events';
import { TABLES } from '../../functions/shared/tables';
import type { EventEnvelope, InvocationRecord } from '../../local/bus';
import type { LocalCloud } from '../../local/cloud';
import { LOCAL_CREDENTIALS } from '../../local/dynamodb-local';
import { launchOneInstance } from '../support/instances';
import { startLocalCloud } from '../support/local-cloud';

/**
 * A registry-based handler deployed under the `popularity` id, so the catalog's Ec2Running rule
 * routes to it: it counts each running instance in DynamoDB Local and publishes a fact (one the
 * popularity role may publish on the facts bus).
 */
const launchCounter = (runtime: Runtime) => {
  const table = runtime.env.POPULARITY_TABLE;
  const facts = factPublisher(runtime);
  const registry = new EventRegistry([
    route('aws.ec2', EC2_STATE_CHANGE, ec2InstanceStateChangeDetail, async (event) => {
      const instanceId = event.detail['instance-id'];
      await callAws('UpdateItem', () =>
        runtime.clients.documents.send(
          new UpdateCommand({
            TableName: table,
            Key: { pk: `instance#${instanceId}`, sk: 'launches' },
            UpdateExpression: 'ADD launches :one',
            ExpressionAttributeValues: { ':one': 1 },
          }),
        ),
      );
      await facts.publish([{ detailType: 'Popularity Changed', detail: { instanceId } }]);
      runtime.metrics.addMetric('LaunchesCounted', MetricUnit.Count, 1);
      return instanceId;
    }),
  ]);
  return createLambdaHandler(registry, runtime);
};

describe('LocalCloud', () => {
  let cloud: LocalCloud;
  let facts: EventEnvelope[];

  beforeAll(async () => {
    cloud = await startLocalCloud({
      handlers: { popularity: launchCounter },
      documents: [],
      behaviours: {},
    });
    cloud.bus.onEvent((event, bus) => {
      if (event.source === WARMBOOT_FACT && bus === cloud.bus.busName('facts')) facts.push(event);
    });
  });

  afterAll(async () => {
    await cloud.stop();
  });

  beforeEach(() => {
    facts = [];
    cloud.bus.clearFaults();
  });

  const launches = async (instanceId: string): Promise<unknown> => {
    const { Item } = await cloud.documents.send(
      new GetCommand({
        TableName: cloud.tables.popularity,
        Key: { pk: `instance#${instanceId}`, sk: 'launches' },
      }),
    );
    return Item?.launches;
  };

  const launchOne = async (): Promise<string> => {
    const imageId = cloud.ec2.registerImage({
      name: `web-${facts.length}-${cloud.clock.now()}`,
      rootSizeGiB: 8,
    });
    return launchOneInstance(cloud, 'popularity', imageId);
  };

  it('creates every table of the stack in DynamoDB Local, with its keys and indexes', async () => {
    const admin = new DynamoDBClient({
      region: cloud.region,
      endpoint: inject('dynamodbEndpoint'),
      credentials: LOCAL_CREDENTIALS,
    });
    try {
      for (const spec of Object.values(TABLES)) {
        const name = cloud.tables[spec.id];
        const { Table } = await admin.send(new DescribeTableCommand({ TableName: name }));

        expect(keysOf(Table)).toEqual({
          partitionKey: spec.partitionKey,
          sortKey: 'sortKey' in spec ? spec.sortKey : undefined,
          indexes: spec.indexes.map((index) => index.name),
        });
      }
    } finally {
      admin.destroy();
    }
  });

  it('delivers the EC2 running event of a simulated launch to the handler, which writes to DynamoDB Local', async () => {
    const instanceId = await launchOne();
    await cloud.settleFor(60_000);

    expect(await launches(instanceId)).toBe(1);
    expect(facts.map((fact) => [fact['detail-type'], fact.detail])).toEqual([
      ['Popularity Changed', { instanceId }],
    ]);
  });

  it('keeps the EMF metrics the functions publish, stamped with virtual time, instead of printing them', () => {
    const counted = cloud.metrics.find((emf) => 'LaunchesCounted' in emf);

    expect(counted).toMatchObject({ service: 'popularity', LaunchesCounted: 1 });
    expect(counted?._aws.CloudWatchMetrics[0]?.Namespace).toBe('Warmboot');
    expect(counted?._aws.Timestamp).toBeGreaterThanOrEqual(Date.UTC(2026, 0, 5, 8, 0, 0));
    expect(counted?._aws.Timestamp).toBeLessThanOrEqual(cloud.clock.now());
  });

  it('handles an event delivered twice only once (idempotency on the event id)', async () => {
    cloud.bus.injectFault({
      match: { functionId: 'popularity', detailType: EC2_STATE_CHANGE },
      fault: { kind: 'duplicate', afterMs: 10_000 },
    });
    const before = cloud.bus.stats('popularity');
    const instanceId = await launchOne();
    await cloud.settleFor(60_000);

    expect(await launches(instanceId)).toBe(1);
    expect(facts).toHaveLength(1);
    const after = cloud.bus.stats('popularity');
    expect(after.succeeded - before.succeeded).toBe(2);
  });

  it('handles a duplicate that arrives while the first is still running only once, after a retry', async () => {
    cloud.bus.injectFault({
      match: { functionId: 'popularity', detailType: EC2_STATE_CHANGE },
      fault: { kind: 'duplicate' },
    });
    const records: InvocationRecord[] = [];
    const stop = cloud.bus.onInvocation((record) => {
      if (record.functionId === 'popularity' && record.event['detail-type'] === EC2_STATE_CHANGE)
        records.push(record);
    });
    const instanceId = await launchOne();
    await cloud.settleFor(5 * 60_000);
    stop();

    expect(await launches(instanceId)).toBe(1);
    // The copies reach two pollers' batches, run at once: the copy finds the first in progress,
    // fails (its batch lists it in batchItemFailures), and, received again after the queue's
    // visibility timeout, returns the stored result.
    expect(records.map((record) => [record.outcome, record.attempt]).sort()).toEqual([
      ['failed', 0],
      ['succeeded', 0],
      ['succeeded', 1],
    ]);
    expect(new Set(records.map((record) => record.event.id)).size).toBe(1);
    expect(cloud.bus.deadLetters('popularity')).toEqual([]);
  });

  const runningEvent = (instanceId: string, id: string) => ({
    version: '0',
    id,
    'detail-type': EC2_STATE_CHANGE,
    source: 'aws.ec2',
    account: cloud.accountId,
    time: '2026-01-05T08:00:00Z',
    region: cloud.region,
    resources: [],
    detail: { 'instance-id': instanceId, state: 'running' },
  });

  it('delivers an event synchronously through the rule alias and the same chain', async () => {
    const instanceId = await launchOne();
    const result = await cloud.deliverByRule(
      'popularity',
      runningEvent(instanceId, '6a7e8feb-b491-4cf7-a9f1-bf3703467718'),
    );

    expect(result).toEqual({
      status: 'handled',
      source: 'aws.ec2',
      detailType: EC2_STATE_CHANGE,
      result: instanceId,
    });
  });

  it('refuses an AWS event passed by a direct invoke, touching nothing', async () => {
    const instanceId = await launchOne();
    await cloud.settleFor(60_000);
    const before = await launches(instanceId);

    const result = await cloud.invoke(
      'popularity',
      runningEvent(instanceId, 'f0e1d2c3-b4a5-4968-8776-655443322110'),
    );

    expect(result).toMatchObject({ status: 'rejected', error: { code: 'EnvelopeRefused', field: 'source' } });
    expect(await launches(instanceId)).toBe(before);
  });

  it('rejects an operator event PutEvents would refuse', async () => {
    await expect(
      cloud.putEvent({ source: 'warmboot', detailType: '', detail: { image: 'ami-0123456789abcdef0' } }),
    ).rejects.toThrow(/InvalidArgument/);
  });

  it('refuses an aws.* source from anyone but AWS (NotAuthorizedForSourceException)', async () => {
    await expect(
      cloud.putEvent(
        { source: 'aws.ec2', detailType: EC2_STATE_CHANGE, detail: { state: 'running' } },
        { bus: 'default' },
      ),
    ).rejects.toThrow(/NotAuthorizedForSourceException/);
  });
});

const keysOf = (table: TableDescription | undefined) => ({
  partitionKey: table?.KeySchema?.find((key) => key.KeyType === 'HASH')?.AttributeName,
  sortKey: table?.KeySchema?.find((key) => key.KeyType === 'RANGE')?.AttributeName,
  indexes: (table?.GlobalSecondaryIndexes ?? []).map((index) => index.IndexName),
});
