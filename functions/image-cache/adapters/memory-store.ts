import type { ImageSpec } from '../config';
import { HEALTHY_SOURCE, type SourceHealth } from '../domain/model';
import type {
  CommandRecord,
  EntryWrite,
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
 * conditional (a stale `expected` answers false, `absent` fails when the item exists),
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

  async putImage(image: ImageSpec, _write: RegistryWrite, expected: Expected): Promise<number | false> {
    const version = nextVersion(this.#images.get(image.id)?.version, expected);
    if (version !== false) this.#images.set(image.id, { spec: structuredClone(image), version });
    return version;
  }

  async putHost(group: string, host: Omit<HostRecord, 'version'>, expected: Expected): Promise<boolean> {
    const hosts = this.#group(group).hosts;
    const version = nextVersion(hosts.get(host.instanceId)?.version, expected);
    if (version === false) return false;
    hosts.set(host.instanceId, structuredClone({ ...stored(host), version }) as HostRecord);
    return true;
  }

  async deleteHost(group: string, instanceId: string): Promise<void> {
    const items = this.#group(group);
    items.hosts.delete(instanceId);
    for (const [key, entry] of items.entries) if (entry.instanceId === instanceId) items.entries.delete(key);
  }

  async writeEntry(...[group, instanceId, imageId, next, expected]: EntryWrite): Promise<boolean> {
    const entries = this.#group(group).entries;
    const key = `${instanceId}\u0000${imageId}`;
    if (next === undefined && expected === 'absent') return true;
    const version = nextVersion(entries.get(key)?.version, expected);
    if (version === false) return false;
    if (next === undefined) entries.delete(key);
    else entries.set(key, structuredClone({ ...stored(next), instanceId, version }) as StoredEntry);
    return true;
  }

  async writeSource(group: string, next: SourceHealth, expected: Expected): Promise<boolean> {
    const items = this.#group(group);
    const version = nextVersion(items.source.version === 0 ? undefined : items.source.version, expected);
    if (version === false) return false;
    items.source = structuredClone({ ...next, version });
    return true;
  }

  async putCommand(command: CommandRecord): Promise<void> {
    this.#commands.set(command.commandId, structuredClone(command));
  }

  async getCommand(commandId: string): Promise<CommandRecord | undefined> {
    const command = this.#commands.get(commandId);
    return command ? structuredClone(command) : undefined;
  }
}

/** The condition of a versioned write: the new version, or false when the item is not at `expected`. */
const nextVersion = (current: number | undefined, expected: Expected): number | false => {
  if (expected === 'absent') return current === undefined && 1;
  return current === expected && expected + 1;
};

/** Like a DynamoDB put: attributes set to undefined are simply not stored. */
const stored = (item: object): Record<string, unknown> =>
  Object.fromEntries(Object.entries(item).filter(([, value]) => value !== undefined));
