import { rankAmong, type ScoredImage } from '../domain/counters';
import type { DecayParameters } from '../domain/decay';
import { type PopularityScope, scopeKey } from '../domain/scope';
import type { PopularityReader } from './popularity-store';

/**
 * How old a ranking a reader may use: a minute. The change check: well under the 5 minutes
 * between two checks of one image (`changedMinIntervalSeconds`), so a standing is at most a
 * minute late in telling which other images overtook it. The cache planner, for a plan a launch
 * asked for: the launch's own image is planned whatever the ranking says, and the schedule and
 * the `Popularity Changed` nudge plan on a fresh one.
 */
export const RANKING_MAX_AGE_MS = 60_000;

/** Bound on the scopes one process remembers; forgetting one only costs a re-read. */
const REMEMBERED_SCOPES_MAX = 1_000;

/**
 * A scope's top-K ranking, read at most once per `maxAgeMs` by one process. Reading a ranking
 * reads every live counter of the scope (all images, shards and both live eras), so when images
 * are many and each is launched rarely, checking each launch's standing against a fresh ranking
 * would read the whole scope on almost every launch. Between reads the remembered scores are
 * decayed to the caller's time (every image decays at the same rate), and every score the
 * process reads fresh replaces its image's entry (`update`): what the remembered ranking misses
 * is only what other processes counted since the read.
 */
export class RecentRanking {
  readonly #read = new Map<string, { readonly at: number; readonly k: number; ranked: ScoredImage[] }>();

  constructor(
    private readonly reader: Pick<PopularityReader, 'topK'>,
    private readonly decay: DecayParameters,
    private readonly maxAgeMs: number,
  ) {}

  /** The scope's top `k` at `now`, from a ranking at most `maxAgeMs` old (`fresh`: read now). */
  async topK(
    scope: PopularityScope,
    k: number,
    now: number,
    options: { readonly fresh?: boolean } = {},
  ): Promise<ScoredImage[]> {
    const key = scopeKey(scope);
    const remembered = this.#read.get(key);
    if (
      !options.fresh &&
      remembered &&
      remembered.k >= k &&
      now >= remembered.at &&
      now - remembered.at < this.maxAgeMs
    ) {
      const factor = this.#decayFactor(remembered.at, now);
      return remembered.ranked.slice(0, k).map((entry) => ({ ...entry, score: entry.score * factor }));
    }
    const ranked = (await this.reader.topK(scope, k, now)).map(({ image, score }) => ({ image, score }));
    if (this.#read.size >= REMEMBERED_SCOPES_MAX) this.#read.clear();
    this.#read.set(key, { at: now, k, ranked });
    return ranked;
  }

  /** Puts an image's fresh score (at `now`) into the scope's remembered ranking, if one is kept. */
  update(scope: PopularityScope, image: string, score: number, now: number): void {
    const remembered = this.#read.get(scopeKey(scope));
    if (!remembered || now < remembered.at) return;
    const entry = { image, score: score / this.#decayFactor(remembered.at, now) };
    const others = remembered.ranked.filter((other) => other.image !== image);
    const rank = rankAmong(others, image, entry.score);
    // Not cut back to K: an entry pushed below the K-th may rise again when a score above it falls.
    remembered.ranked = [...others.slice(0, rank), entry, ...others.slice(rank)];
  }

  /** What a score read at `at` is worth at `now`. */
  #decayFactor(at: number, now: number): number {
    return 2 ** ((at - now) / this.decay.halfLifeMs);
  }
}
