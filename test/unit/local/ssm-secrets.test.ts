import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DOCUMENTS, LINUX_SECRET_DIRECTORY, SECRETS_DOCUMENT } from '../../../functions/pools/documents';
import type { CommandDocument } from '../../../functions/shared/ssm-document';
import { AMAZON_SSM_MANAGED_INSTANCE_CORE, InstanceProfiles } from '../../../local/iam/instance-profiles';
import { KmsKeys } from '../../../local/kms/keys';
import { awsCliStub, resolveAgentReferences, secureReferencesIn } from '../../../local/ssm/host-parameters';
import { ParameterStore } from '../../../local/ssm/parameter-store';
import {
  amazonLinuxTools,
  commandLine,
  debianTools,
  type Shell,
  type ShellRun,
  withScratchHost,
} from '../../../local/ssm/shell';
import { linuxSteps, renderedSteps, SHELLS } from '../../support/ssm-documents';

/**
 * Secrets reach a host as `{{ssm-secure:…}}` references that the host resolves with the instance
 * profile's role (functions/pools/documents.ts, Warmboot-PoolSecrets; local/ssm/host-parameters.ts).
 */

const REGION = 'us-east-1';
const ACCOUNT = '123456789012';
const INSTANCE = 'i-0123456789abcdef0';
const SECRET = 's3cr3t value with spaces, quotes \' " and $HOME';
const NAME = '/warmboot/tenants/team-a/db-password';
const parameterArn = (name: string) => `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter${name}`;

const secretsDocument = DOCUMENTS.find((document) => document.name === SECRETS_DOCUMENT) as CommandDocument;

/** An account with a customer managed key, and the profiles the tests give instances. */
const account = () => {
  const kms = new KmsKeys({ region: REGION, accountId: ACCOUNT });
  const profiles = new InstanceProfiles(ACCOUNT);
  const store = new ParameterStore({ region: REGION, accountId: ACCOUNT, kms, profiles });
  const key = kms.createKey({ alias: 'alias/team-a' });
  // Core only: ssm:GetParameter(s) on every parameter, no kms:Decrypt.
  profiles.create('core', { managedPolicyArns: [AMAZON_SSM_MANAGED_INSTANCE_CORE] });
  profiles.create('team-a', {
    statements: [
      { actions: ['ssm:GetParameter'], resources: [parameterArn('/warmboot/tenants/team-a/*')] },
      { actions: ['kms:Decrypt'], resources: [key.arn] },
    ],
  });
  profiles.create('team-b', {
    statements: [
      { actions: ['ssm:GetParameter'], resources: [parameterArn('/warmboot/tenants/team-b/*')] },
      { actions: ['kms:Decrypt'], resources: [key.arn] },
    ],
  });
  return { kms, profiles, store, key };
};

const caller = (profile: string | undefined) => ({ instanceId: INSTANCE, profile });

describe('the local Parameter Store (PutParameter as an administrator seeds it)', () => {
  it('refuses what PutParameter refuses, with its error codes', () => {
    const { store } = account();
    store.putParameter({ Name: NAME, Value: SECRET, Type: 'SecureString' });
    const refused = (input: Parameters<ParameterStore['putParameter']>[0]) => {
      try {
        store.putParameter(input);
      } catch (error) {
        return (error as { code?: string; name: string }).code ?? (error as Error).name;
      }
      return 'accepted';
    };
    expect(refused({ Name: NAME, Value: 'other', Type: 'SecureString' })).toBe('ParameterAlreadyExists');
    expect(refused({ Name: NAME, Value: 'other', Type: 'SecureString', Overwrite: true })).toBe('accepted');
    expect(refused({ Name: '/warmboot/x', Value: '{{ssm:/other}}', Type: 'String' })).toBe(
      'ValidationException',
    );
    expect(refused({ Name: '/aws/x', Value: 'v', Type: 'String' })).toBe('ValidationException');
    expect(refused({ Name: 'warmboot/x', Value: 'v', Type: 'String' })).toBe('ValidationException');
    expect(refused({ Name: `/${'a/'.repeat(15)}b`, Value: 'v', Type: 'String' })).toBe(
      'HierarchyLevelLimitExceededException',
    );
    expect(refused({ Name: '/warmboot/y', Value: 'v', Type: 'String', KeyId: 'alias/team-a' })).toBe(
      'ValidationException',
    );
    expect(refused({ Name: '/warmboot/z', Value: 'v', Type: 'SecureString', KeyId: 'alias/none' })).toBe(
      'InvalidKeyId',
    );
    expect(refused({ Name: '/warmboot/big', Value: 'v'.repeat(4097), Type: 'SecureString' })).toBe(
      'ValidationException',
    );
  });

  it('answers a host as its instance role: IAM first, then existence, then the key', () => {
    const { store, kms, key } = account();
    store.putParameter({ Name: NAME, Value: SECRET, Type: 'SecureString', KeyId: key.arn });
    store.putParameter({ Name: '/warmboot/tenants/team-a/aws-key', Value: SECRET, Type: 'SecureString' });

    expect(store.getParameterAsHost(caller('team-a'), NAME, true)).toEqual({
      ok: true,
      type: 'SecureString',
      value: SECRET,
    });
    // Without decryption a SecureString is ciphertext, never the value.
    const encrypted = store.getParameterAsHost(caller('team-a'), NAME, false);
    expect(encrypted.ok && encrypted.value).not.toContain('s3cr3t');
    // Another tenant's role: denied before anyone learns whether the name exists.
    expect(store.getParameterAsHost(caller('team-b'), NAME, true)).toMatchObject({
      ok: false,
      code: 'AccessDeniedException',
      message: expect.stringContaining(
        `User: arn:aws:sts::${ACCOUNT}:assumed-role/team-b/${INSTANCE} is not authorized to perform: ssm:GetParameter on resource: ${parameterArn(NAME)}`,
      ),
    });
    expect(store.getParameterAsHost(caller('team-b'), '/warmboot/tenants/team-a/none', true)).toMatchObject({
      code: 'AccessDeniedException',
    });
    expect(store.getParameterAsHost(caller('team-a'), '/warmboot/tenants/team-a/none', true)).toMatchObject({
      code: 'ParameterNotFound',
    });
    // AmazonSSMManagedInstanceCore reads any parameter, but a customer managed key needs kms:Decrypt…
    expect(store.getParameterAsHost(caller('core'), NAME, true)).toMatchObject({
      code: 'AccessDeniedException',
      message: expect.stringContaining(`kms:Decrypt on resource: ${key.arn}`),
    });
    // …while the AWS managed key alias/aws/ssm needs nothing more than ssm:GetParameter.
    expect(store.getParameterAsHost(caller('core'), '/warmboot/tenants/team-a/aws-key', true)).toMatchObject({
      ok: true,
      value: SECRET,
    });
    expect(store.getParameterAsHost(caller(undefined), NAME, true)).toMatchObject({ code: 'NoCredentials' });
    kms.setKeyState(key.arn, 'Disabled');
    expect(store.getParameterAsHost(caller('team-a'), NAME, true)).toMatchObject({ code: 'InvalidKeyId' });
  });
});

describe('the agent and {{ssm:…}} references (parameterstore.go)', () => {
  it('substitutes a String, and fails the document for a SecureString, a missing or a denied name', () => {
    const { store } = account();
    store.putParameter({ Name: '/warmboot/tenants/team-a/site', Value: 'eu-west', Type: 'String' });
    store.putParameter({ Name: NAME, Value: SECRET, Type: 'SecureString' });
    const resolve = (profile: string, script: string) =>
      resolveAgentReferences(store, caller(profile), script);

    expect(resolve('core', "SITE='{{ssm:/warmboot/tenants/team-a/site}}'\n")).toEqual({
      ok: true,
      script: "SITE='eu-west'\n",
    });
    expect(resolve('core', `X='{{ ssm:${NAME} }}'\n`)).toEqual({
      ok: false,
      error: `Parameters [${NAME}] of type SecureString are not supported`,
    });
    expect(resolve('core', "X='{{ssm:/warmboot/none}}'\n")).toEqual({
      ok: false,
      error: 'Input contains invalid parameters [/warmboot/none]',
    });
    const denied = resolve('team-b', `X='{{ssm:${NAME}}}'\n`);
    expect(denied.ok).toBe(false);
    expect(!denied.ok && denied.error).toMatch(
      /^Encountered error while calling GetParameters API\. Error: AccessDeniedException: .*ssm:GetParameters/,
    );
    // {{ssm-secure:…}} is not the agent's to resolve in a shell step: it stays text.
    expect(resolve('core', `X='{{ssm-secure:${NAME}}}'\n`)).toEqual({
      ok: true,
      script: `X='{{ssm-secure:${NAME}}}'\n`,
    });
  });
});

describe.each(SHELLS)('Warmboot-PoolSecrets on a host whose sh is %s', (shell: Shell) => {
  const tools = shell === 'bash' ? amazonLinuxTools : debianTools;
  const references = `{{ssm-secure:${NAME}}},{{ssm-secure:/warmboot/tenants/team-a/ci/token}}`;

  const install = (
    profile: string,
    secrets: string,
  ): { run: ShellRun; files: Record<string, string>; mode?: number } => {
    const { store } = account();
    store.putParameter({ Name: NAME, Value: SECRET, Type: 'SecureString', KeyId: 'alias/team-a' });
    store.putParameter({ Name: '/warmboot/tenants/team-a/ci/token', Value: 'tok-123', Type: 'SecureString' });
    store.putParameter({ Name: '/warmboot/tenants/team-a/plain', Value: 'not secret', Type: 'String' });
    const [step] = linuxSteps(secretsDocument, { secrets: [secrets], owner: ['ec2-user'] });
    if (!step) throw new Error('no Linux step');
    const aws = awsCliStub(store, caller(profile), secureReferencesIn(step.script));
    return withScratchHost(tools({ aws }), (host) => {
      const run = host.run(step.script, shell, {
        environment: { AWS_SSM_INSTANCE_ID: INSTANCE, AWS_SSM_REGION_NAME: REGION },
      });
      const files = host.filesIn(LINUX_SECRET_DIRECTORY);
      const path = join(host.root, LINUX_SECRET_DIRECTORY, 'db-password');
      return { run, files, ...(existsSync(path) ? { mode: statSync(path).mode & 0o777 } : {}) };
    });
  };

  it('fetches each value with the instance role and installs it readable by the owner only', () => {
    const { run, files, mode } = install('team-a', references);

    expect(run.stderr).toBe('');
    expect(run.status).toBe('Success');
    expect(files).toEqual({
      [`${LINUX_SECRET_DIRECTORY}/db-password`]: SECRET,
      [`${LINUX_SECRET_DIRECTORY}/token`]: 'tok-123',
    });
    expect(mode).toBe(0o400);
    // The value is in no argv and on no output: only names are.
    const calls = run.calls.map(commandLine);
    expect(calls).toContain(
      `aws ssm get-parameter --region ${REGION} --name ${NAME} --with-decryption --query Parameter.Value --output text`,
    );
    expect(calls.some((line) => line.startsWith('chown ec2-user'))).toBe(true);
    for (const text of [...calls, run.stdout, run.stderr]) {
      expect(text).not.toContain('s3cr3t');
      expect(text).not.toContain('tok-123');
    }
  });

  it('fails the step with the service error when the role may not read the parameter', () => {
    const { run, files } = install('team-b', references);

    expect(run.exitCode).toBe(254);
    expect(run.stderr).toContain(
      'An error occurred (AccessDeniedException) when calling the GetParameter operation',
    );
    expect(files).toEqual({});
  });

  it('fails when the key may not be used, or the parameter does not exist', () => {
    const kmsDenied = install('core', references);
    expect(kmsDenied.run.exitCode).toBe(254);
    expect(kmsDenied.run.stderr).toContain('kms:Decrypt');
    expect(kmsDenied.files).toEqual({});

    const missing = install('team-a', '{{ssm-secure:/warmboot/tenants/team-a/none}}');
    expect(missing.run.exitCode).toBe(254);
    expect(missing.run.stderr).toContain('(ParameterNotFound)');
  });

  it('refuses a reference to a parameter that is not a SecureString', () => {
    const { run, files } = install('team-a', '{{ssm-secure:/warmboot/tenants/team-a/plain}}');

    expect(run.exitCode).toBe(65);
    expect(run.stderr).toContain('is a String parameter, not a SecureString');
    expect(files).toEqual({});
  });

  it('does nothing with no references', () => {
    const { run, files } = install('team-a', '');
    expect(run.status).toBe('Success');
    expect(run.calls).toEqual([]);
    expect(files).toEqual({});
  });
});

describe('Warmboot-PoolSecrets on Windows, rendered (PowerShell is not run here)', () => {
  it('carries the references as text and reads each with Get-SSMParameter -WithDecryption', () => {
    const [step] = renderedSteps(secretsDocument, { secrets: [`{{ssm-secure:${NAME}}}`] }, 'Windows');

    expect(step?.action).toBe('aws:runPowerShellScript');
    expect(step?.script).toContain(`foreach ($reference in '{{ssm-secure:${NAME}}}'.Split(','))`);
    expect(step?.script).toContain('Get-SSMParameter -Name $name -WithDecryption $true');
    expect(step?.script).not.toContain('{{ secrets }}');
  });
});
