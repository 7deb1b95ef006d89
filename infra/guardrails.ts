import { CfnOutput, type Stack } from 'aws-cdk-lib';

/**
 * The organization-level fence around warmboot's tags (security review H1, docs/guardrails.md).
 * warmboot's IAM policies and its code let it stop, terminate or hand out only resources that
 * carry its management tags, and its pools adopt only instances it launched itself (launch
 * intents, functions/pools/domain/launch-intents.ts). Whoever else can create, change or delete a
 * `warmboot:*` tag can still pull a resource into warmboot's reach or push one out of it. These
 * two policies deny exactly that to every principal but warmboot's roles and the named admins:
 * a service control policy for an AWS Organizations account, or a permissions boundary for the
 * roles of an account without Organizations.
 *
 * Condition keys, from the Service Authorization Reference, "Actions, resources, and condition
 * keys for Amazon EC2":
 * - `ec2:CreateTags` takes `aws:TagKeys` and `aws:RequestTag/${TagKey}` on every taggable
 *   resource type, and EC2 authorizes it for tags given at creation too (with `ec2:CreateAction`;
 *   EC2 User Guide, "Grant permission to tag resources during creation");
 * - `ec2:DeleteTags` takes `aws:TagKeys` (the keys named in the request);
 * - `ec2:RunInstances` takes `aws:TagKeys` on the instance, volume, network-interface and
 *   spot-instances-request resources it creates; `ec2:CreateVolume` on the volume;
 *   `ec2:CreateSnapshot` and `ec2:CreateSnapshots` on the snapshot.
 * `aws:PrincipalArn` is, for a role session, the role's ARN (IAM User Guide, "AWS global condition
 * context keys"), so a Lambda function's calls match its execution role's ARN.
 */

/**
 * The tag keys the guardrail protects. IAM compares `aws:TagKeys` values case-sensitively
 * (`StringLike`), but resolves the tag key in `aws:ResourceTag/<key>` condition keys without
 * regard to case, so a `WARMBOOT:SHELVING` tag could satisfy a warmboot role's IAM tag condition:
 * the usual spellings are denied too. warmboot's own code compares tag keys exactly.
 */
export const PROTECTED_TAG_KEY_PATTERNS = ['warmboot:*', 'Warmboot:*', 'WARMBOOT:*'] as const;

/** Who may still write warmboot's tags. */
export interface GuardrailPrincipals {
  /** The ARNs of warmboot's function roles (`arn:aws:iam::<account>:role/<name>`; CDK tokens allowed). */
  readonly warmbootRoleArns: readonly string[];
  /**
   * The named administrators (role or user ARNs) who may repair warmboot's tags by hand, e.g. the
   * stack's `admins`. None: only warmboot's roles can.
   */
  readonly adminArns: readonly string[];
}

interface PolicyStatement {
  readonly Sid: string;
  readonly Effect: 'Allow' | 'Deny';
  readonly Action: string | readonly string[];
  readonly Resource: string;
  readonly Condition?: Readonly<Record<string, Readonly<Record<string, string | readonly string[]>>>>;
}

export interface PolicyDocument {
  readonly Version: '2012-10-17';
  readonly Statement: readonly PolicyStatement[];
}

/** The deny statements both policies carry. */
export const warmbootTagDenyStatements = (principals: GuardrailPrincipals): PolicyStatement[] => {
  const exempt = [...principals.warmbootRoleArns, ...principals.adminArns];
  if (principals.warmbootRoleArns.length === 0)
    throw new Error(
      'guardrails: warmbootRoleArns is empty: the policy would lock warmboot out of its own tags',
    );
  // As few statements as the conditions allow, each naming the exempt principals once: an SCP
  // may hold at most 5,120 characters (AWS Organizations User Guide, "Quotas").
  const others = { ArnNotLike: { 'aws:PrincipalArn': exempt } };
  return [
    {
      // Adding, overwriting or removing a warmboot tag on an existing resource, and creating a
      // resource that carries one from the start (EC2 also authorizes ec2:CreateTags for that).
      Sid: 'DenyWarmbootTagsOutsideWarmboot',
      Effect: 'Deny',
      Action: [
        'ec2:CreateTags',
        'ec2:DeleteTags',
        'ec2:RunInstances',
        'ec2:CreateVolume',
        'ec2:CreateSnapshot',
        'ec2:CreateSnapshots',
      ],
      Resource: '*',
      Condition: { 'ForAnyValue:StringLike': { 'aws:TagKeys': [...PROTECTED_TAG_KEY_PATTERNS] }, ...others },
    },
    {
      // DeleteTags without any key removes every tag of the resource, warmboot's included. No key
      // in the request: ForAllValues holds for an absent or empty aws:TagKeys (IAM User Guide,
      // "Set operators for multivalued context keys"), and every real key matches "*".
      Sid: 'DenyDeletingEveryTagOutsideWarmboot',
      Effect: 'Deny',
      Action: 'ec2:DeleteTags',
      Resource: '*',
      Condition: { 'ForAllValues:StringNotLike': { 'aws:TagKeys': '*' }, ...others },
    },
  ];
};

/**
 * The service control policy: attach it to the account (or OU) warmboot runs in. An SCP only
 * limits, so it holds only the denies; the default FullAWSAccess keeps granting the rest.
 */
export const warmbootTagServiceControlPolicy = (principals: GuardrailPrincipals): PolicyDocument => ({
  Version: '2012-10-17',
  Statement: warmbootTagDenyStatements(principals),
});

/**
 * The permissions boundary: set it on every role and user of the account that is not warmboot's
 * (a boundary caps what identity policies grant, so it allows everything else and denies the
 * tag changes). The exemption for warmboot's roles lets the same document be set everywhere.
 */
export const warmbootTagPermissionsBoundary = (principals: GuardrailPrincipals): PolicyDocument => ({
  Version: '2012-10-17',
  Statement: [
    { Sid: 'AllowWhatIdentityPoliciesGrant', Effect: 'Allow', Action: '*', Resource: '*' },
    ...warmbootTagDenyStatements(principals),
  ],
});

/** Output ids: `aws cloudformation describe-stacks` prints the policies with the roles' ARNs filled in. */
export const GUARDRAIL_OUTPUTS = {
  serviceControlPolicy: 'WarmbootTagGuardrailScp',
  permissionsBoundary: 'WarmbootTagGuardrailBoundary',
} as const;

/** Adds both policies to the stack's outputs, as JSON, with the deployed role ARNs resolved. */
export const addGuardrailOutputs = (stack: Stack, principals: GuardrailPrincipals): void => {
  new CfnOutput(stack, GUARDRAIL_OUTPUTS.serviceControlPolicy, {
    description:
      'warmboot: service control policy denying warmboot:* tag changes outside warmboot (docs/guardrails.md)',
    value: stack.toJsonString(warmbootTagServiceControlPolicy(principals)),
  });
  new CfnOutput(stack, GUARDRAIL_OUTPUTS.permissionsBoundary, {
    description:
      'warmboot: permissions boundary denying warmboot:* tag changes outside warmboot (docs/guardrails.md)',
    value: stack.toJsonString(warmbootTagPermissionsBoundary(principals)),
  });
};
