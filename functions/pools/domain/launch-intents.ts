import { createHash } from 'node:crypto';
import { isGoneState as isGone } from '../../shared/schemas/aws-events';
import type { ObservedInstance } from './reconcile';
import { TAG } from './tags';

/**
 * Provenance of pool members (security review H1). Tags are not proof of anything: whoever may
 * call `ec2:CreateTags` can put `warmboot:pool` on any instance. So before every RunInstances the
 * launcher records a launch intent keyed by the ClientToken it is about to use, and an instance
 * that carries the pool's tags but has no member record (a crash between RunInstances and the
 * member write) is adopted only if its ClientToken (DescribeInstances `Instance.ClientToken`, "the
 * idempotency token you provided when you launched the instance") names an open intent of that
 * pool, in that subnet. Every other tagged instance is foreign: reported, never adopted, stopped,
 * handed out or terminated.
 */
export interface LaunchIntent {
  readonly clientToken: string;
  readonly pool: string;
  readonly subnetId: string;
  /** Instances the RunInstances asks for (MinCount = MaxCount); no more are adopted under it. */
  readonly count: number;
  /** `pool`: idle capacity the reconcile launches; `claim`: a claim's own cold launch. */
  readonly origin: 'pool' | 'claim';
  /** The claim a cold launch serves (origin `claim`). */
  readonly claimId?: string;
  /** The secret part of a pool launch's token, so nobody can compute (and pre-squat) it. */
  readonly nonce?: string;
  readonly createdAt: number;
  /**
   * Set when a member record for the launched instance was written: the intent is closed and
   * adopts nothing any more (a handed-over server tagged again later is not taken back).
   */
  readonly instanceId?: string;
}

/**
 * How long an intent is kept (the DynamoDB TTL). EC2 keeps a RunInstances ClientToken bound "for
 * at least 24 hours after the termination of the instance" (ec2-api-idempotency, RunInstances
 * idempotency); no launch is retried, nor an orphan adopted, under the token after that. The
 * closed intents of this window are also the pool's record of which instances it launched, which
 * the launch holds (domain/reconcile.ts, at most an hour back) read instead of trusting tags.
 */
export const LAUNCH_INTENT_TTL_MS = 24 * 3_600_000;

/**
 * The ClientToken of one pool launch: the SHA-256 of pool, subnet, time, index and a random
 * nonce, in hex (64 characters, EC2's maximum, API_RunInstances). Unlike a readable
 * `pool-time-index` token (review L7) nobody can compute it in advance and launch their own
 * instance under it; the same inputs give the same token, so a retry within one reconcile reuses it.
 */
export const poolLaunchToken = (launch: {
  readonly pool: string;
  readonly subnetId: string;
  readonly now: number;
  readonly index: number;
  readonly nonce: string;
}): string =>
  createHash('sha256')
    .update([launch.pool, launch.subnetId, String(launch.now), String(launch.index), launch.nonce].join('/'))
    .digest('hex');

/** An intent is open until a member record closes it, and only within its TTL. */
export const isOpen = (intent: LaunchIntent, now: number): boolean =>
  intent.instanceId === undefined && now - intent.createdAt < LAUNCH_INTENT_TTL_MS;

export interface TaggedInstances {
  /** Pool-tagged instances without a member record that an open intent of the pool launched. */
  readonly adoptable: readonly { readonly instance: ObservedInstance; readonly intent: LaunchIntent }[];
  /** Pool-tagged, live instances without a member record that no open intent accounts for. */
  readonly foreign: readonly ObservedInstance[];
}

/**
 * Sorts the live instances tagged `warmboot:pool=<pool>` that no member record names into the
 * ones warmboot launched (adoptable, oldest first, at most `count` per intent) and foreign ones.
 * Tags only select the candidates; provenance decides.
 */
export const sortTagged = (
  pool: string,
  observed: readonly ObservedInstance[],
  knownInstanceIds: ReadonlySet<string>,
  intents: readonly LaunchIntent[],
  now: number,
): TaggedInstances => {
  const open = new Map(
    intents
      .filter((intent) => intent.pool === pool && isOpen(intent, now))
      .map((intent) => [intent.clientToken, { intent, left: intent.count }]),
  );
  const adoptable: { instance: ObservedInstance; intent: LaunchIntent }[] = [];
  const foreign: ObservedInstance[] = [];
  const candidates = observed
    .filter(
      (instance) =>
        instance.tags[TAG.pool] === pool &&
        !knownInstanceIds.has(instance.instanceId) &&
        !isGone(instance.state),
    )
    .sort((a, b) => a.launchedAt - b.launchedAt || a.instanceId.localeCompare(b.instanceId));
  for (const instance of candidates) {
    const match = instance.clientToken === undefined ? undefined : open.get(instance.clientToken);
    // EC2 binds a token per Availability Zone: the same token in another subnet is someone else's launch.
    if (match && match.left > 0 && match.intent.subnetId === instance.subnetId) {
      match.left -= 1;
      adoptable.push({ instance, intent: match.intent });
    } else {
      foreign.push(instance);
    }
  }
  return { adoptable, foreign };
};

/**
 * The instances (any state) this pool launched within the intents' window: the ones whose
 * ClientToken and subnet match one of its intents, open or closed. Decisions that read an
 * instance's tags or state reason (the launch holds) read only these.
 */
export const launchedByPool = (
  pool: string,
  observed: readonly ObservedInstance[],
  intents: readonly LaunchIntent[],
): ObservedInstance[] => {
  const subnetOf = new Map(
    intents.filter((intent) => intent.pool === pool).map((intent) => [intent.clientToken, intent.subnetId]),
  );
  return observed.filter(
    (instance) =>
      instance.clientToken !== undefined && subnetOf.get(instance.clientToken) === instance.subnetId,
  );
};
