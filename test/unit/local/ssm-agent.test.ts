import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../local/clock';
import { AgentRegistry, DEFAULT_AGENT, DiskCache, ImageSource, pullImage } from '../../../local/ssm/agent';

const GB = 1000 ** 3;

const setup = () => {
  const clock = new VirtualClock();
  const imageSource = new ImageSource();
  imageSource.add('registry/app:1', { bytes: 2 * GB });
  const host = new AgentRegistry({ ...DEFAULT_AGENT, diskCapacityBytes: 3 * GB }).get('i-0123456789abcdef0');
  return { clock, imageSource, host, ctx: { clock, imageSource, host } };
};

describe('host agent model', () => {
  it('a pull takes size / bandwidth of virtual time and fills the cache', async () => {
    const { clock, host, ctx } = setup();
    const start = clock.now();

    const result = await clock.run(() => pullImage(ctx, 'registry/app:1'));

    expect(result.outcome).toBe('pulled');
    expect(clock.now() - start).toBe(20_000);
    expect(host.cache.usedBytes).toBe(2 * GB);
  });

  it('a cached image with a current digest is used without downloading', async () => {
    const { clock, ctx } = setup();
    await clock.run(() => pullImage(ctx, 'registry/app:1'));
    const start = clock.now();

    const result = await clock.run(() => pullImage(ctx, 'registry/app:1'));

    expect(result.outcome).toBe('cached');
    expect(clock.now()).toBe(start);
  });

  it('during an image source outage pulls fail, but cached images still serve', async () => {
    const { clock, imageSource, ctx } = setup();
    imageSource.add('registry/other:1', { bytes: GB });
    await clock.run(() => pullImage(ctx, 'registry/app:1'));

    imageSource.setReachable(false);

    expect((await clock.run(() => pullImage(ctx, 'registry/other:1'))).outcome).toBe('unreachable');
    expect((await clock.run(() => pullImage(ctx, 'registry/app:1'))).outcome).toBe('cached');
  });

  it('an image that does not fit the disk is not cached (disk-full)', async () => {
    const { clock, imageSource, ctx } = setup();
    imageSource.add('registry/huge:1', { bytes: 4 * GB });

    expect((await clock.run(() => pullImage(ctx, 'registry/huge:1'))).outcome).toBe('disk-full');
  });

  it('the disk cache refuses an entry beyond capacity and counts replacements once', () => {
    const cache = new DiskCache(10);

    expect(cache.put('a', { bytes: 6, digest: 'd1' })).toBe(true);
    expect(cache.put('a', { bytes: 8, digest: 'd2' })).toBe(true);
    expect(cache.put('b', { bytes: 3, digest: 'd3' })).toBe(false);
    expect(cache.usedBytes).toBe(8);
  });
});
