import { Stack } from 'aws-cdk-lib';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { FUNCTIONS, type FunctionId } from '../../functions/catalog';
import {
  OPERATOR_IMAGE_PARAMETER_PREFIX,
  PUBLIC_IMAGE_PARAMETER_PREFIX,
} from '../../functions/pools/patterns';
import { ACCOUNT_BUDGET_ENV, type AccountBudgetSettings } from '../../functions/shared/account-budget';
import { EBS_KEY_ACTIONS } from '../../functions/shared/ebs-encryption';
import {
  INSTANCE_ATTRIBUTES,
  type InstanceAttributeProperty,
} from '../../functions/shared/instance-attributes';
import {
  type CommandDocument,
  deployedDocumentName,
  documentContent,
} from '../../functions/shared/ssm-document';
import type { TableId } from '../../functions/shared/tables';
import type { WarmbootBuses } from '../buses';
import type { WarmbootData } from '../data';
import { type TableAccess, WarmbootFunction } from '../function';
import { ec2AccountlessArns, ec2Arns, ssmDocumentArn, ssmParameterArn } from '../iam';

/** What every capability passes on to its functions. */
export interface CapabilityProps {
  /** The tables (WarmbootData). */
  readonly data: WarmbootData;
  /** The default, request and facts buses the functions' rules sit on and their facts go to. */
  readonly buses: WarmbootBuses;
  /** @default logs.RetentionDays.THREE_MONTHS */
  readonly logRetention?: logs.RetentionDays;
  /** Per-function reserved concurrency. @default - none */
  readonly reservedConcurrency?: Readonly<Partial<Record<FunctionId, number>>>;
  /** Alarm notifications. @default - alarms without actions */
  readonly alarmTopic?: sns.ITopic;
  /**
   * Customer managed KMS keys of the EBS volumes warmboot launches, starts, attaches or creates
   * (`ebsKmsKeyArns`). @default [] - only unencrypted volumes and the AWS managed key `aws/ebs`
   */
  readonly ebsKmsKeyArns?: readonly string[];
  /**
   * warmboot's share of the account's EC2 throttling buckets (`accountBudget`), passed to every
   * function that calls EC2 as ACCOUNT_BUDGET. @default - the functions' default share (0.1)
   */
  readonly accountBudget?: AccountBudgetSettings;
}

const DESCRIBE_REASON =
  'ec2:Describe* actions support no resource-level permissions (Service Authorization Reference); read-only';

/** Read-only EC2 calls; they only accept Resource "*". */
const allowDescribe = (fn: WarmbootFunction, actions: readonly string[]): void => {
  fn.allow('Ec2Describe', DESCRIBE_REASON, { actions: [...actions], resources: ['*'] });
};

/** What a capability says about one of its functions beyond the catalog entry. */
export interface FunctionSetup {
  /** Settings, each passed JSON-encoded in an environment variable of that name. */
  readonly settings: Readonly<Record<string, unknown>>;
  /**
   * The catalog tables the function uses besides its idempotency table (every function's, read
   * and write), with their access; granted in this order.
   */
  readonly tables: Readonly<Partial<Record<TableId, TableAccess>>>;
  /** The read-only EC2 Describe calls it makes (allowDescribe). */
  readonly describe?: readonly string[];
}

/**
 * One function of a capability with the grants every function gets the same way: its tables, the
 * facts it publishes (only the catalog's `publishes`) and its Describe calls. The capability adds
 * the statements particular to the function.
 */
export const createFunction = (
  scope: Construct,
  id: FunctionId,
  props: CapabilityProps,
  setup: FunctionSetup,
): WarmbootFunction => {
  // A function that calls EC2 lists the account budget's table: its EC2 client leases from it.
  const callsEc2 = FUNCTIONS[id].tables.includes('ec2Budget');
  const fn = new WarmbootFunction(scope, pascalCase(id), {
    spec: FUNCTIONS[id],
    data: props.data,
    buses: props.buses,
    settings:
      callsEc2 && props.accountBudget
        ? { ...setup.settings, [ACCOUNT_BUDGET_ENV]: props.accountBudget }
        : setup.settings,
    ...(props.logRetention !== undefined ? { logRetention: props.logRetention } : {}),
    ...(props.reservedConcurrency?.[id] !== undefined
      ? { reservedConcurrency: props.reservedConcurrency[id] }
      : {}),
    ...(props.alarmTopic ? { alarmTopic: props.alarmTopic } : {}),
  });
  for (const [table, access] of Object.entries(setup.tables) as [TableId, TableAccess][]) {
    fn.grantTable(table, access);
  }
  // Reservations are conditional UpdateItems (adapters/budget-store.ts): no Put, Delete or BatchWrite.
  if (callsEc2) fn.grantTable('ec2Budget', 'readUpdate');
  fn.grantPublish();
  if (setup.describe) allowDescribe(fn, setup.describe);
  return fn;
};

const pascalCase = (id: string): string => id.charAt(0).toUpperCase() + id.slice(1);

/**
 * The SSM Command documents of one capability, each deployed under its content-addressed name
 * (`deployedDocumentName`): the functions send exactly that name at version 1, so a command runs
 * the content this deployment shipped. A content change is a new name, so CloudFormation creates
 * the new document before it deletes the old one and commands already sent keep theirs. The
 * catalog routes command-status events by the logical name's prefix, and IAM grants SendCommand
 * on exactly these ARNs.
 */
export class CommandDocuments extends Construct {
  readonly documents: readonly ssm.CfnDocument[];
  readonly arns: readonly string[];

  constructor(scope: Construct, id: string, documents: readonly CommandDocument[]) {
    super(scope, id);
    this.documents = documents.map(
      (document) =>
        new ssm.CfnDocument(this, document.name, {
          name: deployedDocumentName(document),
          documentType: 'Command',
          documentFormat: 'JSON',
          content: documentContent(document),
        }),
    );
    this.arns = documents.map((document) => ssmDocumentArn(this, deployedDocumentName(document)));
  }
}

/** GetCommandInvocation / ListCommandInvocations support no resource-level permissions. */
export const allowReadCommandResults = (fn: WarmbootFunction): void => {
  fn.allow(
    'SsmReadCommandResults',
    'ssm:GetCommandInvocation and ssm:ListCommandInvocations support no resource-level permissions; read-only',
    { actions: ['ssm:GetCommandInvocation', 'ssm:ListCommandInvocations'], resources: ['*'] },
  );
};

/**
 * RunInstances authorizes every resource the launch touches. The resources it creates (instance,
 * volume) are granted by the caller with request-tag conditions; these are the ones it only
 * references or creates implicitly with the instance (its network interface).
 *
 * `imageOwners`: only AMIs of these owners (`self` stands for this account), by the condition key
 * `ec2:Owner` of the image resource ("the owner of the resource: amazon, aws-marketplace, or an
 * AWS account ID", Service Authorization Reference, Amazon EC2 condition keys). Launch templates
 * are this account's (their ARN names the account).
 */
export const allowLaunchReferences = (
  fn: WarmbootFunction,
  extra: readonly string[],
  imageOwners: readonly string[],
): void => {
  const [images, snapshots] = ec2AccountlessArns(fn, 'image', 'snapshot');
  fn.allow(
    'LaunchImagesOfAllowedOwners',
    'RunInstances authorizes the AMI it launches; only AMIs of the configured owners (allowedImageOwners)',
    {
      actions: ['ec2:RunInstances'],
      resources: [images ?? ''],
      conditions: {
        StringEquals: {
          'ec2:Owner': imageOwners.map((owner) => (owner === 'self' ? Stack.of(fn).account : owner)),
        },
      },
    },
  );
  fn.allow(
    'LaunchReferences',
    'RunInstances also authorizes the image, snapshots, subnet, security groups, key pair, launch template and the ' +
      'network interface it creates with the instance; none is modified, and AMIs/snapshots of public or shared ' +
      'images live in other accounts, so they cannot carry warmboot tags. The instance and volumes are tag-conditioned.',
    {
      actions: ['ec2:RunInstances'],
      resources: [
        snapshots ?? '',
        ...ec2Arns(
          fn,
          'subnet',
          'security-group',
          'network-interface',
          'key-pair',
          'launch-template',
          ...extra,
        ),
      ],
    },
  );
  fn.allow('TagAtLaunch', 'tags applied by RunInstances to what it creates (ec2:CreateAction)', {
    actions: ['ec2:CreateTags'],
    resources: ec2Arns(fn, 'instance', 'volume', 'network-interface'),
    conditions: { StringEquals: { 'ec2:CreateAction': 'RunInstances' } },
  });
};

/**
 * PassRole on exactly the roles of the instance profiles configuration names (`role` is the role's
 * path and name), only handed to EC2 (security review C2). None configured: no statement, so no
 * launch with a profile is possible.
 */
export const allowPassConfiguredRoles = (fn: WarmbootFunction, roles: readonly string[]): void => {
  if (roles.length === 0) return;
  fn.allow('PassConfiguredInstanceRoles', 'only the roles of the instance profiles configuration names', {
    actions: ['iam:PassRole'],
    resources: [...new Set(roles)].map(
      (role) => `arn:${Stack.of(fn).partition}:iam::${Stack.of(fn).account}:role/${role}`,
    ),
    conditions: { StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } },
  });
};

/**
 * The conditions that limit ModifyInstanceAttribute to the `allowed` attributes, by the keys EC2
 * sets for what a request changes. EC2 User Guide, "Policy structure", "ec2:Attribute condition
 * key": the key "supports only properties that are of a primitive data type ... or complex objects
 * that have only a Value property": `ec2:Attribute/<property>` is the value a request sets (its
 * example: `ec2:Attribute/Description` of ModifyImageAttribute), and `ec2:Attribute` is the
 * request's primitive `Attribute` field. Lists (BlockDeviceMappings, Groups) set neither.
 * - One attribute that carries a value (InstanceType): its key must be there. EC2 changes one
 *   attribute per call, so nothing else rides along.
 * - Otherwise: the key of every other attribute that carries one, and `ec2:Attribute/Value` (the
 *   `Attribute`/`Value` form), must be absent, and an `ec2:Attribute` must name one of `allowed`
 *   (in any letter case; IfExists, since the guide does not say EC2 sets it for the other form).
 *   A list outside `allowed` is refused by its own resource: Groups authorizes security groups,
 *   BlockDeviceMappings volumes, and neither is granted unless allowed.
 */
export const changesOnlyAttributes = (
  allowed: readonly InstanceAttributeProperty[],
): {
  readonly Null: Readonly<Record<string, string>>;
  readonly StringEqualsIgnoreCaseIfExists?: Readonly<Record<string, readonly string[]>>;
} => {
  const carriesValue = (property: InstanceAttributeProperty) =>
    property !== 'BlockDeviceMappings' && property !== 'Groups';
  const [only] = allowed;
  if (allowed.length === 1 && only !== undefined && carriesValue(only)) {
    return { Null: { [`ec2:Attribute/${only}`]: 'false' } };
  }
  const others = (Object.keys(INSTANCE_ATTRIBUTES) as InstanceAttributeProperty[]).filter(
    (property) => carriesValue(property) && !allowed.includes(property),
  );
  return {
    Null: Object.fromEntries([...others, 'Value'].map((property) => [`ec2:Attribute/${property}`, 'true'])),
    StringEqualsIgnoreCaseIfExists: {
      'ec2:Attribute': allowed.map((property) => INSTANCE_ATTRIBUTES[property]),
    },
  };
};

/**
 * `/aws/service/*` public AMI aliases, the parameters the pools name in context, and the operator
 * prefix that pools defined at run time may use (their paths are not known at synth; R11).
 */
export const allowResolveImageAliases = (fn: WarmbootFunction, configuredPaths: readonly string[]): void => {
  const configured = configuredPaths.filter(
    (path) =>
      !path.startsWith(PUBLIC_IMAGE_PARAMETER_PREFIX) && !path.startsWith(OPERATOR_IMAGE_PARAMETER_PREFIX),
  );
  fn.allow(
    'ResolveImageAliases',
    `public AMI alias parameters live under ${PUBLIC_IMAGE_PARAMETER_PREFIX} (owned by AWS, no account in the ARN), ` +
      `and pools defined at run time may name only parameters under ${OPERATOR_IMAGE_PARAMETER_PREFIX}; read-only`,
    {
      actions: ['ssm:GetParameter', 'ssm:GetParameters'],
      resources: [
        ssmParameterArn(fn, `${PUBLIC_IMAGE_PARAMETER_PREFIX}*`, ''),
        ssmParameterArn(fn, `${OPERATOR_IMAGE_PARAMETER_PREFIX}*`),
        ...[...new Set(configured)].map((path) => ssmParameterArn(fn, path)),
      ],
    },
  );
};

/** DescribeInstanceInformation (is the SSM agent online?) supports no resource-level permissions. */
export const allowAgentStatus = (fn: WarmbootFunction): void => {
  fn.allow(
    'SsmAgentStatus',
    'ssm:DescribeInstanceInformation supports no resource-level permissions; read-only',
    {
      actions: ['ssm:DescribeInstanceInformation'],
      resources: ['*'],
    },
  );
};

/**
 * Use of the deployment's customer managed EBS keys, the way EC2 uses them on the caller's behalf
 * when it launches, starts, attaches or creates an encrypted volume (EBS User Guide, "Requirements
 * for Amazon EBS encryption", "Permissions for users"): only the named keys, only through EC2 in
 * this Region (`kms:ViaService`), and grants only for AWS resources (the grant EC2 gives the
 * instance: `kms:GrantIsForAWSResource`, which KMS sets on every CreateGrant and on nothing else,
 * hence `IfExists` so one statement covers all six actions; the role's inline policy is near its
 * size limit). Nothing without configured keys: the AWS managed key `aws/ebs` needs no permission.
 */
export const allowEbsKeys = (fn: WarmbootFunction, keyArns: readonly string[] | undefined): void => {
  if (!keyArns || keyArns.length === 0) return;
  fn.allow('UseEbsKeys', 'the configured EBS keys (ebsKmsKeyArns), only as EC2 uses them for volumes', {
    actions: [...EBS_KEY_ACTIONS],
    resources: [...keyArns],
    conditions: {
      StringEquals: { 'kms:ViaService': `ec2.${Stack.of(fn).region}.amazonaws.com` },
      BoolIfExists: { 'kms:GrantIsForAWSResource': 'true' },
    },
  });
};
