import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import type { Context } from 'aws-lambda';
import { beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createAwsClients } from '../../../functions/shared/aws-clients';
import { systemClock } from '../../../functions/shared/clock';
import { EventRegistry, route } from '../../../functions/shared/event-registry';
import { createLambdaHandler } from '../../../functions/shared/lambda';
import type { Runtime } from '../../../functions/shared/runtime';
import { attachSimulator } from '../../../local/sdk-bridge';

const context = {
  functionName: 'warmboot-test',
  awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e812345678',
  getRemainingTimeInMillis: () => 30_000,
} as unknown as Context;

const operatorEvent = (detail: unknown) => ({
  version: '0',
  id: '9f1d6b2e-1c3a-4a53-9d5e-0a0f4c2b7e11',
  'detail-type': 'Pin Image',
  source: 'warmboot',
  account: '123456789012',
  time: '2026-01-05T08:00:00Z',
  region: 'us-east-1',
  resources: [],
  detail,
});

describe('the shared Lambda chain', () => {
  let published: Record<string, unknown>[];
  let runtime: Runtime;

  beforeEach(() => {
    published = [];
    const clients = createAwsClients({
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      endpoints: { ec2: 'http://127.0.0.1:9', ssm: 'http://127.0.0.1:9', events: 'http://127.0.0.1:9' },
    });
    attachSimulator(clients.events, async (operation, input) => {
      if (operation === 'PutEvents') published.push(...(input.Entries as Record<string, unknown>[]));
      return { FailedEntryCount: 0, Entries: [] };
    });
    runtime = {
      functionName: 'warmboot-test',
      clock: systemClock,
      random: () => 0.5,
      clients,
      logger: new Logger({ serviceName: 'test', logLevel: 'SILENT' }),
      metrics: new Metrics({ namespace: 'Test', serviceName: 'test' }),
      tracer: new Tracer({ serviceName: 'test', enabled: false }),
      env: {},
    };
  });

  const pinned: string[] = [];
  const registry = new EventRegistry([
    route('warmboot', 'Pin Image', z.object({ image: z.string().regex(/^[a-z0-9:.-]+$/) }), async (event) => {
      pinned.push(event.detail.image);
      return { pinned: event.detail.image };
    }),
  ]);

  it('dispatches a registered event to its handler with the parsed detail', async () => {
    const handler = createLambdaHandler(registry, runtime, { idempotent: false });

    const outcome = await handler(operatorEvent({ image: 'nginx:1.27' }), context);

    expect(outcome).toEqual({
      status: 'handled',
      source: 'warmboot',
      detailType: 'Pin Image',
      result: { pinned: 'nginx:1.27' },
    });
  });

  it('rejects a malformed operator event naming the field and reports it back as a fact', async () => {
    const handler = createLambdaHandler(registry, runtime, { idempotent: false });

    const outcome = await handler(operatorEvent({ image: 'nginx;reboot' }), context);

    expect(outcome).toMatchObject({
      status: 'rejected',
      error: { code: 'ValidationError', field: 'detail.image' },
    });
    expect(published).toHaveLength(1);
    expect(published[0]).toMatchObject({ Source: 'warmboot', DetailType: 'Request Rejected' });
    expect(JSON.parse(String(published[0]?.Detail))).toMatchObject({
      requestId: '9f1d6b2e-1c3a-4a53-9d5e-0a0f4c2b7e11',
      requestType: 'Pin Image',
      error: { field: 'detail.image' },
    });
  });

  it('treats an event nobody registered as a logged no-op', async () => {
    const handler = createLambdaHandler(registry, runtime, { idempotent: false });

    const outcome = await handler({ ...operatorEvent({}), 'detail-type': 'Something Else' }, context);

    expect(outcome).toEqual({ status: 'ignored', reason: 'no handler for warmboot / Something Else' });
    expect(published).toHaveLength(0);
  });

  it('rejects something that is not an EventBridge event, naming the envelope field', async () => {
    const handler = createLambdaHandler(registry, runtime, { idempotent: false });

    const outcome = await handler({ hello: 'world' }, context);

    expect(outcome).toMatchObject({
      status: 'rejected',
      error: { code: 'ValidationError', field: 'version' },
    });
  });
});
