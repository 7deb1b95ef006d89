import type { EC2Client } from '@aws-sdk/client-ec2';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import * as z from 'zod';
import {
  ACCOUNT_BUDGET_ENV,
  accountBudgetSchema,
  admissible,
  admittedWithinMs,
  type BucketLevel,
  extendRetryInMs,
  FALLBACK_FRACTION,
  type FunctionShare,
  functionShare,
  LEASE_MS,
  lease,
  leaseExtra,
  levelAt,
  reservation,
  reservedWaitMs,
  shareOf,
} from './account-budget';
import { type BudgetStore, dynamoBudgetStore } from './adapters/budget-store';
import type { Clock } from './clock';
import { envJson, envString, loadConfig } from './config';
import { type BucketCharge, type BucketLimits, chargesOf, requestLimitsOf } from './ec2-buckets';
import { backoffDelayMs } from './retry';

/**
 * The one place every EC2 call of every function is paced: a middleware on the EC2 client
 * (installed by createEc2Client) takes each call's tokens from the account budget before the call
 * goes (account-budget.ts decides, the store in DynamoDB is shared by all execution environments).
 */
export interface Ec2Budget {
  /** Takes the tokens of one call of `action` with `input`, waiting until the budget admits it. */
  acquire(action: string, input: Readonly<Record<string, unknown>>): Promise<void>;
  /**
   * How many more one-token calls of `action` the budget admits within `withinMs` from now, as
   * this environment last saw the shared level (an estimate; reserves nothing).
   */
  admissible(action: string, withinMs: number): number;
  /**
   * How long until the budget has admitted `calls` more one-token calls of `action`, as this
   * environment last saw the shared level (an estimate; reserves nothing).
   */
  admittedWithinMs(action: string, calls: number): number;
}

/**
 * Backoff (retry.ts) should a refused restart find no bucket (deleted between the condition and
 * the answer): a few store round trips at first, at most a second.
 */
const RACE_BACKOFF = { baseMs: 10, capMs: 1_000 };
/** After a store failure the fallback paces this environment's calls for this long, then the store is tried again. */
const FALLBACK_MS = 60_000;

interface LeasedTokens {
  tokens: number;
  expiresAt: number;
}

export interface AccountBudgetOptions {
  readonly store: BudgetStore;
  readonly clock: Clock;
  /** Jitter of the backoff after a lost race. */
  readonly random: () => number;
  readonly share: FunctionShare;
  /** Told when the store failed and the environment paces on its own for a while (a log line). */
  readonly onStoreFailure?: (error: unknown) => void;
}

/**
 * The account budget of one execution environment: leases from the shared store, spends its
 * leased tokens without a write, and when the store fails, paces alone at FALLBACK_FRACTION of
 * the share (a per-environment bucket) rather than calling unpaced.
 */
export class AccountBudget implements Ec2Budget {
  readonly #options: AccountBudgetOptions;
  /** The last level this environment read or wrote, per bucket (for `admissible`). */
  readonly #seen = new Map<string, BucketLevel>();
  readonly #leased = new Map<string, LeasedTokens>();
  /** The bucket's fullAt as this environment last saw it (account-budget.ts, `levelAt`). */
  readonly #fullAt = new Map<string, number>();
  readonly #fallback = new Map<string, BucketLevel>();
  #fallbackUntil = Number.NEGATIVE_INFINITY;

  constructor(options: AccountBudgetOptions) {
    this.#options = options;
  }

  async acquire(action: string, input: Readonly<Record<string, unknown>>): Promise<void> {
    // One bucket after the other: the call goes once every one of its buckets admitted it.
    for (const charge of chargesOf(action, input)) await this.#take(charge);
  }

  admissible(action: string, withinMs: number): number {
    const { limits, own, now } = this.#estimateOf(action);
    return own + admissible(this.#seen.get(action), limits, withinMs, now);
  }

  admittedWithinMs(action: string, calls: number): number {
    const { limits, own, now } = this.#estimateOf(action);
    return admittedWithinMs(this.#seen.get(action), limits, calls - own, now);
  }

  /** What both estimates start from: the share's limits of `action` and the tokens leased here. */
  #estimateOf(action: string): { limits: BucketLimits; own: number; now: number } {
    const limits = shareOf(requestLimitsOf(action), this.#options.share.share);
    const now = this.#options.clock.now();
    const leased = this.#leased.get(action);
    return { limits, own: leased && leased.expiresAt > now ? leased.tokens : 0, now };
  }

  async #take(charge: BucketCharge): Promise<void> {
    const { clock } = this.#options;
    const leased = this.#leased.get(charge.bucket);
    if (leased && leased.expiresAt > clock.now() && leased.tokens >= charge.tokens) {
      leased.tokens -= charge.tokens;
      return;
    }
    if (clock.now() < this.#fallbackUntil) return this.#takeAlone(charge);
    try {
      await this.#takeShared(charge);
    } catch (error) {
      this.#options.onStoreFailure?.(error);
      this.#fallbackUntil = clock.now() + FALLBACK_MS;
      await this.#takeAlone(charge);
    }
  }

  async #takeShared(charge: BucketCharge): Promise<void> {
    const { store, clock, share, random } = this.#options;
    const limits = shareOf(charge.limits, share.share);
    const key = `${share.pool}#${charge.bucket}`;
    // Where this environment last saw the bucket: the first guess of which change applies. A wrong
    // guess costs one refused write, which answers where it stands. (Always guessing "in use" was
    // measured worse: where several environments meet a full bucket at one instant, all but one
    // of those extending it are refused, and then all but one of those restarting it.)
    let fullAt = this.#fullAt.get(charge.bucket);
    for (let races = 0; ; ) {
      const now = clock.now();
      const plan = reservation(fullAt, limits, charge.tokens, leaseExtra(limits, charge.tokens), now);
      if (plan.kind === 'restart') {
        const change = await store.restart(key, plan.fullAt, now);
        if (!change.done) {
          // Someone restarted it first (or it was in use): extend it instead, at once.
          fullAt = change.fullAt ?? Number.NEGATIVE_INFINITY;
          if (change.fullAt === undefined) await clock.sleep(backoffDelayMs(races++, random, RACE_BACKOFF));
          continue;
        }
        if (plan.extra > 0)
          this.#leased.set(charge.bucket, { tokens: plan.extra, expiresAt: now + LEASE_MS });
        return this.#reserved(charge.bucket, plan.fullAt, limits, now);
      }
      const change = await store.extend(key, plan.byMs, now, plan.atMost);
      if (!change.done) {
        fullAt = change.fullAt;
        if (change.fullAt !== undefined && change.fullAt > plan.atMost) {
          this.#saw(charge.bucket, change.fullAt, limits, now);
          await clock.sleep(extendRetryInMs(change.fullAt, plan.atMost));
        }
        continue;
      }
      return this.#reserved(charge.bucket, change.fullAt, limits, now);
    }
  }

  /** The reservation moved the bucket to `fullAt`: the call goes once that is out of debt. */
  async #reserved(bucket: string, fullAt: number, limits: BucketLimits, now: number): Promise<void> {
    this.#saw(bucket, fullAt, limits, now);
    const waitMs = reservedWaitMs(fullAt, limits, now);
    if (waitMs > 0) await this.#options.clock.sleep(waitMs);
  }

  /** Remembers where a bucket stands, for the next guess and for `admissible`. */
  #saw(bucket: string, fullAt: number, limits: BucketLimits, now: number): void {
    this.#fullAt.set(bucket, fullAt);
    this.#seen.set(bucket, levelAt(fullAt, limits, now));
  }

  /** The per-environment fallback: the same decision on a bucket only this environment sees. */
  async #takeAlone(charge: BucketCharge): Promise<void> {
    const { clock, share } = this.#options;
    const limits = shareOf(charge.limits, share.share * FALLBACK_FRACTION);
    for (;;) {
      const decision = lease(this.#fallback.get(charge.bucket), limits, charge.tokens, 0, clock.now());
      if (!decision.granted) {
        await clock.sleep(decision.retryInMs);
        continue;
      }
      this.#fallback.set(charge.bucket, decision.next);
      if (decision.waitMs > 0) await clock.sleep(decision.waitMs);
      return;
    }
  }
}

/** The budget each paced EC2 client draws on (shelving asks it how many attaches a round may hand out). */
const budgets = new WeakMap<EC2Client, Ec2Budget>();

export const ec2BudgetOf = (client: EC2Client): Ec2Budget | undefined => budgets.get(client);

/**
 * Installs the budget on `client`: every call, whatever adapter sends it, first takes its tokens.
 * It sits at the start of the initialize step, once per call and outside the SDK's retries (which
 * its adaptive rate limiter paces after a throttle); the local cloud's clock hold starts after it,
 * so waiting on the virtual clock here is waiting in simulated time.
 */
export const paceEc2Calls = (client: EC2Client, budget: Ec2Budget): void => {
  budgets.set(client, budget);
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const action = String((context as { commandName?: unknown }).commandName ?? '').replace(/Command$/, '');
      await budget.acquire(action, (args as { input: Record<string, unknown> }).input);
      return next(args);
    },
    { step: 'initialize', priority: 'high', name: 'warmbootAccountBudget' },
  );
};

const budgetEnv = z.object({
  EC2_BUDGET_TABLE: envString,
  [ACCOUNT_BUDGET_ENV]: envJson(accountBudgetSchema).optional(),
});

/**
 * The budget of one execution environment of `functionId`, from its environment: the table
 * (`EC2_BUDGET_TABLE`) and the deployment's `accountBudget` (`ACCOUNT_BUDGET`, JSON; absent:
 * the default share). Fails fast naming a missing or malformed variable.
 */
export const accountBudgetFromEnv = (
  functionId: string,
  env: Readonly<Record<string, string | undefined>>,
  documents: DynamoDBDocumentClient,
  clock: Clock,
  random: () => number,
  onStoreFailure?: (error: unknown) => void,
): AccountBudget => {
  const config = loadConfig(budgetEnv, env);
  const settings = config[ACCOUNT_BUDGET_ENV] ?? accountBudgetSchema.parse({});
  return new AccountBudget({
    store: dynamoBudgetStore(documents, config.EC2_BUDGET_TABLE),
    clock,
    random,
    share: functionShare(settings, functionId),
    ...(onStoreFailure ? { onStoreFailure } : {}),
  });
};
