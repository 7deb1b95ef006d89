import { OPT_IN_TAG, OPTED_IN } from '../../shared/tags';

/** warmboot's management tags on pool members (CONTRIBUTING: the pools opt-in + the pool). */
export const TAG = {
  /** `warmboot:pools=true`: on every member and its volumes, what the pool roles' IAM conditions check. */
  optIn: OPT_IN_TAG.pools,
  pool: 'warmboot:pool',
  memberState: 'warmboot:member-state',
  /** On a claim's own cold launch: the request it belongs to. */
  claim: 'warmboot:claim',
  /**
   * On a member retired because its SSM agent never registered: EC2 keeps showing a terminated
   * instance's tags for about an hour, and the reconcile holds launches on it (domain/reconcile.ts).
   */
  retiredFor: 'warmboot:retired-for',
} as const;

/** True when warmboot may stop, start, modify or terminate the instance for this pool. */
export const isManagedBy = (tags: Readonly<Record<string, string>>, pool: string): boolean =>
  tags[TAG.optIn] === OPTED_IN && tags[TAG.pool] === pool;
