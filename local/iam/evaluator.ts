import { runSimulation, runUnsafeSimulation, type Simulation } from '@cloud-copilot/iam-simulate';
import { FUNCTIONS, type FunctionId } from '../../functions/catalog';
import { EBS_KEY_ACTIONS } from '../../functions/shared/ebs-encryption';
import { assertInvocationAlive, invocationScope } from '../faults';
import type { EbsKeyAuthorizer, KmsKeyView } from '../kms/keys';
import { commandInput, operationOf, type SdkClient, SimulatedAwsError } from '../sdk-bridge';
import type { SynthesizedFunctionUrl } from './function-url-policy';
import {
  type IamDeployment,
  type RolePolicyDocument,
  rolePolicies,
  type SynthesizedRolePolicies,
} from './policy-template';
import {
  type AuthorizationCheck,
  type AwsEnvironment,
  dynamodbChecks,
  type Ec2ResourceState,
  ebsKeyUseChecks,
  ec2Checks,
  eventsChecks,
  functionUrlChecks,
  ssmChecks,
} from './request-context';

/**
 * IAM for the local cloud: every call a deployed function makes is evaluated against that
 * function's role policy, as the CDK app synthesizes it, before the simulator (or DynamoDB Local)
 * sees it. Evaluation is @cloud-copilot/iam-simulate's (identity policies, every condition
 * operator, and iam-data's per-action resource types and condition keys); see docs/iam-simulation.md.
 *
 * IAM User Guide, "Policy evaluation logic": a request is allowed only if an identity-based policy
 * statement allows it and none denies it; no matching statement is an implicit deny. A call that
 * needs several authorizations (request-context.ts) is allowed only if all of them are.
 */

export type IamService = 'ec2' | 'ssm' | 'events' | 'dynamodb';

export interface IamDenial {
  readonly functionId: FunctionId;
  readonly operation: string;
  readonly action: string;
  readonly resource: string;
  readonly explicit: boolean;
  readonly context: Readonly<Record<string, string | string[]>>;
  /**
   * Statements whose action and resource matched but whose conditions did not: the ones that
   * would have allowed the call had the request context been what the statement expects.
   */
  readonly nearMisses: readonly string[];
}

export interface IamStats {
  readonly evaluated: number;
  readonly denied: number;
  /** Denied calls per function and action. */
  readonly denials: Readonly<Partial<Record<FunctionId, Readonly<Record<string, number>>>>>;
}

/**
 * A principal outside warmboot calling AWS (an operator, a CI role, another account): its ARN (a
 * role, user or account root; a role acts through a session of it) and its own IAM policies.
 */
export interface OutsideCaller {
  readonly principalArn: string;
  readonly identityPolicies?: readonly RolePolicyDocument[];
  /**
   * Service control policies attached to the caller's account (besides the default
   * FullAWSAccess, which Organizations attaches to the root, every OU and every account). IAM
   * User Guide, "Policy evaluation logic": a request is allowed only if the SCPs of every level
   * allow it, and an explicit Deny in any of them wins.
   */
  readonly serviceControlPolicies?: readonly RolePolicyDocument[];
  /**
   * The caller's permissions boundary: the most its identity policies may grant (IAM User Guide,
   * "Permissions boundaries for IAM entities": allowed only if both allow it; a Deny in either wins).
   */
  readonly permissionsBoundary?: RolePolicyDocument;
}

/** Organizations' default SCP, attached to the root, every OU and every account. */
const FULL_AWS_ACCESS: RolePolicyDocument = {
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }],
};

export interface Decision {
  readonly allowed: boolean;
  readonly explicit: boolean;
  readonly nearMisses: readonly string[];
}

/** An ARN of a resource AWS owns: no account field (`arn:aws:ssm:us-east-1::parameter/aws/service/…`). */
const AWS_OWNED = /^arn:[^:]+:ssm:[^:]*::parameter\/aws\/service\//;

/** Decisions depend only on the function and the check; the same check recurs thousands of times. */
const MAX_MEMOIZED = 100_000;

export class LocalIam {
  readonly #synthesized: SynthesizedRolePolicies;
  readonly #deployment: IamDeployment;
  readonly #env: AwsEnvironment;
  readonly #ec2: Ec2ResourceState;
  /** Event bus name → its resource policy (buses without one are absent). */
  readonly #busPolicies: ReadonlyMap<string, Readonly<Record<string, unknown>>>;
  readonly #policies = new Map<FunctionId, RolePolicyDocument[]>();
  readonly #decisions = new Map<string, Decision>();
  readonly #denials: IamDenial[] = [];
  readonly #counts = new Map<FunctionId, Map<string, number>>();
  #evaluated = 0;

  constructor(options: {
    synthesized: SynthesizedRolePolicies;
    deployment: IamDeployment;
    ec2: Ec2ResourceState;
    /** The resource policies of the deployment's event buses, by bus name (infra/bus-policies.ts). */
    busPolicies?: ReadonlyMap<string, Readonly<Record<string, unknown>>>;
  }) {
    this.#synthesized = options.synthesized;
    this.#deployment = options.deployment;
    this.#env = {
      partition: options.deployment.partition,
      region: options.deployment.region,
      accountId: options.deployment.accountId,
    };
    this.#ec2 = options.ec2;
    this.#busPolicies = options.busPolicies ?? new Map();
  }

  /** The role's policy documents in this deployment (tokens resolved to the local names). */
  policies(functionId: FunctionId): RolePolicyDocument[] {
    let documents = this.#policies.get(functionId);
    if (!documents) {
      documents = rolePolicies(this.#synthesized, functionId, this.#deployment);
      this.#policies.set(functionId, documents);
    }
    return documents;
  }

  /** The session a function's calls are signed with: its role, assumed by Lambda. */
  principalArn(functionId: FunctionId): string {
    return `arn:${this.#env.partition}:sts::${this.#env.accountId}:assumed-role/warmboot-${functionId}-role/warmboot-${functionId}`;
  }

  /** Every authorization the call needs, read from the simulators' state now. */
  checks(functionId: FunctionId, service: IamService, operation: string, input: Record<string, unknown>) {
    const principal = this.principalArn(functionId);
    switch (service) {
      case 'ec2':
        return ec2Checks(operation, input, this.#env, principal, this.#ec2);
      case 'ssm':
        return ssmChecks(operation, input, this.#env, principal, this.#ec2);
      case 'events':
        return eventsChecks(operation, input, this.#env, principal, (bus) => this.#busPolicies.get(bus));
      case 'dynamodb':
        return dynamodbChecks(operation, input, this.#env, principal);
    }
  }

  /**
   * Authorizes one call; throws the error the service returns on a denial. The checks are built
   * synchronously, so the tags are those of this instant, before any other call can change them.
   */
  async authorize(
    functionId: FunctionId,
    service: IamService,
    operation: string,
    input: Record<string, unknown>,
  ): Promise<void> {
    const checks = this.checks(functionId, service, operation, input);
    this.#evaluated += 1;
    for (const check of checks) {
      const decision = await this.evaluate(functionId, check);
      if (decision.allowed) continue;
      const denial = this.#record(functionId, operation, check, decision);
      throw deniedError(service, this.principalArn(functionId), denial);
    }
  }

  /**
   * Authorizes one EventBridge call of a principal outside warmboot (cloud.putEvent): its own
   * policies and the bus's policy, as for a function. Throws AccessDeniedException on a denial;
   * such denials are not counted with the functions'.
   */
  async authorizeCaller(
    caller: OutsideCaller,
    operation: string,
    input: Record<string, unknown>,
  ): Promise<void> {
    const principal = sessionOf(caller.principalArn);
    const checks = eventsChecks(operation, input, this.#env, principal, (bus) => this.#busPolicies.get(bus));
    const denial = await this.#outsideCallerDenial(caller, checks);
    if (denial) throw new SimulatedAwsError('AccessDeniedException', denial, { httpStatusCode: 400 });
  }

  /**
   * Whether a principal outside warmboot may make an EC2 call (request-context.ts ec2Checks on the
   * simulated EC2's state now), under its identity policies, its account's SCPs and its
   * permissions boundary. Returns the denial's message, or undefined when IAM allows the call.
   */
  async ec2CallerDenial(
    caller: OutsideCaller,
    operation: string,
    input: Record<string, unknown>,
  ): Promise<string | undefined> {
    const principal = sessionOf(caller.principalArn);
    return this.#outsideCallerDenial(caller, ec2Checks(operation, input, this.#env, principal, this.#ec2));
  }

  /** A function's URL as synthesized (auth type, alias, the permission templates); undefined: none. */
  functionUrl(functionId: FunctionId): SynthesizedFunctionUrl | undefined {
    return this.#synthesized.functionUrls?.[functionId];
  }

  /**
   * Whether a principal outside warmboot may call a function URL (request-context.ts
   * functionUrlChecks against the URL's resource policy, function-url-policy.ts). Returns the
   * denial's message, or undefined when Lambda would let the request through.
   */
  async functionUrlDenial(
    caller: OutsideCaller,
    url: { readonly targetArn: string; readonly authType: string },
    resourcePolicy: Readonly<Record<string, unknown>>,
  ): Promise<string | undefined> {
    const principal = sessionOf(caller.principalArn);
    return this.#outsideCallerDenial(caller, functionUrlChecks(this.#env, principal, url, resourcePolicy));
  }

  /** The first of `checks` the caller's own policies and the resource's policy deny, as AWS words it. */
  async #outsideCallerDenial(
    caller: OutsideCaller,
    checks: readonly AuthorizationCheck[],
  ): Promise<string | undefined> {
    const principal = sessionOf(caller.principalArn);
    for (const unadjusted of checks) {
      // A role's session: aws:PrincipalArn is the role's ARN as IAM knows it, path included.
      const check =
        principal === caller.principalArn
          ? unadjusted
          : { ...unadjusted, context: { ...unadjusted.context, 'aws:PrincipalArn': caller.principalArn } };
      const decision = await this.#simulate(
        JSON.stringify(caller),
        principal,
        (caller.identityPolicies ?? []).map((policy, index) => ({ name: `caller-${index}`, policy })),
        check,
        caller,
      );
      if (decision.allowed) continue;
      return `User: ${principal} is not authorized to perform: ${check.action} on resource: ${check.resource} ${
        decision.explicit ? 'with an explicit deny in a resource-based policy' : 'because no policy allows it'
      }`;
    }
    return undefined;
  }

  /**
   * Whether the function's role lets EC2 use a customer managed KMS key on its behalf for an
   * encrypted volume (request-context.ts ebsKeyUseChecks). EC2 accepts the call either way and the
   * instance or volume fails later, so nothing is thrown: the first denial is recorded (operation
   * `<operation> via EC2`) and its message returned; undefined when every action is allowed.
   */
  async ebsKeyUseDenial(
    functionId: FunctionId,
    operation: string,
    key: KmsKeyView,
    actions: readonly string[],
  ): Promise<string | undefined> {
    const principal = this.principalArn(functionId);
    for (const check of ebsKeyUseChecks(this.#env, principal, key, actions)) {
      const decision = await this.evaluate(functionId, check);
      if (decision.allowed) continue;
      const denial = this.#record(functionId, `${operation} via EC2`, check, decision);
      return `User: ${principal} is not authorized to perform: ${check.action} on resource: ${check.resource} ${reason(denial)}`;
    }
    return undefined;
  }

  /** Records a denied check of a function's call (stats(), denials()) and returns it. */
  #record(
    functionId: FunctionId,
    operation: string,
    check: AuthorizationCheck,
    decision: Decision,
  ): IamDenial {
    const denial: IamDenial = {
      functionId,
      operation,
      action: check.action,
      resource: check.resource,
      explicit: decision.explicit,
      context: check.context,
      nearMisses: decision.nearMisses,
    };
    this.#denials.push(denial);
    // WARMBOOT_IAM_TRACE=1 prints each denial (which statement nearly matched, and the context).
    if (process.env.WARMBOOT_IAM_TRACE) console.warn(`local IAM denied: ${JSON.stringify(denial)}`);
    const counts = this.#counts.get(denial.functionId) ?? new Map<string, number>();
    counts.set(denial.action, (counts.get(denial.action) ?? 0) + 1);
    this.#counts.set(denial.functionId, counts);
    return denial;
  }

  stats(): IamStats {
    const denials: Partial<Record<FunctionId, Record<string, number>>> = {};
    for (const [functionId, counts] of this.#counts) denials[functionId] = Object.fromEntries(counts);
    return { evaluated: this.#evaluated, denied: this.#denials.length, denials };
  }

  /** Every denial so far, oldest first (the first check of a call that failed). */
  denials(): readonly IamDenial[] {
    return [...this.#denials];
  }

  /** One authorization against the function's role policy (memoized: it depends on nothing else). */
  async evaluate(functionId: FunctionId, check: AuthorizationCheck): Promise<Decision> {
    return this.#simulate(
      `function:${functionId}`,
      this.principalArn(functionId),
      this.policies(functionId).map((policy, index) => ({ name: `${functionId}-${index}`, policy })),
      check,
    );
  }

  /**
   * `who` names the principal and its policies (guardrails included) in the memo key (a
   * function's never change); `guardrails`: the outside caller's SCPs and permissions boundary.
   */
  async #simulate(
    who: string,
    principal: string,
    identityPolicies: readonly { name: string; policy: RolePolicyDocument }[],
    check: AuthorizationCheck,
    guardrails: Pick<OutsideCaller, 'serviceControlPolicies' | 'permissionsBoundary'> = {},
  ): Promise<Decision> {
    const key = JSON.stringify([who, check.action, check.resource, check.context, check.resourcePolicy]);
    const known = this.#decisions.get(key);
    if (known) return known;
    const simulation: Simulation = {
      request: {
        principal,
        action: check.action,
        resource: { resource: check.resource, accountId: this.#env.accountId },
        contextVariables: { ...check.context },
      },
      identityPolicies: identityPolicies.map(({ name, policy }) => ({ name, policy })),
      ...(check.resourcePolicy ? { resourcePolicy: check.resourcePolicy } : {}),
      serviceControlPolicies: guardrails.serviceControlPolicies
        ? [
            { orgIdentifier: 'root', policies: [{ name: 'FullAWSAccess', policy: FULL_AWS_ACCESS }] },
            {
              orgIdentifier: this.#env.accountId,
              policies: [
                { name: 'FullAWSAccess', policy: FULL_AWS_ACCESS },
                ...guardrails.serviceControlPolicies.map((policy, index) => ({
                  name: `scp-${index}`,
                  policy,
                })),
              ],
            },
          ]
        : [],
      resourceControlPolicies: [],
      ...(guardrails.permissionsBoundary
        ? { permissionBoundaryPolicies: [{ name: 'boundary', policy: guardrails.permissionsBoundary }] }
        : {}),
    };
    const result = await runSimulation(simulation, { simulationMode: 'Strict' });
    if (
      result.resultType === 'error' &&
      result.errors.message === 'no.resource.types' &&
      AWS_OWNED.test(check.resource)
    ) {
      // AWS's public parameters (`arn:aws:ssm:<region>::parameter/aws/service/…`) have no account
      // in their ARN, which iam-data's parameter pattern does not accept; their context holds
      // global keys only, so evaluating without that validation loses nothing.
      const allowed = runUnsafeSimulation(simulation, { simulationMode: 'Strict' }) === 'Allowed';
      return this.#remember(key, { allowed, explicit: false, nearMisses: [] });
    }
    if (result.resultType === 'error') {
      // A request the Service Authorization Reference does not allow (unknown action, an ARN of a
      // resource type the action does not take): a modelling error in request-context.ts.
      throw new Error(
        `local IAM cannot evaluate ${check.action} on ${check.resource}: ${JSON.stringify(result.errors)}`,
      );
    }
    const analyses =
      result.resultType === 'single' ? [result.result.analysis] : result.results.map((r) => r.analysis);
    const nearMisses = analyses.flatMap((analysis) =>
      (analysis.identityAnalysis?.unmatchedStatements ?? [])
        .filter((statement) => statement.actionMatch && statement.resourceMatch)
        .map((statement) => statement.statement.sid() ?? `#${statement.statement.index()}`),
    );
    const decision: Decision = {
      allowed: result.overallResult === 'Allowed',
      explicit: result.overallResult === 'ExplicitlyDenied',
      nearMisses: [...new Set(nearMisses)],
    };
    return this.#remember(key, decision);
  }

  #remember(key: string, decision: Decision): Decision {
    if (this.#decisions.size >= MAX_MEMOIZED) this.#decisions.clear();
    this.#decisions.set(key, decision);
    return decision;
  }
}

/**
 * Who EC2 acts for when it uses a customer managed key (local/kms): a function's invocation as its
 * role, evaluated against its policy; anything outside one (a test or the sandbox seeding the
 * fleet) as the account's administrator, which the default key policy lets use every key.
 */
export const ebsKeyAuthorizer =
  (iam: LocalIam): EbsKeyAuthorizer =>
  async (operation, key) => {
    const functionId = invocationScope.getStore()?.functionId;
    if (functionId === undefined || !(functionId in FUNCTIONS)) return undefined;
    return iam.ebsKeyUseDenial(functionId as FunctionId, operation, key, EBS_KEY_ACTIONS);
  };

/** A role acts through a session of it (`sts::…:assumed-role/<role>/<session>`); users and roots as themselves. */
const sessionOf = (principalArn: string): string => {
  const role = /^arn:([^:]+):iam::(\d{12}):role\/(?:.*\/)?([^/]+)$/.exec(principalArn);
  return role ? `arn:${role[1]}:sts::${role[2]}:assumed-role/${role[3]}/operator-session` : principalArn;
};

const reason = (denial: IamDenial): string =>
  denial.explicit
    ? `with an explicit deny in an identity-based policy`
    : `because no identity-based policy allows the ${denial.action} action`;

/**
 * The error each service returns on a denial:
 * - EC2: `UnauthorizedOperation`, HTTP 403, with an encoded authorization message (EC2 API
 *   Reference, "Error codes"; the message decodes with sts:DecodeAuthorizationMessage, whose
 *   documented shape — allowed, explicitDeny, matchedStatements, failures, context — is used here).
 * - SSM, EventBridge, DynamoDB: `AccessDeniedException`, HTTP 400 (each API reference's
 *   "Common Errors"; DynamoDB Developer Guide, "Error handling": 400 AccessDeniedException).
 */
const deniedError = (service: IamService, principal: string, denial: IamDenial): SimulatedAwsError => {
  const text = `User: ${principal} is not authorized to perform: ${denial.action} on resource: ${denial.resource} ${reason(denial)}`;
  if (service === 'ec2') {
    const encoded = Buffer.from(
      JSON.stringify({
        allowed: false,
        explicitDeny: denial.explicit,
        matchedStatements: { items: [] },
        failures: { items: [] },
        context: {
          principal: { arn: principal },
          action: denial.action,
          resource: denial.resource,
          conditions: {
            items: Object.entries(denial.context).map(([key, value]) => ({
              key,
              values: { items: [value].flat().map((item) => ({ value: item })) },
            })),
          },
        },
      }),
    ).toString('base64');
    return new SimulatedAwsError(
      'UnauthorizedOperation',
      `You are not authorized to perform this operation. ${text}. Encoded authorization failure message: ${encoded}`,
      { httpStatusCode: 403 },
    );
  }
  return new SimulatedAwsError('AccessDeniedException', text, { httpStatusCode: 400 });
};

/**
 * Evaluates every call a function's invocation makes through its SDK client before it is sent,
 * from the command's name and input (for the DocumentClient, the marshalled input of the
 * underlying DynamoDB command: the table names and item actions DynamoDB receives). It runs in
 * the build step, once per call (retries re-send the authorized request), where the clock hold
 * of `holdClockWhileSending` covers iam-data's first file reads.
 */
export const attachIam = <Input extends object, Output extends object>(
  client: SdkClient<Input, Output>,
  iam: LocalIam,
  functionId: FunctionId,
  service: IamService,
): void => {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      // Only a function's own invocations run as its role. A test or the sandbox that borrows a
      // deployed function's client outside any invocation (to launch the fleet it then watches,
      // or to play an outside actor) acts as the account's administrator.
      if (!invocationScope.getStore()) return next(args);
      assertInvocationAlive();
      await iam.authorize(functionId, service, operationOf(context), commandInput(args));
      return next(args);
    },
    { step: 'build', priority: 'low', name: 'warmbootLocalIam' },
  );
};
