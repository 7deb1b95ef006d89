import { describe, expect, it } from 'vitest';
import type { GroupState } from '../../functions/image-cache/adapters/store';
import { WARM_IMAGES_TAG } from '../../functions/image-cache/config';
import type { LocalCloud } from '../../local/cloud';
import { ensureSsmManagedProfile } from '../../local/iam/instance-profiles';
import { launchGroupHosts } from '../support/instances';
import { putRequest as put } from '../support/local-cloud';
import {
  advise,
  advisePlacement,
  cacheCloudPerTest,
  GROUP,
  groupState,
  image,
  pin,
  register,
} from './cache-cloud';

const startCacheCloud = cacheCloudPerTest();

/** Two hosts in each of two AZs, joined and inventoried, the sample image registered. */
const start = async (): Promise<{ local: LocalCloud; hosts: string[] }> => {
  const local = await startCacheCloud({ publishWarmList: 'tag' }, ['imageCache', 'placement']);
  const hostImage = local.ec2.registerImage({ name: 'cache-host', rootSizeGiB: 8 });
  const hosts: string[] = [];
  for (const zone of ['us-east-1a', 'us-east-1b']) {
    hosts.push(
      ...(await launchGroupHosts(local, {
        group: GROUP,
        imageId: hostImage,
        availabilityZone: zone,
        count: 2,
        instanceProfile: ensureSsmManagedProfile(local.instanceProfiles),
      })),
    );
  }
  // Register Image is an administrator's direct invoke, never a request-bus event.
  await local.adminRequest('Register Image', register.detail);
  await local.settleFor(2 * 60_000);
  return { local, hosts };
};

const cachedOn = (state: GroupState): string[] =>
  state.entries
    .filter((entry) => entry.imageId === image.id && entry.state === 'cached')
    .map((entry) => entry.instanceId)
    .sort();

describe('placement on the local cloud', () => {
  it('returns an even spread over hosts and AZs and keeps the warm-list tag on every host', async () => {
    const { local, hosts } = await start();
    await put(local, pin);
    await local.settleFor(10 * 60_000);
    expect(cachedOn(await groupState(local))).toEqual([...hosts].sort());

    const advice = await advisePlacement(local, advise.detail);

    expect(advice).toMatchObject({ placed: 4, unplaced: 0, share: 1, spread: 'even', reasons: [] });
    expect(advice.warmHosts).toEqual([]);
    expect(advice.placements.map((placement) => placement.instanceId).sort()).toEqual([...hosts].sort());
    expect(advice.placements.every((placement) => placement.warm && placement.count === 1)).toBe(true);
    const perAz = advice.placements.reduce<Record<string, number>>((sum, placement) => {
      sum[placement.availabilityZone] = (sum[placement.availabilityZone] ?? 0) + placement.count;
      return sum;
    }, {});
    expect(perAz).toEqual({ 'us-east-1a': 2, 'us-east-1b': 2 });
    for (const host of hosts) expect(local.ec2.instance(host)?.tags[WARM_IMAGES_TAG]).toBe(`v1 ${image.id}`);

    // Placement remembers its advice (its own items in the imageCache table, written under its
    // role): single launches that follow go to different hosts, not all to the lowest id.
    const singles = [];
    for (let launch = 0; launch < 4; launch++)
      singles.push((await advisePlacement(local, { ...advise.detail, count: 1 })).placements[0]?.instanceId);
    expect([...new Set(singles)].sort()).toEqual([...hosts].sort());
  });

  it('reports a partial spread and warms the cold hosts it falls back to', async () => {
    const { local, hosts } = await start();
    const [warm, ...cold] = hosts;
    await put(local, {
      'detail-type': 'Plan Cache',
      detail: { hostGroup: GROUP, warm: [{ imageId: image.id, instanceIds: [warm] }] },
    });
    await local.settleFor(10 * 60_000);
    expect(cachedOn(await groupState(local))).toEqual([warm]);
    expect(local.ec2.instance(cold[0] ?? '')?.tags[WARM_IMAGES_TAG]).toBe('v1');

    const advice = await advisePlacement(local, {
      ...advise.detail,
      count: 3,
      freeSlots: { [warm ?? '']: 1 },
    });

    expect(advice.spread).toBe('partial');
    expect(advice.reasons).toEqual(
      expect.arrayContaining([
        'only one host holds the image',
        '2 instance(s) on hosts without the image (warming started)',
      ]),
    );
    expect(advice.placements.find((placement) => placement.instanceId === warm)).toMatchObject({
      warm: true,
      count: 1,
    });
    expect(advice.warmHosts).toHaveLength(2);
    // Spread: the two cold instances land in different AZs.
    const coldAzs = advice.placements.filter((placement) => !placement.warm).map((p) => p.availabilityZone);
    expect(new Set(coldAzs).size).toBe(2);

    await local.settleFor(10 * 60_000);
    expect(cachedOn(await groupState(local))).toEqual([warm, ...advice.warmHosts].sort());
    for (const host of advice.warmHosts)
      expect(local.ec2.instance(host)?.tags[WARM_IMAGES_TAG]).toBe(`v1 ${image.id}`);
  });
});
