import { TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../functions/shared/runtime';
import type { LocalCloud } from '../../local/cloud';
import { launchOneInstance } from '../support/instances';
import { startLocalCloud } from '../support/local-cloud';

/**
 * Every call a deployed function makes runs as its role: the role policy the CDK app synthesizes
 * is evaluated on the local cloud as AWS would, so a call outside it fails with the service's
 * own error and leaves nothing behind.
 */

type Attempt = 'terminate' | 'write' | 'spoof';

/**
 * Deployed under the `placement` id, whose role reads the image-cache table (and may only update
 * items there, never put or delete them), publishes its own
 * facts (`warmboot.fact`, on the facts bus) and has no EC2 permission at all.
 */
const outsideTheRole = (runtime: Runtime) => async (event: unknown) => {
  const { attempt, instanceId } = event as { attempt: Attempt; instanceId: string };
  if (attempt === 'terminate') {
    return runtime.clients.ec2.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] }));
  }
  if (attempt === 'write') {
    return runtime.clients.documents.send(
      new PutCommand({ TableName: runtime.env.IMAGE_CACHE_TABLE, Item: { pk: 'iam', sk: 'test' } }),
    );
  }
  return runtime.clients.events.send(
    new PutEventsCommand({
      Entries: [{ Source: 'aws.ec2', DetailType: 'EC2 Instance State-change Notification', Detail: '{}' }],
    }),
  );
};

const failure = async (promise: Promise<unknown>) => {
  const error = (await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  )) as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  return { name: error?.name, status: error?.$metadata?.httpStatusCode, message: error?.message ?? '' };
};

describe('IAM on the local cloud', () => {
  let cloud: LocalCloud;
  let instanceId: string;

  beforeAll(async () => {
    cloud = await startLocalCloud({
      handlers: { placement: outsideTheRole },
      documents: [],
      behaviours: {},
    });
    const imageId = cloud.ec2.registerImage({ name: 'iam-test', rootSizeGiB: 8 });
    // The test itself acts as the account's administrator: outside any invocation, no role applies.
    instanceId = await launchOneInstance(cloud, 'placement', imageId);
  });

  afterAll(async () => {
    await cloud?.stop();
  });

  it('refuses an EC2 call outside the role with UnauthorizedOperation and leaves the instance alone', async () => {
    const refused = await failure(cloud.invoke('placement', { attempt: 'terminate', instanceId }));

    expect(refused.name).toBe('UnauthorizedOperation');
    expect(refused.status).toBe(403);
    expect(refused.message).toContain('warmboot-placement-role');
    expect(refused.message).toContain(`ec2:TerminateInstances on resource: arn:aws:ec2:${cloud.region}`);
    expect(cloud.ec2.instance(instanceId)?.state).not.toMatch(/shutting-down|terminated/);
  });

  it('refuses a DynamoDB PutItem to a table the role only reads and updates, before the request reaches DynamoDB Local', async () => {
    const refused = await failure(cloud.invoke('placement', { attempt: 'write', instanceId }));
    const { Item } = await cloud.documents.send(
      new GetCommand({ TableName: cloud.tables.imageCache, Key: { pk: 'iam', sk: 'test' } }),
    );

    expect(refused.name).toBe('AccessDeniedException');
    expect(refused.message).toContain(`dynamodb:PutItem on resource: arn:aws:dynamodb:${cloud.region}:`);
    expect(refused.message).toContain(`table/${cloud.tables.imageCache}`);
    expect(Item).toBeUndefined();
  });

  it('refuses PutEvents of anything but its own facts on the facts bus', async () => {
    const refused = await failure(cloud.invoke('placement', { attempt: 'spoof', instanceId }));

    expect(refused.name).toBe('AccessDeniedException');
    expect(refused.message).toContain('events:PutEvents');
  });

  it('counts every denial per function and action', () => {
    expect(cloud.iam.stats().denials).toEqual({
      placement: { 'ec2:TerminateInstances': 1, 'dynamodb:PutItem': 1, 'events:PutEvents': 1 },
    });
    expect(cloud.iam.denials().map((denial) => denial.functionId)).toEqual([
      'placement',
      'placement',
      'placement',
    ]);
  });
});
