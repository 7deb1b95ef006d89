import type { FunctionId } from '../../functions/catalog';
import type { RequestCallers } from '../../functions/shared/function-url';
import type { PolicyStatement } from './policy-template';

/**
 * The function URLs of the synthesized stack and the resource policies Lambda builds from their
 * AWS::Lambda::Permission resources, for the local cloud's `invokeUrl`.
 *
 * The synth names two sentinel principals, an operator of every request and an admin
 * (synthesize.ts); each function's permissions for them are the template of what any operator or
 * admin of a deployment gets. The loader puts the deployment's own callers there, the ones
 * infra/request-urls.ts gives the function, exactly as the stack does with its settings.
 */

export const SENTINEL_OPERATOR = 'arn:aws:iam::111111111111:role/warmboot-iam-sentinel-operator';
export const SENTINEL_ADMIN = 'arn:aws:iam::111111111111:role/warmboot-iam-sentinel-admin';

/** One AWS::Lambda::Permission of the URL's alias, as the template has it. */
export interface SynthesizedUrlPermission {
  readonly Action: string;
  readonly Principal: string;
  readonly FunctionUrlAuthType?: string;
  readonly InvokedViaFunctionUrl?: boolean;
}

/** A function's AWS::Lambda::Url and the permissions on the alias it belongs to. */
export interface SynthesizedFunctionUrl {
  readonly authType: string;
  /** The alias the URL is on (AWS::Lambda::Url `Qualifier`). */
  readonly qualifier: string;
  readonly permissions: readonly SynthesizedUrlPermission[];
}

export type SynthesizedFunctionUrls = Readonly<Partial<Record<FunctionId, SynthesizedFunctionUrl>>>;

const ACCOUNT_ID = /^\d{12}$/;

/**
 * The statement AddPermission writes for one permission (Lambda developer guide, "Control access to
 * Lambda function URLs", the policies it shows): the principal as `{AWS: <arn>}` (an account id as
 * its root's ARN), the alias ARN as resource, `FunctionUrlAuthType` as a StringEquals condition on
 * `lambda:FunctionUrlAuthType` and `InvokedViaFunctionUrl` as a Bool condition on
 * `lambda:InvokedViaFunctionUrl`. A permission with any other property is not modelled.
 */
const statementOf = (
  permission: SynthesizedUrlPermission,
  principal: string,
  resource: string,
  sid: string,
): PolicyStatement & { Principal: { AWS: string } } => {
  const unknown = Object.keys(permission).filter(
    (key) => !['Action', 'Principal', 'FunctionUrlAuthType', 'InvokedViaFunctionUrl'].includes(key),
  );
  if (unknown.length > 0) {
    throw new Error(`local IAM: Lambda permission properties ${unknown.join(', ')} are not modelled`);
  }
  const condition: Record<string, Record<string, string>> = {};
  if (permission.FunctionUrlAuthType !== undefined) {
    condition.StringEquals = { 'lambda:FunctionUrlAuthType': permission.FunctionUrlAuthType };
  }
  if (permission.InvokedViaFunctionUrl !== undefined) {
    condition.Bool = { 'lambda:InvokedViaFunctionUrl': String(permission.InvokedViaFunctionUrl) };
  }
  const account = ACCOUNT_ID.test(principal) ? principal : undefined;
  return {
    Sid: sid,
    Effect: 'Allow',
    Principal: { AWS: account ? `arn:aws:iam::${account}:root` : principal },
    Action: permission.Action,
    Resource: resource,
    ...(Object.keys(condition).length > 0 ? { Condition: condition } : {}),
  };
};

/**
 * The resource policy of a function's URL alias in a deployment with these callers: each
 * operator gets the sentinel operator's statements, each admin the sentinel admin's (a principal
 * that is both, once). `aliasArn`: the ARN of the alias the URL is on.
 */
export const functionUrlPolicy = (
  url: SynthesizedFunctionUrl,
  callers: RequestCallers,
  aliasArn: string,
): { Version: '2012-10-17'; Statement: PolicyStatement[] } => {
  const templateOf = (sentinel: string) => url.permissions.filter((p) => p.Principal === sentinel);
  const principals = new Map<string, readonly SynthesizedUrlPermission[]>();
  for (const admin of callers.admins) principals.set(admin, templateOf(SENTINEL_ADMIN));
  for (const operator of callers.operators) principals.set(operator.principal, templateOf(SENTINEL_OPERATOR));
  const statements: PolicyStatement[] = [];
  for (const [principal, permissions] of principals) {
    if (permissions.length === 0) {
      throw new Error(`local IAM: the synthesized URL has no permission template for ${principal}`);
    }
    const who = /^arn:[^:]+:iam::(\d{12}):root$/.exec(principal)?.[1] ?? principal;
    permissions.forEach((permission, index) => {
      statements.push(statementOf(permission, who, aliasArn, `${statements.length}-${index}`));
    });
  }
  return { Version: '2012-10-17', Statement: statements };
};
