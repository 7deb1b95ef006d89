import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  addGuardrailOutputs,
  GUARDRAIL_OUTPUTS,
  type GuardrailPrincipals,
  warmbootTagPermissionsBoundary,
  warmbootTagServiceControlPolicy,
} from '../../../infra/guardrails';
import type { LocalIam, OutsideCaller } from '../../../local/iam/evaluator';
import type { RolePolicyDocument } from '../../../local/iam/policy-template';
import { ACCOUNT, type Cloud, createCloud, launch } from './ec2-harness';
import { localIamOn, noFunctionRoles } from './iam-harness';

/**
 * The tag guardrail of infra/guardrails.ts (security review H1), evaluated as AWS evaluates a
 * call under Organizations and permissions boundaries: an explicit Deny in an SCP or in the
 * boundary wins over any identity policy (IAM User Guide, "Policy evaluation logic"). A
 * developer role with `ec2:*` cannot put a warmboot tag on anything, nor remove one; warmboot's
 * roles and the named admin can.
 */

const role = (name: string) => `arn:aws:iam::${ACCOUNT}:role/${name}`;
const POOLS_ROLE = role('Warmboot-PoolsRole1A2B3C4D-0123456789AB');
const SHELVING_ROLE = role('Warmboot-ShelvingRole5E6F7A8B-0123456789AB');
const ADMIN = role('platform/warmboot-admin');
const DEVELOPER = role('developers/app-team');

const principals: GuardrailPrincipals = {
  warmbootRoleArns: [POOLS_ROLE, SHELVING_ROLE],
  adminArns: [ADMIN],
};

const EC2_EVERYTHING: RolePolicyDocument = {
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: 'ec2:*', Resource: '*' }],
};

type Guardrail = 'scp' | 'boundary';
const callerUnder = (guardrail: Guardrail, principalArn: string): OutsideCaller => ({
  principalArn,
  identityPolicies: [EC2_EVERYTHING],
  ...(guardrail === 'scp'
    ? { serviceControlPolicies: [warmbootTagServiceControlPolicy(principals) as RolePolicyDocument] }
    : { permissionsBoundary: warmbootTagPermissionsBoundary(principals) as RolePolicyDocument }),
});

let cloud: Cloud;
let localIam: LocalIam;
let instanceId: string;
beforeAll(async () => {
  cloud = await createCloud();
  // Only outside callers are evaluated here: no function role is needed.
  localIam = localIamOn(cloud, noFunctionRoles('guardrails'));
  instanceId = await launch(cloud, {
    TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'warmboot:managed', Value: 'true' }] }],
  });
});

const decision = async (caller: OutsideCaller, operation: string, input: Record<string, unknown>) =>
  (await localIam.ec2CallerDenial(caller, operation, input)) === undefined ? 'allowed' : 'denied';

const tagPool = (key = 'warmboot:pool') => ({ Resources: [instanceId], Tags: [{ Key: key, Value: 'web' }] });
const launchTagged = (key: string) => ({
  ImageId: cloud.imageId,
  InstanceType: 'm7i.large',
  MinCount: 1,
  MaxCount: 1,
  TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: key, Value: 'web' }] }],
});

describe.each<Guardrail>(['scp', 'boundary'])('the warmboot tag guardrail as %s', (guardrail) => {
  it('denies a developer role holding ec2:* tagging an instance warmboot:pool, in any usual spelling', async () => {
    const developer = callerUnder(guardrail, DEVELOPER);

    expect(await decision(developer, 'CreateTags', tagPool())).toBe('denied');
    expect(await decision(developer, 'CreateTags', tagPool('WARMBOOT:POOL'))).toBe('denied');
    expect(await decision(developer, 'CreateTags', tagPool('Warmboot:Pool'))).toBe('denied');
  });

  it('denies the developer removing a warmboot tag, by name or by removing every tag', async () => {
    const developer = callerUnder(guardrail, DEVELOPER);

    expect(
      await decision(developer, 'DeleteTags', {
        Resources: [instanceId],
        Tags: [{ Key: 'warmboot:managed' }],
      }),
    ).toBe('denied');
    expect(await decision(developer, 'DeleteTags', { Resources: [instanceId] })).toBe('denied');
  });

  it('denies the developer launching an instance or creating a volume already tagged warmboot:*', async () => {
    const developer = callerUnder(guardrail, DEVELOPER);

    expect(await decision(developer, 'RunInstances', launchTagged('warmboot:pool'))).toBe('denied');
    expect(
      await decision(developer, 'CreateVolume', {
        AvailabilityZone: 'us-east-1a',
        Size: 8,
        TagSpecifications: [{ ResourceType: 'volume', Tags: [{ Key: 'warmboot:shelved', Value: 'r-1' }] }],
      }),
    ).toBe('denied');
  });

  it('leaves the developer every other tag and launch', async () => {
    const developer = callerUnder(guardrail, DEVELOPER);

    expect(await decision(developer, 'CreateTags', tagPool('team'))).toBe('allowed');
    expect(
      await decision(developer, 'DeleteTags', { Resources: [instanceId], Tags: [{ Key: 'team' }] }),
    ).toBe('allowed');
    expect(await decision(developer, 'RunInstances', launchTagged('team'))).toBe('allowed');
  });

  it("lets warmboot's roles and the named admin write warmboot tags", async () => {
    for (const principal of [POOLS_ROLE, SHELVING_ROLE, ADMIN]) {
      const exempt = callerUnder(guardrail, principal);
      expect(await decision(exempt, 'CreateTags', tagPool()), principal).toBe('allowed');
      expect(await decision(exempt, 'RunInstances', launchTagged('warmboot:pool')), principal).toBe(
        'allowed',
      );
      expect(
        await decision(exempt, 'DeleteTags', { Resources: [instanceId], Tags: [{ Key: 'warmboot:pool' }] }),
        principal,
      ).toBe('allowed');
    }
  });
});

describe('the guardrail policies as stack outputs', () => {
  it("renders both policies with the stack's own role ARNs for describe-stacks to print", () => {
    const stack = new Stack(new App(), 'Guardrails');
    const poolsRole = new iam.Role(stack, 'PoolsRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    });

    addGuardrailOutputs(stack, { warmbootRoleArns: [poolsRole.roleArn], adminArns: [ADMIN] });

    const outputs = Template.fromStack(stack).toJSON().Outputs as Record<string, { Value: unknown }>;
    for (const id of Object.values(GUARDRAIL_OUTPUTS)) {
      const rendered = JSON.stringify(outputs[id]?.Value);
      expect(rendered, id).toContain('ec2:CreateTags');
      expect(rendered, id).toContain('PoolsRole');
      expect(rendered, id).toContain(ADMIN);
    }
  }, 120_000);

  it("fits Organizations' 5,120-character SCP limit with every function role and a few admins", () => {
    const roles = Array.from({ length: 7 }, (_, index) =>
      role(`Warmboot-WarmbootFunction${index}RoleABCDEF12-${'A'.repeat(12)}`),
    );
    const admins = [ADMIN, role('platform/break-glass'), `arn:aws:iam::${ACCOUNT}:user/oncall`];

    const minified = JSON.stringify(
      warmbootTagServiceControlPolicy({ warmbootRoleArns: roles, adminArns: admins }),
    );

    expect(minified.length).toBeLessThanOrEqual(5_120);
  });

  it('refuses to build a policy that names no warmboot role (it would lock warmboot out of its tags)', () => {
    expect(() => warmbootTagServiceControlPolicy({ warmbootRoleArns: [], adminArns: [ADMIN] })).toThrow(
      /warmbootRoleArns/,
    );
  });
});
