import { popularityStoreFor } from '../../functions/popularity/adapters/dynamodb-popularity-store';
import { loadPopularityConfig } from '../../functions/popularity/config';
import type { LocalCloud } from '../../local/cloud';

/**
 * The popularity store as the popularity function deployed on this cloud reads and writes it: its
 * table, its settings (half-life, shards), its clients. DynamoDB requests take virtual time on the
 * local cloud, so every call of it runs inside `local.run`.
 */
export const popularityStoreOn = (local: LocalCloud) => {
  const runtime = local.runtime('popularity');
  return popularityStoreFor(runtime, loadPopularityConfig(runtime.env));
};
