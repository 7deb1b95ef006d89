import type { HostGroup } from '../config';
import { MinHeap } from './min-heap';
import type { HostImageEntry, PlannerHost } from './model';

/** One host while a plan is made: what it should hold so far and the bytes that reserves. */
export interface HostWork {
  readonly host: PlannerHost;
  readonly entries: ReadonlyMap<string, HostImageEntry>;
  readonly desired: string[];
  readonly desiredSet: Set<string>;
  reservedBytes: number;
  /** Tie-breaker drawn once per plan. */
  readonly lot: number;
  /** Position in instance-id order: the last tie-breaker. */
  readonly order: number;
}

/** An image worth replicas: a scored, sized, unpinned image above the group's minimum score. */
export interface ScoredImage {
  readonly imageId: string;
  readonly score: number;
  readonly bytes: number;
}

const compare = (x: number | string, y: number | string): number => (x < y ? -1 : x > y ? 1 : 0);

const holds = (work: HostWork, imageId: string) => work.entries.get(imageId)?.state === 'cached';

/** A host with its reserved bytes when queued; stale once the host reserved more. */
interface Queued {
  readonly work: HostWork;
  readonly reserved: number;
}

/**
 * Hosts by (reserved bytes, lot, instance-id order), the order the planner prefers among
 * candidates. Reserved bytes only grow, so a queued key is never above the host's real one: a
 * stale head is re-queued with its real key, and a head whose key is current is the least host.
 */
class HostQueue {
  readonly #heap = new MinHeap<Queued>(
    (a, b) =>
      (compare(a.reserved, b.reserved) || compare(a.work.lot, b.work.lot) || a.work.order - b.work.order) < 0,
  );

  add(work: HostWork): void {
    this.#heap.push({ work, reserved: work.reservedBytes });
  }

  /**
   * The least host not `excluded`, if it has room (when it has none, no later host does: they
   * reserve at least as much). Excluded hosts are put back.
   */
  first(excluded: (work: HostWork) => boolean, fits: (work: HostWork) => boolean) {
    const skipped: Queued[] = [];
    let found: HostWork | undefined;
    for (let head = this.#heap.peek(); head; head = this.#heap.peek()) {
      if (!Object.is(head.reserved, head.work.reservedBytes)) {
        this.#heap.pop();
        this.add(head.work);
      } else if (excluded(head.work)) {
        skipped.push(head);
        this.#heap.pop();
      } else {
        if (fits(head.work)) found = head.work;
        break;
      }
    }
    for (const queued of skipped) this.#heap.push(queued);
    return found;
  }
}

/**
 * The hosts holding one image, least (reserved bytes, lot, order) at the root: a segment tree
 * over the holders, updated when a holder reserves more and when it comes to want the image
 * (then it is no candidate for the image's replicas again). A heap would go stale with every
 * want anywhere in the group; this costs log(holders) per update and nothing per query.
 */
class HolderTree {
  readonly #tree: Int32Array;
  readonly #size: number;

  constructor(readonly holders: readonly HostWork[]) {
    this.#size = holders.length;
    this.#tree = new Int32Array(2 * holders.length).fill(-1);
    holders.forEach((_, leaf) => {
      this.#tree[this.#size + leaf] = leaf;
    });
    for (let node = this.#size - 1; node >= 1; node -= 1) this.#pull(node);
  }

  #better(a: number, b: number): number {
    const x = this.holders[a];
    const y = this.holders[b];
    if (!x) return b;
    if (!y) return a;
    return (compare(x.reservedBytes, y.reservedBytes) || compare(x.lot, y.lot) || x.order - y.order) <= 0
      ? a
      : b;
  }

  #pull(node: number): void {
    this.#tree[node] = this.#better(this.#tree[2 * node] ?? -1, this.#tree[2 * node + 1] ?? -1);
  }

  /**
   * The holder reserved more (`removed`: it wants the image now). Its key only grows, so only
   * the nodes it wins need a new winner: above the first node it does not win nothing changes.
   */
  update(leaf: number, removed: boolean): void {
    let node = this.#size + leaf;
    if (removed) this.#tree[node] = -1;
    for (node >>= 1; node >= 1 && this.#tree[node] === leaf; node >>= 1) this.#pull(node);
  }

  /** The least holder not wanting the image, if it has room. */
  first(fits: (work: HostWork) => boolean): HostWork | undefined {
    const best = this.holders[this.#tree[1] ?? -1];
    return best && fits(best) ? best : undefined;
  }
}

/** The (image, replica) items of one image, in replica order; densities never rise along it. */
interface ReplicaStream {
  readonly image: ScoredImage;
  /** Hosts holding or already wanting the image when replicas start: its incumbent replicas. */
  readonly holders: number;
  /** Hosts holding the image cached, the only candidates of an incumbent replica. */
  readonly holding: HolderTree;
}

interface ReplicaItem {
  readonly stream: ReplicaStream;
  readonly replica: number;
  readonly density: number;
  readonly incumbent: boolean;
}

/**
 * Step 3 of `planHostGroup`: gives (image, replica) items to hosts in order of value density
 * (see there). Same decisions as sorting every item of every image and filtering and sorting
 * every host per item (images · hosts² · log(hosts), minutes for a group of a few thousand
 * hosts), in about (items up to each image's last replica + wants · images a host holds) ·
 * log(hosts):
 * - each image's items come in non-increasing density (the k-th replica is worth s / k^e, an
 *   incumbent 1 + keepMargin times more, with e and keepMargin ≥ 0 by the group's schema), so
 *   merging the images' streams yields the sorted order;
 * - the candidates of an item only shrink as the plan fills hosts, so an image whose
 *   non-incumbent replica found no host will find none for its later replicas either;
 * - the best candidate is the root of the image's holder tree, else the head of the queue of
 *   all hosts by (reserved bytes, lot, order), stepping over hosts that already want the image.
 */
export const placeReplicas = (
  hosts: readonly HostWork[],
  images: readonly ScoredImage[],
  group: Pick<HostGroup, 'cacheBytes' | 'keepMargin' | 'replicaExponent'>,
  replicas: ReadonlyMap<string, number>,
  want: (work: HostWork, imageId: string, bytes: number) => void,
): void => {
  const all = new HostQueue();
  for (const work of hosts) all.add(work);
  /** Per host, the holder trees it is a leaf of. */
  const leaves = new Map<HostWork, { stream: ReplicaStream; leaf: number }[]>();
  const streams = images.map((image): ReplicaStream => {
    const holding = hosts.filter((work) => holds(work, image.imageId));
    const holders = hosts.filter(
      (work) => work.desiredSet.has(image.imageId) || holds(work, image.imageId),
    ).length;
    const stream = { image, holders, holding: new HolderTree(holding) };
    holding.forEach((work, leaf) => {
      if (work.desiredSet.has(image.imageId)) stream.holding.update(leaf, true);
      else {
        const mine = leaves.get(work);
        if (mine) mine.push({ stream, leaf });
        else leaves.set(work, [{ stream, leaf }]);
      }
    });
    return stream;
  });
  const itemOf = (stream: ReplicaStream, replica: number): ReplicaItem => {
    const { score, bytes } = stream.image;
    const incumbent = replica <= stream.holders;
    const density =
      (score / (replica ** group.replicaExponent * bytes)) * (incumbent ? 1 + group.keepMargin : 1);
    return { stream, replica, density, incumbent };
  };
  const items = new MinHeap<ReplicaItem>(
    (a, b) =>
      (compare(-a.density, -b.density) ||
        compare(a.stream.image.imageId, b.stream.image.imageId) ||
        a.replica - b.replica) < 0,
  );
  if (hosts.length > 0) for (const stream of streams) items.push(itemOf(stream, 1));

  for (let item = items.pop(); item; item = items.pop()) {
    const { stream, replica, incumbent } = item;
    const { imageId, bytes } = stream.image;
    const next = replica < hosts.length ? itemOf(stream, replica + 1) : undefined;
    if ((replicas.get(imageId) ?? 0) >= replica) {
      if (next) items.push(next);
      continue;
    }
    const wanting = (work: HostWork) => work.desiredSet.has(imageId);
    const fits = (work: HostWork) => work.reservedBytes + bytes <= group.cacheBytes;
    const chosen = stream.holding.first(fits) ?? (incumbent ? undefined : all.first(wanting, fits));
    if (!chosen) {
      // An incumbent waits for its next replica; a newcomer no host takes now, none ever will.
      if (incumbent && next) items.push(next);
      continue;
    }
    want(chosen, imageId, bytes);
    for (const { stream: other, leaf } of leaves.get(chosen) ?? [])
      other.holding.update(leaf, other.image.imageId === imageId);
    if (next) items.push(next);
  }
};
