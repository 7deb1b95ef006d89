import { ConflictError } from '../../shared/errors';
import type { ImageSpec } from '../config';
import { HEALTHY_SOURCE, type HostImageEntry, type SourceHealth } from '../domain/model';
import type {
  CommandRecord,
  Expected,
  GroupState,
  HostRecord,
  HostState,
  ImageCacheStore,
  RegisteredImage,
  RegistryWrite,
  StoredEntry,
} from './store';

interface GroupItems {
  readonly pins: Set<string>;
  readonly hosts: Map<string, HostRecord>;
  /** Keyed by `instanceId` + NUL + `imageId`. */
  readonly entries: Map<string, StoredEntry>;
  source: SourceHealth & { version: number };
}

/**
 * `ImageCacheStore` in memory, with the DynamoDB store's semantics: every versioned write is
 * conditional (a stale `expected` throws ConflictError, `absent` fails when the item exists),
 * reads return copies, a group is read in one consistent snapshot. For unit tests of the
 * service and for deterministic replays (the cache benchmark's parity test).
 */
export class MemoryImageCacheStore implements ImageCacheStore {
  readonly #groups = new Map<string, GroupItems>();
  readonly #images = new Map<string, { spec: ImageSpec; version: number }>();
  readonly #commands = new Map<string, CommandRecord>();

  #group(group: string): GroupItems {
    let items = this.#groups.get(group);
    if (!items) {
      items = {
        pins: new Set(),
        hosts: new Map(),
        entries: new Map(),
        source: { ...HEALTHY_SOURCE, version: 0 },
      };
      this.#groups.set(group, items);
    }
    return items;
  }

  async loadGroup(group: string): Promise<GroupState> {
    const items = this.#group(group);
    return structuredClone({
      pins: [...items.pins].sort(),
      hosts: [...items.hosts.values()],
      entries: [...items.entries.values()],
      source: items.source,
    });
  }

  async loadHost(group: string, instanceId: string): Promise<HostState> {
    const items = this.#group(group);
    const host = items.hosts.get(instanceId);
    return structuredClone({
      ...(host ? { host } : {}),
      entries: [...items.entries.values()].filter((entry) => entry.instanceId === instanceId),
    });
  }

  async putPin(group: string, imageId: string): Promise<void> {
    this.#group(group).pins.add(imageId);
  }

  async deletePin(group: string, imageId: string): Promise<void> {
    this.#group(group).pins.delete(imageId);
  }

  async getImages(imageIds: readonly string[]): Promise<Map<string, ImageSpec>> {
    const found = new Map<string, ImageSpec>();
    for (const id of imageIds) {
      const image = this.#images.get(id);
      if (image) found.set(id, structuredClone(image.spec));
    }
    return found;
  }

  async getRegisteredImage(imageId: string): Promise<RegisteredImage | undefined> {
    return structuredClone(this.#images.get(imageId));
  }

  async putImage(image: ImageSpec, _write: RegistryWrite, expected: Expected): Promise<number> {
    const current = this.#images.get(image.id)?.version ?? 'absent';
    if (current !== expected)
      throw new ConflictError('PutItem lost a race (the item changed since it was read)');
    const version = expected === 'absent' ? 1 : expected + 1;
    this.#images.set(image.id, { spec: structuredClone(image), version });
    return version;
  }

  async putHost(group: string, host: Omit<HostRecord, 'version'>, expected: Expected): Promise<void> {
    const hosts = this.#group(group).hosts;
    const version = check(hosts.get(host.instanceId)?.version, expected, `host ${host.instanceId}`);
    // Like a DynamoDB put: attributes set to undefined are simply not stored.
    const stored = Object.fromEntries(Object.entries(host).filter(([, value]) => value !== undefined));
    hosts.set(host.instanceId, structuredClone({ ...stored, version }) as HostRecord);
  }

  async deleteHost(group: string, instanceId: string): Promise<void> {
    const items = this.#group(group);
    items.hosts.delete(instanceId);
    for (const [key, entry] of items.entries) if (entry.instanceId === instanceId) items.entries.delete(key);
  }

  async writeEntry(
    group: string,
    instanceId: string,
    imageId: string,
    next: HostImageEntry | undefined,
    expected: Expected,
  ): Promise<void> {
    const entries = this.#group(group).entries;
    const key = `${instanceId}\u0000${imageId}`;
    if (next === undefined) {
      if (expected === 'absent') return;
      check(entries.get(key)?.version, expected, `entry ${instanceId}/${imageId}`);
      entries.delete(key);
      return;
    }
    const version = check(entries.get(key)?.version, expected, `entry ${instanceId}/${imageId}`);
    // Like a DynamoDB put: attributes set to undefined are simply not stored.
    const stored = Object.fromEntries(Object.entries(next).filter(([, value]) => value !== undefined));
    entries.set(key, structuredClone({ ...stored, instanceId, version }) as StoredEntry);
  }

  async writeSource(group: string, next: SourceHealth, expected: Expected): Promise<void> {
    const items = this.#group(group);
    const current = items.source.version === 0 ? undefined : items.source.version;
    const version = check(current, expected, 'source health');
    items.source = structuredClone({ ...next, version });
  }

  async putCommand(command: CommandRecord): Promise<void> {
    this.#commands.set(command.commandId, structuredClone(command));
  }

  async getCommand(commandId: string): Promise<CommandRecord | undefined> {
    const command = this.#commands.get(commandId);
    return command ? structuredClone(command) : undefined;
  }
}

/** The condition of a versioned write; returns the new version. */
const check = (current: number | undefined, expected: Expected, what: string): number => {
  if (expected === 'absent') {
    if (current !== undefined) throw new ConflictError(`${what} already exists`);
    return 1;
  }
  if (current !== expected) throw new ConflictError(`${what} changed since it was read`);
  return expected + 1;
};
