/**
 * Write sharding. All launches of one image would otherwise land on one partition key; spreading
 * them over `shards` keys keeps each under DynamoDB's 1,000 WCU/s per partition (see
 * docs/popularity.md for the arithmetic). The shard is a hash of the event id, so a redelivered
 * event lands on the same shard and its dedupe marker decides, never the shard choice.
 */
export const shardOf = (eventId: string, shards: number): number => fnv1a32(eventId) % shards;

/** FNV-1a, 32 bit: tiny, stable across runtimes, and uniform enough for picking a shard. */
const fnv1a32 = (text: string): number => {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
};

/**
 * Shards needed so that `launchesPerSecond` of one image stay under a partition's write limit,
 * given that each launch writes one counter item per scope in a transaction (2 WCU per item up
 * to 1 KB, DynamoDB developer guide, "Read/write capacity mode").
 */
export const shardsNeeded = (launchesPerSecond: number, partitionWcu = 1_000, wcuPerWrite = 2): number =>
  Math.max(1, Math.ceil((launchesPerSecond * wcuPerWrite) / partitionWcu));
