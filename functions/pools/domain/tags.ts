import { MANAGED_TAG } from '../../shared/tags';

/** warmboot's management tags on pool members (CONTRIBUTING: managed + capability tag). */
export const TAG = {
  managed: MANAGED_TAG,
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
  tags[TAG.managed] === 'true' && tags[TAG.pool] === pool;
