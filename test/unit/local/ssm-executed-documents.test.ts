import { RunInstancesCommand } from '@aws-sdk/client-ec2';
import { GetCommandInvocationCommand, SendCommandCommand } from '@aws-sdk/client-ssm';
import { describe, expect, it } from 'vitest';
import { DOCUMENTS, INITIALIZE_DOCUMENT } from '../../../functions/pools/documents';
import { type CommandDocument, deployedDocumentName } from '../../../functions/shared/ssm-document';
import { createPoolBehaviours } from '../../../local/ssm/behaviours/pools';
import { type Cloud, createCloud } from './ec2-harness';

/**
 * The SSM simulator renders the pool documents as the agent does and runs them in a real shell
 * (dash on a Debian/Ubuntu AMI, bash on Amazon Linux) before their modelled effect: what the
 * agent would fail, the local cloud fails (local/ssm/execute.ts).
 */
const initialize = DOCUMENTS.find((document) => document.name === INITIALIZE_DOCUMENT) as CommandDocument;

/** The initialize document as it was before finding R3: bash syntax with no shebang. */
const withoutShebang: CommandDocument = {
  ...initialize,
  mainSteps: initialize.mainSteps.map((step) => {
    const inputs = step.inputs as { runCommand?: string[] };
    return inputs.runCommand
      ? {
          ...step,
          inputs: { ...inputs, runCommand: inputs.runCommand.filter((line) => !line.startsWith('#!')) },
        }
      : step;
  }),
};

const cloudWith = async (document: CommandDocument) =>
  createCloud({ documents: [document], behaviours: createPoolBehaviours({ linuxInitializeSeconds: 1 }) });

const launchOn = async (cloud: Cloud, imageName: string): Promise<string> => {
  const imageId = cloud.ec2.registerImage({ name: imageName, rootSizeGiB: 8 });
  const reservation = await cloud.run(() =>
    cloud.ec2Client.send(new RunInstancesCommand({ ImageId: imageId, MinCount: 1, MaxCount: 1 })),
  );
  await cloud.settle();
  return reservation.Instances?.[0]?.InstanceId ?? '';
};

const initializeOn = async (
  cloud: Cloud,
  instanceId: string,
  sent: { document: CommandDocument; version?: string } = { document: initialize },
) => {
  const command = await cloud.run(() =>
    cloud.ssmClient.send(
      new SendCommandCommand({
        DocumentName: deployedDocumentName(sent.document),
        ...(sent.version ? { DocumentVersion: sent.version } : {}),
        InstanceIds: [instanceId],
        Parameters: {
          platform: ['linux'],
          packages: ['git,docker'],
          containerImages: [''],
          generalize: ['false'],
        },
      }),
    ),
  );
  await cloud.settle();
  return cloud.run(() =>
    cloud.ssmClient.send(
      new GetCommandInvocationCommand({
        CommandId: command.Command?.CommandId ?? '',
        InstanceId: instanceId,
      }),
    ),
  );
};

describe('pool documents run for real in the SSM simulator', () => {
  it.each(['ubuntu-22.04', 'debian-12', 'amazon-linux-2023'])(
    'initializes a member on %s',
    async (imageName) => {
      const cloud = await cloudWith(initialize);
      const instanceId = await launchOn(cloud, imageName);

      const invocation = await initializeOn(cloud, instanceId);

      expect(invocation).toMatchObject({ Status: 'Success' });
      expect(cloud.ssm.agent(instanceId).files.get('package:git')).toBe('installed');
    },
  );

  it('fails a bash script with no shebang on Ubuntu, where sh is dash, as the agent would', async () => {
    const cloud = await cloudWith(withoutShebang);
    const instanceId = await launchOn(cloud, 'ubuntu-22.04');

    const invocation = await initializeOn(cloud, instanceId, { document: withoutShebang });

    expect(invocation).toMatchObject({ Status: 'Failed' });
    expect(invocation.StandardOutputContent).toMatch(/pipefail/);
    expect(cloud.ssm.agent(instanceId).files.get('initialized')).toBeUndefined();
  });

  it('runs the version warmboot pins, not a newer default someone published outside the stack', async () => {
    const cloud = await cloudWith(initialize);
    const instanceId = await launchOn(cloud, 'ubuntu-22.04');
    const deployedName = deployedDocumentName(initialize);
    // An edit in the console: UpdateDocument, then UpdateDocumentDefaultVersion to the new one.
    cloud.ssm.publishDocumentVersion(deployedName, withoutShebang, { makeDefault: true });

    const pinned = await initializeOn(cloud, instanceId, { document: initialize, version: '1' });
    const byDefault = await initializeOn(cloud, instanceId, { document: initialize });

    expect(pinned).toMatchObject({ Status: 'Success', DocumentName: deployedName, DocumentVersion: '1' });
    expect(byDefault).toMatchObject({ Status: 'Failed', DocumentVersion: '2' });
  });

  it('refuses a version that does not exist (InvalidDocumentVersion) or is malformed (ValidationException)', async () => {
    const cloud = await cloudWith(initialize);
    const instanceId = await launchOn(cloud, 'amazon-linux-2023');

    await expect(
      initializeOn(cloud, instanceId, { document: initialize, version: '2' }),
    ).rejects.toMatchObject({
      name: 'InvalidDocumentVersion',
    });
    await expect(
      initializeOn(cloud, instanceId, { document: initialize, version: 'latest' }),
    ).rejects.toMatchObject({ name: 'ValidationException' });
  });
});
