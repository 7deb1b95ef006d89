import { createHash } from 'node:crypto';
import type { Clock } from '../../functions/shared/clock';
import type { Random } from '../ec2/ids';
import type { Ec2Simulator } from '../ec2/simulator';

/**
 * The SSM agent side of the local cloud: what is on each host, and how a document "runs".
 *
 * Writing a behaviour (local/ssm/behaviours/*.ts) for a command document:
 *
 *   export const warmImage: DocumentBehaviour = async (ctx) => {
 *     const [ref = ''] = ctx.parameters.imageRef ?? [];
 *     const pulled = await pullImage(ctx, ref);   // takes virtual time
 *     if (pulled.outcome === 'unreachable') return { status: 'Failed', output: 'registry unreachable' };
 *     ctx.host.files.set('initialized', 'true');
 *     return { status: 'Success', output: `${ref} ${pulled.outcome}` };
 *   };
 *
 * - `parameters` are the SendCommand values after the document's defaults and allowedPattern checks.
 * - `host` is the instance's agent state: it survives stop/start (it lives on the root volume)
 *   and is dropped when the instance terminates. Mutate it directly.
 * - Take time with `await clock.sleep(ms)`; never use real timers.
 * - `ec2` is the EC2 simulator's read model (e.g. `ec2.volumes()` to see what is attached).
 * - Return `Failed` for an expected failure; a thrown error is also reported as Failed.
 */

export type ContainerRuntime = 'docker' | 'containerd';

export interface CachedBlob {
  readonly bytes: number;
  readonly digest: string;
}

/** A host's image cache on disk, bounded by its capacity; eviction is the behaviour's choice. */
export class DiskCache {
  readonly capacityBytes: number;
  readonly #entries = new Map<string, CachedBlob>();

  constructor(capacityBytes: number) {
    this.capacityBytes = capacityBytes;
  }

  get usedBytes(): number {
    let used = 0;
    for (const entry of this.#entries.values()) used += entry.bytes;
    return used;
  }

  get freeBytes(): number {
    return this.capacityBytes - this.usedBytes;
  }

  has(key: string): boolean {
    return this.#entries.has(key);
  }

  get(key: string): CachedBlob | undefined {
    return this.#entries.get(key);
  }

  keys(): string[] {
    return [...this.#entries.keys()];
  }

  /** Stores `blob` under `key` (replacing an older one); false, storing nothing, if it does not fit. */
  put(key: string, blob: CachedBlob): boolean {
    const replaced = this.#entries.get(key)?.bytes ?? 0;
    if (this.usedBytes - replaced + blob.bytes > this.capacityBytes) return false;
    this.#entries.set(key, blob);
    return true;
  }

  delete(key: string): boolean {
    return this.#entries.delete(key);
  }
}

export interface HostAgentState {
  readonly instanceId: string;
  runtime: ContainerRuntime;
  readonly cache: DiskCache;
  /** How fast this host downloads from the image source. */
  downloadBytesPerSecond: number;
  /** Volume-linked images: mount path → EBS volume id. */
  readonly mounts: Map<string, string>;
  /** Files and markers behaviours set, e.g. "initialized" or "hostname". */
  readonly files: Map<string, string>;
}

/**
 * The host file a Windows sysprep generalization leaves: the next boot runs Windows setup's
 * specialize pass and OOBE again, so the agent is back only after a first boot's delay.
 */
export const SYSPREP_GENERALIZED = 'sysprep-generalized';

export interface AgentDefaults {
  readonly runtime: ContainerRuntime;
  readonly diskCapacityBytes: number;
  readonly downloadBytesPerSecond: number;
}

/** Chosen: containerd, a 100 GiB data disk, 100 MB/s from the registry. */
export const DEFAULT_AGENT: AgentDefaults = {
  runtime: 'containerd',
  diskCapacityBytes: 100 * 1024 ** 3,
  downloadBytesPerSecond: 100 * 1000 ** 2,
};

/** Agent state per instance: created on first use, kept across stop/start, dropped on terminate. */
export class AgentRegistry {
  readonly #defaults: AgentDefaults;
  readonly #hosts = new Map<string, HostAgentState>();

  constructor(defaults: AgentDefaults) {
    this.#defaults = defaults;
  }

  get(instanceId: string): HostAgentState {
    let host = this.#hosts.get(instanceId);
    if (!host) {
      host = {
        instanceId,
        runtime: this.#defaults.runtime,
        cache: new DiskCache(this.#defaults.diskCapacityBytes),
        downloadBytesPerSecond: this.#defaults.downloadBytesPerSecond,
        mounts: new Map(),
        files: new Map(),
      };
      this.#hosts.set(instanceId, host);
    }
    return host;
  }

  forget(instanceId: string): void {
    this.#hosts.delete(instanceId);
  }
}

/**
 * The image registry / S3 the hosts pull from. `setReachable(false)` models an image source
 * outage: pulls fail until it is reachable again.
 */
export class ImageSource {
  readonly #images = new Map<string, CachedBlob>();
  #reachable = true;

  get reachable(): boolean {
    return this.#reachable;
  }

  setReachable(reachable: boolean): void {
    this.#reachable = reachable;
  }

  /** Publishes an image; the digest defaults to a stable hash of the reference. */
  add(ref: string, image: { bytes: number; digest?: string }): void {
    this.#images.set(ref, {
      bytes: image.bytes,
      digest: image.digest ?? `sha256:${createHash('sha256').update(ref).digest('hex')}`,
    });
  }

  size(ref: string): number | undefined {
    return this.#images.get(ref)?.bytes;
  }

  digest(ref: string): string | undefined {
    return this.#images.get(ref)?.digest;
  }
}

export interface DocumentBehaviourContext {
  readonly host: HostAgentState;
  readonly parameters: Readonly<Record<string, string[]>>;
  readonly clock: Clock;
  readonly ec2: Ec2Simulator;
  readonly imageSource: ImageSource;
  readonly random: Random;
}

export interface DocumentOutcome {
  readonly status: 'Success' | 'Failed';
  readonly output: string;
}

export type DocumentBehaviour = (ctx: DocumentBehaviourContext) => Promise<DocumentOutcome>;

export type PullResult =
  | { readonly outcome: 'cached' | 'pulled'; readonly bytes: number; readonly digest: string }
  | { readonly outcome: 'unreachable' | 'not-found' | 'disk-full' };

/**
 * Pulls `ref` into the host's cache. A cached copy is used when its digest is current, or when
 * the source is unreachable (the runtime falls back to the local image, which is what warm hosts
 * are for). Otherwise the download takes size / bandwidth of virtual time and fails if the
 * source becomes unreachable meanwhile.
 */
export const pullImage = async (
  ctx: Pick<DocumentBehaviourContext, 'host' | 'imageSource' | 'clock'>,
  ref: string,
): Promise<PullResult> => {
  const { host, imageSource, clock } = ctx;
  const cached = host.cache.get(ref);
  if (cached && (!imageSource.reachable || cached.digest === imageSource.digest(ref)))
    return { outcome: 'cached', ...cached };
  if (!imageSource.reachable) return { outcome: 'unreachable' };
  const bytes = imageSource.size(ref);
  const digest = imageSource.digest(ref);
  if (bytes === undefined || digest === undefined) return { outcome: 'not-found' };
  await clock.sleep((bytes / host.downloadBytesPerSecond) * 1000);
  if (!imageSource.reachable) return { outcome: 'unreachable' };
  if (!host.cache.put(ref, { bytes, digest })) return { outcome: 'disk-full' };
  return { outcome: 'pulled', bytes, digest };
};
