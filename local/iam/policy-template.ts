import type { FunctionId } from '../../functions/catalog';
import type { TableId } from '../../functions/shared/tables';
import type { SynthesizedFunctionUrls } from './function-url-policy';

/**
 * The synthesized role policies with placeholders, and how a local cloud fills them in.
 *
 * Placeholders: `${AWS::Partition}`, `${AWS::Region}`, `${AWS::AccountId}` (CloudFormation pseudo
 * parameters) and `${Table:<id>}` (a table's name: the local cloud's prefixed names). The sentinel
 * host group, image parameter, EBS key ARN, image owner and instance role stand for the
 * deployment's own host-group names, pool image parameters, `ebsKmsKeyArns`, allowed AMI owners,
 * instance profile roles and pools that serve unshelve (see synthesize.ts).
 */

export const SENTINEL_HOST_GROUP = 'warmboot-iam-sentinel-host-group';
export const SENTINEL_IMAGE_PARAMETER = '/warmboot-iam-sentinel/image';
/** Stands for the deployment's `ebsKmsKeyArns` (a well-formed key ARN, so the config accepts it). */
export const SENTINEL_EBS_KMS_KEY_ARN =
  'arn:aws:kms:us-east-1:111111111111:key/warmboot-iam-sentinel-ebs-key';
/** Stands for `poolPolicy.allowedImageOwners` (an account ID, so the config accepts it). */
export const SENTINEL_IMAGE_OWNER = '999999999999';
/** Stands for the roles of the configured instance profiles (the role of the sentinel pool's profile). */
export const SENTINEL_INSTANCE_ROLE = 'warmboot-iam-sentinel-role';
/** Stands for the pools of `shelving.unshelveFromPools` (the shelving role adopts their members). */
export const SENTINEL_UNSHELVE_POOL = 'warmboot-iam-sentinel-unshelve-pool';
/** Stands for `shelving.allowedImageOwners` (an account ID, so the config accepts it). */
export const SENTINEL_SHELVING_IMAGE_OWNER = '888888888888';
/** Stands for the roles of `shelving.instanceProfiles`. */
export const SENTINEL_SHELVING_INSTANCE_ROLE = 'warmboot-iam-sentinel-shelving-role';
/** The default AMI owners of the pool policy and of shelving (functions/pools/config.ts imageOwnersSchema). */
const DEFAULT_IMAGE_OWNERS = ['self', 'amazon'];

export interface PolicyStatement {
  readonly Sid?: string;
  readonly Effect: 'Allow' | 'Deny';
  readonly Action?: string | string[];
  readonly NotAction?: string | string[];
  readonly Resource?: string | string[];
  readonly NotResource?: string | string[];
  readonly Condition?: Record<string, Record<string, string | string[]>>;
}

export interface RolePolicyDocument {
  readonly Version: string;
  readonly Statement: PolicyStatement[];
}

/** Every function role's policy documents (inline and attached), as CloudFormation renders them. */
export type SynthesizedVariant = Readonly<Record<FunctionId, readonly RolePolicyDocument[]>>;

export interface SynthesizedRolePolicies {
  /** The content hash of the sources the synth read (policy-source.ts). */
  readonly key: string;
  /** No host groups, shelved data deletion off. */
  readonly base: SynthesizedVariant;
  /** The sentinel host group, shelved data deletion on. */
  readonly optIn: SynthesizedVariant;
  /**
   * Every function URL and its alias's permissions, for the sentinel callers (function-url-policy.ts).
   * Absent in an evaluator built for role policies only: then no URL can be called.
   */
  readonly functionUrls?: SynthesizedFunctionUrls;
}

/** The deploy-time settings IAM depends on, as the local cloud runs them. */
export interface IamDeployment {
  readonly partition: string;
  readonly region: string;
  readonly accountId: string;
  readonly tables: Readonly<Record<TableId, string>>;
  /** `HOST_GROUPS` names: the image cache may touch only hosts and volumes tagged with one. */
  readonly hostGroups: readonly string[];
  /** Pool images given as SSM parameter paths (`POOLS[].image` starting with `/`). */
  readonly imageParameters: readonly string[];
  /** The `allowShelvedDataDeletion` opt-in. */
  readonly allowShelvedDataDeletion: boolean;
  /**
   * `shelving.unshelveFromPools`: when it names pools, the shelving role may use the pools table
   * and opt those pools' members in to shelving. Default none.
   */
  readonly unshelveFromPools?: readonly string[];
  /** `ebsKmsKeyArns`: the customer managed keys of encrypted volumes warmboot may use (default none). */
  readonly ebsKmsKeyArns?: readonly string[];
  /** `poolPolicy.allowedImageOwners` (`self` for this account); default self and amazon. */
  readonly imageOwners?: readonly string[];
  /** The roles of the instance profiles pools may launch with (path and name); default none. */
  readonly instanceRoles?: readonly string[];
  /** `shelving.allowedImageOwners` (`self` for this account); default self and amazon. */
  readonly shelvingImageOwners?: readonly string[];
  /** The roles of `shelving.instanceProfiles` (path and name); default none. */
  readonly shelvingInstanceRoles?: readonly string[];
}

const fillPlaceholders = (text: string, deployment: IamDeployment): string =>
  text.replace(
    /\$\{(AWS::Partition|AWS::Region|AWS::AccountId|Table:([A-Za-z0-9]+))\}/g,
    (_match, name, table) => {
      if (name === 'AWS::Partition') return deployment.partition;
      if (name === 'AWS::Region') return deployment.region;
      if (name === 'AWS::AccountId') return deployment.accountId;
      const local = deployment.tables[table as TableId];
      if (local === undefined) throw new Error(`no local table for placeholder ${name}`);
      return local;
    },
  );

/**
 * One value list with the sentinels replaced: the host-group sentinel by every host-group name,
 * a parameter ARN ending in the sentinel path by one ARN per configured image parameter.
 */
const expandValues = (values: readonly string[], deployment: IamDeployment): string[] =>
  values.flatMap((value) => {
    if (value === SENTINEL_HOST_GROUP) return [...deployment.hostGroups];
    if (value === SENTINEL_UNSHELVE_POOL) return [...(deployment.unshelveFromPools ?? [])];
    if (value === SENTINEL_EBS_KMS_KEY_ARN) return [...(deployment.ebsKmsKeyArns ?? [])];
    const owners = (configured: readonly string[] | undefined) =>
      (configured ?? DEFAULT_IMAGE_OWNERS).map((owner) => (owner === 'self' ? deployment.accountId : owner));
    if (value === SENTINEL_IMAGE_OWNER) return owners(deployment.imageOwners);
    if (value === SENTINEL_SHELVING_IMAGE_OWNER) return owners(deployment.shelvingImageOwners);
    for (const [sentinel, roles] of [
      [SENTINEL_INSTANCE_ROLE, deployment.instanceRoles],
      [SENTINEL_SHELVING_INSTANCE_ROLE, deployment.shelvingInstanceRoles],
    ] as const) {
      if (value.endsWith(`:role/${sentinel}`)) {
        const prefix = value.slice(0, -sentinel.length);
        return (roles ?? []).map((role) => `${prefix}${role}`);
      }
    }
    if (value.endsWith(`:parameter${SENTINEL_IMAGE_PARAMETER}`)) {
      const prefix = value.slice(0, -SENTINEL_IMAGE_PARAMETER.length);
      return deployment.imageParameters.map((parameter) => `${prefix}${parameter}`);
    }
    return [value];
  });

const asList = (value: string | string[]): string[] => (Array.isArray(value) ? value : [value]);

/**
 * A statement for this deployment; undefined when a list it needs became empty, which is what the
 * synth does with no names to put there (it renders no such statement, or no such resource).
 */
const fillStatement = (
  statement: PolicyStatement,
  deployment: IamDeployment,
): PolicyStatement | undefined => {
  const filled: Record<string, unknown> = { ...statement };
  for (const field of ['Resource', 'NotResource'] as const) {
    const value = statement[field];
    if (value === undefined) continue;
    const expanded = expandValues(asList(value), deployment).map((item) =>
      fillPlaceholders(item, deployment),
    );
    if (expanded.length === 0) return undefined;
    filled[field] = expanded;
  }
  if (statement.Condition) {
    const condition: Record<string, Record<string, string[]>> = {};
    for (const [operator, keys] of Object.entries(statement.Condition)) {
      condition[operator] = {};
      for (const [key, value] of Object.entries(keys)) {
        const expanded = expandValues(asList(value), deployment).map((item) =>
          fillPlaceholders(item, deployment),
        );
        if (expanded.length === 0) return undefined;
        condition[operator][key] = expanded;
      }
    }
    filled.Condition = condition;
  }
  return filled as unknown as PolicyStatement;
};

/**
 * The shelving role's grant on the pools table and its adoption of their members, synthesized only
 * when pools serve unshelve.
 */
const POOLS_SERVE_UNSHELVE_SIDS = ['PoolsTableReadWrite', 'AdoptPoolMembers'];

/**
 * `documents` with the statements `sids` exactly when `wanted`: taken from `source` (the variant
 * synthesized with the setting on) into the first document, or removed. The setting adds those
 * statements and nothing else, so it need not be a variant of its own.
 */
const withStatements = (
  documents: readonly RolePolicyDocument[],
  source: readonly RolePolicyDocument[],
  sids: readonly string[],
  wanted: boolean,
): RolePolicyDocument[] => {
  const without = documents.map((document) => ({
    ...document,
    Statement: document.Statement.filter((statement) => !sids.includes(statement.Sid ?? '')),
  }));
  if (!wanted) return without;
  const statements = sids.map((sid) => {
    const statement = source.flatMap((document) => document.Statement).find((item) => item.Sid === sid);
    if (statement === undefined) throw new Error(`the synthesized shelving role has no statement ${sid}`);
    return statement;
  });
  return without.map((document, index) =>
    index === 0 ? { ...document, Statement: [...document.Statement, ...statements] } : document,
  );
};

/**
 * The policy documents of one function's role in this deployment: the variant the synth would
 * have produced for its settings, with the placeholders and sentinels filled in.
 */
export const rolePolicies = (
  synthesized: SynthesizedRolePolicies,
  functionId: FunctionId,
  deployment: IamDeployment,
): RolePolicyDocument[] => {
  const optIn =
    (functionId === 'imageCache' && deployment.hostGroups.length > 0) ||
    (functionId === 'shelving' && deployment.allowShelvedDataDeletion);
  const chosen = (optIn ? synthesized.optIn : synthesized.base)[functionId];
  const documents =
    functionId === 'shelving'
      ? withStatements(
          chosen,
          synthesized.optIn.shelving,
          POOLS_SERVE_UNSHELVE_SIDS,
          (deployment.unshelveFromPools ?? []).length > 0,
        )
      : chosen;
  const filled = documents.map((document) => ({
    ...document,
    Statement: document.Statement.flatMap((statement) => fillStatement(statement, deployment) ?? []),
  }));
  const text = JSON.stringify(filled);
  if (
    text.includes(SENTINEL_HOST_GROUP) ||
    text.includes(SENTINEL_IMAGE_PARAMETER) ||
    text.includes(SENTINEL_EBS_KMS_KEY_ARN) ||
    text.includes(SENTINEL_IMAGE_OWNER) ||
    text.includes(SENTINEL_INSTANCE_ROLE) ||
    text.includes(SENTINEL_SHELVING_IMAGE_OWNER) ||
    text.includes(SENTINEL_SHELVING_INSTANCE_ROLE) ||
    text.includes(SENTINEL_UNSHELVE_POOL) ||
    text.includes('${')
  ) {
    throw new Error(`${functionId}: a placeholder of the synthesized policy was left unfilled: ${text}`);
  }
  return filled;
};
