import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { dynamoPoolStore } from '../../functions/pools/adapters/store';
import type { PoolSpecInput } from '../../functions/pools/config';
import { LINUX_SECRET_DIRECTORY, SECRETS_DOCUMENT } from '../../functions/pools/documents';
import type { EventEnvelope } from '../../local/bus';
import type { LocalCloud } from '../../local/cloud';
import { AMAZON_SSM_MANAGED_INSTANCE_CORE } from '../../local/iam/instance-profiles';
import { sampleEvent } from '../support/events';
import { invokeSample, localCloudPerTest } from '../support/local-cloud';

/**
 * A requester's secret reaches its server as a `{{ssm-secure:…}}` reference the host resolves
 * with the member's instance role (security review M6): the value is on the host and nowhere
 * else — not in any SSM API answer, not in DynamoDB, not in an event, not in a log line.
 */

const MINUTE = 60_000;
const SUBNET = 'subnet-0aaaaaaaaaaaaaaa1';
const POOL = 'linux-web';
const PROFILE = 'web-member';
const SECRET = 'correct horse battery staple 0xC0FFEE';
const NAME = '/warmboot/tenants/team-a/db-password';
const REFERENCE = `{{ssm-secure:${NAME}}}`;

const definePoolEvent = sampleEvent('pools/define-pool.json');
const requestServerEvent = sampleEvent('claim/request-server.json');
const startCloud = localCloudPerTest();

afterEach(() => {
  vi.restoreAllMocks();
});

/** Everything the functions log, whatever the level (the local runtime logs through stdout). */
const captureOutput = (): string[] => {
  const written: string[] = [];
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream);
    vi.spyOn(stream, 'write').mockImplementation(((chunk: unknown, ...rest: never[]) => {
      written.push(String(chunk));
      return write(chunk as string, ...rest);
    }) as typeof stream.write);
  }
  return written;
};

const start = async () => {
  const local = await startCloud({
    functions: ['pools', 'claim'],
    settings: { POOL_POLICY: JSON.stringify({ instanceProfiles: [{ name: PROFILE }] }) },
    logLevel: 'DEBUG',
  });
  const key = local.ec2.kms.createKey({ alias: 'alias/team-a-secrets' });
  // The members' role: the SSM core policy, plus team-a's secrets and their key.
  local.instanceProfiles.create(PROFILE, {
    managedPolicyArns: [AMAZON_SSM_MANAGED_INSTANCE_CORE],
    statements: [{ actions: ['kms:Decrypt'], resources: [key.arn] }],
  });
  local.ssm.parameters.putParameter({ Name: NAME, Value: SECRET, Type: 'SecureString', KeyId: key.arn });
  local.ec2.addSubnet({ subnetId: SUBNET, availabilityZone: 'us-east-1a' });
  const image = local.ec2.registerImage({ name: 'al2023-web', rootSizeGiB: 8 });
  const events: EventEnvelope[] = [];
  local.bus.onEvent((event) => events.push(event));
  const pool: PoolSpecInput = {
    name: POOL,
    image,
    instanceType: 'm7i.large',
    subnets: [SUBNET],
    instanceProfile: PROFILE,
    initialization: { platform: 'linux', packages: ['nginx'], timeoutMinutes: 30 },
    minSize: 1,
    maxSize: 2,
  };
  await local.adminRequest(definePoolEvent['detail-type'], { pool });
  await local.settleFor(5 * MINUTE);
  return { local, key, events };
};

const requestWithSecrets = async (local: LocalCloud, requestId: string, secrets: string) =>
  (
    (await invokeSample(local, 'claim', requestServerEvent, {
      id: `event-${requestId}`,
      detail: {
        ...requestServerEvent.detail,
        requestId,
        pool: POOL,
        instanceType: 'm7i.large',
        personalization: { document: { name: SECRETS_DOCUMENT, parameters: { secrets: [secrets] } } },
      },
    })) as { result: { status: string; instanceId?: string; error?: { code: string; message: string } } }
  ).result;

/** Every SSM answer anyone with ssm:ListCommands / GetCommandInvocation could read. */
const ssmAnswers = async (local: LocalCloud): Promise<string> => {
  const answers: unknown[] = [
    await local.ssm.dispatch('ListCommands', {}),
    await local.ssm.dispatch('ListCommandInvocations', { Details: true }),
  ];
  for (const invocation of local.ssm.invocations()) {
    answers.push(
      await local.ssm.dispatch('GetCommandInvocation', {
        CommandId: invocation.commandId,
        InstanceId: invocation.instanceId,
      }),
    );
  }
  return JSON.stringify(answers);
};

const dynamoItems = async (local: LocalCloud): Promise<string> => {
  const items: unknown[] = [];
  for (const table of new Set(Object.values(local.tables))) {
    const scanned = await local.run(() => local.documents.send(new ScanCommand({ TableName: table })));
    items.push(scanned.Items ?? []);
  }
  return JSON.stringify(items);
};

describe('personalization secrets', () => {
  it('reach the host as the value and travel everywhere else as the reference only', async () => {
    const output = captureOutput();
    const { local, events } = await start();

    const outcome = await requestWithSecrets(local, 'req-secret-1', REFERENCE);

    expect(outcome).toMatchObject({ status: 'ready' });
    // The host script received the value, with the member's own role.
    const host = local.ssm.agent(outcome.instanceId ?? '');
    expect(host.files.get(`file:${LINUX_SECRET_DIRECTORY}/db-password`)).toBe(SECRET);
    const secretsRun = local.ssm
      .invocations()
      .find((invocation) => invocation.documentName === SECRETS_DOCUMENT);
    expect(secretsRun?.status).toBe('Success');
    // The command carries the reference; nothing any reader of SSM, DynamoDB, events or logs sees has the value.
    const answers = await ssmAnswers(local);
    expect(answers).toContain(JSON.stringify(REFERENCE).slice(1, -1));
    const claim = await local.run(() =>
      dynamoPoolStore(local.documents, local.tables.pools).getClaim('req-secret-1'),
    );
    expect(claim?.personalizationSha256).toMatch(/^[0-9a-f]{64}$/);
    for (const [where, text] of [
      ['SSM API answers', answers],
      ['DynamoDB', await dynamoItems(local)],
      ['events', JSON.stringify(events)],
      ['logs', output.join('')],
    ] as const) {
      expect(text.includes(SECRET), where).toBe(false);
    }
    // The capture saw the functions' own log lines.
    expect(output.join('')).toContain('"service":"claim"');
  });

  it('fail the claim with the service error when the member role may not read the secret, leaking nothing', async () => {
    const output = captureOutput();
    const { local, key } = await start();
    local.ssm.parameters.putParameter({
      Name: '/warmboot/tenants/team-a/other-key',
      Value: SECRET,
      Type: 'SecureString',
      KeyId: local.ec2.kms.createKey({ alias: 'alias/not-granted' }).arn,
    });

    const outcome = await requestWithSecrets(
      local,
      'req-secret-2',
      '{{ssm-secure:/warmboot/tenants/team-a/other-key}}',
    );

    expect(outcome).toMatchObject({ status: 'failed', error: { code: 'PersonalizationFailed' } });
    const run = local.ssm.invocations().find((invocation) => invocation.documentName === SECRETS_DOCUMENT);
    expect(run).toMatchObject({ status: 'Failed' });
    expect(run?.output).toContain('AccessDeniedException');
    expect(run?.output).toContain('kms:Decrypt');
    expect(run?.output).not.toContain(key.arn);
    for (const text of [await ssmAnswers(local), await dynamoItems(local), output.join('')]) {
      expect(text.includes(SECRET)).toBe(false);
    }
  });
});
