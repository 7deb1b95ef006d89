/**
 * The tags every capability shares. Capability tags (`warmboot:pool`, `warmboot:shelved`, …) live
 * with the capability that writes them; these two are read across folders and by the IAM
 * conditions in infra/, so they are defined once here.
 */

/** On every resource warmboot created or was given: the opt-in the IAM conditions also check. */
export const MANAGED_TAG = 'warmboot:managed';

/** On a host: the host group whose cache it keeps (popularity scope, cache membership). */
export const HOST_GROUP_TAG = 'warmboot:host-group';
