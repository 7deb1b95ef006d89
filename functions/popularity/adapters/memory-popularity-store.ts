import type { PopularityStanding } from '../domain/change';
import { type CounterSettings, counterIncrements, counterKey, rankImages } from '../domain/counters';
import { liveEras } from '../domain/decay';
import { type PopularityScope, scopeKey } from '../domain/scope';
import type { LaunchQuota } from './launch-quota';
import type { ChangeMarkerStore, PopularityStore } from './popularity-store';

interface StoredCounter {
  readonly scopeKey: string;
  readonly image: string;
  readonly era: number;
  value: number;
  launches: number;
}

/**
 * The same store semantics as DynamoDB (same increments, same ranking) in memory: unit tests,
 * the benchmark and the sandbox's fast paths use it.
 */
export class MemoryPopularityStore implements PopularityStore {
  readonly #counters = new Map<string, StoredCounter>();
  /**
   * The counters by scope, then image: a read touches its own scope's (or image's) counters, as a
   * DynamoDB query of one partition does, not every counter of every scope.
   */
  readonly #byScope = new Map<string, Map<string, StoredCounter[]>>();
  readonly #seen = new Set<string>();

  constructor(private readonly settings: CounterSettings) {}

  async recordLaunch(record: Parameters<PopularityStore['recordLaunch']>[0]) {
    if (this.#seen.has(record.eventId)) return { recorded: false };
    this.#seen.add(record.eventId);
    for (const increment of counterIncrements(record, this.settings)) {
      const key = counterKey(increment.scope, increment.image, increment.shard, increment.era);
      let counter = this.#counters.get(key);
      if (counter === undefined) {
        counter = {
          scopeKey: scopeKey(increment.scope),
          image: increment.image,
          era: increment.era,
          value: 0,
          launches: 0,
        };
        this.#counters.set(key, counter);
        const images = this.#byScope.get(counter.scopeKey) ?? new Map<string, StoredCounter[]>();
        this.#byScope.set(counter.scopeKey, images);
        images.set(counter.image, [...(images.get(counter.image) ?? []), counter]);
      }
      counter.value += increment.value;
      counter.launches += increment.launches;
    }
    return { recorded: true };
  }

  async topK(
    scope: PopularityScope,
    k: number,
    now: number,
    options: { where?: (image: string) => boolean } = {},
  ) {
    const counters = this.#live(scope, now).filter((counter) => options.where?.(counter.image) ?? true);
    return rankImages(counters, now, this.settings.decay, k);
  }

  async score(scope: PopularityScope, image: string, now: number) {
    return rankImages(this.#live(scope, now, image), now, this.settings.decay)[0]?.score ?? 0;
  }

  async launches(scope: PopularityScope, image: string, now: number) {
    return rankImages(this.#live(scope, now, image), now, this.settings.decay)[0]?.launches ?? 0;
  }

  #live(scope: PopularityScope, now: number, image?: string): StoredCounter[] {
    const images = this.#byScope.get(scopeKey(scope));
    if (images === undefined) return [];
    const eras = new Set(liveEras(now, this.settings.decay));
    const candidates = image === undefined ? [...images.values()].flat() : (images.get(image) ?? []);
    return candidates.filter((counter) => eras.has(counter.era));
  }
}

export class MemoryChangeMarkers implements ChangeMarkerStore {
  readonly #markers = new Map<string, { nextCheckAt: number; standing?: PopularityStanding }>();

  async claim(scope: PopularityScope, image: string, now: number, intervalMs: number) {
    const key = `${scopeKey(scope)}#${image}`;
    const marker = this.#markers.get(key);
    if (marker && marker.nextCheckAt > now) return undefined;
    this.#markers.set(key, {
      nextCheckAt: now + intervalMs,
      ...(marker?.standing ? { standing: marker.standing } : {}),
    });
    return { previous: marker?.standing };
  }

  async save(scope: PopularityScope, image: string, standing: PopularityStanding) {
    const key = `${scopeKey(scope)}#${image}`;
    const marker = this.#markers.get(key);
    this.#markers.set(key, { nextCheckAt: marker?.nextCheckAt ?? 0, standing });
  }
}

/** The launch quota in memory (tests). */
export class MemoryLaunchQuota implements LaunchQuota {
  readonly #used = new Map<string, number>();

  async consume(caller: string, hour: number, count: number, limit: number): Promise<boolean> {
    const key = `${caller}#${hour}`;
    const used = this.#used.get(key) ?? 0;
    if (used + count > limit) return false;
    this.#used.set(key, used + count);
    return true;
  }
}
