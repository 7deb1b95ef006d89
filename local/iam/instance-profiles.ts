/**
 * The account's IAM instance profiles, as far as the SSM agent on an instance is concerned: each
 * profile has a role, and the role's permissions come from AWS managed policies the local cloud
 * knows the content of, plus any actions granted inline. The SSM simulator asks it whether the
 * agent on an instance launched with a profile can register and receive commands
 * (local/ssm/registration.ts).
 *
 * Sources: SSM User Guide, "Configure instance permissions required for Systems Manager"
 * (setup-instance-permissions): an EC2 instance is a managed node only if its instance profile's
 * role grants the Systems Manager core permissions (the AWS managed policy
 * AmazonSSMManagedInstanceCore) or Default Host Management Configuration is on; the AWS Managed
 * Policy Reference, "AmazonSSMManagedInstanceCore" (policy version v2) for its content; and
 * "Reference: ec2messages, ssmmessages, and other API operations" for what the agent calls.
 *
 * Not modelled: explicit Deny statements, permission boundaries, SCPs and conditions in the
 * role's policies (a role here is the union of its Allow actions), and RunInstances refusing a
 * profile that does not exist (the agent on such an instance simply gets no credentials).
 */

export const AMAZON_SSM_MANAGED_INSTANCE_CORE = 'arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore';

/** AmazonSSMManagedInstanceCore, policy version v2 (AWS Managed Policy Reference). */
const SSM_MANAGED_INSTANCE_CORE_ACTIONS: readonly string[] = [
  'ssm:DescribeAssociation',
  'ssm:GetDeployablePatchSnapshotForInstance',
  'ssm:GetDocument',
  'ssm:DescribeDocument',
  'ssm:GetManifest',
  'ssm:GetParameter',
  'ssm:GetParameters',
  'ssm:ListAssociations',
  'ssm:ListInstanceAssociations',
  'ssm:PutInventory',
  'ssm:PutComplianceItems',
  'ssm:PutConfigurePackageResult',
  'ssm:UpdateAssociationStatus',
  'ssm:UpdateInstanceAssociationStatus',
  'ssm:UpdateInstanceInformation',
  'ssmmessages:CreateControlChannel',
  'ssmmessages:CreateDataChannel',
  'ssmmessages:OpenControlChannel',
  'ssmmessages:OpenDataChannel',
  'ec2messages:AcknowledgeMessage',
  'ec2messages:DeleteMessage',
  'ec2messages:FailMessage',
  'ec2messages:GetEndpoint',
  'ec2messages:GetMessages',
  'ec2messages:SendReply',
];

/** The AWS managed policies whose content the local cloud knows, by ARN. */
const MANAGED_POLICY_ACTIONS: Readonly<Record<string, readonly string[]>> = {
  [AMAZON_SSM_MANAGED_INSTANCE_CORE]: SSM_MANAGED_INSTANCE_CORE_ACTIONS,
};

/**
 * What the agent needs to become a managed node: it reports itself with UpdateInstanceInformation
 * using the role's credentials (amazon-ssm-agent `ec2roleprovider.go` `iprCredentials`, which
 * calls exactly that to decide whether the instance profile works).
 */
export const AGENT_REGISTRATION_ACTIONS: readonly string[] = ['ssm:UpdateInstanceInformation'];

/**
 * What it needs to receive Run Command and answer it: the message channels of
 * AmazonSSMManagedInstanceCore, both the ec2messages and the ssmmessages (control channel)
 * operations. The agent can use either channel; requiring both is the strict reading of "the
 * permissions of AmazonSSMManagedInstanceCore" (the simulator's choice).
 */
export const AGENT_COMMAND_ACTIONS: readonly string[] = SSM_MANAGED_INSTANCE_CORE_ACTIONS.filter(
  (action) => action.startsWith('ec2messages:') || action.startsWith('ssmmessages:'),
);

export interface InstanceProfileDefinition {
  /** The profile's role (default: the profile's name). */
  readonly roleName?: string;
  /** AWS managed policies attached to the role; unknown ARNs grant nothing. */
  readonly managedPolicyArns?: readonly string[];
  /** Actions an inline policy allows on `*`, `*` wildcards allowed (e.g. `ec2messages:*`). */
  readonly allowedActions?: readonly string[];
  /**
   * Inline Allow statements on named resources (`*` wildcards in actions and resources), e.g.
   * `ssm:GetParameter` on `arn:aws:ssm:…:parameter/warmboot/tenants/a/*` or `kms:Decrypt` on a
   * key: what a role needs to read a SecureString on the host (local/ssm/parameter-store.ts).
   */
  readonly statements?: readonly ResourceStatement[];
}

export interface ResourceStatement {
  readonly actions: readonly string[];
  readonly resources: readonly string[];
}

interface InstanceProfileRecord {
  readonly name: string;
  readonly arn: string;
  readonly roleName: string;
  readonly managedPolicyArns: string[];
  readonly allowedActions: string[];
  readonly statements: ResourceStatement[];
}

/** `*` matches any run of characters; IAM action names compare case-insensitively, resource ARNs do not. */
const wildcardMatches = (pattern: string, value: string, flags: '' | 'i'): boolean => {
  const regex = new RegExp(
    `^${pattern
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
    flags,
  );
  return regex.test(value);
};

const actionMatches = (pattern: string, action: string): boolean => wildcardMatches(pattern, action, 'i');

export class EntityAlreadyExistsError extends Error {
  readonly code = 'EntityAlreadyExists';
  constructor(name: string) {
    super(`Instance Profile ${name} already exists.`);
    this.name = 'EntityAlreadyExists';
  }
}

/** The account's instance profiles (CreateInstanceProfile + AddRoleToInstanceProfile + AttachRolePolicy). */
export class InstanceProfiles {
  readonly #accountId: string;
  readonly #profiles = new Map<string, InstanceProfileRecord>();

  constructor(accountId: string) {
    this.#accountId = accountId;
  }

  /** Creates a profile with its role's permissions; its ARN. IAM refuses a second one of the same name. */
  create(name: string, definition: InstanceProfileDefinition = {}): string {
    if (this.#profiles.has(name)) throw new EntityAlreadyExistsError(name);
    const arn = `arn:aws:iam::${this.#accountId}:instance-profile/${name}`;
    this.#profiles.set(name, {
      name,
      arn,
      roleName: definition.roleName ?? name,
      managedPolicyArns: [...(definition.managedPolicyArns ?? [])],
      allowedActions: [...(definition.allowedActions ?? [])],
      statements: [...(definition.statements ?? [])],
    });
    return arn;
  }

  /** AttachRolePolicy on the profile's role: the change reaches instances at the agent's next attempt. */
  attachManagedPolicy(name: string, policyArn: string): void {
    const profile = this.#profiles.get(name);
    if (!profile) throw new Error(`instance profile ${name} does not exist`);
    if (!profile.managedPolicyArns.includes(policyArn)) profile.managedPolicyArns.push(policyArn);
  }

  has(name: string): boolean {
    return this.#profiles.has(name);
  }

  /** Whether the role behind `profile` (a name or an instance-profile ARN) allows every one of `actions`. */
  allows(profile: string | undefined, actions: readonly string[]): boolean {
    const record = this.#record(profile);
    if (!record) return false;
    const granted = [
      ...record.managedPolicyArns.flatMap((arn) => MANAGED_POLICY_ACTIONS[arn] ?? []),
      ...record.allowedActions,
    ];
    return actions.every((action) => granted.some((pattern) => actionMatches(pattern, action)));
  }

  /**
   * Whether the role behind `profile` allows `action` on `resource`: an action it allows on `*`
   * (managed policies, `allowedActions`), or a statement naming both.
   */
  allowsOn(profile: string | undefined, action: string, resource: string): boolean {
    const record = this.#record(profile);
    if (!record) return false;
    if (this.allows(profile, [action])) return true;
    return record.statements.some(
      (statement) =>
        statement.actions.some((pattern) => actionMatches(pattern, action)) &&
        statement.resources.some((pattern) => wildcardMatches(pattern, resource, '')),
    );
  }

  /** The role behind `profile`, as its instances' sessions name it; undefined without one. */
  roleName(profile: string | undefined): string | undefined {
    return this.#record(profile)?.roleName;
  }

  #record(profile: string | undefined): InstanceProfileRecord | undefined {
    if (profile === undefined) return undefined;
    const record = this.#profiles.get(profile.split('/').pop() ?? profile);
    if (!record || (profile.startsWith('arn:') && record.arn !== profile)) return undefined;
    return record;
  }
}

/**
 * A profile whose role carries AmazonSSMManagedInstanceCore, created once: what the scenarios,
 * the sandbox and the tests give the instances whose agents must register. Its name.
 */
export const ensureSsmManagedProfile = (
  profiles: InstanceProfiles,
  name = 'warmboot-ssm-managed',
): string => {
  if (!profiles.has(name)) profiles.create(name, { managedPolicyArns: [AMAZON_SSM_MANAGED_INSTANCE_CORE] });
  return name;
};
