import { type FunctionId, type FunctionSpec, requestTypesOf } from '../functions/catalog';
import type { RequestCallers } from '../functions/shared/function-url';
import { operatorRequestTypes } from './bus-policies';
import type { Operator } from './config';

/**
 * Who may call each function's IAM-authenticated URL (functions/shared/function-url.ts), as plain
 * data: the stack writes it into the function's REQUEST_CALLERS and names exactly these principals
 * in the URL's resource policy (infra/function.ts), and the local cloud does both the same way
 * (local/cloud.ts), so who may call what is decided by one function.
 */

/** The stack output holding a function's request URL: `ShelvingRequestUrl`, `ImageCacheRequestUrl`, … */
export const requestUrlOutputId = (functionId: FunctionId): string =>
  `${functionId.charAt(0).toUpperCase()}${functionId.slice(1)}RequestUrl`;

/** Whether a function takes requests at all, and so has a URL: operator or administrative ones. */
export const servesRequests = (spec: FunctionSpec): boolean =>
  requestTypesOf(spec).length > 0 || (spec.adminRequests ?? []).length > 0;

/**
 * The function's callers: each operator that may send it at least one request type (with only
 * those types), and the admins if it serves administrative requests.
 */
export const requestCallersOf = (
  spec: FunctionSpec,
  operators: readonly Operator[],
  admins: readonly string[],
): RequestCallers => {
  const served = new Set(requestTypesOf(spec));
  return {
    operators: operators.flatMap((operator) => {
      const requests = operatorRequestTypes(operator).filter((type) => served.has(type));
      if (requests.length === 0) return [];
      return [
        {
          principal: operator.principal,
          requests,
          tenants: operator.tenants.includes('*') ? ('*' as const) : [...operator.tenants].sort(),
        },
      ];
    }),
    admins: (spec.adminRequests ?? []).length > 0 ? [...admins] : [],
  };
};

/** The principals the function URL's resource policy admits: every caller, each once. */
export const urlPrincipals = (callers: RequestCallers): string[] => [
  ...new Set([...callers.operators.map((operator) => operator.principal), ...callers.admins]),
];

/**
 * "Function resource-based policy: 20 KB" (Lambda developer guide, "Lambda quotas"). Each admitted
 * principal takes two statements (InvokeFunctionUrl and InvokeFunction, see infra/function.ts).
 */
export const LAMBDA_RESOURCE_POLICY_MAX_BYTES = 20 * 1024;
/**
 * An upper bound of one principal's two statements as Lambda stores them, without the principal's
 * ARN (counted on its own): Sid, Effect, Action, a function alias ARN of the longest function name
 * (64) in the longest partition and Region, and the condition.
 */
const STATEMENTS_BYTES_PER_PRINCIPAL = 2 * 360;

/** An estimate (from above) of the size of the URL's resource policy. */
export const urlPolicyBytes = (principals: readonly string[]): number =>
  64 + principals.reduce((sum, principal) => sum + STATEMENTS_BYTES_PER_PRINCIPAL + 2 * principal.length, 0);
