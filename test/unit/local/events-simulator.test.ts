import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { beforeEach, describe, expect, it } from 'vitest';
import { type EventEnvelope, LocalEventBus } from '../../../local/bus';
import { VirtualClock } from '../../../local/clock';
import { createEventsSimulator } from '../../../local/events-simulator';
import { FaultInjector } from '../../../local/faults';
import { attachSimulator } from '../../../local/sdk-bridge';

describe('the local EventBridge API (PutEvents)', () => {
  let client: EventBridgeClient;
  let faults: FaultInjector;
  let onBus: EventEnvelope[];
  let buses: string[];

  beforeEach(() => {
    const bus = new LocalEventBus({
      clock: new VirtualClock(),
      region: 'us-east-1',
      accountId: '123456789012',
    });
    onBus = [];
    buses = [];
    bus.onEvent((event, name) => {
      onBus.push(event);
      buses.push(name);
    });
    faults = new FaultInjector();
    client = new EventBridgeClient({
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      endpoint: 'http://127.0.0.1:9',
      maxAttempts: 1,
    });
    attachSimulator(client, createEventsSimulator(bus, faults));
  });

  const entry = (detail: string, extra: Record<string, unknown> = {}) => ({
    Source: 'warmboot',
    DetailType: 'Server Ready',
    Detail: detail,
    ...extra,
  });

  it('puts each valid entry on the bus and answers with its event id', async () => {
    const output = await client.send(
      new PutEventsCommand({
        Entries: [entry('{"pool":"web"}', { Resources: ['arn:aws:ec2:::instance/i-1'] })],
      }),
    );

    expect(output.FailedEntryCount).toBe(0);
    expect(onBus).toHaveLength(1);
    expect(output.Entries).toEqual([{ EventId: onBus[0]?.id }]);
    expect(onBus[0]).toMatchObject({
      source: 'warmboot',
      'detail-type': 'Server Ready',
      detail: { pool: 'web' },
      resources: ['arn:aws:ec2:::instance/i-1'],
    });
  });

  it('puts each entry on the bus it names (name or ARN), and refuses a bus that does not exist', async () => {
    const output = await client.send(
      new PutEventsCommand({
        Entries: [
          entry('{}', { EventBusName: 'warmboot-facts', Source: 'warmboot.fact' }),
          entry('{}', { EventBusName: 'arn:aws:events:us-east-1:123456789012:event-bus/warmboot-requests' }),
          entry('{}', { EventBusName: 'someone-elses' }),
          entry('{}'),
        ],
      }),
    );

    expect(output.Entries?.map((result) => result.ErrorCode ?? 'ok')).toEqual([
      'ok',
      'ok',
      'InvalidArgument',
      'ok',
    ]);
    expect(buses).toEqual(['warmboot-facts', 'warmboot-requests', 'default']);
  });

  it('refuses an aws.* source from anyone but AWS (PutEventsResultEntry: NotAuthorizedForSourceException)', async () => {
    const output = await client.send(
      new PutEventsCommand({
        Entries: [
          entry('{"state":"running"}', {
            Source: 'aws.ec2',
            DetailType: 'EC2 Instance State-change Notification',
          }),
        ],
      }),
    );

    expect(output.Entries?.map((result) => result.ErrorCode)).toEqual(['NotAuthorizedForSourceException']);
    expect(onBus).toEqual([]);
  });

  it('fails bad entries one by one, as EventBridge does, and puts the rest', async () => {
    const output = await client.send(
      new PutEventsCommand({
        Entries: [
          entry('not json'),
          entry('["an","array"]'),
          entry('{}', { Source: undefined }),
          entry('{"ok":true}'),
        ],
      }),
    );

    expect(output.FailedEntryCount).toBe(3);
    expect(output.Entries?.map((result) => result.ErrorCode ?? 'ok')).toEqual([
      'MalformedDetail',
      'MalformedDetail',
      'InvalidArgument',
      'ok',
    ]);
    expect(onBus.map((event) => event.detail)).toEqual([{ ok: true }]);
  });

  it('refuses more than 10 entries, or more than 256 KB, as a whole', async () => {
    await expect(
      client.send(new PutEventsCommand({ Entries: Array.from({ length: 11 }, () => entry('{}')) })),
    ).rejects.toMatchObject({ name: 'ValidationException' });
    await expect(
      client.send(
        new PutEventsCommand({ Entries: [entry(JSON.stringify({ blob: 'x'.repeat(256 * 1024) }))] }),
      ),
    ).rejects.toMatchObject({ name: 'ValidationException' });
    expect(onBus).toEqual([]);
  });

  it('fails the call when fault injection says so', async () => {
    faults.failNextCall(
      { service: 'events', operation: 'PutEvents' },
      { code: 'InternalFailure', httpStatusCode: 500 },
    );

    await expect(client.send(new PutEventsCommand({ Entries: [entry('{}')] }))).rejects.toMatchObject({
      name: 'InternalFailure',
    });
    expect(onBus).toEqual([]);
  });
});
