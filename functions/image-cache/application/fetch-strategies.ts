import type { Clock } from '../../shared/clock';
import {
  DependencyError,
  EncryptionKeyError,
  NotFoundError,
  UnmanagedResourceError,
  WarmbootError,
} from '../../shared/errors';
import { waitFor } from '../../shared/polling';
import { type ItemError, itemErrorOf } from '../../shared/results';
import { HOST_GROUP_TAG, OPT_IN_TAG, OPTED_IN } from '../../shared/tags';
import type { HostInfo, VolumeLinks } from '../adapters/ec2';
import type { CacheCommands, SendOptions } from '../adapters/ssm';
import { CACHE_VOLUME_IMAGE_TAG, type FetchStrategyKind, type HostGroup, type ImageSpec } from '../config';
import { DOCUMENT_NAMES } from '../documents';
import { type Cloneability, cloneable } from '../domain/cloneable';
import type { HostImageEntry } from '../domain/model';
import { snapshotOwnerAllowed } from '../domain/sources';

/** What a fetch strategy reads of a host. */
export type FetchHost = Pick<HostInfo, 'instanceId' | 'availabilityZone' | 'devices'>;

/** A fetch or remove started on one host (a command is running), or why it could not start. */
export type StartResult =
  | {
      readonly instanceId: string;
      readonly ok: true;
      readonly commandId: string;
      readonly via: 'download' | 'volume-link';
      readonly volumeId?: string;
      /** `auto`: why it chose download. */
      readonly note?: string;
    }
  | { readonly instanceId: string; readonly ok: false; readonly error: ItemError };

/**
 * Options of a fetch/remove: SendCommand's, plus `onStarted`, called with every batch of results
 * as soon as its command was sent (before the next host's work starts), so the caller records
 * the command before its status event can arrive: linking hosts one by one takes seconds each,
 * and a fast host's Mount finishes long before the last host is linked.
 */
export interface StartOptions extends SendOptions {
  readonly onStarted?: (results: readonly StartResult[]) => Promise<void>;
}

const reported = async (options: StartOptions, results: StartResult[]): Promise<StartResult[]> => {
  if (results.length > 0) await options.onStarted?.(results);
  return results;
};

/**
 * How a host group gets images onto its hosts (the group's `handler` setting): `init`
 * re-prepares a host that joined or restarted (it
 * inventories what the host really holds; the planner then re-prepares what it should hold),
 * `fetch` puts an image on hosts, `remove` takes it off. Fetch and remove take a batch of hosts
 * because SendCommand does (up to 50); results are per host.
 */
export interface FetchStrategy {
  readonly kind: FetchStrategyKind;
  init(host: FetchHost): Promise<{ readonly commandId: string }>;
  fetch(hosts: readonly FetchHost[], image: ImageSpec, options: StartOptions): Promise<StartResult[]>;
  remove(
    hosts: readonly { host: FetchHost; entry: HostImageEntry }[],
    image: ImageSpec,
    options: StartOptions,
  ): Promise<StartResult[]>;
}

export interface FetchStrategyDependencies {
  readonly group: HostGroup;
  readonly region: string;
  /** The account the function runs in (`self` in the group's allowedSnapshotOwners). */
  readonly account: string;
  readonly commands: CacheCommands;
  readonly volumes: VolumeLinks;
  readonly clock: Clock;
}

const failure = (instanceId: string, error: unknown): StartResult => ({
  instanceId,
  ok: false,
  error: itemErrorOf(error),
});

const fetchParameters = (image: ImageSpec, group: HostGroup): Record<string, string> => ({
  ImageId: image.id,
  Kind: image.kind,
  Source: image.source,
  Digest: image.digest,
  CacheDirectory: group.cacheDirectory,
  ExpectedBytes: String(image.sizeBytes),
});

const inventory = (deps: FetchStrategyDependencies) => async (host: FetchHost) => ({
  commandId: await deps.commands.send(
    DOCUMENT_NAMES.inventory,
    [host.instanceId],
    { CacheDirectory: deps.group.cacheDirectory },
    { maxConcurrency: '1', maxErrors: '0', comment: `warmboot inventory ${deps.group.name}` },
  ),
});

/** `download`: the Fetch document pulls (docker/containerd) or copies (S3) and verifies the digest. */
const downloadStrategy = (deps: FetchStrategyDependencies): FetchStrategy => ({
  kind: 'download',
  init: inventory(deps),
  async fetch(hosts, image, options) {
    if (hosts.length === 0) return [];
    try {
      const commandId = await deps.commands.send(
        DOCUMENT_NAMES.fetch,
        hosts.map((host) => host.instanceId),
        fetchParameters(image, deps.group),
        options,
      );
      return reported(
        options,
        hosts.map((host) => ({ instanceId: host.instanceId, ok: true, commandId, via: 'download' })),
      );
    } catch (error) {
      return reported(
        options,
        hosts.map((host) => failure(host.instanceId, error)),
      );
    }
  },
  async remove(targets, image, options) {
    if (targets.length === 0) return [];
    try {
      const { Kind, Source, Digest, ImageId, CacheDirectory } = fetchParameters(image, deps.group);
      const commandId = await deps.commands.send(
        DOCUMENT_NAMES.remove,
        targets.map(({ host }) => host.instanceId),
        { Kind, Source, Digest, ImageId, CacheDirectory } as Record<string, string>,
        options,
      );
      return reported(
        options,
        targets.map(({ host }) => ({ instanceId: host.instanceId, ok: true, commandId, via: 'download' })),
      );
    } catch (error) {
      return reported(
        options,
        targets.map(({ host }) => failure(host.instanceId, error)),
      );
    }
  },
});

/** Device names EC2 accepts for extra EBS volumes on Linux, in the order they are handed out. */
const LINK_DEVICES = 'fghijklmnop'.split('').map((letter) => `/dev/sd${letter}`);

export const freeDevice = (devices: readonly string[]): string | undefined => {
  const used = new Set(devices.map((device) => device.replace('/dev/xvd', '/dev/sd')));
  return LINK_DEVICES.find((device) => !used.has(device));
};

const WAIT_STEP_MS = 2_000;
const WAIT_LIMIT_MS = 5 * 60_000;

/** EBS attach/detach/create have no event to wait for: poll, and fail the host after 5 minutes. */
const waitUntil = async (clock: Clock, what: string, done: () => Promise<boolean>): Promise<void> => {
  await waitFor(what, async () => ((await done()) ? true : undefined), {
    clock,
    timeoutMs: WAIT_LIMIT_MS,
    intervalMs: () => WAIT_STEP_MS,
  });
};

/**
 * DescribeVolumes is eventually consistent: right after CreateVolume it may not know the volume
 * yet (EC2 API reference, "Eventual consistency"). Not found after this long means it is gone.
 */
const CREATE_VISIBILITY_GRACE_MS = 30_000;
const FAILED_VOLUME_STATES: ReadonlySet<string> = new Set(['deleting', 'deleted', 'error']);

/**
 * Waits until a created volume is available. EC2 answers CreateVolume before it checks the KMS key
 * and then deletes a volume it cannot encrypt for the caller (ebs-cloud-watch-events, createVolume
 * "failed"): such a volume fails the host by name instead of timing out as a generic wait.
 */
const awaitCreated = async (
  deps: FetchStrategyDependencies,
  volumeId: string,
  kmsKeyId: string | undefined,
): Promise<void> => {
  const since = deps.clock.now();
  let seen = false;
  await waitUntil(deps.clock, `${volumeId} available`, async () => {
    const volume = await deps.volumes.state(volumeId).catch((error: unknown) => {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    });
    if (volume?.state === 'available') return true;
    const gone =
      volume === undefined
        ? seen || deps.clock.now() - since > CREATE_VISIBILITY_GRACE_MS
        : FAILED_VOLUME_STATES.has(volume.state);
    if (gone) {
      throw kmsKeyId
        ? new EncryptionKeyError(
            `volume ${volumeId} was deleted while it was created: EC2 could not use KMS key ${kmsKeyId} for warmboot's role. Add the key to ebsKmsKeyArns (or enable it)`,
          )
        : new DependencyError(`volume ${volumeId} was deleted while it was created`);
    }
    seen = seen || volume !== undefined;
    return false;
  });
};

/** Whether the host can link the image; no free device name counts as the attach limit. */
const linkability = (image: ImageSpec, host: FetchHost, region: string): Cloneability =>
  cloneable(image, {
    region,
    availabilityZone: host.availabilityZone,
    attachedVolumes: host.devices.length,
    ...(freeDevice(host.devices) === undefined ? { maxVolumeAttachments: host.devices.length } : {}),
  });

/**
 * `volume-link`: zero copy. A volume is created from the image's snapshot in the host's AZ
 * (fully initialized when fast snapshot restore is on there), attached, and mounted read-only
 * by the Mount document. The volume carries the management tags so only warmboot's own volumes
 * are ever detached or deleted.
 */
const volumeLinkStrategy = (deps: FetchStrategyDependencies): FetchStrategy => {
  const linkOne = async (host: FetchHost, image: ImageSpec, options: SendOptions): Promise<StartResult> => {
    const verdict = linkability(image, host, deps.region);
    if (!verdict.cloneable || !image.snapshot)
      return failure(
        host.instanceId,
        new WarmbootError(
          'NotLinkable',
          verdict.cloneable ? 'no snapshot' : `${verdict.reason}: ${verdict.detail}`,
        ),
      );
    const device = freeDevice(host.devices) ?? '/dev/sdf';
    let volumeId: string | undefined;
    try {
      await verifySnapshot(deps, image, image.snapshot.snapshotId);
      const { volumeId: created, kmsKeyId } = await deps.volumes.createFromSnapshot(
        image.snapshot.snapshotId,
        host.availabilityZone,
        {
          [OPT_IN_TAG.imageCache]: OPTED_IN,
          [HOST_GROUP_TAG]: deps.group.name,
          [CACHE_VOLUME_IMAGE_TAG]: image.id,
        },
      );
      volumeId = created;
      await awaitCreated(deps, created, kmsKeyId);
      await deps.volumes.attach(created, host.instanceId, device);
      await waitUntil(
        deps.clock,
        `${created} attached to ${host.instanceId}`,
        async () => (await deps.volumes.state(created))?.attachedTo === host.instanceId,
      );
      const commandId = await deps.commands.send(
        DOCUMENT_NAMES.mount,
        [host.instanceId],
        { ImageId: image.id, CacheDirectory: deps.group.cacheDirectory, VolumeId: created, Device: device },
        options,
      );
      return { instanceId: host.instanceId, ok: true, commandId, via: 'volume-link', volumeId: created };
    } catch (error) {
      // The host's failure is what this returns; a volume left behind keeps its cache tags and
      // no entry needs it, so the reconcile's orphan release removes it (reconcile.ts).
      if (volumeId)
        await releaseVolume(deps.volumes, deps.clock, volumeId, host.instanceId, deps.group.name).catch(
          () => undefined,
        );
      return failure(host.instanceId, error);
    }
  };
  return {
    kind: 'volume-link',
    init: inventory(deps),
    async fetch(hosts, image, options) {
      const results: StartResult[] = [];
      for (const host of hosts)
        results.push(...(await reported(options, [await linkOne(host, image, options)])));
      return results;
    },
    async remove(targets, image, options) {
      const results: StartResult[] = [];
      for (const { host, entry } of targets) {
        if (entry.via !== 'volume-link' || !entry.volumeId) {
          results.push(...(await downloadStrategy(deps).remove([{ host, entry }], image, options)));
          continue;
        }
        try {
          const commandId = await deps.commands.send(
            DOCUMENT_NAMES.unmount,
            [host.instanceId],
            { ImageId: image.id, CacheDirectory: deps.group.cacheDirectory, VolumeId: entry.volumeId },
            options,
          );
          results.push(
            ...(await reported(options, [
              {
                instanceId: host.instanceId,
                ok: true,
                commandId,
                via: 'volume-link',
                volumeId: entry.volumeId,
              },
            ])),
          );
        } catch (error) {
          results.push(...(await reported(options, [failure(host.instanceId, error)])));
        }
      }
      return results;
    },
  };
};

/**
 * Before CreateVolume (security review H2): the snapshot must be owned by an account the group
 * allows and carry `warmboot:image=<image id>`, so neither another tenant's safety snapshot nor a
 * public snapshot can be linked onto the group's hosts, and one image's snapshot cannot be
 * registered under another id. IAM's `ec2:Owner` condition (infra/) is the second fence.
 */
const verifySnapshot = async (deps: FetchStrategyDependencies, image: ImageSpec, snapshotId: string) => {
  const snapshot = await deps.volumes.snapshot(snapshotId);
  if (!snapshot)
    throw new WarmbootError('SnapshotNotAllowed', `${snapshotId} is not visible to this account`);
  if (!snapshotOwnerAllowed(snapshot.ownerId, deps.group, deps.account))
    throw new WarmbootError(
      'SnapshotNotAllowed',
      `${snapshotId} is owned by ${snapshot.ownerId}, not an account in host group ${deps.group.name}'s allowedSnapshotOwners`,
    );
  if (snapshot.imageTag !== image.id)
    throw new WarmbootError(
      'SnapshotNotAllowed',
      `${snapshotId} does not carry ${CACHE_VOLUME_IMAGE_TAG}=${image.id}`,
    );
};

/**
 * After a successful Unmount: detach and delete the volume, only if it is one of the group's
 * cache volumes: warmboot's management tag, the `warmboot:image` tag and the group's host-group
 * tag (security review M4; IAM conditions in infra/ are the second fence).
 */
export const releaseVolume = async (
  volumes: VolumeLinks,
  clock: Clock,
  volumeId: string,
  instanceId: string,
  hostGroup: string,
): Promise<void> => {
  const state = await volumes.state(volumeId);
  if (!state) return;
  if (!state.managed)
    throw new UnmanagedResourceError(`${volumeId} lacks ${OPT_IN_TAG.imageCache}=${OPTED_IN}`);
  if (state.imageId === undefined)
    throw new UnmanagedResourceError(`${volumeId} lacks ${CACHE_VOLUME_IMAGE_TAG}: not a cache volume`);
  if (state.hostGroup !== hostGroup)
    throw new UnmanagedResourceError(`${volumeId} is not tagged ${HOST_GROUP_TAG}=${hostGroup}`);
  if (state.attachedTo === instanceId) await volumes.detach(volumeId, instanceId);
  // DetachVolume is asynchronous; DeleteVolume needs the volume available.
  await waitUntil(clock, `${volumeId} detached`, async () => {
    const now = await volumes.state(volumeId);
    return now === undefined || now.state === 'available';
  });
  await volumes.delete(volumeId);
};

/**
 * `auto`: links when `cloneable(image, host)` says it can, otherwise downloads and records why
 * (the reason lands in the entry's `note`, e.g. `download: other-region: snapshot … in eu-west-1`).
 */
export const autoStrategy = (deps: FetchStrategyDependencies): FetchStrategy => {
  const link = volumeLinkStrategy(deps);
  const download = downloadStrategy(deps);
  return {
    kind: 'auto',
    init: inventory(deps),
    async fetch(hosts, image, options) {
      const linkable: FetchHost[] = [];
      const fallback: { host: FetchHost; note: string }[] = [];
      for (const host of hosts) {
        const verdict = linkability(image, host, deps.region);
        if (verdict.cloneable) linkable.push(host);
        else fallback.push({ host, note: `download: ${verdict.reason}: ${verdict.detail}` });
      }
      const notes = new Map(fallback.map(({ host, note }) => [host.instanceId, note]));
      const withNote = (result: StartResult): StartResult => {
        const note = notes.get(result.instanceId);
        return result.ok && note ? { ...result, note } : result;
      };
      const { onStarted } = options;
      const downloaded = await download.fetch(
        fallback.map(({ host }) => host),
        image,
        { ...options, ...(onStarted ? { onStarted: (results) => onStarted(results.map(withNote)) } : {}) },
      );
      return [...(await link.fetch(linkable, image, options)), ...downloaded.map(withNote)];
    },
    remove: (targets, image, options) => link.remove(targets, image, options),
  };
};

export const fetchStrategyFor = (deps: FetchStrategyDependencies): FetchStrategy => {
  switch (deps.group.handler) {
    case 'download':
      return downloadStrategy(deps);
    case 'volume-link':
      return volumeLinkStrategy(deps);
    case 'auto':
      return autoStrategy(deps);
  }
};
