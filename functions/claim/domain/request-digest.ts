import { createHash } from 'node:crypto';
import type { Caller } from '../../shared/caller';

/**
 * JSON with every object's keys in sorted order, so two equal requests serialize the same
 * whatever order their fields arrived in.
 */
export const canonicalJson = (value: unknown): string =>
  JSON.stringify(value, (_key, item: unknown) =>
    typeof item === 'object' && item !== null && !Array.isArray(item)
      ? Object.fromEntries(Object.entries(item).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : item,
  );

export const sha256Hex = (text: string): string => createHash('sha256').update(text).digest('hex');

/** The digest a request id is bound to: the same id with another payload is another request. */
export const requestDigest = (request: unknown): string => sha256Hex(canonicalJson(request));

/**
 * The RunInstances ClientToken of a claim's cold launch in one subnet: SHA-256 of request id and
 * subnet in hex, 64 characters (EC2's maximum, API_RunInstances `ClientToken`), so no two
 * requests' launches share a token however long their ids (security review L7).
 */
export const coldLaunchClientToken = (requestId: string, subnetId: string): string =>
  sha256Hex(`claim/${requestId}/${subnetId}`);

/**
 * Whose request quota a request counts against (H4): the caller's principal when AWS names it
 * (function URL), else the tenants the request bus bound it to, else every unbound operator
 * together. Undefined for an administrator's direct invoke, which has no quota. A digest, so an
 * ARN of any length fits a DynamoDB sort key.
 */
export const quotaKeyOf = (caller: Caller | undefined): string | undefined => {
  if (caller === undefined || caller.admin) return undefined;
  if (caller.principal !== undefined) return sha256Hex(`principal/${caller.principal}`);
  if (caller.tenants === '*') return sha256Hex('tenants/*');
  return sha256Hex(`tenants/${[...caller.tenants].sort().join(',')}`);
};
