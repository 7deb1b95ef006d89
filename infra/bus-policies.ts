import { REQUEST_TYPES, TENANT_SOURCE_PREFIX, WARMBOOT, WARMBOOT_FACT } from '../functions/catalog';
import { tenantSource } from '../functions/shared/caller';
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
 * The sources an operator may put, which bind the tenants it acts for (functions/shared/caller.ts):
 * `warmboot` for an operator of every tenant, else `warmboot.tenant.<t>` for each of its tenants.
 */
export const operatorSources = (operator: Operator): string[] =>
  operator.tenants.includes('*') ? [WARMBOOT] : [...operator.tenants].sort().map(tenantSource);

/** Every source a request can have: `warmboot` and any tenant's (`StringLike`). */
const REQUEST_SOURCES = [WARMBOOT, `${TENANT_SOURCE_PREFIX}*`];

/**
 * The request bus: each operator may put events with its own sources (its tenants) and its own
 * detail-types; nobody else may put any (on a bus warmboot owns) or any request event (on an
 * existing bus the deployment shares with other publishers, `shared`). With no operators, nobody
 * may. An operator's own IAM policy cannot widen this: the Deny statements hold whatever it allows.
 */
export const requestBusPolicy = (options: {
  readonly busArn: string;
  readonly operators: readonly Operator[];
  readonly shared: boolean;
}): BusPolicy => {
  const { busArn, operators, shared } = options;
  type Conditions = Record<string, Record<string, string | readonly string[]>>;
  const onlyRequests: Conditions = shared
    ? { 'ForAnyValue:StringLike': { 'events:source': REQUEST_SOURCES } }
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
          'events:source': operatorSources(operator),
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
  // An operator whose own IAM policy allows PutEvents on `*` would otherwise send any request, for
  // any tenant: one Deny for detail-types outside its list, and, for an operator bound to tenants,
  // one for sources outside them (two statements: the keys of one condition must all match, and
  // either suffices). An operator of every tenant needs no source Deny: any request source acts
  // for every tenant or for one, never beyond what it may, and the policy stays within 10 KB.
  const onlyItsRequests = operators.flatMap((operator, index): BusPolicyStatement[] => {
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
    const deny = (sid: string, what: Conditions): BusPolicyStatement => ({
      Sid: `Operator${index}${sid}`,
      Effect: 'Deny',
      Principal: '*',
      Action: 'events:PutEvents',
      Resource: busArn,
      Condition: { ...who, ...(shared ? onlyRequests : {}), ...what },
    });
    return [
      deny('OnlyItsRequests', {
        'ForAnyValue:StringNotEquals': { 'events:detail-type': operatorRequestTypes(operator) },
      }),
      // On a shared bus this also refuses an entry list that mixes a request with another
      // publisher's event: safe, since an operator sends its requests on their own.
      ...(operator.tenants.includes('*')
        ? []
        : [
            deny('OnlyItsTenants', {
              'ForAnyValue:StringNotEquals': { 'events:source': operatorSources(operator) },
            }),
          ]),
    ];
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
