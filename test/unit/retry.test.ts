import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { backoffDelayMs, pollUntil, retrying } from '../../functions/shared/retry';
import { VirtualClock } from '../../local/clock';
import { ClockRetryStrategy } from '../../local/retry-strategy';
import { holdClockWhileSending } from '../../local/runtime';
import { attachSimulator, SimulatedAwsError } from '../../local/sdk-bridge';

/** An EC2 client whose first `failures` calls fail with `code`; records the virtual time of every attempt. */
const flakyEc2 = (clock: VirtualClock, failures: number, code: string, httpStatusCode: number) => {
  const attempts: number[] = [];
  const client = new EC2Client({
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    endpoint: 'http://127.0.0.1:9',
    // Jitter fixed at one half: the SDK's throttling backoff (base 1 s) is then 500 ms, 1 s, 2 s, …
    retryStrategy: new ClockRetryStrategy(clock, { maxAttempts: 5 }, () => 0.5),
  });
  // As in the local cloud: virtual time holds still while the SDK reads its config files.
  holdClockWhileSending(client, clock);
  attachSimulator(client, async () => {
    attempts.push(clock.now());
    if (attempts.length <= failures)
      throw new SimulatedAwsError(code, `injected ${code}`, { httpStatusCode });
    return { Reservations: [] };
  });
  return { client, attempts };
};

describe('ClockRetryStrategy', () => {
  it('retries a throttled call after a backoff that passes on the virtual clock', async () => {
    const clock = new VirtualClock();
    const { client, attempts } = flakyEc2(clock, 2, 'RequestLimitExceeded', 503);

    // clock.run throws "deadlock" if the SDK waited on a real timer the virtual clock cannot see.
    const output = await clock.run(() => client.send(new DescribeInstancesCommand({})));

    expect(output.Reservations).toEqual([]);
    expect(attempts).toHaveLength(3);
    const waits = attempts.slice(1).map((at, index) => at - (attempts[index] as number));
    expect(waits).toEqual([500, 1_000]);
  });

  it('gives the SDK a zero delay, because the wait already happened on the clock', async () => {
    const clock = new VirtualClock();
    const strategy = new ClockRetryStrategy(clock, { maxAttempts: 3 }, () => 0.5);
    const token = await strategy.acquireInitialRetryToken('ec2');

    const retry = await clock.run(() =>
      strategy.refreshRetryTokenForRetry(token, { errorType: 'THROTTLING' }),
    );

    expect(retry.getRetryDelay()).toBe(0);
    expect(retry.getRetryCount()).toBe(1);
    expect(clock.now()).toBe(Date.UTC(2026, 0, 5, 8, 0, 0) + 500);
  });

  it('does not retry a client error', async () => {
    const clock = new VirtualClock();
    const { client, attempts } = flakyEc2(clock, 1, 'InvalidParameterValue', 400);

    await expect(clock.run(() => client.send(new DescribeInstancesCommand({})))).rejects.toThrow(
      'injected InvalidParameterValue',
    );
    expect(attempts).toHaveLength(1);
  });

  it("gives up after the policy's attempts and surfaces the throttle", async () => {
    const clock = new VirtualClock();
    const { client, attempts } = flakyEc2(clock, 100, 'RequestLimitExceeded', 503);

    await expect(clock.run(() => client.send(new DescribeInstancesCommand({})))).rejects.toMatchObject({
      name: 'RequestLimitExceeded',
    });
    expect(attempts).toHaveLength(5);
  });
});

describe('backoffDelayMs', () => {
  it('draws full jitter below an exponentially growing, capped ceiling', () => {
    expect(backoffDelayMs(0, () => 0.999)).toBe(999);
    expect(backoffDelayMs(3, () => 0.5)).toBe(4_000);
    expect(backoffDelayMs(30, () => 0.999, { capMs: 60_000 })).toBe(59_940);
    expect(backoffDelayMs(5, () => 0)).toBe(0);
  });
});

describe('retrying', () => {
  class NotYet extends Error {}

  it('re-attempts a retryable failure after a jittered backoff on the clock, until it succeeds', async () => {
    const clock = new VirtualClock(0);
    const calls: number[] = [];

    const value = await clock.run(() =>
      retrying(
        async () => {
          calls.push(clock.now());
          if (calls.length < 3) throw new NotYet('agent offline');
          return 'sent';
        },
        {
          sleep: (ms) => clock.sleep(ms),
          random: () => 0.5,
          attempts: 5,
          retryable: (error) => error instanceof NotYet,
          baseMs: 2_000,
        },
      ),
    );

    expect(value).toBe('sent');
    expect(calls).toEqual([0, 1_000, 3_000]);
  });

  it('throws a non-retryable failure at once and the last failure when attempts run out', async () => {
    const clock = new VirtualClock(0);
    let calls = 0;
    const options = {
      sleep: (ms: number) => clock.sleep(ms),
      random: () => 0.5,
      attempts: 3,
      retryable: (error: unknown) => error instanceof NotYet,
    };

    await expect(
      clock.run(() =>
        retrying(async () => {
          calls++;
          throw new TypeError('bug');
        }, options),
      ),
    ).rejects.toBeInstanceOf(TypeError);
    expect(calls).toBe(1);

    await expect(
      clock.run(() =>
        retrying(async () => {
          calls++;
          throw new NotYet(`attempt ${calls}`);
        }, options),
      ),
    ).rejects.toThrow('attempt 4');
  });

  it('waits for no retry that would not fit in the time the caller has left (its deadline)', async () => {
    const clock = new VirtualClock(0);
    const calls: number[] = [];
    const endsAt = 10_000;

    await expect(
      clock.run(() =>
        retrying(
          async () => {
            calls.push(clock.now());
            throw new NotYet(`attempt ${calls.length}`);
          },
          {
            sleep: (ms) => clock.sleep(ms),
            random: () => 0.5,
            attempts: Number.POSITIVE_INFINITY,
            retryable: (error) => error instanceof NotYet,
            baseMs: 2_000,
            remainingMs: () => endsAt - clock.now(),
          },
        ),
      ),
    ).rejects.toThrow('attempt 4');
    // Waits of 1 s, 2 s and 4 s; the next (8 s, from 7 s) would end after 10 s.
    expect(calls).toEqual([0, 1_000, 3_000, 7_000]);
    expect(clock.now()).toBeLessThanOrEqual(endsAt);
  });
});

describe('pollUntil', () => {
  it('checks on the clock until the value appears', async () => {
    const clock = new VirtualClock(0);
    const readyAt = 7_000;

    const seenAt = await clock.run(() =>
      pollUntil(async () => (clock.now() >= readyAt ? clock.now() : undefined), {
        clock,
        timeoutMs: 60_000,
        intervalMs: () => 2_000,
      }),
    );

    expect(seenAt).toBe(8_000);
  });

  it('returns undefined once the time is up, without sleeping past the deadline', async () => {
    const clock = new VirtualClock(0);

    const value = await clock.run(() =>
      pollUntil(async () => undefined, { clock, timeoutMs: 5_000, intervalMs: () => 2_000 }),
    );

    expect(value).toBeUndefined();
    expect(clock.now()).toBe(5_000);
  });
});
