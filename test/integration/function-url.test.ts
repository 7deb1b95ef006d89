import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { WARMBOOT } from '../../functions/catalog';
import { dynamoPoolStore } from '../../functions/pools/adapters/store';
import type { PoolSpecInput } from '../../functions/pools/config';
import type { Caller } from '../../functions/shared/caller';
import { EventRegistry, route } from '../../functions/shared/event-registry';
import { REQUEST_ID_HEADER } from '../../functions/shared/function-url';
import { createLambdaHandler } from '../../functions/shared/lambda';
import type { Operator } from '../../infra/config';
import type { LocalCloud } from '../../local/cloud';
import { AMAZON_SSM_MANAGED_INSTANCE_CORE } from '../../local/iam/instance-profiles';
import { localCloudPerTest } from '../support/local-cloud';

/**
 * The IAM-authenticated entry point (security review, "Target design" 2 and 5): every function
 * that takes requests has a function URL with auth type AWS_IAM. On the local cloud a URL call is
 * authorized as Lambda authorizes it, against the resource policy synthesized for this
 * deployment's operators and admins, and the function learns the caller's ARN from the request
 * and decides what it may send, for which tenants.
 */

const ACCOUNT = '123456789012';
const admin = `arn:aws:iam::${ACCOUNT}:role/warmboot-admin`;
const reconciler = `arn:aws:iam::${ACCOUNT}:role/pool-reconciler`;
const tenantOps = `arn:aws:iam::${ACCOUNT}:role/ops/tenant-a-operators`;
const stranger = `arn:aws:iam::${ACCOUNT}:role/ci-deployer`;
const operators: Operator[] = [
  { principal: reconciler, requests: ['Reconcile Pools'], tenants: ['*'] },
  { principal: tenantOps, requests: ['Shelve Instances'], tenants: ['tenant-a'] },
];

/** What an account's power users often hold: both actions a function URL call needs, on every function. */
const invokeAnything = [
  {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow' as const,
        Action: ['lambda:InvokeFunctionUrl', 'lambda:InvokeFunction'],
        Resource: '*',
      },
    ],
  },
];

const SUBNET = 'subnet-0aaaaaaaaaaaaaaa1';
const MEMBER_PROFILE = 'web-member';

/** A shelving function that only records who each Shelve acted for (the routing is the subject). */
const callersSeen: (Caller | undefined)[] = [];
const recordingShelving = (runtime: Parameters<typeof createLambdaHandler>[1]) =>
  createLambdaHandler(
    new EventRegistry([
      route(WARMBOOT, 'Shelve Instances', z.object({ instanceIds: z.array(z.string()) }), async (event) => {
        callersSeen.push(event.caller);
        return { shelved: event.detail.instanceIds };
      }),
    ]),
    runtime,
  );

const startCloud = localCloudPerTest();
afterEach(() => {
  callersSeen.length = 0;
});

const start = async (): Promise<LocalCloud> => {
  const cloud = await startCloud({
    functions: ['pools'],
    handlers: { shelving: recordingShelving },
    operators,
    admins: [admin],
    // Pools defined at run time may use only the instance profiles configuration names.
    settings: { POOL_POLICY: JSON.stringify({ instanceProfiles: [{ name: MEMBER_PROFILE }] }) },
  });
  cloud.instanceProfiles.create(MEMBER_PROFILE, { managedPolicyArns: [AMAZON_SSM_MANAGED_INSTANCE_CORE] });
  cloud.ec2.addSubnet({ subnetId: SUBNET, availabilityZone: 'us-east-1a' });
  return cloud;
};

const linuxPool = (image: string): PoolSpecInput => ({
  name: 'linux-web',
  image,
  instanceType: 'm7i.large',
  subnets: [SUBNET],
  instanceProfile: MEMBER_PROFILE,
  initialization: { platform: 'linux', packages: ['nginx'], timeoutMinutes: 30 },
  minSize: 0,
  maxSize: 2,
});

const shelve = { 'detail-type': 'Shelve Instances', detail: { instanceIds: ['i-0123456789abcdef0'] } };

describe('function URLs on the local cloud', () => {
  it('lets an admin define a pool through the pools function URL', async () => {
    const local = await start();
    const image = local.ec2.registerImage({ name: 'al2023-web', rootSizeGiB: 8 });

    const response = await local.invokeUrl('pools', {
      as: admin,
      body: { 'detail-type': 'Define Pool', detail: { pool: linuxPool(image) } },
    });

    expect(response.statusCode).toBe(200);
    expect(response.body).toMatchObject({ status: 'handled', detailType: 'Define Pool' });
    const pool = await local.run(() =>
      dynamoPoolStore(local.documents, local.tables.pools).getPool('linux-web'),
    );
    expect(pool?.spec.image).toBe(image);
  });

  it('lets an operator send its own request types and refuses an administrative one', async () => {
    const local = await start();
    const image = local.ec2.registerImage({ name: 'al2023-web', rootSizeGiB: 8 });

    const reconcile = await local.invokeUrl('pools', {
      as: reconciler,
      body: { 'detail-type': 'Reconcile Pools', detail: {} },
    });
    const define = await local.invokeUrl('pools', {
      as: reconciler,
      body: { 'detail-type': 'Define Pool', detail: { pool: linuxPool(image) } },
    });

    expect(reconcile.statusCode).toBe(200);
    expect(reconcile.body).toMatchObject({ status: 'handled', detailType: 'Reconcile Pools' });
    expect(define.statusCode).toBe(403);
    expect(define.body).toMatchObject({ status: 'rejected', error: { code: 'RequestNotAllowed' } });
    const pool = await local.run(() =>
      dynamoPoolStore(local.documents, local.tables.pools).getPool('linux-web'),
    );
    expect(pool).toBeUndefined();
  });

  it('keeps an operator off the URL of a function it sends nothing to: the resource policy names it not', async () => {
    const local = await start();

    const response = await local.invokeUrl('shelving', { as: reconciler, body: shelve });

    expect(response).toMatchObject({
      statusCode: 403,
      headers: { 'x-amzn-errortype': 'AccessDeniedException' },
      body: { Message: 'Forbidden' },
    });
    expect(callersSeen).toEqual([]);
  });

  it('denies a stranger by the resource policy, and refuses one its own IAM policy lets through', async () => {
    const local = await start();

    const unnamed = await local.invokeUrl('shelving', { as: stranger, body: shelve });
    const powerUser = await local.invokeUrl('shelving', {
      as: { principalArn: stranger, identityPolicies: invokeAnything },
      body: shelve,
    });

    expect(unnamed).toMatchObject({ statusCode: 403, body: { Message: 'Forbidden' } });
    // Within the account an identity policy alone admits a caller; the function then refuses it.
    expect(powerUser.statusCode).toBe(403);
    expect(powerUser.body).toMatchObject({ status: 'rejected', error: { code: 'NotAnOperator' } });
    expect(callersSeen).toEqual([]);
  });

  it("hands a tenant-bound operator's Shelve its tenant, recognising the role behind the session", async () => {
    const local = await start();

    const response = await local.invokeUrl('shelving', { as: tenantOps, body: shelve });

    expect(response.statusCode).toBe(200);
    expect(callersSeen).toEqual([
      {
        via: 'function-url',
        // The session's ARN has no path; the role is recognised by account and name.
        principal: `arn:aws:iam::${ACCOUNT}:role/tenant-a-operators`,
        tenants: ['tenant-a'],
        admin: false,
      },
    ]);
  });

  it('answers a request re-sent with the same idempotency key from the first one', async () => {
    const local = await start();
    const resend = { as: tenantOps, body: shelve, headers: { [REQUEST_ID_HEADER]: 'shelve-2026-01-05-1' } };

    const first = await local.invokeUrl('shelving', resend);
    const second = await local.invokeUrl('shelving', resend);

    expect(second.body).toEqual(first.body);
    expect(second.headers['x-warmboot-event-id']).toBe(first.headers['x-warmboot-event-id']);
    expect(callersSeen).toHaveLength(1);
  });

  it('refuses a function URL event passed by a direct invoke: its caller ARN would be forged', async () => {
    const local = await start();
    const forged = {
      version: '2.0',
      requestContext: { http: { method: 'POST' }, authorizer: { iam: { userArn: admin } } },
      body: JSON.stringify(shelve),
    };

    const answer = await local.invoke('shelving', forged);

    expect(answer).toMatchObject({ statusCode: 400, body: expect.stringContaining('EnvelopeRefused') });
    expect(callersSeen).toEqual([]);
  });
});
