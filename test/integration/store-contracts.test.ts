import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryImageCacheStore } from '../../functions/image-cache/adapters/memory-store';
import {
  DynamoImageCacheStore,
  type HostRecord,
  type ImageCacheStore,
} from '../../functions/image-cache/adapters/store';
import type { ImageSpec } from '../../functions/image-cache/config';
import type { HostImageEntry } from '../../functions/image-cache/domain/model';
import { MemoryPoolStore } from '../../functions/pools/adapters/memory-store';
import { dynamoPoolStore, type PoolStore } from '../../functions/pools/adapters/store';
import type { ClaimRecord } from '../../functions/pools/domain/claims';
import { DynamoChangeMarkers } from '../../functions/popularity/adapters/dynamodb-popularity-store';
import { DynamoLaunchQuota, type LaunchQuota } from '../../functions/popularity/adapters/launch-quota';
import {
  MemoryChangeMarkers,
  MemoryLaunchQuota,
  MemoryPopularityStore,
} from '../../functions/popularity/adapters/memory-popularity-store';
import type {
  ChangeMarkerStore,
  PopularityStore,
} from '../../functions/popularity/adapters/popularity-store';
import { decayParameters } from '../../functions/popularity/domain/decay';
import { GLOBAL_SCOPE } from '../../functions/popularity/domain/scope';
import { ConditionFailedError } from '../../functions/shared/errors';
import { memoryShelfStore } from '../../functions/shelving/adapters/memory-store';
import { dynamoShelfStore, type ShelfStore } from '../../functions/shelving/adapters/store';
import type { LocalCloud } from '../../local/cloud';
import { startLocalCloud } from '../support/local-cloud';
import { popularityStoreOn } from '../support/stores';
import { member, spec } from '../unit/pools/fixtures';
import { record } from '../unit/shelving/fakes';

/**
 * The in-memory stores drive the unit tests, the benchmarks and the sandbox; the DynamoDB stores
 * run in Lambda. Each case here runs against both, on DynamoDB Local for the second, so a fake
 * cannot drift from DynamoDB's conditional semantics: a conditional write that lost its race
 * changes nothing, versions move one write at a time, and a repeated idempotent write is a no-op.
 */

const NOW = Date.UTC(2026, 0, 5, 8, 0, 0);
const POPULARITY = { halfLifeHours: 24, shards: 4 };

let cloud: LocalCloud;
beforeAll(async () => {
  cloud = await startLocalCloud({
    latency: 'zero',
    functions: ['popularity'],
    documents: [],
    behaviours: {},
    settings: { POPULARITY_SETTINGS: JSON.stringify(POPULARITY) },
  });
});
afterAll(async () => {
  await cloud?.stop();
});

/** Every method of a DynamoDB store runs inside the cloud's virtual time, as the DynamoDB calls take it. */
const onCloud = <T extends object>(store: T): T =>
  new Proxy(store, {
    get(target, key) {
      const value = Reflect.get(target, key);
      return typeof value === 'function'
        ? (...args: unknown[]) => cloud.run(() => value.apply(target, args))
        : value;
    },
  });

/**
 * What a conditional write did. A store reports a lost condition as `false` or as a
 * ConditionFailedError; both read as `lost`, any other error fails the case.
 */
const outcomeOf = async (write: Promise<unknown>): Promise<'written' | 'lost'> => {
  try {
    return (await write) === false ? 'lost' : 'written';
  } catch (error) {
    if (error instanceof ConditionFailedError) return 'lost';
    throw error;
  }
};

/** Keys no other case of the file uses: the DynamoDB stores of a kind share one table. */
let unique = 0;
const fresh = (prefix: string): string => `${prefix}-${++unique}`;

const both = <S>(memory: () => S, dynamodb: () => S): [string, () => S][] => [
  ['in memory', memory],
  ['on DynamoDB', () => onCloud(dynamodb() as object) as S],
];

const image = (id: string): ImageSpec => ({
  id,
  kind: 'container',
  source: `123456789012.dkr.ecr.us-east-1.amazonaws.com/inference/${id}`,
  digest: `sha256:${'a'.repeat(64)}`,
  sizeBytes: 1024,
});
const host = (instanceId: string): Omit<HostRecord, 'version'> => ({
  instanceId,
  availabilityZone: 'us-east-1a',
  status: 'running',
  joinedAt: NOW,
});
const entry = (imageId: string, state: HostImageEntry['state']): HostImageEntry => ({
  imageId,
  state,
  bytes: 1024,
  since: NOW,
  attempts: 0,
});
const registered = { at: NOW, via: 'direct-invoke' };

describe.each(
  both<ImageCacheStore>(
    () => new MemoryImageCacheStore(),
    () => new DynamoImageCacheStore(cloud.documents, cloud.tables.imageCache),
  ),
)('the image-cache store %s', (_, makeStore) => {
  it('registers an image once, then writes it only at the version read, one version at a time', async () => {
    const store = makeStore();
    const id = fresh('model');

    expect(await store.putImage(image(id), registered, 'absent')).toBe(1);
    expect(await outcomeOf(store.putImage(image(id), registered, 'absent'))).toBe('lost');
    expect(await store.putImage({ ...image(id), sizeBytes: 2048 }, registered, 1)).toBe(2);
    expect(await outcomeOf(store.putImage(image(id), registered, 1))).toBe('lost');

    expect(await store.getRegisteredImage(id)).toMatchObject({ spec: { sizeBytes: 2048 }, version: 2 });
    expect((await store.getImages([id])).get(id)).toMatchObject({ id, sizeBytes: 2048 });
  });

  it('writes a host record only at the version read', async () => {
    const store = makeStore();
    const group = fresh('group');
    const instanceId = 'i-0123456789abcdef0';

    await store.putHost(group, host(instanceId), 'absent');
    expect(await outcomeOf(store.putHost(group, { ...host(instanceId), status: 'stopped' }, 'absent'))).toBe(
      'lost',
    );
    await store.putHost(group, { ...host(instanceId), warmList: 'v1' }, 1);
    expect(await outcomeOf(store.putHost(group, { ...host(instanceId), status: 'stopped' }, 1))).toBe('lost');

    expect((await store.loadHost(group, instanceId)).host).toMatchObject({
      status: 'running',
      warmList: 'v1',
      version: 2,
    });
  });

  it("writes and deletes a host's image entry only at the version read", async () => {
    const store = makeStore();
    const group = fresh('group');
    const instanceId = 'i-0123456789abcdef0';

    await store.writeEntry(group, instanceId, 'model-a', entry('model-a', 'fetching'), 'absent');
    expect(
      await outcomeOf(store.writeEntry(group, instanceId, 'model-a', entry('model-a', 'failed'), 'absent')),
    ).toBe('lost');
    await store.writeEntry(group, instanceId, 'model-a', entry('model-a', 'cached'), 1);
    expect(await outcomeOf(store.writeEntry(group, instanceId, 'model-a', undefined, 1))).toBe('lost');
    expect((await store.loadGroup(group)).entries).toMatchObject([
      { instanceId, imageId: 'model-a', state: 'cached', version: 2 },
    ]);

    await store.writeEntry(group, instanceId, 'model-a', undefined, 2);

    expect((await store.loadGroup(group)).entries).toEqual([]);
  });

  it("writes the group's source health only at the version read, starting from healthy at version 0", async () => {
    const store = makeStore();
    const group = fresh('group');
    expect((await store.loadGroup(group)).source).toEqual({ consecutiveFailures: 0, version: 0 });

    await store.writeSource(group, { consecutiveFailures: 1, retryAt: NOW + 60_000 }, 'absent');
    expect(await outcomeOf(store.writeSource(group, { consecutiveFailures: 0 }, 'absent'))).toBe('lost');

    expect((await store.loadGroup(group)).source).toEqual({
      consecutiveFailures: 1,
      retryAt: NOW + 60_000,
      version: 1,
    });
  });

  it('keeps one pin per image however often it is put, and drops the host with its entries', async () => {
    const store = makeStore();
    const group = fresh('group');
    const instanceId = 'i-0123456789abcdef0';
    await store.putHost(group, host(instanceId), 'absent');
    await store.writeEntry(group, instanceId, 'model-a', entry('model-a', 'cached'), 'absent');

    await store.putPin(group, 'model-a', NOW);
    await store.putPin(group, 'model-a', NOW + 1);
    await store.deleteHost(group, instanceId);

    expect(await store.loadGroup(group)).toMatchObject({ pins: ['model-a'], hosts: [], entries: [] });
    await store.deletePin(group, 'model-a');
    expect((await store.loadGroup(group)).pins).toEqual([]);
  });
});

describe.each(
  both<PoolStore>(
    () => new MemoryPoolStore(),
    () => dynamoPoolStore(cloud.documents, cloud.tables.pools),
  ),
)('the pools store %s', (_, makeStore) => {
  it('creates a member once and writes it only at the version and state read', async () => {
    const store = makeStore();
    const pool = fresh('web');
    const ready = member({ pool, version: 1 });

    expect(await store.createMember(ready)).toBe(true);
    expect(await store.createMember({ ...ready, state: 'launching' })).toBe(false);
    const claimed = { ...ready, state: 'claimed' as const, claimId: 'req-1', version: 2 };
    expect(await store.updateMember(ready, claimed)).toBe(true);
    expect(await store.updateMember(ready, { ...claimed, claimId: 'req-2' })).toBe(false);
    expect(await store.deleteMember(ready)).toBe(false);

    expect(await store.listMembers(pool)).toEqual([claimed]);
    expect(await store.deleteMember(claimed)).toBe(true);
    expect(await store.findMember(ready.instanceId)).toBeUndefined();
  });

  it('hands the reconcile lease to one owner at a time until it lapses, and only its holder gives it back', async () => {
    const store = makeStore();
    const name = fresh('web');
    await store.putPool({ spec: spec({ name }), source: 'operator', status: 'active' }, NOW);

    expect(await store.acquireLease(name, 'first', NOW, NOW + 60_000)).toBe(true);
    expect(await store.acquireLease(name, 'second', NOW + 1_000, NOW + 61_000)).toBe(false);
    expect(await store.releaseLease(name, 'second')).toBe(false);
    expect(await store.acquireLease(name, 'second', NOW + 60_001, NOW + 120_000)).toBe(true);
    expect(await store.releaseLease(name, 'first')).toBe(false);
    expect(await store.releaseLease(name, 'second')).toBe(true);
    expect(await store.acquireLease(name, 'first', NOW + 60_002, NOW + 120_000)).toBe(true);
  });

  it('records a launch intent again without change, but never another launch under its token', async () => {
    const store = makeStore();
    const pool = fresh('web');
    const intent = {
      clientToken: fresh('token'),
      pool,
      subnetId: 'subnet-0aaaaaaaaaaaaaaa1',
      count: 1,
      origin: 'pool' as const,
      nonce: 'nonce',
      createdAt: NOW,
    };

    expect(await store.recordLaunchIntent(intent)).toBe(true);
    expect(await store.recordLaunchIntent(intent)).toBe(true);
    expect(await store.recordLaunchIntent({ ...intent, subnetId: 'subnet-0bbbbbbbbbbbbbbb2' })).toBe(false);

    expect(await store.launchIntents(pool, NOW)).toEqual([intent]);
  });

  it('creates a claim once per request id and writes it only at the version read', async () => {
    const store = makeStore();
    const claim: ClaimRecord = {
      requestId: fresh('req'),
      step: 'requested',
      pool: 'linux-web',
      request: { instanceType: 'm7i.large' },
      requestedAt: NOW,
      version: 1,
    };

    expect(await store.createClaim(claim)).toBe(true);
    expect(await store.createClaim({ ...claim, pool: 'other' })).toBe(false);
    const claimed: ClaimRecord = {
      ...claim,
      step: 'member-claimed',
      instanceId: 'i-0123456789abcdef0',
      version: 2,
    };
    expect(await store.updateClaim(claim, claimed)).toBe(true);
    expect(await store.updateClaim(claim, { ...claimed, instanceId: 'i-0fedcba9876543210' })).toBe(false);

    expect(await store.getClaim(claim.requestId)).toEqual(claimed);
  });

  it("counts a caller's requests up to its hourly quota, never past it", async () => {
    const store = makeStore();
    const pool = fresh('web');

    const taken = [];
    for (let request = 0; request < 3; request++)
      taken.push(await store.takeRequestQuota(pool, 'caller-a', NOW, 2));

    expect(taken).toEqual([true, true, false]);
    expect(await store.takeRequestQuota(pool, 'caller-b', NOW, 2)).toBe(true);
    expect(await store.takeRequestQuota(pool, 'caller-a', NOW + 3_600_000, 2)).toBe(true);
  });
});

/** What the popularity table holds: launch counters, change markers and launch quotas. */
interface PopularityTable {
  readonly counters: PopularityStore;
  readonly markers: ChangeMarkerStore;
  readonly quota: LaunchQuota;
}

describe.each<[string, () => PopularityTable]>([
  [
    'in memory',
    () => ({
      counters: new MemoryPopularityStore({
        decay: decayParameters(POPULARITY.halfLifeHours),
        shards: POPULARITY.shards,
      }),
      markers: new MemoryChangeMarkers(),
      quota: new MemoryLaunchQuota(),
    }),
  ],
  [
    'on DynamoDB',
    () => {
      const table = {
        client: cloud.runtime('popularity').clients.dynamodb,
        tableName: cloud.tables.popularity,
      };
      return {
        counters: onCloud(popularityStoreOn(cloud)),
        markers: onCloud(new DynamoChangeMarkers(table)),
        quota: onCloud(new DynamoLaunchQuota(table)),
      };
    },
  ],
])('the popularity table %s', (_, makeTable) => {
  it('counts an event once however often it is recorded, and ranks images by their launches', async () => {
    const { counters } = makeTable();
    const [popular, other] = [fresh('ami'), fresh('ami')];
    const launch = { eventId: fresh('event'), at: NOW, images: [{ image: popular, count: 3 }] };

    expect(await counters.recordLaunch(launch)).toEqual({ recorded: true });
    expect(await counters.recordLaunch(launch)).toEqual({ recorded: false });
    await counters.recordLaunch({ eventId: fresh('event'), at: NOW, images: [{ image: other, count: 1 }] });

    expect(await counters.launches(GLOBAL_SCOPE, popular, NOW)).toBe(3);
    const top = await counters.topK(GLOBAL_SCOPE, 10, NOW, {
      where: (candidate) => candidate === popular || candidate === other,
    });
    expect(top.map((ranked) => [ranked.image, ranked.launches])).toEqual([
      [popular, 3],
      [other, 1],
    ]);
  });

  it('gives the check slot of a change to one caller per interval and keeps the standing last announced', async () => {
    const { markers } = makeTable();
    const image = fresh('ami');

    expect(await markers.claim(GLOBAL_SCOPE, image, NOW, 300_000)).toEqual({ previous: undefined });
    expect(await markers.claim(GLOBAL_SCOPE, image, NOW + 1_000, 300_000)).toBeUndefined();
    await markers.save(GLOBAL_SCOPE, image, { inTopK: true, aboveThreshold: false }, NOW + 1_000);

    expect(await markers.claim(GLOBAL_SCOPE, image, NOW + 300_000, 300_000)).toEqual({
      previous: { inTopK: true, aboveThreshold: false },
    });
  });

  it("adds a caller's launches to its hour only while they fit the limit", async () => {
    const { quota } = makeTable();
    const caller = fresh('caller');

    expect(await quota.consume(caller, 1, 6, 10)).toBe(true);
    expect(await quota.consume(caller, 1, 5, 10)).toBe(false);
    expect(await quota.consume(caller, 1, 4, 10)).toBe(true);
    expect(await quota.consume(caller, 1, 1, 10)).toBe(false);
    expect(await quota.consume(caller, 2, 11, 10)).toBe(false);
    expect(await quota.consume(caller, 2, 10, 10)).toBe(true);
  });
});

describe.each(
  both<ShelfStore>(
    () => memoryShelfStore(),
    () => dynamoShelfStore(cloud.documents, cloud.tables.shelves),
  ),
)('the shelf store %s', (_, makeStore) => {
  const shelfRecord = () => {
    const suffix = String(++unique).padStart(17, '0');
    return record({ recordId: `sh-${suffix}-t8dsxz`, instanceId: `i-${suffix}` });
  };

  it('creates one record per instance: a second shelve of it answers the existing record', async () => {
    const store = makeStore();
    const first = shelfRecord();
    const second = { ...shelfRecord(), instanceId: first.instanceId };

    expect(await store.create(first)).toEqual({ created: true });
    expect(await store.create(second)).toEqual({ created: false, existingRecordId: first.recordId });

    expect(await store.recordIdForInstance(first.instanceId)).toBe(first.recordId);
    expect(await store.get(second.recordId)).toBeUndefined();
  });

  it('writes a record only at the step and version read', async () => {
    const store = makeStore();
    const offloaded = shelfRecord();
    await store.create(offloaded);
    const unshelved = { ...offloaded, step: 'unshelved' as const, version: offloaded.version + 1 };

    expect(await store.update(offloaded, unshelved)).toBe(true);
    expect(await store.update(offloaded, { ...unshelved, nextDueAt: NOW })).toBe(false);
    expect(await store.update({ ...unshelved, step: 'offloaded' }, { ...unshelved, version: 9 })).toBe(false);
    expect(await store.remove(offloaded)).toBe(false);

    expect(await store.get(offloaded.recordId)).toEqual(unshelved);
    expect(await store.remove(unshelved)).toBe(true);
    expect(await store.get(offloaded.recordId)).toBeUndefined();
  });

  it('never links an instance another record holds', async () => {
    const store = makeStore();
    const holder = shelfRecord();
    const other = shelfRecord();
    await store.create(holder);
    await store.create(other);

    const next = { ...other, version: other.version + 1 };
    expect(await store.update(other, next, { linkInstanceId: holder.instanceId })).toBe(false);

    expect(await store.recordIdForInstance(holder.instanceId)).toBe(holder.recordId);
    expect(await store.get(other.recordId)).toEqual(other);
  });

  it("keeps a request's first resolution: a later delivery gets that one back", async () => {
    const store = makeStore();
    const request = { requestId: fresh('event'), expiresAt: NOW / 1000 + 3_600 };
    const first = { recordIds: ['sh-00000000000000001-t8dsxz'], missing: [] };

    expect(await store.rememberResolution(request, first, NOW)).toEqual(first);
    expect(await store.rememberResolution(request, { recordIds: [], missing: [] }, NOW + 1_000)).toEqual(
      first,
    );
    expect(await store.resolution(request.requestId, NOW + 2_000)).toEqual(first);
  });
});
