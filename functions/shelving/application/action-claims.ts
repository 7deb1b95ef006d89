import type { Action } from '../domain/actions';
import type { ActionClaim, ShelfRecord } from '../domain/types';

/**
 * Claims on a record's EC2 calls across execution environments.
 *
 * Several shelving invocations may advance one record at once: the request's invocation follows
 * it, an EC2 state-change event starts another, the schedule a third. Each process keeps its own
 * rounds off a record whose calls it is still making (rounds.ts, `#inFlight`), but two processes
 * observing the same EC2 state decided the same call, and a decision that only acts (an attach,
 * the replace-root task, a DeleteOnTermination flag) writes nothing that could conflict. At
 * N = 500 that made 287 CreateReplaceRootVolumeTask calls for 250 records, 432 on pool members,
 * and 586 ModifyInstanceAttribute for 500: each repeat answered the same (ClientToken, or the
 * state already set) but spent a token of the account's bucket, which is what a bulk unshelve
 * waits on.
 *
 * So an acting decision is written before its calls, with the calls it claims, the environment
 * that claims them and until when; the write is conditional on the version read, so of two
 * environments deciding at once one writes and acts and the other leaves the record. Until the
 * claim lapses, another environment that decides one of the same calls (its effect not yet
 * visible to EC2's describes) leaves the record too; deciding anything else means the calls took
 * effect, and it goes on. Launches are not claimed here: a launch batch writes its own claim
 * before RunInstances (launch.ts).
 */

/**
 * How long a claim holds. It must outlast the claimed call's wait in the account budget's queue
 * (docs/account-budget.md): at N = 500 the 250 replace-root tasks queue for up to about a minute
 * at warmboot's share of a bucket refilled at 5 a second. An environment that dies holding a
 * claim delays the record's next call by at most this long; the call is idempotent either way.
 */
export const ACTION_CLAIM_MS = 60_000;

const UNCLAIMED = new Set<Action['kind']>(['launch', 'launch-from-snapshots']);

/** What identifies each call a decision asks for (the action as written: targets, values, tokens). */
export const claimedCalls = (actions: readonly Action[]): readonly string[] =>
  actions.filter((action) => !UNCLAIMED.has(action.kind)).map((action) => JSON.stringify(action));

/** Whether another environment holds a live claim on one of `calls` for this record. */
export const claimedElsewhere = (
  record: ShelfRecord,
  calls: readonly string[],
  environment: string,
  now: number,
): boolean => {
  const claim = record.acting;
  if (!claim || claim.by === environment || claim.until <= now) return false;
  const held = new Set(claim.calls);
  return calls.some((call) => held.has(call));
};

/** The claim this environment writes with a decision that makes `calls`. */
export const claimFor = (calls: readonly string[], environment: string, now: number): ActionClaim => ({
  calls,
  by: environment,
  until: now + ACTION_CLAIM_MS,
});
