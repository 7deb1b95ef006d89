import { describe, expect, it } from 'vitest';
import {
  accountBudgetSchema,
  admissible,
  admittedWithinMs,
  extendRetryInMs,
  functionShare,
  LEASE_MS,
  lease,
  leaseExtra,
  levelAt,
  refill,
  reservation,
  reservedWaitMs,
  shareOf,
} from '../../../functions/shared/account-budget';
import { type BudgetStore, memoryBudgetStore } from '../../../functions/shared/adapters/budget-store';
import type { Clock } from '../../../functions/shared/clock';
import {
  chargesOf,
  MUTATING,
  NON_MUTATING,
  RESOURCE_INTENSIVE,
  requestLimitsOf,
  UNFILTERED_UNPAGINATED,
} from '../../../functions/shared/ec2-buckets';
import { AccountBudget } from '../../../functions/shared/ec2-budget';
import { tableEnvVar } from '../../../functions/shared/tables';

const NOW = Date.UTC(2026, 0, 5, 8, 0, 0);

describe('EC2 buckets (ec2-api-throttling)', () => {
  it('sizes each action by its category, or by its own row of the uncategorized table', () => {
    expect(requestLimitsOf('DescribeHosts')).toEqual(NON_MUTATING);
    expect(requestLimitsOf('GetConsoleOutput')).toEqual(NON_MUTATING);
    expect(requestLimitsOf('AttachVolume')).toEqual(MUTATING);
    expect(requestLimitsOf('ModifyInstanceAttribute')).toEqual(MUTATING);
    expect(requestLimitsOf('AuthorizeSecurityGroupIngress')).toEqual(RESOURCE_INTENSIVE);
    expect(requestLimitsOf('CreateTags')).toEqual({ capacity: 100, refillPerSecond: 10 });
    expect(requestLimitsOf('DeleteSnapshot')).toEqual({ capacity: 100, refillPerSecond: 5 });
    expect(requestLimitsOf('RunInstances')).toEqual({ capacity: 5, refillPerSecond: 2 });
    expect(requestLimitsOf('DescribeSpotFleetRequests')).toEqual({ capacity: 50, refillPerSecond: 3 });
  });

  it('gives every action its own bucket, and the seven describes a smaller one without filter or pagination', () => {
    expect(chargesOf('DescribeInstances', { Filters: [{ Name: 'tag-key', Values: ['x'] }] })).toEqual([
      { bucket: 'DescribeInstances', limits: NON_MUTATING, tokens: 1 },
    ]);
    expect(chargesOf('DescribeVolumes', { MaxResults: 500 })[0]?.bucket).toBe('DescribeVolumes');
    expect(chargesOf('DescribeInstances', {})).toEqual([
      { bucket: 'DescribeInstances.unfiltered', limits: UNFILTERED_UNPAGINATED, tokens: 1 },
    ]);
    // Whether ids are a filter the page does not say: such a call is paced within both readings.
    expect(chargesOf('DescribeInstances', { InstanceIds: ['i-0123456789abcdef0'] })).toEqual([
      { bucket: 'DescribeInstances', limits: NON_MUTATING, tokens: 1 },
      { bucket: 'DescribeInstances.unfiltered', limits: UNFILTERED_UNPAGINATED, tokens: 1 },
    ]);
    expect(chargesOf('DescribeVolumes', { VolumeIds: ['vol-1'], MaxResults: 5 })[0]?.bucket).toBe(
      'DescribeVolumes',
    );
    expect(chargesOf('DescribeHosts', {})[0]?.bucket).toBe('DescribeHosts');
  });

  it('charges the instance-lifecycle calls per instance in their resource bucket as well', () => {
    expect(chargesOf('RunInstances', { MinCount: 1, MaxCount: 250 })).toEqual([
      { bucket: 'RunInstances', limits: { capacity: 5, refillPerSecond: 2 }, tokens: 1 },
      { bucket: 'RunInstances.resources', limits: { capacity: 1000, refillPerSecond: 2 }, tokens: 250 },
    ]);
    expect(chargesOf('StopInstances', { InstanceIds: ['i-1', 'i-2', 'i-3'] })).toEqual([
      { bucket: 'StopInstances', limits: MUTATING, tokens: 1 },
      { bucket: 'StopInstances.resources', limits: { capacity: 1000, refillPerSecond: 20 }, tokens: 3 },
    ]);
    expect(chargesOf('TerminateInstances', { InstanceIds: ['i-1'] })[1]?.limits).toEqual({
      capacity: 1000,
      refillPerSecond: 20,
    });
  });
});

describe('the share', () => {
  it('is 10 % of refill and capacity by default, per function where the deployment says so', () => {
    const settings = accountBudgetSchema.parse({ functions: { shelving: 0.5 } });

    expect(functionShare(settings, 'popularity')).toEqual({ share: 0.1, pool: 'shared' });
    expect(functionShare(settings, 'shelving')).toEqual({ share: 0.5, pool: 'shelving' });
    expect(shareOf(NON_MUTATING, 0.1)).toEqual({ capacity: 10, refillPerSecond: 2 });
  });

  it('keeps at least one token of capacity, so a small bucket still admits a call', () => {
    const runInstances = shareOf(requestLimitsOf('RunInstances'), 0.1);

    expect(runInstances.capacity).toBe(1);
    expect(runInstances.refillPerSecond).toBeCloseTo(0.2);
  });

  it('reads its table from the variable the stack sets for the ec2Budget table', () => {
    expect(tableEnvVar('ec2Budget')).toBe('EC2_BUDGET_TABLE');
  });

  it('refuses a share outside (0, 1] and an unknown function, naming the field', () => {
    expect(accountBudgetSchema.safeParse({ share: 0 }).error?.issues[0]?.path).toEqual(['share']);
    expect(accountBudgetSchema.safeParse({ share: 1.5 }).success).toBe(false);
    expect(accountBudgetSchema.safeParse({ functions: { shelvng: 0.5 } }).success).toBe(false);
    // The budgets add up: the shared share and the functions' own together stay within the bucket.
    const overbooked = accountBudgetSchema.safeParse({ share: 0.3, functions: { shelving: 0.8 } });
    expect(overbooked.error?.issues[0]?.path).toEqual(['functions']);
    expect(overbooked.error?.issues[0]?.message).toMatch(/add up to 1\.1/);
    expect(accountBudgetSchema.safeParse({ share: 0.2, functions: { shelving: 0.8 } }).success).toBe(true);
  });
});

describe('bucket math', () => {
  const limits = { capacity: 10, refillPerSecond: 2 };

  it('refills by elapsed time × rate up to the capacity, and never runs time back', () => {
    expect(refill({ tokens: 0, refilledAt: NOW }, limits, NOW + 1_500)).toEqual({
      tokens: 3,
      refilledAt: NOW + 1_500,
    });
    expect(refill({ tokens: 4, refilledAt: NOW }, limits, NOW + 60_000).tokens).toBe(10);
    expect(refill({ tokens: 4, refilledAt: NOW }, limits, NOW - 5_000)).toEqual({
      tokens: 4,
      refilledAt: NOW,
    });
  });

  it('grants a call at once from a full bucket, with up to a second of refill as lease', () => {
    const decision = lease(undefined, limits, 1, leaseExtra(limits, 1), NOW);

    expect(decision).toEqual({ granted: true, next: { tokens: 8, refilledAt: NOW }, extra: 1, waitMs: 0 });
  });

  it('lets a call reserve into debt and wait for the refill, one bucket deep at most', () => {
    const empty = { tokens: 0, refilledAt: NOW };

    const first = lease(empty, limits, 1, 1, NOW);
    expect(first).toEqual({ granted: true, next: { tokens: -1, refilledAt: NOW }, extra: 0, waitMs: 501 });

    const deep = lease({ tokens: -10, refilledAt: NOW }, limits, 1, 0, NOW);
    expect(deep).toEqual({ granted: false, retryInMs: 501 });
  });

  it('admits a call larger than the bucket once the bucket is out of debt', () => {
    const instances = shareOf({ capacity: 1000, refillPerSecond: 2 }, 0.1);

    expect(lease({ tokens: -1, refilledAt: NOW }, instances, 500, 0, NOW).granted).toBe(false);
    const granted = lease({ tokens: 0, refilledAt: NOW }, instances, 500, 0, NOW);
    expect(granted.granted && granted.waitMs).toBe(2_500_001);
  });

  it('keeps a bucket as the moment it is full again: full before, in debt while reserved ahead', () => {
    expect(levelAt(undefined, limits, NOW).tokens).toBe(10);
    expect(levelAt(NOW - 1, limits, NOW).tokens).toBe(10);
    expect(levelAt(NOW + 2_000, limits, NOW).tokens).toBe(6);
    expect(levelAt(NOW + 7_500, limits, NOW).tokens).toBe(-5);
  });

  it('restarts a full bucket with a second of refill as lease, and extends one in use without extra', () => {
    // The leased token counts as spent when the lease expires (1 s), the latest it can go.
    expect(reservation(undefined, limits, 1, leaseExtra(limits, 1), NOW)).toEqual({
      kind: 'restart',
      fullAt: NOW + 1_500,
      extra: 1,
    });
    expect(reservation(undefined, limits, 1, 0, NOW)).toEqual({
      kind: 'restart',
      fullAt: NOW + 500,
      extra: 0,
    });
    // A bucket holding no more than a second of refill leases nothing: its call goes at once.
    const small = { capacity: 2, refillPerSecond: 2 };
    const plan = reservation(undefined, small, 1, leaseExtra(small, 1), NOW);
    expect(plan).toEqual({ kind: 'restart', fullAt: NOW + 500, extra: 0 });
    expect(plan.kind === 'restart' && reservedWaitMs(plan.fullAt, small, NOW)).toBe(0);
    expect(reservation(NOW + 2_000, limits, 1, leaseExtra(limits, 1), NOW)).toEqual({
      kind: 'extend',
      byMs: 500,
      // One bucket of debt below empty: fullAt may be at most two buckets (10 s) ahead after the call.
      atMost: NOW + 9_500,
    });
  });

  it('makes a call wait until its reservation is out of debt, and retry at the debt limit once fullAt is back', () => {
    expect(reservedWaitMs(NOW + 5_000, limits, NOW)).toBe(0);
    expect(reservedWaitMs(NOW + 5_500, limits, NOW)).toBe(501);
    expect(extendRetryInMs(NOW + 10_000, NOW + 9_500)).toBe(501);
  });

  it('admits a call larger than the bucket on a full bucket, reserving its whole span', () => {
    const instances = shareOf({ capacity: 1000, refillPerSecond: 2 }, 0.1);
    const plan = reservation(undefined, instances, 500, 0, NOW);
    expect(plan).toEqual({ kind: 'restart', fullAt: NOW + 2_500_000, extra: 0 });
    expect(plan.kind === 'restart' && reservedWaitMs(plan.fullAt, instances, NOW)).toBe(2_000_001);
  });

  it('answers how many calls it would admit soon, counting the reservations made', () => {
    expect(admissible(undefined, limits, 0, NOW)).toBe(10);
    expect(admissible({ tokens: -2, refilledAt: NOW }, limits, 3_000, NOW)).toBe(4);
    expect(admissible({ tokens: -2, refilledAt: NOW }, limits, 3_000, NOW + 2_000)).toBe(8);
  });

  it('answers how long until it has admitted a number of calls, counting the reservations made', () => {
    expect(admittedWithinMs(undefined, limits, 10, NOW)).toBe(0);
    expect(admittedWithinMs(undefined, limits, 14, NOW)).toBe(2_001);
    expect(admittedWithinMs({ tokens: -2, refilledAt: NOW }, limits, 1, NOW)).toBe(1_501);
    expect(admittedWithinMs({ tokens: -2, refilledAt: NOW }, limits, 1, NOW + 1_500)).toBe(0);
  });
});

/** The memory store, counting changes made and refused; `failing` makes every call throw (the store is down). */
class CountingStore implements BudgetStore {
  readonly #store = memoryBudgetStore();
  readonly fullAt = new Map<string, number>();
  writes = 0;
  refused = 0;
  failing = false;

  async restart(key: string, fullAt: number, now: number) {
    if (this.failing) throw new Error('store down');
    const change = await this.#store.restart(key, fullAt, now);
    this.#count(change.done, key, change.done ? fullAt : undefined);
    return change;
  }

  async extend(key: string, byMs: number, now: number, atMost: number) {
    if (this.failing) throw new Error('store down');
    const change = await this.#store.extend(key, byMs, now, atMost);
    this.#count(change.done, key, change.done ? change.fullAt : undefined);
    return change;
  }

  #count(done: boolean, key: string, fullAt: number | undefined) {
    if (!done) this.refused += 1;
    else {
      this.writes += 1;
      if (fullAt !== undefined) this.fullAt.set(key, fullAt);
    }
  }
}

/** One caller's clock: a sleep moves time on (calls are made one after the other). */
const steppingClock = (): Clock => {
  let now = NOW;
  return {
    now: () => now,
    sleep: async (ms) => {
      now += ms;
    },
  };
};

/** The shared budget at `share`, on `store` and `clock`. */
const budgetAt = (
  share: number,
  store: BudgetStore,
  clock: Clock,
  extra: Partial<ConstructorParameters<typeof AccountBudget>[0]> = {},
) => new AccountBudget({ store, clock, random: Math.random, share: { share, pool: 'shared' }, ...extra });

describe('AccountBudget', () => {
  it('never lets the share of a bucket go below zero at the moment a call is made', async () => {
    const clock = steppingClock();
    const budget = budgetAt(0.1, new CountingStore(), clock);
    const sends: number[] = [];
    for (let call = 0; call < 30; call++) {
      await budget.acquire('AttachVolume', {});
      sends.push(clock.now());
    }

    const share = shareOf(MUTATING, 0.1);
    for (const [index, at] of sends.entries()) {
      expect(share.capacity + ((at - NOW) / 1000) * share.refillPerSecond).toBeGreaterThanOrEqual(index + 1);
    }
    expect((Math.max(...sends) - NOW) / 1000).toBeCloseTo((30 - 5) / 0.5, 0);
  });

  it('spends leased tokens without a store write, within the lease', async () => {
    const clock = steppingClock();
    const store = new CountingStore();
    const budget = budgetAt(1, store, clock);

    for (let call = 0; call < 20; call++) await budget.acquire('DescribeHosts', {});
    expect(store.writes).toBe(1);

    await clock.sleep(LEASE_MS);
    await budget.acquire('DescribeHosts', {});
    expect(store.writes).toBe(2);
  });

  it('never lets two environments together exceed the bucket, even when one spends its lease as it expires', async () => {
    const store = new CountingStore();
    const sends: number[] = [];
    // The lease holder calls once at NOW and spends its lease just before it expires.
    let leaseNow = NOW;
    const holder = budgetAt(1, store, {
      now: () => leaseNow,
      sleep: async (ms) => {
        leaseNow += ms;
      },
    });
    await holder.acquire('DescribeHosts', {});
    sends.push(leaseNow);
    // Another environment bursts 0.9 s later; its calls go once their waits are over.
    let waited = 0;
    const burster = budgetAt(1, store, {
      now: () => NOW + 900,
      sleep: async (ms) => {
        waited += ms;
      },
    });
    for (let call = 0; call < 98; call++) {
      waited = 0;
      await burster.acquire('DescribeHosts', {});
      sends.push(NOW + 900 + waited);
    }
    leaseNow = NOW + 950;
    for (let call = 0; call < leaseExtra(NON_MUTATING, 1); call++) {
      await holder.acquire('DescribeHosts', {});
      sends.push(leaseNow);
    }

    // EC2's bucket (100, 20 a second) as AWS keeps it: every call finds a token.
    let tokens = NON_MUTATING.capacity;
    let at = NOW;
    for (const sent of sends.sort((a, b) => a - b)) {
      tokens =
        Math.min(NON_MUTATING.capacity, tokens + ((sent - at) / 1000) * NON_MUTATING.refillPerSecond) - 1;
      at = sent;
      expect(tokens).toBeGreaterThanOrEqual(-1e-9);
    }
  });

  it('never loses a reservation to another environment: ten calling at once write once each', async () => {
    const store = new CountingStore();
    const waits: number[] = [];
    // Time stands still: every environment reserves at the same moment, as in one burst.
    const frozen: Clock = { now: () => NOW, sleep: async (ms) => void waits.push(ms) };
    const environments = Array.from({ length: 10 }, () => budgetAt(0.1, store, frozen));

    await Promise.all(environments.map((budget) => budget.acquire('AttachVolume', {})));

    // All but one find the full bucket restarted by another and extend it instead.
    expect(store.writes).toBe(10);
    expect(store.refused).toBe(9);
    // 5 tokens of capacity, 0.5 a second: the 10 calls reserved 5 tokens ahead of the refill, the
    // deepest debt allowed, and the last waits 10 s for it.
    const share = shareOf(MUTATING, 0.1);
    expect(levelAt(store.fullAt.get('shared#AttachVolume'), share, NOW).tokens).toBeCloseTo(-5, 9);
    expect(Math.max(...waits)).toBe(10_001);
  });

  it('meters the instances of StartInstances separately from its requests', async () => {
    const clock = steppingClock();
    const store = new CountingStore();
    const budget = budgetAt(1, store, clock);

    await budget.acquire('StartInstances', { InstanceIds: Array.from({ length: 1000 }, (_, i) => `i-${i}`) });
    expect(clock.now()).toBe(NOW);
    await budget.acquire('StartInstances', { InstanceIds: ['i-a', 'i-b'] });
    expect(clock.now()).toBeGreaterThan(NOW);
    const resources = shareOf({ capacity: 1000, refillPerSecond: 2 }, 1);
    expect(levelAt(store.fullAt.get('shared#StartInstances.resources'), resources, NOW).tokens).toBeLessThan(
      0,
    );
  });

  it('counts what it reserved in what it says a round may hand out', async () => {
    const clock = steppingClock();
    const budget = budgetAt(0.1, new CountingStore(), clock);

    expect(budget.admissible('AttachVolume', 0)).toBe(5);
    for (let call = 0; call < 5; call++) await budget.acquire('AttachVolume', {});
    expect(budget.admissible('AttachVolume', 4_000)).toBe(2);
    // Five reserved on a share of 5 refilled at 0.5 a second: one more is admitted in 2 s.
    expect(budget.admittedWithinMs('AttachVolume', 1)).toBe(2_001);
  });

  it('paces the environment alone at a tenth of its share when the store fails, and says so', async () => {
    const clock = steppingClock();
    const store = new CountingStore();
    store.failing = true;
    const failures: unknown[] = [];
    const budget = budgetAt(0.1, store, clock, { onStoreFailure: (error) => failures.push(error) });

    for (let call = 0; call < 6; call++) await budget.acquire('DescribeHosts', {});

    // A tenth of 10 % of 100 / 20 is 1 token of burst and 0.2 per second: five more calls take 25 s.
    expect(clock.now() - NOW).toBeGreaterThanOrEqual(25_000);
    expect(failures).toHaveLength(1);
  });
});
