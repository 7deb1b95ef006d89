import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CfnElement } from 'aws-cdk-lib';
import { FUNCTIONS, type FunctionId } from '../../functions/catalog';
import { TABLES, type TableId } from '../../functions/shared/tables';
import { PROJECT_ROOT } from '../../infra/function';
import { createWarmbootApp } from '../../infra/stack';
import {
  SENTINEL_ADMIN,
  SENTINEL_OPERATOR,
  type SynthesizedFunctionUrl,
  type SynthesizedFunctionUrls,
  type SynthesizedUrlPermission,
} from './function-url-policy';
import {
  type RolePolicyDocument,
  SENTINEL_EBS_KMS_KEY_ARN,
  SENTINEL_HOST_GROUP,
  SENTINEL_IMAGE_OWNER,
  SENTINEL_IMAGE_PARAMETER,
  SENTINEL_INSTANCE_ROLE,
  SENTINEL_SHELVING_IMAGE_OWNER,
  SENTINEL_SHELVING_INSTANCE_ROLE,
  SENTINEL_UNSHELVE_POOL,
  type SynthesizedRolePolicies,
  type SynthesizedVariant,
} from './policy-template';

/**
 * Synthesizes the CDK app twice and writes every function role's policy documents, with the
 * deployment-specific parts left as placeholders, to the file named by the first argument.
 *
 * Run as a child process by `policy-source.ts` (aws-cdk-lib is large and the synth takes ~20 s,
 * so it never runs inside a test worker and its result is cached by content hash).
 *
 * The function URLs' permissions are read too, for a sentinel operator and admin (function-url-policy.ts).
 *
 * Two variants cover every statement a role can have: `base` (no host groups, shelved data
 * deletion off) and `optIn` (one sentinel host group, deletion on); both name a sentinel EBS key.
 * The sentinel host-group name, image-parameter path and key ARN mark the places where a
 * deployment's own names go; the loader puts the local cloud's names there (and drops a statement
 * left with none), which is exactly what a synth with those names renders.
 */

const SENTINEL_POOL = {
  name: 'warmboot-iam-sentinel',
  image: SENTINEL_IMAGE_PARAMETER,
  instanceType: 'm7i.large',
  subnets: ['subnet-0123456789abcdef0'],
  // The synth refuses a pool without one unless DHMC is declared on (infra/config.ts, W6).
  instanceProfile: 'warmboot-iam-sentinel',
  // PassRole is granted on the role of each configured profile: the sentinel role stands for them.
  instanceRole: SENTINEL_INSTANCE_ROLE,
  maxSize: 1,
};

/** The only AMI owner the synth allows stands for the deployment's `allowedImageOwners`. */
const SENTINEL_POOL_POLICY = { allowedImageOwners: [SENTINEL_IMAGE_OWNER] };

/** Shelving's launch settings, by sentinels: its AMI owners and the roles of its instance profiles. */
const SENTINEL_SHELVING = {
  allowedImageOwners: [SENTINEL_SHELVING_IMAGE_OWNER],
  instanceProfiles: [{ name: 'warmboot-iam-sentinel-shelving', role: SENTINEL_SHELVING_INSTANCE_ROLE }],
};

const cdkJsonContext = (): Record<string, unknown> =>
  (
    JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as {
      context: Record<string, unknown>;
    }
  ).context;

interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
}

const PSEUDO_PARAMETERS = new Set(['AWS::Partition', 'AWS::Region', 'AWS::AccountId']);

/**
 * A CloudFormation value as text with placeholders (the same flattening `cfnText` in
 * test/infra/synth.ts does): pseudo parameters stay `${AWS::…}`, a table's `Arn`/`Ref` becomes its
 * ARN/name with `${Table:<id>}`, and any other resource (log group, DLQ) an ARN nothing local asks for.
 */
const render = (value: unknown, tables: ReadonlyMap<string, TableId>): unknown => {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  if (Array.isArray(value)) return value.map((item) => render(item, tables));
  if (typeof value !== 'object' || value === null) return value;
  const node = value as Record<string, unknown>;
  if (Array.isArray(node['Fn::Join'])) {
    const [delimiter, parts] = node['Fn::Join'] as [string, unknown[]];
    return parts.map((part) => String(render(part, tables))).join(delimiter);
  }
  if (typeof node.Ref === 'string') {
    if (PSEUDO_PARAMETERS.has(node.Ref)) return `\${${node.Ref}}`;
    const table = tables.get(node.Ref);
    return table ? `\${Table:${table}}` : `unresolved-${node.Ref}`;
  }
  if (Array.isArray(node['Fn::GetAtt'])) {
    const [logicalId, attribute] = node['Fn::GetAtt'] as [string, string];
    const table = tables.get(logicalId);
    if (table && attribute === 'Arn') {
      return `arn:\${AWS::Partition}:dynamodb:\${AWS::Region}:\${AWS::AccountId}:table/\${Table:${table}}`;
    }
    return `arn:\${AWS::Partition}:cloudformation:\${AWS::Region}:\${AWS::AccountId}:unresolved/${logicalId}/${attribute}`;
  }
  const rendered: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(node)) rendered[key] = render(item, tables);
  return rendered;
};

/**
 * Who may call the function URLs in both variants: a sentinel operator of every request and tenant,
 * and a sentinel admin; their permissions are the templates of every deployment's callers.
 */
const SENTINEL_CALLERS = {
  operators: [{ principal: SENTINEL_OPERATOR, requests: ['*'], tenants: ['*'] }],
  admins: [SENTINEL_ADMIN],
};

/** Each function's AWS::Lambda::Url (auth type, alias) and the permissions on that alias. */
const functionUrlsOf = (
  template: { Resources: Record<string, CfnResource> },
  functionLogicalIds: ReadonlyMap<FunctionId, string>,
): SynthesizedFunctionUrls => {
  const urls: Partial<Record<FunctionId, SynthesizedFunctionUrl>> = {};
  const resources = Object.entries(template.Resources);
  for (const [functionId, logicalId] of functionLogicalIds) {
    const url = resources.find(
      ([, resource]) =>
        resource.Type === 'AWS::Lambda::Url' &&
        JSON.stringify(resource.Properties?.TargetFunctionArn) ===
          JSON.stringify({ 'Fn::GetAtt': [logicalId, 'Arn'] }),
    )?.[1];
    if (!url) continue;
    const qualifier = String(url.Properties?.Qualifier);
    const alias = resources.find(
      ([, resource]) =>
        resource.Type === 'AWS::Lambda::Alias' &&
        resource.Properties?.Name === qualifier &&
        JSON.stringify(resource.Properties?.FunctionName) === JSON.stringify({ Ref: logicalId }),
    )?.[0];
    if (!alias)
      throw new Error(`${functionId}: the function URL's alias ${qualifier} is not in the template`);
    const permissions = resources
      .filter(
        ([, resource]) =>
          resource.Type === 'AWS::Lambda::Permission' &&
          JSON.stringify(resource.Properties?.FunctionName) === JSON.stringify({ Ref: alias }),
      )
      .map(([, resource]) => {
        const { FunctionName: _alias, ...permission } = resource.Properties ?? {};
        return permission as unknown as SynthesizedUrlPermission;
      });
    urls[functionId] = { authType: String(url.Properties?.AuthType), qualifier, permissions };
  }
  return urls;
};

const synthesizeVariant = (
  warmboot: Record<string, unknown>,
): { roles: SynthesizedVariant; functionUrls: SynthesizedFunctionUrls } => {
  const outdir = fs.mkdtempSync(path.join(fs.realpathSync(os.tmpdir()), 'warmboot-iam-cdk-'));
  try {
    const context = cdkJsonContext();
    const { app, stack } = createWarmbootApp({
      outdir,
      context: {
        ...context,
        // Bundling is covered by `npm run test:synth`; policies do not depend on the bundles.
        'aws:cdk:bundling-stacks': [],
        warmboot: { ...(context.warmboot as Record<string, unknown>), ...SENTINEL_CALLERS, ...warmboot },
      },
    });
    const template = app.synth().getStackByName(stack.stackName).template as {
      Resources: Record<string, CfnResource>;
    };
    const tables = new Map<string, TableId>(
      (Object.keys(TABLES) as TableId[]).map((id) => [
        stack.getLogicalId(stack.warmboot.data.table(id).node.defaultChild as CfnElement),
        id,
      ]),
    );
    const roles: Partial<Record<FunctionId, RolePolicyDocument[]>> = {};
    for (const fn of stack.warmboot.functions) {
      const roleId = stack.getLogicalId(fn.role.node.defaultChild as CfnElement);
      const role = template.Resources[roleId];
      if (role?.Properties?.ManagedPolicyArns !== undefined) {
        throw new Error(`${fn.spec.id}: managed policies cannot be evaluated locally; use inline statements`);
      }
      const inline = ((role?.Properties?.Policies ?? []) as { PolicyDocument: unknown }[]).map(
        (policy) => policy.PolicyDocument,
      );
      // The default policy, and the customer managed policy CDK moves statements into when the
      // role's inline policy would pass IAM's size limit (`<Role>OverflowPolicy<n>`): both are in
      // the template, so both are evaluated.
      const attached = Object.values(template.Resources)
        .filter(
          (resource) =>
            (resource.Type === 'AWS::IAM::Policy' || resource.Type === 'AWS::IAM::ManagedPolicy') &&
            ((resource.Properties?.Roles ?? []) as { Ref?: string }[]).some((ref) => ref.Ref === roleId),
        )
        .map((resource) => resource.Properties?.PolicyDocument);
      roles[fn.spec.id] = [...inline, ...attached].map(
        (document) => render(document, tables) as RolePolicyDocument,
      );
    }
    for (const id of Object.keys(FUNCTIONS) as FunctionId[]) {
      if (!roles[id]) throw new Error(`the stack has no function ${id}`);
    }
    const functionLogicalIds = new Map<FunctionId, string>(
      stack.warmboot.functions.map((fn) => [
        fn.spec.id,
        stack.getLogicalId(fn.function.node.defaultChild as CfnElement),
      ]),
    );
    return { roles: roles as SynthesizedVariant, functionUrls: functionUrlsOf(template, functionLogicalIds) };
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
};

const main = (): void => {
  const [outFile, key] = process.argv.slice(2);
  if (!outFile || !key) throw new Error('usage: synthesize.ts <out.json> <key>');
  const base = synthesizeVariant({
    hostGroups: [],
    pools: [SENTINEL_POOL],
    poolPolicy: SENTINEL_POOL_POLICY,
    allowShelvedDataDeletion: false,
    ebsKmsKeyArns: [SENTINEL_EBS_KMS_KEY_ARN],
    shelving: SENTINEL_SHELVING,
  });
  const optIn = synthesizeVariant({
    hostGroups: [{ name: SENTINEL_HOST_GROUP, cacheBytes: 1024 ** 3, cacheDirectory: '/var/cache/warmboot' }],
    pools: [SENTINEL_POOL],
    poolPolicy: SENTINEL_POOL_POLICY,
    allowShelvedDataDeletion: true,
    ebsKmsKeyArns: [SENTINEL_EBS_KMS_KEY_ARN],
    // Pools serve unshelve: the shelving role's pools-table and member-adoption statements
    // (policy-template.ts), the sentinel pool standing for the deployment's.
    shelving: { ...SENTINEL_SHELVING, keepPrivateIp: false, unshelveFromPools: [SENTINEL_UNSHELVE_POOL] },
  });
  const result: SynthesizedRolePolicies = {
    key,
    base: base.roles,
    optIn: optIn.roles,
    // The URLs and their permissions do not depend on host groups or deletion: one variant's serve.
    functionUrls: base.functionUrls,
  };
  const temporary = `${outFile}.${process.pid}.tmp`;
  fs.writeFileSync(temporary, JSON.stringify(result));
  fs.renameSync(temporary, outFile);
};

main();
