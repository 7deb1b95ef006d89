import { describe, expect, it } from 'vitest';
import { dynamoPoolStore } from '../../functions/pools/adapters/store';
import { documentNamed, INITIALIZE_DOCUMENT } from '../../functions/pools/documents';
import { type CommandDocument, deployedDocumentName } from '../../functions/shared/ssm-document';
import { sampleEvent } from '../support/events';
import { localCloudPerTest } from '../support/local-cloud';

const MINUTE = 60_000;
const SUBNET = 'subnet-0aaaaaaaaaaaaaaa1';

const definePoolEvent = sampleEvent('pools/define-pool.json');

const startCloud = localCloudPerTest();

const initialize = documentNamed(INITIALIZE_DOCUMENT) as CommandDocument;

/** What someone with ssm:UpdateDocument could publish: the same parameters, a script that fails. */
const tampered: CommandDocument = {
  ...initialize,
  mainSteps: initialize.mainSteps.map((step) => ({
    ...step,
    inputs: { ...(step.inputs as object), runCommand: ['#!/bin/sh', 'echo tampered; exit 7'] },
  })),
};

describe('SSM documents are pinned to the deployed version', () => {
  it('initializes pool members with the deployed script after someone made another version the default', async () => {
    const local = await startCloud({
      functions: ['pools'],
      // The account has Default Host Management Configuration on: the members' agents register (S4).
      defaultHostManagement: true,
    });
    local.ec2.addSubnet({ subnetId: SUBNET, availabilityZone: 'us-east-1a' });
    const image = local.ec2.registerImage({ name: 'al2023-web', rootSizeGiB: 8 });
    // UpdateDocument + UpdateDocumentDefaultVersion in the console, outside the stack.
    local.ssm.publishDocumentVersion(deployedDocumentName(initialize), tampered, { makeDefault: true });

    // Define Pool is an administrator's request: a direct invoke.
    const { answer } = await local.adminRequest(definePoolEvent['detail-type'], {
      pool: {
        name: 'pinned',
        image,
        instanceType: 'm7i.large',
        subnets: [SUBNET],
        initialization: { platform: 'linux', packages: ['nginx'], timeoutMinutes: 30 },
        minSize: 2,
        maxSize: 2,
      },
    });
    expect(answer).toMatchObject({ status: 'handled' });
    await local.settleFor(5 * MINUTE);

    const members = await local.run(() =>
      dynamoPoolStore(local.documents, local.tables.pools).listMembers('pinned'),
    );
    expect(members.map((member) => member.state)).toEqual(['ready', 'ready']);
    const inits = local.ssm
      .invocations()
      .filter((invocation) => invocation.documentName === INITIALIZE_DOCUMENT);
    expect(inits.map((invocation) => [invocation.status, invocation.output.includes('tampered')])).toEqual([
      ['Success', false],
      ['Success', false],
    ]);
  });
});
