import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EC2_STATE_CHANGE } from '../../functions/catalog';
import { callAws } from '../../functions/shared/aws-errors';
import { EventRegistry, route } from '../../functions/shared/event-registry';
import { createLambdaHandler } from '../../functions/shared/lambda';
import type { Runtime } from '../../functions/shared/runtime';
import { ec2InstanceStateChangeDetail } from '../../functions/shared/schemas/aws-events';
import type { LocalCloud } from '../../local/cloud';
import { launchOneInstance } from '../support/instances';
import { startLocalCloud } from '../support/local-cloud';

/** Counts, per function, the running events it really handled (idempotency on, as deployed). */
const countingHandler = (runtime: Runtime) =>
  createLambdaHandler(
    new EventRegistry([
      route('aws.ec2', EC2_STATE_CHANGE, ec2InstanceStateChangeDetail, async (event) => {
        if (event.detail.state !== 'running') return 'ignored';
        await callAws('UpdateItem', () =>
          runtime.clients.documents.send(
            // The idempotency table: the one table every function's role may write.
            new UpdateCommand({
              TableName: runtime.idempotencyTable,
              Key: { id: `handled#${runtime.functionName}#${event.detail['instance-id']}` },
              UpdateExpression: 'ADD handled :one',
              ExpressionAttributeValues: { ':one': 1 },
            }),
          ),
        );
        return 'counted';
      }),
    ]),
    runtime,
  );

describe('one EventBridge event delivered to several functions', () => {
  let cloud: LocalCloud;

  beforeAll(async () => {
    cloud = await startLocalCloud({
      latency: 'zero',
      handlers: { popularity: countingHandler, shelving: countingHandler, pools: countingHandler },
      documents: [],
      behaviours: {},
    });
  });

  afterAll(async () => {
    await cloud.stop();
  });

  it('is handled once by each function: idempotency records are namespaced per function', async () => {
    const imageId = cloud.ec2.registerImage({ name: 'web', rootSizeGiB: 8 });
    const instanceId = await launchOneInstance(cloud, 'popularity', imageId);

    await cloud.settleFor(5 * 60_000);

    for (const functionName of ['warmboot-popularity', 'warmboot-shelving', 'warmboot-pools']) {
      const { Item } = await cloud.documents.send(
        new GetCommand({
          TableName: cloud.tables.idempotency,
          Key: { id: `handled#${functionName}#${instanceId}` },
        }),
      );
      expect({ functionName, handled: Item?.handled }).toEqual({ functionName, handled: 1 });
    }
  });
});
