import { REQUEST_TYPES, WARMBOOT, WARMBOOT_FACT } from '../functions/catalog';
import type { Operator } from './config';

/**
 * The resource policies of warmboot's two buses, as plain JSON: the stack attaches exactly these
 * (infra/buses.ts) and the local cloud evaluates exactly these on every PutEvents
 * (local/cloud.ts), so what an operator may send is decided by one function.
 *
 * Why Deny statements: within one account a request is allowed when either the caller's IAM
 * policy or the resource policy allows it (IAM User Guide, "Policy evaluation logic"), and an
 * EventBridge bus without a policy admits every principal of its account that IAM lets call
 * PutEvents (EventBridge user guide, "Using resource-based policies for Amazon EventBridge";
 * AWS Security Hub control EventBridge.3). Many roles hold `events:PutEvents` on `*`, so an Allow
 * for the operators alone would not keep anyone else out; an explicit Deny does, whatever the
 * caller's own policies say. The condition keys are the ones PutEvents supplies per event
 * (EventBridge user guide, "Using IAM policy conditions": `events:source`, `events:detail-type`;
 * both multivalued, so only set operators match them) and the global `aws:PrincipalArn` (a role
 * session's is its role's ARN) and `aws:PrincipalAccount`.
 */

// Type aliases, not interfaces: a policy is JSON, assignable to `Record<string, unknown>`.
export type BusPolicyStatement = {
  readonly Sid: string;
  readonly Effect: 'Allow' | 'Deny';
  readonly Principal: '*' | { readonly AWS: string };
  readonly Action: 'events:PutEvents';
  readonly Resource: string;
  readonly Condition?: Readonly<Record<string, Readonly<Record<string, string | readonly string[]>>>>;
};

export type BusPolicy = {
  readonly Version: '2012-10-17';
  readonly Statement: readonly BusPolicyStatement[];
};

const ROOT = /^arn:[^:]+:iam::(\d{12}):root$/;
const accountOf = (principal: string): string => principal.split(':')[4] ?? '';

/** The detail-types an operator may send (`*`: every request warmboot serves). */
export const operatorRequestTypes = (operator: Operator): string[] =>
  operator.requests.includes('*') ? [...REQUEST_TYPES] : [...operator.requests].sort();

/**
 * The request bus: each operator may put events with source `warmboot` and its own detail-types;
 * nobody else may put any (on a bus warmboot owns) or any `warmboot` event (on an existing bus
 * the deployment shares with other publishers, `shared`). With no operators, nobody may.
 */
export const requestBusPolicy = (options: {
  readonly busArn: string;
  readonly operators: readonly Operator[];
  readonly shared: boolean;
}): BusPolicy => {
  const { busArn, operators, shared } = options;
  type Conditions = Record<string, Record<string, string | readonly string[]>>;
  const onlyRequests: Conditions = shared
    ? { 'ForAnyValue:StringEquals': { 'events:source': [WARMBOOT] } }
    : {};
  const named = operators.map((operator) => operator.principal).filter((principal) => !ROOT.test(principal));
  const accounts = operators
    .map((operator) => ROOT.exec(operator.principal)?.[1])
    .filter((account): account is string => account !== undefined);

  const allows = operators.map(
    (operator, index): BusPolicyStatement => ({
      Sid: `Operator${index}Requests`,
      Effect: 'Allow',
      Principal: { AWS: operator.principal },
      Action: 'events:PutEvents',
      Resource: busArn,
      Condition: {
        'ForAllValues:StringEquals': {
          'events:source': [WARMBOOT],
          'events:detail-type': operatorRequestTypes(operator),
        },
        Null: { 'events:source': 'false', 'events:detail-type': 'false' },
      },
    }),
  );
  const notAnOperator: BusPolicyStatement = {
    Sid: 'OnlyOperators',
    Effect: 'Deny',
    Principal: '*',
    Action: 'events:PutEvents',
    Resource: busArn,
    ...(named.length + accounts.length > 0 || shared
      ? {
          Condition: {
            ...onlyRequests,
            ...(named.length > 0 ? { ArnNotEquals: { 'aws:PrincipalArn': named } } : {}),
            ...(accounts.length > 0 ? { StringNotEquals: { 'aws:PrincipalAccount': accounts } } : {}),
          },
        }
      : {}),
  };
  // An operator whose own IAM policy allows PutEvents on `*` would otherwise send any request.
  const onlyItsRequests = operators.map((operator, index): BusPolicyStatement => {
    const root = ROOT.exec(operator.principal)?.[1];
    const namedInAccount = named.filter((principal) => accountOf(principal) === root);
    const who: Conditions =
      root === undefined
        ? { ArnEquals: { 'aws:PrincipalArn': operator.principal } }
        : {
            StringEquals: { 'aws:PrincipalAccount': root },
            // Principals named on their own follow their own list.
            ...(namedInAccount.length > 0 ? { ArnNotEquals: { 'aws:PrincipalArn': namedInAccount } } : {}),
          };
    return {
      Sid: `Operator${index}OnlyItsRequests`,
      Effect: 'Deny',
      Principal: '*',
      Action: 'events:PutEvents',
      Resource: busArn,
      Condition: {
        ...who,
        ...(shared ? onlyRequests : {}),
        'ForAnyValue:StringNotEquals': { 'events:detail-type': operatorRequestTypes(operator) },
      },
    };
  });
  return { Version: '2012-10-17', Statement: [...allows, notAnOperator, ...onlyItsRequests] };
};

/**
 * The facts bus: only warmboot's function roles may put events on it, and only with source
 * `warmboot.fact`; each role's own policy narrows it further to the detail-types it publishes
 * (infra/function.ts grantPublish). A consumer of a fact therefore knows warmboot sent it.
 */
export const factsBusPolicy = (options: {
  readonly busArn: string;
  readonly writerRoleArns: readonly string[];
}): BusPolicy => ({
  Version: '2012-10-17',
  Statement: [
    {
      Sid: 'OnlyWarmbootRoles',
      Effect: 'Deny',
      Principal: '*',
      Action: 'events:PutEvents',
      Resource: options.busArn,
      Condition: { ArnNotEquals: { 'aws:PrincipalArn': [...options.writerRoleArns] } },
    },
    {
      Sid: 'OnlyFacts',
      Effect: 'Deny',
      Principal: '*',
      Action: 'events:PutEvents',
      Resource: options.busArn,
      Condition: { 'ForAnyValue:StringNotEquals': { 'events:source': [WARMBOOT_FACT] } },
    },
  ],
});
