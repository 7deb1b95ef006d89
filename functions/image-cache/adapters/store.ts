import {
  BatchGetCommand,
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  paginateQuery,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { z } from 'zod';
import { callAws, conditionalWrite } from '../../shared/aws-errors';
import { DependencyError } from '../../shared/errors';
import { type ImageSpec, imageSpecSchema } from '../config';
import type { HostImageEntry, SourceHealth } from '../domain/model';
import { HEALTHY_SOURCE } from '../domain/model';
import { commandRecordItem, hostRecordItem, storedEntryItem } from '../schemas';

/**
 * Image-cache state in the `imageCache` table (shared with fast restore, whose keys start
 * differently). One partition per host group holds everything the planner reads, so a plan is
 * one paginated Query:
 *
 * | item | pk | sk | notes |
 * |---|---|---|---|
 * | pin | `HG#<group>` | `PIN#<image>` | pinnedAt |
 * | source health | `HG#<group>` | `SOURCE` | consecutiveFailures, retryAt, version |
 * | host | `HG#<group>` | `HOST#<instance>` | az, status joining/running/stopped, joinedAt, initDueAt, version |
 * | entry | `HG#<group>` | `ENTRY#<instance>#<image>` | HostImageEntry + version |
 * | image | `IMG#<image>` | `SPEC` | the registered ImageSpec, version, who registered and changed it, when |
 * | command | `CMD#<commandId>` | `CMD` | group, image, action, instances; TTL 7 days |
 *
 * Every state change is a conditional write on `version` (or on absence), so two invocations
 * racing on one entry cannot both win: the loser's write answers false (nothing was written)
 * and it leaves the item alone.
 */
export interface HostRecord {
  readonly instanceId: string;
  readonly availabilityZone: string;
  /**
   * `joining`: EC2 says running but the SSM agent was not Online yet; `init` runs once it is
   * (the next plan or reconcile after `initDueAt`).
   */
  readonly status: 'joining' | 'running' | 'stopped';
  readonly joinedAt: number;
  /** `joining` only: agent checks that found it offline, and when to check again. */
  readonly initAttempts?: number;
  readonly initDueAt?: number;
  /**
   * `joining` only: set once the host's agent is past its registration deadline
   * (`agent-never-registered`: no instance profile with the SSM core policy, DHMC off).
   */
  readonly joinProblem?: 'agent-never-registered';
  /** The `warmboot:warm-images` value last tagged on the host (groups with publishWarmList: tag). */
  readonly warmList?: string;
  /** When the host's last inventory arrived; a host is planned only once it is known. */
  readonly inventoriedAt?: number;
  /**
   * A command result contradicted the recorded entries (or a claim was dropped without knowing
   * whether its command ran): the next reconcile re-inventories the host. Cleared by an
   * inventory sent at or after this time.
   */
  readonly inventoryDueAt?: number;
  /** The re-inventory the reconcile sent and is waiting for (its lost event is looked up). */
  readonly inventoryCommandId?: string;
  readonly inventorySentAt?: number;
  readonly version: number;
}

export interface CommandRecord {
  readonly commandId: string;
  readonly hostGroup: string;
  readonly imageId?: string;
  readonly document: string;
  readonly instanceIds: readonly string[];
  readonly sentAt: number;
  /** Unmount of an orphaned linked volume: release (detach + delete) it when the command succeeds. */
  readonly orphanVolumeId?: string;
}

/** An entry as stored: the domain entry plus its optimistic-locking version. */
export type StoredEntry = HostImageEntry & { readonly instanceId: string; readonly version: number };

export interface GroupState {
  readonly pins: readonly string[];
  readonly hosts: readonly HostRecord[];
  readonly entries: readonly StoredEntry[];
  readonly source: SourceHealth & { readonly version: number };
}

/** `expected`: the version the caller read, or `absent` for a create. */
export type Expected = number | 'absent';

/** One host's entry for one image, its next value (`undefined`: delete it) and the expected version. */
export type EntryWrite = [
  group: string,
  instanceId: string,
  imageId: string,
  next: HostImageEntry | undefined,
  expected: Expected,
];

/** Who wrote a registry entry and when (the item keeps the first and the latest writer). */
export interface RegistryWrite {
  readonly at: number;
  readonly via: string;
  readonly principal?: string;
}

/** A registry entry as stored; `version` 0 is an entry written before registry versions existed. */
export interface RegisteredImage {
  readonly spec: unknown;
  readonly version: number;
}

/** One host's record and entries: what settling that host's inventory reads. */
export interface HostState {
  readonly host?: HostRecord;
  readonly entries: readonly StoredEntry[];
}

export interface ImageCacheStore {
  loadGroup(group: string): Promise<GroupState>;
  /** One host of a group (a Get and a Query on its entries, not the group's partition). */
  loadHost(group: string, instanceId: string): Promise<HostState>;
  putPin(group: string, imageId: string, now: number): Promise<void>;
  deletePin(group: string, imageId: string): Promise<void>;
  getImages(imageIds: readonly string[]): Promise<Map<string, ImageSpec>>;
  getRegisteredImage(imageId: string): Promise<RegisteredImage | undefined>;
  /**
   * Writes the registry entry if it is still at `expected` (`absent`: not registered yet) and
   * returns its new version; false if another write came first.
   */
  putImage(image: ImageSpec, write: RegistryWrite, expected: Expected): Promise<number | false>;
  /** The versioned writes: true if written, false if the item is no longer at `expected`. */
  putHost(group: string, host: Omit<HostRecord, 'version'>, expected: Expected): Promise<boolean>;
  deleteHost(group: string, instanceId: string): Promise<void>;
  /** Writes `next` over the entry if it still has `expected` version; `undefined` deletes it. */
  writeEntry(...write: EntryWrite): Promise<boolean>;
  writeSource(group: string, next: SourceHealth, expected: Expected): Promise<boolean>;
  putCommand(command: CommandRecord): Promise<void>;
  getCommand(commandId: string): Promise<CommandRecord | undefined>;
}

const COMMAND_TTL_MS = 7 * 24 * 3_600_000;
const groupKey = (group: string) => `HG#${group}`;
const entryKey = (instanceId: string, imageId: string) => `ENTRY#${instanceId}#${imageId}`;

const condition = (expected: Expected) =>
  expected === 'absent'
    ? { ConditionExpression: 'attribute_not_exists(pk)' }
    : {
        ConditionExpression: '#version = :expected',
        ExpressionAttributeNames: { '#version': 'version' },
        ExpressionAttributeValues: { ':expected': expected },
      };

const nextVersion = (expected: Expected) => (expected === 'absent' ? 1 : expected + 1);

export class DynamoImageCacheStore implements ImageCacheStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async loadGroup(group: string): Promise<GroupState> {
    const pins: string[] = [];
    const hosts: HostRecord[] = [];
    const entries: StoredEntry[] = [];
    let source: GroupState['source'] = { ...HEALTHY_SOURCE, version: 0 };
    const pages = paginateQuery(
      { client: this.client },
      {
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': groupKey(group) },
        ConsistentRead: true,
      },
    );
    await callAws('Query', async () => {
      for await (const page of pages) {
        for (const item of page.Items ?? []) {
          const sk = String(item.sk);
          if (sk.startsWith('PIN#')) pins.push(String(item.imageId));
          else if (sk.startsWith('HOST#')) hosts.push(parseItem(hostRecordItem, item));
          else if (sk.startsWith('ENTRY#')) entries.push(parseItem(storedEntryItem, item));
          else if (sk === 'SOURCE')
            source = {
              consecutiveFailures: Number(item.consecutiveFailures),
              ...(item.retryAt !== undefined ? { retryAt: Number(item.retryAt) } : {}),
              version: Number(item.version),
            };
        }
      }
    });
    return { pins, hosts, entries, source };
  }

  async loadHost(group: string, instanceId: string): Promise<HostState> {
    const host = await this.getItem({ pk: groupKey(group), sk: `HOST#${instanceId}` });
    const entries: StoredEntry[] = [];
    const pages = paginateQuery(
      { client: this.client },
      {
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':pk': groupKey(group), ':prefix': `ENTRY#${instanceId}#` },
        ConsistentRead: true,
      },
    );
    await callAws('Query', async () => {
      for await (const page of pages)
        for (const item of page.Items ?? []) entries.push(parseItem(storedEntryItem, item));
    });
    return {
      ...(host ? { host: parseItem(hostRecordItem, host) } : {}),
      entries,
    };
  }

  async putPin(group: string, imageId: string, now: number): Promise<void> {
    await callAws('PutItem', () =>
      this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { pk: groupKey(group), sk: `PIN#${imageId}`, imageId, pinnedAt: now },
        }),
      ),
    );
  }

  async deletePin(group: string, imageId: string): Promise<void> {
    await callAws('DeleteItem', () =>
      this.client.send(
        new DeleteCommand({ TableName: this.tableName, Key: { pk: groupKey(group), sk: `PIN#${imageId}` } }),
      ),
    );
  }

  async getImages(imageIds: readonly string[]): Promise<Map<string, ImageSpec>> {
    const found = new Map<string, ImageSpec>();
    const unique = [...new Set(imageIds)];
    // BatchGetItem takes at most 100 keys (DynamoDB API reference).
    for (let start = 0; start < unique.length; start += 100) {
      let keys: Record<string, unknown>[] | undefined = unique
        .slice(start, start + 100)
        .map((id) => ({ pk: `IMG#${id}`, sk: 'SPEC' }));
      while (keys && keys.length > 0) {
        const requested: Record<string, unknown>[] = keys;
        const output = await callAws('BatchGetItem', () =>
          this.client.send(new BatchGetCommand({ RequestItems: { [this.tableName]: { Keys: requested } } })),
        );
        for (const item of output.Responses?.[this.tableName] ?? []) {
          const parsed = imageSpecSchema.safeParse(item.spec);
          if (parsed.success) found.set(parsed.data.id, parsed.data);
        }
        keys = output.UnprocessedKeys?.[this.tableName]?.Keys;
      }
    }
    return found;
  }

  async getRegisteredImage(imageId: string): Promise<RegisteredImage | undefined> {
    const item = await this.getItem({ pk: `IMG#${imageId}`, sk: 'SPEC' });
    if (!item) return undefined;
    return { spec: item.spec, version: Number(item.version ?? 0) };
  }

  async putImage(image: ImageSpec, write: RegistryWrite, expected: Expected): Promise<number | false> {
    const key = { pk: `IMG#${image.id}`, sk: 'SPEC' };
    const writer = {
      at: write.at,
      via: write.via,
      ...(write.principal ? { principal: write.principal } : {}),
    };
    if (expected === 'absent') {
      const written = await this.conditionalPut(
        { ...key, spec: image, version: 1, registered: writer, changed: writer },
        expected,
      );
      return written && 1;
    }
    // An entry from before registry versions has no version attribute: it is version 0.
    const written = await conditionalWrite('UpdateItem', () =>
      this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: key,
          UpdateExpression: 'SET spec = :spec, #version = :next, changed = :changed',
          ConditionExpression:
            expected === 0
              ? 'attribute_exists(pk) AND attribute_not_exists(#version)'
              : '#version = :expected',
          ExpressionAttributeNames: { '#version': 'version' },
          ExpressionAttributeValues: {
            ':spec': image,
            ':next': expected + 1,
            ':changed': writer,
            ...(expected === 0 ? {} : { ':expected': expected }),
          },
        }),
      ),
    );
    return written && expected + 1;
  }

  putHost(group: string, host: Omit<HostRecord, 'version'>, expected: Expected): Promise<boolean> {
    return this.conditionalPut(
      { pk: groupKey(group), sk: `HOST#${host.instanceId}`, ...host, version: nextVersion(expected) },
      expected,
    );
  }

  async deleteHost(group: string, instanceId: string): Promise<void> {
    const state = await this.loadGroup(group);
    const keys = [
      `HOST#${instanceId}`,
      ...state.entries
        .filter((entry) => entry.instanceId === instanceId)
        .map((entry) => entryKey(instanceId, entry.imageId)),
    ];
    for (const sk of keys)
      await callAws('DeleteItem', () =>
        this.client.send(new DeleteCommand({ TableName: this.tableName, Key: { pk: groupKey(group), sk } })),
      );
  }

  async writeEntry(...[group, instanceId, imageId, next, expected]: EntryWrite): Promise<boolean> {
    const key = { pk: groupKey(group), sk: entryKey(instanceId, imageId) };
    if (next === undefined) {
      if (expected === 'absent') return true;
      return conditionalWrite('DeleteItem', () =>
        this.client.send(new DeleteCommand({ TableName: this.tableName, Key: key, ...condition(expected) })),
      );
    }
    return this.conditionalPut({ ...key, ...next, instanceId, version: nextVersion(expected) }, expected);
  }

  writeSource(group: string, next: SourceHealth, expected: Expected): Promise<boolean> {
    return this.conditionalPut(
      { pk: groupKey(group), sk: 'SOURCE', ...next, version: nextVersion(expected) },
      expected,
    );
  }

  async putCommand(command: CommandRecord): Promise<void> {
    await callAws('PutItem', () =>
      this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            pk: `CMD#${command.commandId}`,
            sk: 'CMD',
            ...command,
            expiresAt: Math.floor((command.sentAt + COMMAND_TTL_MS) / 1000),
          },
        }),
      ),
    );
  }

  async getCommand(commandId: string): Promise<CommandRecord | undefined> {
    const item = await this.getItem({ pk: `CMD#${commandId}`, sk: 'CMD' });
    return item ? parseItem(commandRecordItem, item) : undefined;
  }

  private async getItem(key: { pk: string; sk: string }): Promise<Record<string, unknown> | undefined> {
    const output = await callAws('GetItem', () =>
      this.client.send(new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: true })),
    );
    return output.Item;
  }

  private conditionalPut(item: Record<string, unknown>, expected: Expected): Promise<boolean> {
    return conditionalWrite('PutItem', () =>
      this.client.send(new PutCommand({ TableName: this.tableName, Item: item, ...condition(expected) })),
    );
  }
}

/** An item as its record: keys and TTL dropped, the rest parsed (a malformed item is an error). */
const parseItem = <T>(schema: z.ZodType<T>, item: Record<string, unknown>): T => {
  const { pk, sk, expiresAt: _expiresAt, ...rest } = item;
  const parsed = schema.safeParse(rest);
  if (!parsed.success)
    throw new DependencyError(
      `imageCache item ${String(pk)} ${String(sk)} is malformed: ${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}`,
    );
  return parsed.data;
};
