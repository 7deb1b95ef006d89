import {
  RunInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import {
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  ListCommandInvocationsCommand,
  SendCommandCommand,
  type SendCommandCommandInput,
} from '@aws-sdk/client-ssm';
import { describe, expect, it } from 'vitest';
import { classifyAwsError } from '../../../functions/shared/aws-errors';
import { deployedDocumentName } from '../../../functions/shared/ssm-document';
import type { DocumentBehaviour } from '../../../local/ssm/agent';
import { shellScriptDocument } from '../../support/ssm-documents';
import { type Cloud, createCloud, type RecordedEvent } from './ec2-harness';

const MARK = shellScriptDocument('Warmboot-TestMark', 'Writes a marker file', {
  parameters: {
    marker: { type: 'String', description: 'marker name', allowedPattern: '^[a-z-]{1,32}$' },
    seconds: {
      type: 'String',
      description: 'how long it takes',
      allowedPattern: '^\\d{1,4}$',
      default: '10',
    },
  },
  step: 'mark',
  runCommand: 'touch {{ marker }}',
});

/** Takes `seconds`, then fails for marker "fail" and sets the marker otherwise. */
const mark: DocumentBehaviour = async ({ host, parameters, clock }) => {
  await clock.sleep(Number(parameters.seconds?.[0]) * 1000);
  const [marker = ''] = parameters.marker ?? [];
  if (marker === 'fail') return { status: 'Failed', output: 'asked to fail' };
  host.files.set(marker, 'true');
  return { status: 'Success', output: `marked ${marker}` };
};

const cloudWithDocuments = (latency: 'zero' | 'calibrated' = 'zero') =>
  createCloud({ latency, documents: [MARK], behaviours: { [MARK.name]: mark } });

const launch = async (cloud: Cloud, count = 1, tags: Record<string, string> = {}): Promise<string[]> => {
  const reservation = await cloud.run(() =>
    cloud.ec2Client.send(
      new RunInstancesCommand({
        ImageId: cloud.imageId,
        MinCount: count,
        MaxCount: count,
        TagSpecifications: [
          { ResourceType: 'instance', Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) },
        ],
      }),
    ),
  );
  await cloud.settle();
  return reservation.Instances?.map((instance) => instance.InstanceId ?? '') ?? [];
};

/** One instance, launched and then stopped; its id. */
const launchStopped = async (cloud: Cloud): Promise<string> => {
  const [instanceId = ''] = await launch(cloud);
  await cloud.run(() => cloud.ec2Client.send(new StopInstancesCommand({ InstanceIds: [instanceId] })));
  await cloud.settle();
  return instanceId;
};

const send = (cloud: Cloud, input: Partial<SendCommandCommandInput>) =>
  cloud.run(() =>
    cloud.ssmClient.send(
      new SendCommandCommand({
        DocumentName: deployedDocumentName(MARK),
        Parameters: { marker: ['ready'] },
        ...input,
      }),
    ),
  );

const invocationEvents = (events: readonly RecordedEvent[]) =>
  events
    .filter((event) => event.detailType === 'EC2 Command Invocation Status-change Notification')
    .map((event) => ({ at: event.at, instanceId: event.detail['instance-id'], status: event.detail.status }));

describe('SSM SendCommand', () => {
  it('runs the document behaviour and emits InProgress then Success with the published detail shape', async () => {
    const cloud = await cloudWithDocuments();
    const [instanceId = ''] = await launch(cloud);

    const sent = await send(cloud, { InstanceIds: [instanceId] });
    await cloud.settle();

    const commandId = sent.Command?.CommandId ?? '';
    expect(invocationEvents(cloud.events).map((event) => event.status)).toEqual(['InProgress', 'Success']);
    const event = cloud.events.find(
      (candidate) => candidate.detailType === 'EC2 Command Invocation Status-change Notification',
    );
    expect(event).toMatchObject({
      source: 'aws.ssm',
      resources: [`arn:aws:ec2:us-east-1:123456789012:instance/${instanceId}`],
    });
    expect(Object.keys(event?.detail ?? {})).toEqual([
      'command-id',
      'document-name',
      'instance-id',
      'requested-date-time',
      'status',
    ]);
    const invocation = await cloud.run(() =>
      cloud.ssmClient.send(new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instanceId })),
    );
    expect(invocation).toMatchObject({
      Status: 'Success',
      ResponseCode: 0,
      StandardOutputContent: 'marked ready',
    });
    expect(cloud.ssm.agent(instanceId).files.get('ready')).toBe('true');
  });

  it('SendCommand rejects a parameter that fails allowedPattern with InvalidParameters', async () => {
    const cloud = await cloudWithDocuments();
    const [instanceId = ''] = await launch(cloud);

    const error = await send(cloud, {
      InstanceIds: [instanceId],
      Parameters: { marker: ['$(reboot)'] },
    }).catch((caught: unknown) => caught);

    expect(error).toMatchObject({ name: 'InvalidParameters' });
    expect(classifyAwsError(error)).toBe('invalid-parameter');
  });

  it('SendCommand with an unregistered document fails with InvalidDocument', async () => {
    const cloud = await cloudWithDocuments();
    const [instanceId = ''] = await launch(cloud);

    await expect(
      send(cloud, { InstanceIds: [instanceId], DocumentName: 'Warmboot-Nope' }),
    ).rejects.toMatchObject({ name: 'InvalidDocument' });
  });

  it('SendCommand accepts at most 50 instance ids (ValidationException)', async () => {
    const cloud = await cloudWithDocuments();
    const instanceIds = await launch(cloud, 51);

    await expect(send(cloud, { InstanceIds: instanceIds })).rejects.toMatchObject({
      name: 'ValidationException',
    });
  });

  it('an instance whose agent never registered is not a managed node (InvalidInstanceId)', async () => {
    const cloud = await cloudWithDocuments('calibrated');
    const reservation = await cloud.run(() =>
      cloud.ec2Client.send(new RunInstancesCommand({ ImageId: cloud.imageId, MinCount: 1, MaxCount: 1 })),
    );

    const sent = send(cloud, { InstanceIds: [reservation.Instances?.[0]?.InstanceId ?? ''] });

    await expect(sent).rejects.toMatchObject({ name: 'InvalidInstanceId' });
  });

  it("a registered node's agent is back online 3.0 s after a start's running, once the OS booted", async () => {
    const cloud = await cloudWithDocuments('calibrated');
    const instanceId = await launchStopped(cloud);
    const online = () =>
      cloud
        .run(() =>
          cloud.ssmClient.send(
            new DescribeInstanceInformationCommand({ Filters: [{ Key: 'PingStatus', Values: ['Online'] }] }),
          ),
        )
        .then((answer) => answer.InstanceInformationList?.map((node) => node.InstanceId));

    await cloud.run(() => cloud.ec2Client.send(new StartInstancesCommand({ InstanceIds: [instanceId] })));
    while (cloud.ec2.instance(instanceId)?.state !== 'running') await cloud.clock.advanceBy(100);
    await cloud.clock.advanceBy(2_800);
    const before = await online();
    await cloud.clock.advanceBy(300);

    expect(before).toEqual([]);
    expect(await online()).toEqual([instanceId]);
  });

  it('MaxConcurrency limits running invocations', async () => {
    const cloud = await cloudWithDocuments();
    const instanceIds = await launch(cloud, 4);
    const start = cloud.elapsed();

    await send(cloud, {
      InstanceIds: instanceIds,
      MaxConcurrency: '2',
      Parameters: { marker: ['ready'], seconds: ['10'] },
    });
    await cloud.settle();

    const started = invocationEvents(cloud.events)
      .filter((event) => event.status === 'InProgress')
      .map((event) => event.at - start);
    expect(started).toEqual([0, 0, 10_000, 10_000]);
  });

  it('after more than MaxErrors failures no new invocation starts; the rest are Cancelled', async () => {
    const cloud = await cloudWithDocuments();
    const instanceIds = await launch(cloud, 4);

    const sent = await send(cloud, {
      InstanceIds: instanceIds,
      MaxConcurrency: '1',
      MaxErrors: '1',
      Parameters: { marker: ['fail'], seconds: ['1'] },
    });
    await cloud.settle();

    const invocations = await cloud.run(() =>
      cloud.ssmClient.send(new ListCommandInvocationsCommand({ CommandId: sent.Command?.CommandId })),
    );
    expect(invocations.CommandInvocations?.map((invocation) => invocation.Status)).toEqual([
      'Failed',
      'Failed',
      'Cancelled',
      'Cancelled',
    ]);
    const commandEvent = cloud.events.find(
      (event) => event.detailType === 'EC2 Command Status-change Notification',
    );
    expect(commandEvent?.detail.status).toBe('Failed');
  });

  it('Targets by tag reach every managed instance with the tag value', async () => {
    const cloud = await cloudWithDocuments();
    const web = await launch(cloud, 2, { 'warmboot:pool': 'web' });
    await launch(cloud, 1, { 'warmboot:pool': 'batch' });

    const sent = await send(cloud, { Targets: [{ Key: 'tag:warmboot:pool', Values: ['web'] }] });

    expect(sent.Command?.TargetCount).toBe(2);
    await cloud.settle();
    expect(
      cloud.ssm
        .invocations()
        .map((invocation) => invocation.instanceId)
        .sort(),
    ).toEqual([...web].sort());
  });

  it('a command to a stopped instance is Delayed, then runs once the instance is started', async () => {
    const cloud = await cloudWithDocuments();
    const instanceId = await launchStopped(cloud);

    await send(cloud, { InstanceIds: [instanceId] });
    const delayed = cloud.ssm.invocations()[0]?.status;
    await cloud.run(() => cloud.ec2Client.send(new StartInstancesCommand({ InstanceIds: [instanceId] })));
    await cloud.settle();

    expect(delayed).toBe('Delayed');
    expect(cloud.ssm.invocations()[0]?.status).toBe('Success');
  });

  it('a command never delivered within TimeoutSeconds ends TimedOut (Delivery Timed Out)', async () => {
    const cloud = await cloudWithDocuments();
    const instanceId = await launchStopped(cloud);

    await send(cloud, { InstanceIds: [instanceId], TimeoutSeconds: 60 });
    await cloud.clock.advanceBy(60_000);

    expect(cloud.ssm.invocations()[0]).toMatchObject({
      status: 'TimedOut',
      statusDetails: 'Delivery Timed Out',
    });
    expect(invocationEvents(cloud.events).at(-1)?.status).toBe('TimedOut');
  });

  it('an instance terminated before delivery makes the invocation Undeliverable', async () => {
    const cloud = await cloudWithDocuments();
    const instanceId = await launchStopped(cloud);
    await send(cloud, { InstanceIds: [instanceId] });

    await cloud.run(() => cloud.ec2Client.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] })));
    await cloud.settle();

    expect(cloud.ssm.invocations()[0]).toMatchObject({ status: 'Failed', statusDetails: 'Undeliverable' });
    expect(invocationEvents(cloud.events).at(-1)?.status).toBe('Undeliverable');
  });

  it('host state survives stop/start and is lost on terminate', async () => {
    const cloud = await cloudWithDocuments();
    const [instanceId = ''] = await launch(cloud);
    await send(cloud, { InstanceIds: [instanceId] });
    await cloud.settle();

    await cloud.run(() => cloud.ec2Client.send(new StopInstancesCommand({ InstanceIds: [instanceId] })));
    await cloud.settle();
    await cloud.run(() => cloud.ec2Client.send(new StartInstancesCommand({ InstanceIds: [instanceId] })));
    await cloud.settle();
    const afterRestart = cloud.ssm.agent(instanceId).files.get('ready');
    await cloud.run(() => cloud.ec2Client.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] })));
    await cloud.settle();

    expect(afterRestart).toBe('true');
    expect(cloud.ssm.agent(instanceId).files.has('ready')).toBe(false);
  });

  it('a stop during the run fails the invocation', async () => {
    const cloud = await cloudWithDocuments();
    const [instanceId = ''] = await launch(cloud);
    await send(cloud, { InstanceIds: [instanceId], Parameters: { marker: ['ready'], seconds: ['60'] } });

    await cloud.clock.advanceBy(1_000);
    await cloud.run(() => cloud.ec2Client.send(new StopInstancesCommand({ InstanceIds: [instanceId] })));
    await cloud.settle();

    expect(cloud.ssm.invocations()[0]?.status).toBe('Failed');
  });

  it('GetCommandInvocation for an unknown invocation fails with InvocationDoesNotExist', async () => {
    const cloud = await cloudWithDocuments();

    const get = cloud.run(() =>
      cloud.ssmClient.send(
        new GetCommandInvocationCommand({
          CommandId: '00000000-0000-4000-a000-000000000000',
          InstanceId: 'i-0123456789abcdef0',
        }),
      ),
    );

    await expect(get).rejects.toMatchObject({ name: 'InvocationDoesNotExist' });
  });

  it('DescribeInstanceInformation shows a stopped instance as ConnectionLost', async () => {
    const cloud = await cloudWithDocuments();
    const instanceId = await launchStopped(cloud);

    const answer = await cloud.run(() => cloud.ssmClient.send(new DescribeInstanceInformationCommand({})));

    expect(answer.InstanceInformationList?.map((node) => [node.InstanceId, node.PingStatus])).toEqual([
      [instanceId, 'ConnectionLost'],
    ]);
  });
});
