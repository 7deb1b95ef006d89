import { actsFor, type Caller } from '../../shared/caller';
import type { ItemError } from '../../shared/results';
import type { RequestedMove } from './requests';
import { TENANT_TAG } from './tags';
import type { ObservedInstance, ShelfRecord } from './types';

/**
 * Which tenant's instances and records a request may touch (security review C3): the caller's,
 * as the request bus bound it (functions/shared/caller.ts), never what the request says. Every
 * shelving request checks each item against these; an item of another tenant gets its own error
 * and the others proceed.
 */

/** What a driver inside the process (benchmark, scenario, test) acts as: an administrator. */
export const IN_PROCESS_CALLER: Caller = { via: 'direct-invoke', tenants: '*', admin: true };

/** A request that reached a handler without a caller acts for nobody. */
export const NO_CALLER: Caller = { via: 'request-bus', tenants: [], admin: false };

const NOT_AUTHORIZED_FOR_TENANT = 'NotAuthorizedForTenant';

const notAuthorized = (subject: string, tenant: string): ItemError => ({
  code: NOT_AUTHORIZED_FOR_TENANT,
  message: `${subject} belongs to tenant ${tenant}, which the caller does not act for`,
});

/**
 * Why the caller may not shelve this instance: it carries the tenant tag of a tenant the caller
 * does not act for. An instance without the tag is refused by planShelve (MissingTenant).
 */
export const shelveTenantRefusal = (
  caller: Caller,
  instance: ObservedInstance | undefined,
): ItemError | undefined => {
  const tenant = instance?.tags[TENANT_TAG];
  if (!instance || tenant === undefined || actsFor(caller, tenant)) return undefined;
  return notAuthorized(`instance ${instance.instanceId}`, tenant);
};

/**
 * Why the caller may not act on this record (Offload, Unshelve, a Shelve of its instance): it is
 * another tenant's. `subject` names what the caller named (a Shelve names the instance: the
 * record id of another tenant's instance is not told).
 */
export const recordTenantRefusal = (
  caller: Caller,
  record: { readonly recordId: string; readonly tenant: string },
  subject = `record ${record.recordId}`,
): ItemError | undefined =>
  actsFor(caller, record.tenant) ? undefined : notAuthorized(subject, record.tenant);

/** `decide`, for the records of the caller's tenants only; another tenant's record is refused. */
export const forCallersRecords =
  (caller: Caller, decide: (record: ShelfRecord) => RequestedMove) =>
  (record: ShelfRecord): RequestedMove => {
    const refusal = recordTenantRefusal(caller, record);
    return refusal ? { ok: false, error: refusal } : decide(record);
  };

/**
 * Why a request may not name this tenant (Shelve's and Unshelve's `detail.tenant`): the caller
 * does not act for it. The whole request is refused, naming the field.
 */
export const requestedTenantRefusal = (caller: Caller, tenant: string | undefined): string | undefined =>
  tenant === undefined || actsFor(caller, tenant)
    ? undefined
    : `the caller does not act for tenant ${tenant}`;
