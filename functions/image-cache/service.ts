import { isDeepStrictEqual } from 'node:util';
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { formatWarmList } from '../placement/domain/warm-list';
import type { Fact, FactPublisher } from '../shared/adapters/facts';
import type { Caller } from '../shared/caller';
import type { Clock } from '../shared/clock';
import { boundedWait, type Deadline, NO_DEADLINE } from '../shared/deadline';
import {
  ConflictError,
  errorMessage,
  IncorrectStateError,
  NotFoundError,
  WarmbootError,
} from '../shared/errors';
import { backoffDelayMs, pollUntil, retrying } from '../shared/retry';
import type { HostDirectory, HostInfo, VolumeLinks } from './adapters/ec2';
import type { CacheCommands } from './adapters/ssm';
import type { GroupState, HostRecord, ImageCacheStore, StoredEntry } from './adapters/store';
import { type HostGroup, type ImageSpec, WARM_IMAGES_TAG } from './config';
import { DOCUMENT_NAMES } from './documents';
import { type CommandEffect, hostsDueForInventory, resultContradictsRecord } from './domain/inventory';
import {
  type HostImageEntry,
  heldBytes,
  type ImageScore,
  type PlannerHost,
  warmImageIds,
} from './domain/model';
import {
  type CacheCommand,
  type CachePlan,
  MAX_INSTANCES_PER_COMMAND,
  planHostGroup,
} from './domain/planner';
import { sourceRefusal } from './domain/sources';
import {
  classifyFetchFailure,
  evictionEnded,
  evictionStarted,
  fetchFailed,
  fetchStarted,
  fetchSucceeded,
  isTerminalStatus,
  nextSourceHealth,
  type ReportedImage,
  reconcileInventory,
} from './domain/transitions';
import { FieldRefusal, RegistryVersionConflictError, SourceNotAllowedError } from './errors';
import {
  type HandlerHost,
  imageHandlerFor,
  releaseVolume,
  type StartOptions,
  type StartResult,
} from './image-handlers';
import { IMAGE_ID_PATTERN, regex, VOLUME_ID_PATTERN } from './patterns';

/** What the planner reads from popularity: the top images of a host group's scope. */
export interface GroupPopularity {
  topImages(hostGroup: string, k: number, now: number): Promise<ImageScore[]>;
}

export interface ImageCacheDependencies {
  readonly groups: readonly HostGroup[];
  readonly region: string;
  /** The account the function runs in: what `self` in a group's allowlists stands for. */
  readonly account: string;
  readonly store: ImageCacheStore;
  readonly hosts: HostDirectory;
  readonly commands: CacheCommands;
  readonly volumes: VolumeLinks;
  readonly popularity: GroupPopularity;
  readonly facts: FactPublisher;
  readonly clock: Clock;
  readonly random: () => number;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** The invocation's time left (Lambda context): the wait for a host's agent ends within it. */
  readonly deadline?: Deadline;
}

/** How many popular images per group the planner considers. */
export const PLANNED_TOP_IMAGES = 100;
/** An in-flight command older than this is checked with GetCommandInvocation by the reconcile. */
const STALE_COMMAND_MS = 10 * 60_000;
/**
 * A claim that never got its command id (crash between claim and SendCommand) is dropped after
 * this, by the first reconcile past it, which then plans the pair again: the slowest way back
 * from a crash, up to one schedule period more than this.
 */
export const STALE_CLAIM_MS = 15 * 60_000;
/** Backoff of the agent-online checks of a joining host: 15 s, doubling with jitter, at most 5 min. */
const AGENT_CHECK_BASE_MS = 15_000;
const AGENT_CHECK_CAP_MS = 5 * 60_000;
/**
 * How long the `running` event's handler waits for the agent before leaving it to a due check: a
 * first registration takes tens of seconds after boot on Linux (docs/ssm-fidelity.md), and the
 * wait also ends within the invocation's deadline.
 */
const AGENT_WAIT_MS = 90_000;
/** Kept back from the invocation after that wait: the join's SendCommand and record writes. */
const AGENT_WAIT_RESERVE_MS = 15_000;
/**
 * A host still `joining` this long after it was first seen running has an agent that is not
 * coming: no instance profile with AmazonSSMManagedInstanceCore and no Default Host Management
 * Configuration (a refused agent retries only every 25-30 minutes). It is recorded as
 * `agent-never-registered`, logged and counted, and checked at the agent's own retry pace.
 */
export const HOST_AGENT_DEADLINE_MS = 30 * 60_000;
const AGENT_RECHECK_AFTER_DEADLINE_MS = 30 * 60_000;
/**
 * A re-inventory whose status event has not arrived after this is looked up with
 * GetCommandInvocation (the document lists one directory: it takes seconds).
 */
const INVENTORY_SETTLE_AFTER_MS = 60_000;
/**
 * Re-inventories one reconcile sends per group at most (10 SendCommands of 50). With the default
 * one-hour interval that keeps every host of a group of up to ~4,500 within its bound;
 * beyond that the oldest go first and the bound stretches instead of the reconcile.
 */
const MAX_INVENTORIES_PER_RECONCILE = 500;

/** What a completed cache document did to the host's disk (the inventory document changes nothing). */
const EFFECTS: Readonly<Record<string, CommandEffect>> = {
  [DOCUMENT_NAMES.fetch]: 'adds',
  [DOCUMENT_NAMES.mount]: 'adds',
  [DOCUMENT_NAMES.remove]: 'removes',
  [DOCUMENT_NAMES.unmount]: 'removes',
};

export type ItemResult =
  | { readonly id: string; readonly ok: true; readonly commandId: string }
  | {
      readonly id: string;
      readonly ok: false;
      readonly error: { readonly code: string; readonly message: string };
    };

export interface RegisteredImageAnswer {
  readonly imageId: string;
  /** The registry entry's version now: send it as `expectedVersion` to change the image. */
  readonly version: number;
  /** False: the same spec was registered already; nothing was written. */
  readonly changed: boolean;
}

export interface PlanSummary {
  readonly hostGroup: string;
  readonly hosts: number;
  readonly warmRatio: number;
  readonly pendingActions: number;
  readonly commands: readonly {
    readonly action: CacheCommand['action'];
    readonly imageId: string;
    readonly results: readonly ItemResult[];
  }[];
  readonly deferred: CachePlan['deferred'];
  readonly unknownImages: readonly string[];
  readonly sourceBackoffUntil?: number;
}

export class ImageCacheService {
  constructor(private readonly deps: ImageCacheDependencies) {}

  group(name: string): HostGroup {
    const group = this.deps.groups.find((candidate) => candidate.name === name);
    if (!group) throw new NotFoundError(`host group ${name} is not configured (HOST_GROUPS)`);
    return group;
  }

  /**
   * Writes the registry entry (security review H2): a new image id only if it is not registered
   * yet; a change only with `expectedVersion` equal to the stored version, which it bumps. The
   * same spec again is answered with its version and changes nothing (a retried request). The
   * source must be one that at least one host group allows; the item records who wrote it, when.
   */
  async registerImage(
    image: ImageSpec,
    request: { readonly expectedVersion?: number; readonly caller?: Caller },
  ): Promise<RegisteredImageAnswer> {
    const refusals = this.deps.groups.map((group) => sourceRefusal(image, group, this.deps.account));
    if (refusals.every((refusal) => refusal !== undefined))
      throw new SourceNotAllowedError(
        'detail.image.source',
        refusals.length === 0 ? 'no host group is configured' : refusals.join('; '),
      );
    const write = {
      at: this.deps.clock.now(),
      via: request.caller?.via ?? 'unknown',
      ...(request.caller?.principal ? { principal: request.caller.principal } : {}),
    };
    const current = await this.deps.store.getRegisteredImage(image.id);
    if (current && isDeepStrictEqual(current.spec, image))
      return { imageId: image.id, version: current.version, changed: false };
    const expected = request.expectedVersion ?? 'absent';
    const conflict = (stored: number | undefined) =>
      new RegistryVersionConflictError(
        stored === undefined
          ? `image ${image.id} is not registered: leave out expectedVersion to register it`
          : `image ${image.id} is at version ${stored}${expected === 'absent' ? ' already' : `, not ${expected}`}: send expectedVersion ${stored} to change it`,
      );
    if ((current?.version ?? 'absent') !== expected) throw conflict(current?.version);
    try {
      const version = await this.deps.store.putImage(image, write, expected);
      this.deps.logger.info('image registered', { imageId: image.id, version, ...write });
      return { imageId: image.id, version, changed: true };
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
      throw conflict((await this.deps.store.getRegisteredImage(image.id))?.version);
    }
  }

  /**
   * Pins an image on a group. `image` registers it in the same request, as Register Image does
   * but only for an administrator (the registry is admin-only); anyone may pin a registered image
   * whose source the group allows.
   */
  async pin(groupName: string, imageId: string, image?: ImageSpec, caller?: Caller): Promise<PlanSummary> {
    const group = this.group(groupName);
    if (image) {
      if (!caller?.admin)
        throw new FieldRefusal(
          'AdminRequestOnly',
          'detail.image',
          'registering an image is an administrative request: send Register Image by an IAM-authenticated invoke, then pin it by id',
        );
      await this.registerImage(image, { ...(caller ? { caller } : {}) });
    }
    const registered = (await this.deps.store.getImages([imageId])).get(imageId);
    if (!registered)
      throw new NotFoundError(`image ${imageId} is not registered: send Register Image or include "image"`);
    const refusal = sourceRefusal(registered, group, this.deps.account);
    if (refusal) throw new SourceNotAllowedError(image ? 'detail.image.source' : 'detail.imageId', refusal);
    await this.deps.store.putPin(group.name, imageId, this.deps.clock.now());
    return this.plan(group.name);
  }

  async unpin(groupName: string, imageId: string): Promise<PlanSummary> {
    const group = this.group(groupName);
    await this.deps.store.deletePin(group.name, imageId);
    return this.plan(group.name);
  }

  /** Plans one group and applies the plan: claims, SendCommand per batch, command records. */
  async plan(
    groupName: string,
    requested: readonly { instanceId: string; imageId: string }[] = [],
  ): Promise<PlanSummary> {
    const group = this.group(groupName);
    const now = this.deps.clock.now();
    let state = await this.deps.store.loadGroup(group.name);
    if (await this.joinDue(group, state)) state = await this.deps.store.loadGroup(group.name);
    const scores = await this.deps.popularity.topImages(group.name, PLANNED_TOP_IMAGES, now);
    // A host is planned once its inventory is known: before that its agent may not even answer.
    const running = state.hosts.filter(
      (host) => host.status === 'running' && host.inventoriedAt !== undefined,
    );
    const entriesOf = (instanceId: string) =>
      state.entries.filter((entry) => entry.instanceId === instanceId);
    const images = await this.deps.store.getImages([
      ...state.pins,
      ...scores.map((score) => score.imageId),
      ...state.entries.map((entry) => entry.imageId),
      ...requested.map((request) => request.imageId),
    ]);
    const plannerHosts: PlannerHost[] = running.map((host) => ({
      instanceId: host.instanceId,
      availabilityZone: host.availabilityZone,
      entries: entriesOf(host.instanceId),
    }));
    const plan = planHostGroup({
      group,
      hosts: plannerHosts,
      pins: state.pins,
      requested,
      scores,
      imageSizes: Object.fromEntries([...images.values()].map((image) => [image.id, image.sizeBytes])),
      source: state.source,
      now,
      random: this.deps.random,
    });

    const hostInfo = new Map(
      (await this.deps.hosts.groupHosts(group.name)).map((host) => [host.instanceId, host]),
    );
    const applied = [];
    for (const command of plan.commands) {
      const image = images.get(command.imageId);
      if (!image) continue;
      applied.push({
        action: command.action,
        imageId: command.imageId,
        results: await this.apply(group, state, command, image, hostInfo, now),
      });
    }
    this.recordMetrics(group, plan, plannerHosts, state.pins.length);
    if (plan.commands.length > 0 || plan.sourceBackoffUntil !== undefined)
      this.deps.logger.info('cache planned', {
        hostGroup: group.name,
        commands: plan.commands.length,
        deferred: plan.deferred.length,
        sourceBackoffUntil: plan.sourceBackoffUntil,
      });
    return {
      hostGroup: group.name,
      hosts: running.length,
      warmRatio: plan.warmRatio,
      pendingActions: plan.pendingActions,
      commands: applied,
      deferred: plan.deferred,
      unknownImages: plan.unknownImages,
      ...(plan.sourceBackoffUntil !== undefined ? { sourceBackoffUntil: plan.sourceBackoffUntil } : {}),
    };
  }

  /**
   * One batch: claim each (host, image) entry with a conditional write (a concurrent plan that
   * claimed it first wins, this one skips the host), start the work through the group's image
   * handler, then record the command id. A host whose start failed gets a failed entry with
   * backoff (fetch) or back to cached (evict).
   */
  private async apply(
    group: HostGroup,
    state: GroupState,
    command: CacheCommand,
    image: ImageSpec,
    hostInfo: ReadonlyMap<string, HostInfo>,
    now: number,
  ): Promise<ItemResult[]> {
    const results: ItemResult[] = [];
    // The registry may hold an image whose source this group does not allow (another group's,
    // or the allowlist changed since): it is never fetched here, and evicting it is always fine.
    const refusal = command.action === 'fetch' ? sourceRefusal(image, group, this.deps.account) : undefined;
    if (refusal) {
      this.deps.logger.warn('image source not allowed for this host group', {
        hostGroup: group.name,
        imageId: image.id,
        refusal,
      });
      return command.instanceIds.map((id) => ({
        id,
        ok: false,
        error: { code: 'SourceNotAllowed', message: refusal },
      }));
    }
    const claimed: { host: HandlerHost; entry: HostImageEntry; version: number; previous?: StoredEntry }[] =
      [];
    for (const instanceId of command.instanceIds) {
      const previous = state.entries.find(
        (entry) => entry.instanceId === instanceId && entry.imageId === image.id,
      );
      const host = hostInfo.get(instanceId);
      if (!host) {
        results.push({
          id: instanceId,
          ok: false,
          error: { code: 'NotFound', message: 'host no longer in the group' },
        });
        continue;
      }
      const entry =
        command.action === 'fetch'
          ? fetchStarted(
              previous,
              { imageId: image.id, bytes: image.sizeBytes, commandId: '', via: 'download' },
              now,
            )
          : previous && evictionStarted(previous, '', now);
      if (!entry) continue;
      const { commandId: _pending, ...claim } = entry;
      try {
        await this.deps.store.writeEntry(
          group.name,
          instanceId,
          image.id,
          claim,
          previous?.version ?? 'absent',
        );
        claimed.push({
          host,
          entry: previous ?? claim,
          version: (previous?.version ?? 0) + 1,
          ...(previous ? { previous } : {}),
        });
      } catch (error) {
        results.push(itemFailure(instanceId, error));
      }
    }
    if (claimed.length === 0) return results;

    const handler = imageHandlerFor(this.handlerDeps(group));
    const settled = new Set<string>();
    // Each batch is recorded the moment its command is sent, before the next host's work.
    const settle = async (started: readonly StartResult[]) => {
      const fresh = started.filter((start) => !settled.has(start.instanceId));
      for (const start of fresh) settled.add(start.instanceId);
      await this.recordCommands(group, image, command.action, fresh, now);
      for (const start of fresh) {
        const item = claimed.find((candidate) => candidate.host.instanceId === start.instanceId);
        if (item) results.push(await this.settleStart(group, image, command.action, item, start, now));
      }
    };
    const options: StartOptions = {
      maxConcurrency: command.maxConcurrency,
      maxErrors: command.maxErrors,
      comment: `warmboot ${command.action} ${image.id}`.slice(0, 100),
      onStarted: settle,
    };
    const started =
      command.action === 'fetch'
        ? await handler.fetch(
            claimed.map((item) => item.host),
            image,
            options,
          )
        : await handler.remove(
            claimed.map((item) => ({ host: item.host, entry: item.entry })),
            image,
            options,
          );
    await settle(started);
    return results;
  }

  private async recordCommands(
    group: HostGroup,
    image: ImageSpec,
    action: CacheCommand['action'],
    started: readonly StartResult[],
    now: number,
  ): Promise<void> {
    const byCommand = new Map<string, { document: string; instanceIds: string[] }>();
    for (const start of started) {
      if (!start.ok) continue;
      const document =
        action === 'fetch'
          ? start.via === 'volume-link'
            ? DOCUMENT_NAMES.mount
            : DOCUMENT_NAMES.fetch
          : start.via === 'volume-link'
            ? DOCUMENT_NAMES.unmount
            : DOCUMENT_NAMES.remove;
      const record = byCommand.get(start.commandId) ?? { document, instanceIds: [] };
      record.instanceIds.push(start.instanceId);
      byCommand.set(start.commandId, record);
    }
    for (const [commandId, record] of byCommand)
      await this.deps.store.putCommand({
        commandId,
        hostGroup: group.name,
        imageId: image.id,
        document: record.document,
        instanceIds: record.instanceIds,
        sentAt: now,
      });
  }

  private async settleStart(
    group: HostGroup,
    image: ImageSpec,
    action: CacheCommand['action'],
    item: { host: HandlerHost; entry: HostImageEntry; version: number; previous?: StoredEntry },
    start: StartResult,
    now: number,
  ): Promise<ItemResult> {
    const instanceId = item.host.instanceId;
    let next: HostImageEntry | undefined;
    if (start.ok) {
      next =
        action === 'fetch'
          ? fetchStarted(
              item.previous,
              {
                imageId: image.id,
                bytes: image.sizeBytes,
                commandId: start.commandId,
                via: start.via,
                ...(start.note !== undefined ? { note: start.note } : {}),
              },
              now,
            )
          : evictionStarted(item.entry, start.commandId, now);
      if (start.volumeId !== undefined) next = { ...next, volumeId: start.volumeId };
    } else {
      next =
        action === 'fetch'
          ? fetchFailed({ ...item.entry, state: 'fetching' }, 'other', group, now, this.deps.random)
          : evictionEnded(item.entry, false, now);
      if (next) next = { ...next, note: `${start.error.code}: ${start.error.message}`.slice(0, 300) };
    }
    try {
      await this.deps.store.writeEntry(group.name, instanceId, image.id, next, item.version);
    } catch (error) {
      return itemFailure(instanceId, error);
    }
    return start.ok
      ? { id: instanceId, ok: true, commandId: start.commandId }
      : { id: instanceId, ok: false, error: start.error };
  }

  private handlerDeps(group: HostGroup) {
    return {
      group,
      region: this.deps.region,
      account: this.deps.account,
      commands: this.deps.commands,
      volumes: this.deps.volumes,
      clock: this.deps.clock,
    };
  }

  /**
   * One SSM invocation changed status. Non-terminal statuses are ignored; a terminal one moves
   * the entry that carries this command id (a duplicate or late event finds no such entry and
   * changes nothing), then the group is planned again (space or fetch window freed).
   */
  async onCommandStatus(detail: {
    commandId: string;
    instanceId: string;
    status: string;
    /** The event's `document-name`: which document ran, even when no command record says so. */
    document?: string;
  }): Promise<{ outcome: string; plan?: PlanSummary }> {
    if (!isTerminalStatus(detail.status)) return { outcome: `ignored ${detail.status}` };
    const command = await this.deps.store.getCommand(detail.commandId);
    if (!command) {
      // Sent, then the sender died before recording it (or its record expired): the host may
      // hold or lack an image the record does not know about. Re-read it at the next reconcile.
      if (detail.document === undefined || EFFECTS[detail.document] === undefined)
        return { outcome: 'unknown command (the reconcile will catch up)' };
      const host = await this.deps.hosts.host(detail.instanceId);
      const group = this.deps.groups.find((candidate) => candidate.name === host?.hostGroup);
      if (!group) return { outcome: 'unknown command on a host of no configured group' };
      await this.markInventoryDue(group, detail.instanceId, this.deps.clock.now());
      return { outcome: `unknown ${detail.document} command: ${detail.instanceId} is re-inventoried` };
    }
    const group = this.group(command.hostGroup);
    if (command.orphanVolumeId !== undefined) {
      if (detail.status !== 'Success') return { outcome: `orphan unmount ${detail.status}` };
      await this.releaseLinkedVolume(group, command.orphanVolumeId, detail.instanceId);
      return { outcome: `released orphan volume ${command.orphanVolumeId}` };
    }
    if (command.document === DOCUMENT_NAMES.inventory) {
      // Only a report that changed the record (or made the host plannable) moves the plan; the
      // periodic re-inventories of unchanged hosts cost no group read.
      const settled = await this.settleInventory(group, command, detail.instanceId, detail.status);
      return {
        outcome: settled.outcome,
        ...(settled.changed ? { plan: await this.plan(group.name) } : {}),
      };
    }
    const outcome = await this.settleInvocation(group, command, detail.instanceId, detail.status);
    return { outcome, plan: await this.plan(group.name) };
  }

  /**
   * An inventory report replaces the host's recorded cache (host-scoped reads: this runs for
   * every host once per inventory interval). Entries that changed after the inventory was sent
   * are newer than the report and kept; the host's suspect mark is cleared if the inventory was
   * sent after it.
   */
  private async settleInventory(
    group: HostGroup,
    command: { commandId: string; sentAt?: number },
    instanceId: string,
    status: string,
  ): Promise<{ outcome: string; changed: boolean }> {
    if (status !== 'Success') return { outcome: `inventory ${status}`, changed: false };
    const now = this.deps.clock.now();
    const invocation = await this.deps.commands.invocation(command.commandId, instanceId);
    const { host, entries: recorded } = await this.deps.store.loadHost(group.name, instanceId);
    const sentAt = command.sentAt ?? now;
    const reported = await this.withOwnVolumes(group, instanceId, reportedImages(invocation.result));
    const merged = reconcileInventory(recorded, reported, now, sentAt);
    let changed = host !== undefined && host.inventoriedAt === undefined;
    for (const entry of merged.entries) {
      const before = recorded.find((candidate) => candidate.imageId === entry.imageId);
      if (before && sameEntry(before, entry)) continue;
      changed = true;
      await this.write(group, instanceId, entry.imageId, entry, before?.version ?? 'absent');
    }
    for (const imageId of merged.vanished) {
      const before = recorded.find((candidate) => candidate.imageId === imageId);
      if (!before) continue;
      changed = true;
      await this.write(group, instanceId, imageId, undefined, before.version);
    }
    await this.updateHost(group, instanceId, (current) => {
      const {
        inventoryDueAt,
        inventoryCommandId,
        inventorySentAt: _sentAt,
        ...rest
      } = withoutVersion(current);
      const stillDue = inventoryDueAt !== undefined && inventoryDueAt > sentAt;
      const stillWaiting = inventoryCommandId !== undefined && inventoryCommandId !== command.commandId;
      return {
        ...rest,
        inventoriedAt: now,
        ...(stillDue ? { inventoryDueAt } : {}),
        ...(stillWaiting ? { inventoryCommandId, inventorySentAt: current.inventorySentAt ?? now } : {}),
      };
    });
    if (changed) await this.publishWarmList(group, instanceId);
    return {
      outcome: `inventory: ${merged.added.length} added, ${merged.vanished.length} vanished`,
      changed,
    };
  }

  private async settleInvocation(
    group: HostGroup,
    command: { commandId: string; document: string; imageId?: string; sentAt?: number },
    instanceId: string,
    status: string,
  ): Promise<string> {
    if (command.document === DOCUMENT_NAMES.inventory)
      return (await this.settleInventory(group, command, instanceId, status)).outcome;
    const now = this.deps.clock.now();
    const invocation = await this.deps.commands.invocation(command.commandId, instanceId);
    const ok = status === 'Success';
    const state = await this.deps.store.loadGroup(group.name);

    const entry = state.entries.find(
      (candidate) =>
        candidate.instanceId === instanceId &&
        candidate.imageId === command.imageId &&
        candidate.commandId === command.commandId,
    );
    if (!entry) {
      // A duplicate or late result of settled work, or work the record lost track of (its entry
      // was dropped or moved while the command ran): in the second case the disk and the record
      // disagree, and only the host can say which images it holds.
      const effect = EFFECTS[command.document];
      const recorded = state.entries.find(
        (candidate) => candidate.instanceId === instanceId && candidate.imageId === command.imageId,
      );
      if (effect && resultContradictsRecord(effect, status, recorded, command.sentAt ?? now)) {
        await this.markInventoryDue(group, instanceId, now);
        return 'result contradicts the record: host re-inventoried';
      }
      return 'already settled';
    }
    const facts: Fact[] = [];
    const isFetch = command.document === DOCUMENT_NAMES.fetch || command.document === DOCUMENT_NAMES.mount;
    if (isFetch && entry.state === 'fetching') {
      if (ok) {
        const bytes = reportedBytes(invocation.result?.bytes);
        await this.write(
          group,
          instanceId,
          entry.imageId,
          fetchSucceeded(entry, { ...(bytes !== undefined ? { bytes } : {}) }, now),
          entry.version,
        );
        if (state.source.consecutiveFailures > 0)
          await this.writeSource(
            group,
            nextSourceHealth(state.source, 'ok', group, now, this.deps.random),
            state.source.version,
          );
        facts.push(fact('Image Warmed', group, instanceId, entry, { bytes: bytes ?? entry.bytes }));
      } else {
        const failure = classifyFetchFailure(status, invocation.responseCode, invocation.error);
        await this.write(
          group,
          instanceId,
          entry.imageId,
          fetchFailed(entry, failure, group, now, this.deps.random),
          entry.version,
        );
        if (failure === 'source-unreachable')
          await this.writeSource(
            group,
            nextSourceHealth(state.source, 'source-unreachable', group, now, this.deps.random),
            state.source.version,
          );
        if (entry.volumeId) await this.releaseLinkedVolume(group, entry.volumeId, instanceId);
        facts.push(fact('Image Warm Failed', group, instanceId, entry, { reason: failure }));
      }
    } else if (!isFetch && entry.state === 'evicting') {
      await this.write(group, instanceId, entry.imageId, evictionEnded(entry, ok, now), entry.version);
      if (ok && entry.volumeId) await this.releaseLinkedVolume(group, entry.volumeId, instanceId);
      if (ok) facts.push(fact('Image Evicted', group, instanceId, entry, {}));
    } else return 'already settled';
    await this.deps.facts.publish(facts);
    await this.publishWarmList(group, instanceId);
    return `${isFetch ? 'fetch' : 'evict'} ${status}`;
  }

  /**
   * A host's report of a linked volume is believed only for one of the group's cache volumes
   * attached to that host (security review M4): anything else is dropped from the report, so a
   * host cannot make warmboot record, detach or delete a volume that is not its cache's.
   */
  private async withOwnVolumes(
    group: HostGroup,
    instanceId: string,
    reported: readonly ReportedImage[],
  ): Promise<ReportedImage[]> {
    if (!reported.some((image) => image.volumeId !== undefined)) return [...reported];
    const own = new Set(
      (await this.deps.volumes.cacheVolumes(group.name))
        .filter((volume) => volume.attachedTo === instanceId)
        .map((volume) => volume.volumeId),
    );
    return reported.filter((image) => {
      if (image.volumeId === undefined || own.has(image.volumeId)) return true;
      this.deps.logger.warn('host reported a volume that is not its cache volume; ignored', {
        hostGroup: group.name,
        instanceId,
        imageId: image.imageId,
        volumeId: image.volumeId,
      });
      return false;
    });
  }

  private async releaseLinkedVolume(group: HostGroup, volumeId: string, instanceId: string): Promise<void> {
    try {
      await releaseVolume(this.deps.volumes, this.deps.clock, volumeId, instanceId, group.name);
    } catch (error) {
      // The volume stays tagged and managed; the next reconcile or an operator removes it.
      this.deps.logger.warn('linked volume not released', {
        volumeId,
        instanceId,
        error: errorMessage(error),
      });
    }
  }

  /** A conditional write that lost its race means someone else already moved the entry: fine. */
  private async write(
    group: HostGroup,
    instanceId: string,
    imageId: string,
    next: HostImageEntry | undefined,
    expected: number | 'absent',
  ): Promise<void> {
    try {
      await this.deps.store.writeEntry(group.name, instanceId, imageId, next, expected);
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
      this.deps.logger.info('entry changed concurrently; leaving it', { instanceId, imageId });
    }
  }

  private async writeSource(
    group: HostGroup,
    next: Parameters<ImageCacheStore['writeSource']>[1],
    version: number,
  ) {
    try {
      await this.deps.store.writeSource(group.name, next, version === 0 ? 'absent' : version);
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
    }
  }

  /** Keeps `warmboot:warm-images` current on hosts of groups that ask for it. */
  private async publishWarmList(group: HostGroup, instanceId: string): Promise<void> {
    if (group.publishWarmList !== 'tag') return;
    const state = await this.deps.store.loadGroup(group.name);
    const record = state.hosts.find((host) => host.instanceId === instanceId);
    const host = await this.deps.hosts.host(instanceId);
    if (!record || !host) return;
    const warm = warmImageIds(state.entries.filter((entry) => entry.instanceId === instanceId)).sort();
    const value = formatWarmList([
      ...state.pins.filter((pin) => warm.includes(pin)),
      ...warm.filter((id) => !state.pins.includes(id)),
    ]);
    if (record.warmList === value) return;
    await this.deps.hosts.tagHost(host, { [WARM_IMAGES_TAG]: value });
    try {
      await this.deps.store.putHost(group.name, { ...record, warmList: value }, record.version);
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
    }
  }

  /**
   * EC2 state change of any instance. A tagged instance that is running joins (or rejoins) its
   * group and gets `init` (inventory, then a plan); stopped is marked (its cache survives on
   * the volume, it is re-inventoried when it runs again); terminated is dropped with its entries.
   */
  async onHostState(instanceId: string, state: string): Promise<{ outcome: string }> {
    if (state === 'terminated') {
      for (const group of this.deps.groups) {
        const groupState = await this.deps.store.loadGroup(group.name);
        if (groupState.hosts.some((host) => host.instanceId === instanceId)) {
          await this.deps.store.deleteHost(group.name, instanceId);
          return { outcome: `dropped from ${group.name}` };
        }
      }
      return { outcome: 'not a cache host' };
    }
    const host = await this.deps.hosts.host(instanceId);
    if (!host) return { outcome: 'not a cache host' };
    const group = this.deps.groups.find((candidate) => candidate.name === host.hostGroup);
    if (!group) return { outcome: `host group ${host.hostGroup} is not configured` };
    const groupState = await this.deps.store.loadGroup(group.name);
    const record = groupState.hosts.find((candidate) => candidate.instanceId === instanceId);
    if (state === 'stopped') {
      if (record)
        await this.deps.store.putHost(
          group.name,
          { ...withoutVersion(record), status: 'stopped' },
          record.version,
        );
      return { outcome: 'marked stopped' };
    }
    if (state !== 'running') return { outcome: `ignored ${state}` };
    return this.join(group, host, record, true);
  }

  /**
   * A running host joins its group. EC2 reports `running` before the SSM agent registers, and
   * SendCommand refuses an unregistered node (InvalidInstanceId), so the host is recorded as
   * `joining` until DescribeInstanceInformation shows its agent Online; each check that finds it
   * offline sets the next one after an exponential backoff (`initDueAt`), which the next plan or
   * reconcile honours. Nothing throws for a slow agent, so no handler retry is spent on it.
   * `waitForAgent` (the `running` event): a Linux agent registers tens of seconds after
   * `running`, so the handler first waits that while rather than leave the host to the next
   * reconcile. An agent still missing after `HOST_AGENT_DEADLINE_MS` is named on the record.
   */
  private async join(
    group: HostGroup,
    host: HostInfo,
    record: GroupState['hosts'][number] | undefined,
    waitForAgent = false,
  ): Promise<{ outcome: string }> {
    if (waitForAgent) await this.awaitAgent(host.instanceId);
    const now = this.deps.clock.now();
    const attempts = record?.status === 'joining' ? (record.initAttempts ?? 0) : 0;
    const base = {
      instanceId: host.instanceId,
      availabilityZone: host.availabilityZone,
      joinedAt: record?.status === 'joining' ? record.joinedAt : now,
      ...(record?.warmList !== undefined ? { warmList: record.warmList } : {}),
    };
    const online = (await this.deps.commands.agentsOnline([host.instanceId])).has(host.instanceId);
    let commandId: string | undefined;
    if (online) {
      try {
        ({ commandId } = await imageHandlerFor(this.handlerDeps(group)).init(host));
      } catch (error) {
        // Registered a moment after DescribeInstanceInformation answered: treat as offline.
        if (!(error instanceof IncorrectStateError)) throw error;
      }
    }
    if (commandId === undefined) {
      const overdue = now - base.joinedAt > HOST_AGENT_DEADLINE_MS;
      const initDueAt = overdue
        ? now + AGENT_RECHECK_AFTER_DEADLINE_MS
        : now +
          Math.max(
            AGENT_CHECK_BASE_MS,
            backoffDelayMs(attempts + 1, this.deps.random, {
              baseMs: AGENT_CHECK_BASE_MS,
              capMs: AGENT_CHECK_CAP_MS,
            }),
          );
      if (overdue && record?.joinProblem === undefined) {
        this.deps.logger.warn('SSM agent never registered', {
          instanceId: host.instanceId,
          hostGroup: group.name,
          joinedAt: base.joinedAt,
          hint: 'the host needs an instance profile with AmazonSSMManagedInstanceCore, or Default Host Management Configuration on',
        });
        this.deps.metrics
          .singleMetric()
          .addDimension('HostGroup', group.name)
          .addMetric('HostAgentNeverRegistered', MetricUnit.Count, 1);
      }
      await this.putHostQuietly(
        group,
        {
          ...base,
          status: 'joining',
          initAttempts: attempts + 1,
          initDueAt,
          ...(overdue ? { joinProblem: 'agent-never-registered' as const } : {}),
        },
        record?.version ?? 'absent',
      );
      return {
        outcome: overdue
          ? `joining ${group.name}: SSM agent never registered (agent-never-registered), next check at ${initDueAt}`
          : `joining ${group.name}: SSM agent not online yet, next check at ${initDueAt}`,
      };
    }
    await this.putHostQuietly(group, { ...base, status: 'running' }, record?.version ?? 'absent');
    await this.deps.store.putCommand({
      commandId,
      hostGroup: group.name,
      document: DOCUMENT_NAMES.inventory,
      instanceIds: [host.instanceId],
      sentAt: now,
    });
    return { outcome: `joined ${group.name}, inventory ${commandId}` };
  }

  private async awaitAgent(instanceId: string): Promise<void> {
    await pollUntil(
      async () => ((await this.deps.commands.agentsOnline([instanceId])).has(instanceId) ? true : undefined),
      {
        clock: this.deps.clock,
        timeoutMs: boundedWait(this.deps.deadline ?? NO_DEADLINE, AGENT_WAIT_MS, AGENT_WAIT_RESERVE_MS),
        intervalMs: (attempt) => Math.min(2_000 * 2 ** attempt, 30_000),
      },
    );
  }

  /** A host write that lost its race: another invocation moved the host first; it wins. */
  private async putHostQuietly(
    group: HostGroup,
    host: Omit<GroupState['hosts'][number], 'version'>,
    expected: number | 'absent',
  ): Promise<void> {
    try {
      await this.deps.store.putHost(group.name, host, expected);
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
      this.deps.logger.info('host changed concurrently; leaving it', { instanceId: host.instanceId });
    }
  }

  /** Joining hosts whose next agent check is due get it (every plan and reconcile look). */
  private async joinDue(group: HostGroup, state: GroupState): Promise<boolean> {
    const now = this.deps.clock.now();
    const due = state.hosts.filter((host) => host.status === 'joining' && (host.initDueAt ?? 0) <= now);
    for (const record of due) {
      const host = await this.deps.hosts.host(record.instanceId);
      if (host?.state === 'running') await this.join(group, host, record);
    }
    return due.length > 0;
  }

  /**
   * The level-triggered reconcile: re-derives membership from DescribeInstances, settles
   * in-flight commands whose status event was lost (GetCommandInvocation), drops stale claims,
   * and plans. Converges within one schedule period whatever events were lost.
   */
  async reconcile(groupName: string): Promise<PlanSummary> {
    const group = this.group(groupName);
    const now = this.deps.clock.now();
    const actual = await this.deps.hosts.groupHosts(group.name);
    let state = await this.deps.store.loadGroup(group.name);
    for (const record of state.hosts) {
      const live = actual.find((host) => host.instanceId === record.instanceId);
      if (!live) await this.deps.store.deleteHost(group.name, record.instanceId);
      else if (live.state === 'stopped' && record.status === 'running')
        await this.deps.store.putHost(
          group.name,
          { ...withoutVersion(record), status: 'stopped' },
          record.version,
        );
    }
    for (const host of actual) {
      const record = state.hosts.find((candidate) => candidate.instanceId === host.instanceId);
      if (host.state !== 'running') continue;
      const waiting = record?.status === 'joining' && (record.initDueAt ?? 0) > now;
      if (!waiting && (record?.status !== 'running' || record.inventoriedAt === undefined))
        await this.join(group, host, record).catch((error: unknown) =>
          this.deps.logger.warn('host not initialized', {
            instanceId: host.instanceId,
            error: errorMessage(error),
          }),
        );
    }
    state = await this.deps.store.loadGroup(group.name);
    await this.releaseOrphanVolumes(group, state, actual, now);
    for (const entry of state.entries) {
      if (entry.state !== 'fetching' && entry.state !== 'evicting') continue;
      if (now - entry.since < STALE_COMMAND_MS) continue;
      if (!entry.commandId) {
        if (now - entry.since >= STALE_CLAIM_MS) {
          await this.write(
            group,
            entry.instanceId,
            entry.imageId,
            entry.state === 'evicting' ? evictionEnded(entry, false, now) : undefined,
            entry.version,
          );
          // Whether its SendCommand ran before the crash is unknown: ask the host.
          await this.markInventoryDue(group, entry.instanceId, now);
        }
        continue;
      }
      await this.settleLost(group, entry);
    }
    await this.reinventory(group, actual, now);
    return this.plan(group.name);
  }

  /**
   * Re-reads the disks the record may no longer describe: hosts marked suspect (a command
   * result contradicted the record, a claim was dropped without knowing whether it ran) and
   * hosts whose last inventory is older than their share of `inventoryIntervalMs`. A pending
   * re-inventory whose event was lost is looked up first (and settled, or sent again).
   * Converges what no event reports: an image that landed after its entry was removed is
   * inventoried (then evicted by the plan if unwanted), a recorded image the host lost is
   * dropped (then fetched again if wanted).
   */
  private async reinventory(group: HostGroup, actual: readonly HostInfo[], now: number): Promise<void> {
    const state = await this.deps.store.loadGroup(group.name);
    const running = new Set(actual.filter((host) => host.state === 'running').map((host) => host.instanceId));
    const waiting = new Set<string>();
    for (const host of state.hosts) {
      if (host.inventoryCommandId === undefined) continue;
      const age = now - (host.inventorySentAt ?? 0);
      if (age < INVENTORY_SETTLE_AFTER_MS) {
        waiting.add(host.instanceId);
        continue;
      }
      try {
        const invocation = await this.deps.commands.invocation(host.inventoryCommandId, host.instanceId);
        if (invocation.status === 'Success') {
          await this.settleInventory(
            group,
            {
              commandId: host.inventoryCommandId,
              ...(host.inventorySentAt ? { sentAt: host.inventorySentAt } : {}),
            },
            host.instanceId,
            'Success',
          );
          waiting.add(host.instanceId);
        } else if (!isTerminalStatus(invocation.status) && age < STALE_COMMAND_MS)
          waiting.add(host.instanceId);
      } catch (error) {
        // NotFound: SSM never ran it; send another. Anything else: look again next time.
        if (!(error instanceof WarmbootError && error.code === 'NotFound')) {
          waiting.add(host.instanceId);
          this.deps.logger.warn('inventory not looked up', {
            instanceId: host.instanceId,
            error: errorMessage(error),
          });
        }
      }
    }
    const due = hostsDueForInventory(
      state.hosts.filter((host) => running.has(host.instanceId) && !waiting.has(host.instanceId)),
      { now, intervalMs: group.inventoryIntervalMs, limit: MAX_INVENTORIES_PER_RECONCILE },
    );
    for (let start = 0; start < due.length; start += MAX_INSTANCES_PER_COMMAND)
      await this.sendInventory(
        group,
        due.slice(start, start + MAX_INSTANCES_PER_COMMAND).map((host) => host.instanceId),
        now,
      );
  }

  /**
   * One inventory command for a batch of hosts, recorded before the hosts point at it. A batch
   * SendCommand refused (one host deregistered its agent) is sent host by host, so one host
   * never holds the others back.
   */
  private async sendInventory(group: HostGroup, instanceIds: readonly string[], now: number): Promise<void> {
    let commandId: string;
    try {
      commandId = await this.deps.commands.send(
        DOCUMENT_NAMES.inventory,
        instanceIds,
        { CacheDirectory: group.cacheDirectory },
        {
          maxConcurrency: String(MAX_INSTANCES_PER_COMMAND),
          maxErrors: '100%',
          comment: `warmboot inventory ${group.name}`,
        },
      );
    } catch (error) {
      if (instanceIds.length > 1) {
        for (const instanceId of instanceIds) await this.sendInventory(group, [instanceId], now);
        return;
      }
      this.deps.logger.warn('host not re-inventoried', { instanceIds, error: errorMessage(error) });
      return;
    }
    await this.deps.store.putCommand({
      commandId,
      hostGroup: group.name,
      document: DOCUMENT_NAMES.inventory,
      instanceIds: [...instanceIds],
      sentAt: now,
    });
    for (const instanceId of instanceIds)
      await this.updateHost(group, instanceId, (current) => ({
        ...withoutVersion(current),
        inventoryCommandId: commandId,
        inventorySentAt: now,
      }));
  }

  /** The record of this host can no longer be trusted: the next reconcile re-inventories it. */
  private async markInventoryDue(group: HostGroup, instanceId: string, now: number): Promise<void> {
    await this.updateHost(group, instanceId, (current) =>
      current.inventoryDueAt !== undefined && current.inventoryDueAt <= now
        ? undefined
        : { ...withoutVersion(current), inventoryDueAt: now },
    );
  }

  /**
   * Read-modify-write of one host record; a lost race re-reads and applies `change` again (a few
   * times, then the change is left to the next reconcile). `change` returns undefined for "no
   * change"; a host with no record is left alone.
   */
  private async updateHost(
    group: HostGroup,
    instanceId: string,
    change: (current: HostRecord) => Omit<HostRecord, 'version'> | undefined,
  ): Promise<void> {
    try {
      await retrying(
        async () => {
          const { host } = await this.deps.store.loadHost(group.name, instanceId);
          const next = host && change(host);
          if (host && next) await this.deps.store.putHost(group.name, next, host.version);
        },
        {
          sleep: (ms) => this.deps.clock.sleep(ms),
          random: this.deps.random,
          attempts: 3,
          retryable: (error) => error instanceof ConflictError,
          baseMs: 100,
          capMs: 1_000,
        },
      );
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
      this.deps.logger.info('host changed concurrently; leaving it to the next reconcile', { instanceId });
    }
  }

  /**
   * Linked volumes of this group that no entry needs any more (a crash between CreateVolume and
   * the entry write, a release that failed, an entry dropped with its host) are removed: an
   * unattached one is deleted, one attached to a running host of the group is unmounted first
   * (the unmount's success event releases it). Only volumes carrying the group's cache-volume
   * tags are listed, `releaseVolume` re-checks the management tag, and a volume younger than a
   * claim's lifetime is left alone (its fetch may still be recording it).
   */
  private async releaseOrphanVolumes(
    group: HostGroup,
    state: GroupState,
    actual: readonly HostInfo[],
    now: number,
  ): Promise<void> {
    if (group.handler === 'download') return;
    const needed = new Set(
      state.entries
        .filter((entry) => entry.state !== 'failed' && entry.volumeId !== undefined)
        .map((entry) => entry.volumeId),
    );
    const volumes = await this.deps.volumes.cacheVolumes(group.name);
    for (const volume of volumes) {
      if (needed.has(volume.volumeId) || now - volume.createdAt < STALE_CLAIM_MS) continue;
      if (volume.state === 'available') {
        await this.releaseLinkedVolume(group, volume.volumeId, '');
        continue;
      }
      const host = actual.find((candidate) => candidate.instanceId === volume.attachedTo);
      if (host?.state !== 'running' || volume.state !== 'in-use') continue;
      try {
        const commandId = await this.deps.commands.send(
          DOCUMENT_NAMES.unmount,
          [host.instanceId],
          { ImageId: volume.imageId, CacheDirectory: group.cacheDirectory, VolumeId: volume.volumeId },
          { maxConcurrency: '1', maxErrors: '0', comment: `warmboot release orphan ${volume.volumeId}` },
        );
        await this.deps.store.putCommand({
          commandId,
          hostGroup: group.name,
          imageId: volume.imageId,
          document: DOCUMENT_NAMES.unmount,
          instanceIds: [host.instanceId],
          sentAt: now,
          orphanVolumeId: volume.volumeId,
        });
      } catch (error) {
        this.deps.logger.warn('orphan volume not unmounted', {
          volumeId: volume.volumeId,
          error: errorMessage(error),
        });
      }
    }
  }

  private async settleLost(group: HostGroup, entry: StoredEntry): Promise<void> {
    const commandId = entry.commandId ?? '';
    const command = await this.deps.store.getCommand(commandId);
    try {
      const invocation = await this.deps.commands.invocation(commandId, entry.instanceId);
      if (!isTerminalStatus(invocation.status)) return;
      await this.settleInvocation(
        group,
        command ?? {
          commandId,
          imageId: entry.imageId,
          document: entry.state === 'fetching' ? DOCUMENT_NAMES.fetch : DOCUMENT_NAMES.remove,
        },
        entry.instanceId,
        invocation.status,
      );
    } catch (error) {
      if (!(error instanceof WarmbootError && error.code === 'NotFound')) throw error;
      // SSM no longer knows the command: what it did to the host is unknown, so ask the host.
      await this.write(group, entry.instanceId, entry.imageId, undefined, entry.version);
      await this.markInventoryDue(group, entry.instanceId, this.deps.clock.now());
    }
  }

  private recordMetrics(
    group: HostGroup,
    plan: CachePlan,
    hosts: readonly PlannerHost[],
    pins: number,
  ): void {
    const metric = this.deps.metrics.singleMetric();
    metric.addDimension('HostGroup', group.name);
    metric.addMetric('WarmRatio', MetricUnit.Percent, plan.warmRatio * 100);
    metric.addMetric(
      'CacheBytesUsed',
      MetricUnit.Bytes,
      hosts.reduce((sum, host) => sum + heldBytes(host.entries), 0),
    );
    metric.addMetric('CacheBudgetBytes', MetricUnit.Bytes, hosts.length * group.cacheBytes);
    metric.addMetric('PinnedImages', MetricUnit.Count, pins);
    metric.addMetric('CachePlanPendingActions', MetricUnit.Count, plan.pendingActions);
  }
}

const withoutVersion = <T extends { version: number }>(record: T): Omit<T, 'version'> => {
  const { version: _version, ...rest } = record;
  return rest;
};

const sameEntry = (a: HostImageEntry, b: HostImageEntry): boolean =>
  a.state === b.state && a.bytes === b.bytes && a.since === b.since && a.volumeId === b.volumeId;

const itemFailure = (id: string, error: unknown): ItemResult => ({
  id,
  ok: false,
  error: { code: error instanceof WarmbootError ? error.code : 'Error', message: errorMessage(error) },
});

const fact = (
  detailType: string,
  group: HostGroup,
  instanceId: string,
  entry: HostImageEntry,
  extra: Record<string, unknown>,
): Fact => ({
  detailType,
  detail: {
    hostGroup: group.name,
    instanceId,
    imageId: entry.imageId,
    via: entry.via ?? 'download',
    ...(entry.note ? { note: entry.note } : {}),
    ...extra,
  },
  resources: [instanceId],
});

/**
 * Most images one inventory report may list: far more than a cache holds (a host's budget over
 * the smallest image), few enough that a hostile host cannot flood the table.
 */
export const MAX_REPORTED_IMAGES = 1_000;

/** A byte count a host reported, if it is one: a non-negative safe integer. */
export const reportedBytes = (value: unknown): number | undefined =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined;

const imageIdPattern = regex(IMAGE_ID_PATTERN);
const volumeIdPattern = regex(VOLUME_ID_PATTERN);

/**
 * The inventory document's `images` array, as untrusted input (security review M4): root on a
 * host can print anything. An item is kept only if its image id and volume id match the
 * patterns the documents use, its kind is one the documents write and its bytes are a
 * non-negative safe integer; an image listed twice counts once; at most MAX_REPORTED_IMAGES.
 */
export const reportedImages = (result: Record<string, unknown> | undefined): ReportedImage[] => {
  const images = Array.isArray(result?.images) ? (result.images as unknown[]) : [];
  const seen = new Set<string>();
  const accepted: ReportedImage[] = [];
  for (const raw of images) {
    if (accepted.length >= MAX_REPORTED_IMAGES) break;
    if (typeof raw !== 'object' || raw === null) continue;
    const item = raw as Record<string, unknown>;
    const { imageId, volumeId, kind } = item;
    if (typeof imageId !== 'string' || imageId.length > 256 || !imageIdPattern.test(imageId)) continue;
    if (seen.has(imageId)) continue;
    if (kind !== 'container' && kind !== 's3' && kind !== 'volume') continue;
    const bytes = item.bytes === undefined ? 0 : reportedBytes(item.bytes);
    if (bytes === undefined) continue;
    if (kind === 'volume' && (typeof volumeId !== 'string' || !volumeIdPattern.test(volumeId))) continue;
    seen.add(imageId);
    accepted.push({
      imageId,
      bytes,
      via: kind === 'volume' ? 'volume-link' : 'download',
      ...(kind === 'volume' ? { volumeId: volumeId as string } : {}),
    });
  }
  return accepted;
};
