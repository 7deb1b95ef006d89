import { StartInstancesCommand, StopInstancesCommand } from '@aws-sdk/client-ec2';
import {
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  SendCommandCommand,
} from '@aws-sdk/client-ssm';
import { describe, expect, it } from 'vitest';
import { deployedDocumentName } from '../../../functions/shared/ssm-document';
import { AMAZON_SSM_MANAGED_INSTANCE_CORE } from '../../../local/iam/instance-profiles';
import { type DocumentBehaviour, SYSPREP_GENERALIZED } from '../../../local/ssm/agent';
import { shellScriptDocument } from '../../support/ssm-documents';
import { type Cloud, createCloud, launch } from './ec2-harness';

/**
 * The SSM agent's registration (local/ssm/registration.ts): an EC2 instance is a managed node only
 * with an instance profile whose role carries AmazonSSMManagedInstanceCore, or with Default Host
 * Management Configuration on (SSM User Guide, setup-instance-permissions); SendCommand answers
 * InvalidInstanceId otherwise (API_SendCommand). A first registration takes tens of seconds on
 * Linux and minutes on Windows (latency.ts, docs/ssm-fidelity.md "Agent registration").
 */

const SECOND = 1000;
const MINUTE = 60 * SECOND;

const HELLO = shellScriptDocument('Warmboot-TestHello', 'says hello', {
  parameters: {},
  step: 'hello',
  runCommand: 'echo hello',
});
const hello: DocumentBehaviour = async () => ({ status: 'Success', output: 'hello' });

const strictCloud = (options: { defaultHostManagement?: boolean } = {}) =>
  createCloud({
    latency: 'calibrated',
    defaultHostManagement: options.defaultHostManagement ?? false,
    documents: [HELLO],
    behaviours: { [HELLO.name]: hello },
  });

/** The instance profile `ssm-core`, holding AmazonSSMManagedInstanceCore; its ARN. */
const ssmCoreProfile = (cloud: Cloud) =>
  cloud.instanceProfiles.create('ssm-core', { managedPolicyArns: [AMAZON_SSM_MANAGED_INSTANCE_CORE] });

/** A Windows Server 2022 image; its id. */
const registerWindows = (cloud: Cloud) =>
  cloud.ec2.registerImage({ name: 'windows-2022', rootSizeGiB: 30, platform: 'windows' });

/** Lets time pass until the instance's OS has booted; when it did. */
const untilBooted = async (cloud: Cloud, instanceId: string): Promise<number> => {
  while (cloud.ec2.instance(instanceId)?.osReadyAt === undefined) await cloud.clock.advanceBy(100);
  return cloud.ec2.instance(instanceId)?.osReadyAt ?? 0;
};

const onlineNodes = async (cloud: Cloud): Promise<string[]> => {
  const answer = await cloud.run(() =>
    cloud.ssmClient.send(
      new DescribeInstanceInformationCommand({ Filters: [{ Key: 'PingStatus', Values: ['Online'] }] }),
    ),
  );
  return (answer.InstanceInformationList ?? []).map((node) => node.InstanceId ?? '');
};

/** Steps a second at a time until the agent is Online (at most `limitMs`); how long after `from`. */
const registeredAfter = async (cloud: Cloud, instanceId: string, from: number, limitMs: number) => {
  while (!(await onlineNodes(cloud)).includes(instanceId)) {
    if (cloud.clock.now() - from > limitMs) return undefined;
    await cloud.clock.advanceBy(SECOND);
  }
  return cloud.clock.now() - from;
};

const send = (cloud: Cloud, instanceId: string) =>
  cloud.run(() =>
    cloud.ssmClient.send(
      new SendCommandCommand({ DocumentName: deployedDocumentName(HELLO), InstanceIds: [instanceId] }),
    ),
  );

const statusOf = async (cloud: Cloud, commandId: string, instanceId: string) =>
  (
    await cloud.run(() =>
      cloud.ssmClient.send(new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instanceId })),
    )
  ).StatusDetails;

describe('SSM agent registration', () => {
  it('without an instance profile and without DHMC the agent never registers: InvalidInstanceId for ever', async () => {
    const cloud = await strictCloud();
    const instanceId = await launch(cloud);
    await untilBooted(cloud, instanceId);

    await expect(send(cloud, instanceId)).rejects.toMatchObject({ name: 'InvalidInstanceId' });
    await cloud.clock.advanceBy(6 * 60 * MINUTE);

    await expect(send(cloud, instanceId)).rejects.toMatchObject({ name: 'InvalidInstanceId' });
    expect(await onlineNodes(cloud)).toEqual([]);
  });

  it('a profile whose role lacks AmazonSSMManagedInstanceCore is the same as none', async () => {
    const cloud = await strictCloud();
    cloud.instanceProfiles.create('web-app', { allowedActions: ['s3:GetObject', 'ssm:GetParameter'] });
    const instanceId = await launch(cloud, { IamInstanceProfile: { Name: 'web-app' } });
    await untilBooted(cloud, instanceId);
    await cloud.clock.advanceBy(2 * 60 * MINUTE);

    await expect(send(cloud, instanceId)).rejects.toMatchObject({ name: 'InvalidInstanceId' });
  });

  it('a profile with the core policy registers a Linux agent 20-60 s after boot; commands then run', async () => {
    const cloud = await strictCloud();
    ssmCoreProfile(cloud);
    const instanceId = await launch(cloud, { IamInstanceProfile: { Name: 'ssm-core' } });
    const bootedAt = await untilBooted(cloud, instanceId);

    await expect(send(cloud, instanceId)).rejects.toMatchObject({ name: 'InvalidInstanceId' });
    const delay = await registeredAfter(cloud, instanceId, bootedAt, 2 * MINUTE);

    expect(delay).toBeGreaterThanOrEqual(20 * SECOND);
    expect(delay).toBeLessThanOrEqual(61 * SECOND);
    const sent = await send(cloud, instanceId);
    await cloud.clock.advanceBy(MINUTE);
    expect(await statusOf(cloud, sent.Command?.CommandId ?? '', instanceId)).toBe('Success');
  });

  it('a profile named by ARN counts as the profile', async () => {
    const cloud = await strictCloud();
    const arn = ssmCoreProfile(cloud);
    const instanceId = await launch(cloud, { IamInstanceProfile: { Arn: arn } });
    const bootedAt = await untilBooted(cloud, instanceId);

    expect(await registeredAfter(cloud, instanceId, bootedAt, 2 * MINUTE)).toBeDefined();
  });

  it('a Windows agent takes minutes: 4 to 15 after boot', async () => {
    const cloud = await strictCloud();
    ssmCoreProfile(cloud);
    const windowsImage = registerWindows(cloud);
    const linux = await launch(cloud, { IamInstanceProfile: { Name: 'ssm-core' } });
    const windows = await launch(cloud, { ImageId: windowsImage, IamInstanceProfile: { Name: 'ssm-core' } });
    const bootedAt = await untilBooted(cloud, windows);

    await cloud.clock.advanceBy(2 * MINUTE);
    expect(await onlineNodes(cloud)).toEqual([linux]);
    const delay = await registeredAfter(cloud, windows, bootedAt, 20 * MINUTE);

    expect(delay).toBeGreaterThanOrEqual(4 * MINUTE);
    expect(delay).toBeLessThanOrEqual(15 * MINUTE + SECOND);
  });

  it('with Default Host Management Configuration on, no instance profile is needed', async () => {
    const cloud = await strictCloud({ defaultHostManagement: true });
    const instanceId = await launch(cloud);
    const bootedAt = await untilBooted(cloud, instanceId);

    expect(await registeredAfter(cloud, instanceId, bootedAt, 2 * MINUTE)).toBeGreaterThanOrEqual(
      20 * SECOND,
    );
  });

  it('DHMC turned on later is picked up at the agent retry 25-30 min after the refusal, not at once', async () => {
    const cloud = await strictCloud();
    const instanceId = await launch(cloud);
    const bootedAt = await untilBooted(cloud, instanceId);
    await cloud.clock.advanceBy(2 * MINUTE);

    cloud.ssm.setDefaultHostManagement(true);
    await cloud.clock.advanceBy(20 * MINUTE);
    expect(await onlineNodes(cloud)).toEqual([]);
    const delay = await registeredAfter(cloud, instanceId, bootedAt, 40 * MINUTE);

    expect(delay).toBeGreaterThanOrEqual(25 * MINUTE + 20 * SECOND);
    expect(delay).toBeLessThanOrEqual(30 * MINUTE + 61 * SECOND);
  });

  it('with the metadata service disabled the agent has no credentials, profile or not', async () => {
    const cloud = await strictCloud({ defaultHostManagement: true });
    ssmCoreProfile(cloud);
    const instanceId = await launch(cloud, {
      IamInstanceProfile: { Name: 'ssm-core' },
      MetadataOptions: { HttpEndpoint: 'disabled' },
    });
    await untilBooted(cloud, instanceId);
    await cloud.clock.advanceBy(60 * MINUTE);

    await expect(send(cloud, instanceId)).rejects.toMatchObject({ name: 'InvalidInstanceId' });
  });

  it('a role that may register but lacks the message channels is Online yet never gets a command', async () => {
    const cloud = await strictCloud();
    cloud.instanceProfiles.create('report-only', { allowedActions: ['ssm:UpdateInstanceInformation'] });
    const instanceId = await launch(cloud, { IamInstanceProfile: { Name: 'report-only' } });
    const bootedAt = await untilBooted(cloud, instanceId);
    expect(await registeredAfter(cloud, instanceId, bootedAt, 2 * MINUTE)).toBeDefined();

    const sent = await send(cloud, instanceId);
    await cloud.clock.advanceBy(61 * MINUTE);

    expect(await statusOf(cloud, sent.Command?.CommandId ?? '', instanceId)).toBe('Delivery Timed Out');
  });

  it('after a Windows sysprep generalization the next boot keeps the agent away for minutes; commands wait', async () => {
    const cloud = await strictCloud();
    ssmCoreProfile(cloud);
    const windowsImage = registerWindows(cloud);
    const instanceId = await launch(cloud, {
      ImageId: windowsImage,
      IamInstanceProfile: { Name: 'ssm-core' },
    });
    const firstBoot = await untilBooted(cloud, instanceId);
    expect(await registeredAfter(cloud, instanceId, firstBoot, 20 * MINUTE)).toBeDefined();
    cloud.ssm.agent(instanceId).files.set(SYSPREP_GENERALIZED, 'true');
    await cloud.run(() => cloud.ec2Client.send(new StopInstancesCommand({ InstanceIds: [instanceId] })));
    await cloud.clock.advanceBy(5 * MINUTE);

    await cloud.run(() => cloud.ec2Client.send(new StartInstancesCommand({ InstanceIds: [instanceId] })));
    const sent = await send(cloud, instanceId);
    const secondBoot = await untilBooted(cloud, instanceId);
    await cloud.clock.advanceBy(3 * MINUTE);
    expect(await statusOf(cloud, sent.Command?.CommandId ?? '', instanceId)).toBe('Pending');
    const delay = await registeredAfter(cloud, instanceId, secondBoot, 20 * MINUTE);
    await cloud.clock.advanceBy(SECOND);

    expect(delay).toBeGreaterThanOrEqual(4 * MINUTE);
    expect(await statusOf(cloud, sent.Command?.CommandId ?? '', instanceId)).toBe('Success');
  });

  it('a registered Linux node is back online as soon as its OS booted again after a stop and start', async () => {
    const cloud = await strictCloud();
    ssmCoreProfile(cloud);
    const instanceId = await launch(cloud, { IamInstanceProfile: { Name: 'ssm-core' } });
    const firstBoot = await untilBooted(cloud, instanceId);
    expect(await registeredAfter(cloud, instanceId, firstBoot, 2 * MINUTE)).toBeDefined();
    await cloud.run(() => cloud.ec2Client.send(new StopInstancesCommand({ InstanceIds: [instanceId] })));
    await cloud.clock.advanceBy(5 * MINUTE);

    expect(await onlineNodes(cloud)).toEqual([]);
    await cloud.run(() => cloud.ec2Client.send(new StartInstancesCommand({ InstanceIds: [instanceId] })));
    const secondBoot = await untilBooted(cloud, instanceId);

    expect(await registeredAfter(cloud, instanceId, secondBoot, MINUTE)).toBe(0);
  });
});
