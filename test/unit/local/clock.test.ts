import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../local/clock';

describe('VirtualClock', () => {
  it('costs no real time for a long virtual sleep', async () => {
    const clock = new VirtualClock(0);

    const elapsed = await clock.run(async () => {
      await clock.sleep(3_600_000);
      return clock.now();
    });

    expect(elapsed).toBe(3_600_000);
  });

  it('interleaves concurrent sleepers in time order', async () => {
    const clock = new VirtualClock(0);
    const order: string[] = [];

    await clock.run(async () => {
      await Promise.all([
        clock.sleep(300).then(() => order.push(`slow@${clock.now()}`)),
        clock.sleep(100).then(() => order.push(`fast@${clock.now()}`)),
        (async () => {
          await clock.sleep(50);
          order.push(`chain-1@${clock.now()}`);
          await clock.sleep(200);
          order.push(`chain-2@${clock.now()}`);
        })(),
      ]);
    });

    expect(order).toEqual(['chain-1@50', 'fast@100', 'chain-2@250', 'slow@300']);
  });

  it('does not move time while real I/O is in flight', async () => {
    const clock = new VirtualClock(0);
    const seen: number[] = [];

    await clock.run(async () => {
      const io = clock.trackIo(async () => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        seen.push(clock.now());
      });
      const sleeper = clock.sleep(1_000).then(() => seen.push(clock.now()));
      await Promise.all([io, sleeper]);
    });

    expect(seen).toEqual([0, 1_000]);
  });

  it('fires scheduled callbacks when advancing, and only those due', async () => {
    const clock = new VirtualClock(0);
    const fired: number[] = [];
    clock.at(10, () => fired.push(10));
    clock.at(5_000, () => fired.push(5_000));

    await clock.advanceBy(1_000);

    expect(fired).toEqual([10]);
    expect(clock.now()).toBe(1_000);
  });

  it('reports a deadlock instead of hanging when a task waits on nothing', async () => {
    const clock = new VirtualClock(0);

    await expect(clock.run(() => new Promise<void>(() => undefined))).rejects.toThrow(/deadlock/);
  });
});
