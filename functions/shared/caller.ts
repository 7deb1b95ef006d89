import { TENANT_SOURCE_PREFIX, WARMBOOT } from '../catalog';
import type { Invocation } from './envelope';

/**
 * Who a request acts for, decided from how it arrived, never from what it says (security review
 * C3, issue 15 "Tenants"). EventBridge does not pass the PutEvents caller into the event, so on
 * the request bus the binding is made by the bus policy: an operator bound to tenants may put
 * only events whose source is `warmboot.tenant.<tenant>` for one of its tenants
 * (infra/bus-policies.ts, condition key `events:source`), and an operator configured for every
 * tenant (`tenants: ["*"]`) puts source `warmboot`. The handler reads the tenant back from the
 * source, which the policy has already checked.
 *
 * - `request-bus`: a rule delivered an operator's event (the `rules` alias).
 * - `direct-invoke`: `lambda:Invoke` of the unqualified function: the console's test events and
 *   `aws lambda invoke`. Lambda authenticates and authorizes the caller (IAM) but does not tell the
 *   function who it is; the stack grants invoke to nobody, so the caller is an administrator of the
 *   account. CloudTrail's Lambda data events record its ARN.
 * - `function-url`: an IAM-authenticated (SigV4) call of the function URL; Lambda puts the
 *   caller's ARN in `requestContext.authorizer.iam.userArn`.
 */
export interface Caller {
  readonly via: 'request-bus' | 'direct-invoke' | 'function-url';
  /** The caller's ARN where AWS tells the function (function URL); never taken from the event. */
  readonly principal?: string;
  /** The tenants it may act for; `'*'`: every tenant. */
  readonly tenants: '*' | readonly string[];
  /** May send administrative requests (define or drain a pool, register an image, delete data). */
  readonly admin: boolean;
}

/** The source an operator bound to `tenant` puts its requests with. */
export const tenantSource = (tenant: string): string => `${TENANT_SOURCE_PREFIX}${tenant}`;

/** The tenant a request source binds, or undefined for the unbound `warmboot` source. */
const tenantOfSource = (source: string): string | undefined =>
  source.startsWith(TENANT_SOURCE_PREFIX) ? source.slice(TENANT_SOURCE_PREFIX.length) : undefined;

/** Whether `source` is an operator request's: `warmboot` or a tenant-bound `warmboot.tenant.<t>`. */
export const isRequestSource = (source: unknown): source is string =>
  typeof source === 'string' &&
  (source === WARMBOOT ||
    (source.startsWith(TENANT_SOURCE_PREFIX) && source.length > TENANT_SOURCE_PREFIX.length));

/** The caller of an operator request that came as an EventBridge envelope (bus or direct invoke). */
export const callerOfEnvelope = (source: string, invocation: Invocation): Caller => {
  if (!invocation.ruleDelivery) return { via: 'direct-invoke', tenants: '*', admin: true };
  const tenant = tenantOfSource(source);
  return { via: 'request-bus', tenants: tenant === undefined ? '*' : [tenant], admin: false };
};

/** Whether the caller may act for `tenant`. */
export const actsFor = (caller: Caller, tenant: string): boolean =>
  caller.tenants === '*' || caller.tenants.includes(tenant);
