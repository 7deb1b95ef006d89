import type { EC2Client } from '@aws-sdk/client-ec2';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import * as z from 'zod';
import {
  ACCOUNT_BUDGET_ENV,
  accountBudgetSchema,
  admissible,
  type BucketLevel,
  FALLBACK_FRACTION,
  type FunctionShare,
  functionShare,
  LEASE_MS,
  lease,
  leaseExtra,
  shareOf,
} from './account-budget';
import { type BudgetStore, dynamoBudgetStore } from './adapters/budget-store';
import type { Clock } from './clock';
import { envJson, envString, loadConfig } from './config';
import { type BucketCharge, chargesOf, requestLimitsOf } from './ec2-buckets';
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
}

/** Backoff after a lost race (retry.ts): a few store round trips at first, at most a second. */
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
    const limits = shareOf(requestLimitsOf(action), this.#options.share.share);
    const now = this.#options.clock.now();
    const leased = this.#leased.get(action);
    const own = leased && leased.expiresAt > now ? leased.tokens : 0;
    return own + admissible(this.#seen.get(action), limits, withinMs, now);
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
    // A lost race is contention, not failure: someone else's lease went through, so read again,
    // after a short full-jitter backoff that spreads the environments that lost together.
    for (let races = 0; ; ) {
      const stored = await store.read(key);
      const now = clock.now();
      const decision = lease(stored?.level, limits, charge.tokens, leaseExtra(limits, charge.tokens), now);
      if (!decision.granted) {
        if (stored) this.#seen.set(charge.bucket, stored.level);
        await clock.sleep(decision.retryInMs);
        continue;
      }
      if (!(await store.write(key, decision.next, stored?.version))) {
        await clock.sleep(backoffDelayMs(races++, random, RACE_BACKOFF));
        continue;
      }
      this.#seen.set(charge.bucket, decision.next);
      this.#leased.set(charge.bucket, { tokens: decision.extra, expiresAt: now + LEASE_MS });
      if (decision.waitMs > 0) await clock.sleep(decision.waitMs);
      return;
    }
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
