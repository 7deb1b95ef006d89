import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { NotFoundError } from '../../shared/errors';
import { type ItemResult, itemErrorOf } from '../../shared/results';
import type { HostInfo } from '../adapters/ec2';
import type { StoredEntry } from '../adapters/store';
import type { HostGroup, ImageSpec } from '../config';
import type { ImageCacheDependencies } from '../dependencies';
import { documentFor } from '../documents';
import { type HostImageEntry, heldBytes, type PlannerHost } from '../domain/model';
import { type CacheCommand, type CachePlan, planHostGroup } from '../domain/planner';
import { sourceRefusal } from '../domain/sources';
import { evictionEnded, evictionStarted, fetchFailed, fetchStarted } from '../domain/transitions';
import { type FetchHost, fetchStrategyFor, type StartOptions, type StartResult } from './fetch-strategies';
import { joinDue } from './membership';

/** How many popular images per group the planner considers. */
export const PLANNED_TOP_IMAGES = 100;

/** One host's part of a cache command: the command id it runs, or why it did not start. */
export type CommandItem = ItemResult<{ readonly commandId: string }>;

export interface PlanSummary {
  readonly hostGroup: string;
  readonly hosts: number;
  readonly warmRatio: number;
  readonly pendingActions: number;
  readonly commands: readonly {
    readonly action: CacheCommand['action'];
    readonly imageId: string;
    readonly results: readonly CommandItem[];
  }[];
  readonly deferred: CachePlan['deferred'];
  readonly unknownImages: readonly string[];
  readonly sourceBackoffUntil?: number;
}

/** A host whose entry another invocation changed first: that one moves the pair, this plan skips it. */
const LOST_RACE = { code: 'Conflict', message: 'the entry changed since it was read' } as const;

/** A (host, image) pair this plan claimed: its entry before the claim and the claim's version. */
interface Claim {
  readonly host: FetchHost;
  readonly entry: HostImageEntry;
  readonly version: number;
  readonly previous?: StoredEntry;
}

const pairKey = (instanceId: string, imageId: string) => `${instanceId}\u0000${imageId}`;

/**
 * The group's entries by host and by (host, image), built once per plan: looking them up per
 * host or per command target is what made a plan quadratic in the group's size.
 */
const indexEntries = (entries: readonly StoredEntry[]) => {
  const byHost = new Map<string, StoredEntry[]>();
  const byPair = new Map<string, StoredEntry>();
  for (const entry of entries) {
    const list = byHost.get(entry.instanceId);
    if (list) list.push(entry);
    else byHost.set(entry.instanceId, [entry]);
    const key = pairKey(entry.instanceId, entry.imageId);
    if (!byPair.has(key)) byPair.set(key, entry);
  }
  return { byHost, byPair };
};

export const hostGroupNamed = (deps: Pick<ImageCacheDependencies, 'groups'>, name: string): HostGroup => {
  const group = deps.groups.find((candidate) => candidate.name === name);
  if (!group) throw new NotFoundError(`host group ${name} is not configured (HOST_GROUPS)`);
  return group;
};

/** Plans one group and applies the plan: claims, SendCommand per batch, command records. */
export const plan = async (
  deps: ImageCacheDependencies,
  groupName: string,
  requested: readonly { instanceId: string; imageId: string }[] = [],
): Promise<PlanSummary> => {
  const group = hostGroupNamed(deps, groupName);
  const now = deps.clock.now();
  let state = await deps.store.loadGroup(group.name);
  if (await joinDue(deps, group, state)) state = await deps.store.loadGroup(group.name);
  const scores = await deps.popularity.topImages(group.name, PLANNED_TOP_IMAGES, now, {
    recent: requested.length > 0,
  });
  // A host is planned once its inventory is known: before that its agent may not even answer.
  const running = state.hosts.filter((host) => host.status === 'running' && host.inventoriedAt !== undefined);
  const entries = indexEntries(state.entries);
  const images = await deps.store.getImages([
    ...new Set([
      ...state.pins,
      ...scores.map((score) => score.imageId),
      ...state.entries.map((entry) => entry.imageId),
      ...requested.map((request) => request.imageId),
    ]),
  ]);
  const plannerHosts: PlannerHost[] = running.map((host) => ({
    instanceId: host.instanceId,
    availabilityZone: host.availabilityZone,
    entries: entries.byHost.get(host.instanceId) ?? [],
  }));
  const cachePlan = planHostGroup({
    group,
    hosts: plannerHosts,
    pins: state.pins,
    requested,
    scores,
    imageSizes: Object.fromEntries([...images.values()].map((image) => [image.id, image.sizeBytes])),
    source: state.source,
    now,
    random: deps.random,
  });

  const hostInfo = new Map((await deps.hosts.groupHosts(group.name)).map((host) => [host.instanceId, host]));
  const applied = [];
  for (const command of cachePlan.commands) {
    const image = images.get(command.imageId);
    if (!image) continue;
    applied.push({
      action: command.action,
      imageId: command.imageId,
      results: await apply(deps, group, entries.byPair, command, image, hostInfo, now),
    });
  }
  recordMetrics(deps, group, cachePlan, plannerHosts, state.pins.length);
  if (cachePlan.commands.length > 0 || cachePlan.sourceBackoffUntil !== undefined)
    deps.logger.info('cache planned', {
      hostGroup: group.name,
      commands: cachePlan.commands.length,
      deferred: cachePlan.deferred.length,
      sourceBackoffUntil: cachePlan.sourceBackoffUntil,
    });
  return {
    hostGroup: group.name,
    hosts: running.length,
    warmRatio: cachePlan.warmRatio,
    pendingActions: cachePlan.pendingActions,
    commands: applied,
    deferred: cachePlan.deferred,
    unknownImages: cachePlan.unknownImages,
    ...(cachePlan.sourceBackoffUntil !== undefined
      ? { sourceBackoffUntil: cachePlan.sourceBackoffUntil }
      : {}),
  };
};

/**
 * One batch: claim each (host, image) entry with a conditional write (a concurrent plan that
 * claimed it first wins, this one skips the host), start the work through the group's fetch
 * strategy, then record the command id. A host whose start failed gets a failed entry with
 * backoff (fetch) or back to cached (evict).
 */
const apply = async (
  deps: ImageCacheDependencies,
  group: HostGroup,
  entries: ReadonlyMap<string, StoredEntry>,
  command: CacheCommand,
  image: ImageSpec,
  hostInfo: ReadonlyMap<string, HostInfo>,
  now: number,
): Promise<CommandItem[]> => {
  const results: CommandItem[] = [];
  // The registry may hold an image whose source this group does not allow (another group's,
  // or the allowlist changed since): it is never fetched here, and evicting it is always fine.
  const refusal = command.action === 'fetch' ? sourceRefusal(image, group, deps.account) : undefined;
  if (refusal) {
    deps.logger.warn('image source not allowed for this host group', {
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
  const claimed: Claim[] = [];
  for (const instanceId of command.instanceIds) {
    const previous = entries.get(pairKey(instanceId, image.id));
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
      if (
        !(await deps.store.writeEntry(group.name, instanceId, image.id, claim, previous?.version ?? 'absent'))
      )
        results.push({ id: instanceId, ok: false, error: LOST_RACE });
      else
        claimed.push({
          host,
          entry: previous ?? claim,
          version: (previous?.version ?? 0) + 1,
          ...(previous ? { previous } : {}),
        });
    } catch (error) {
      results.push({ id: instanceId, ok: false, error: itemErrorOf(error) });
    }
  }
  if (claimed.length === 0) return results;

  const strategy = fetchStrategyFor({ ...deps, group });
  const settled = new Set<string>();
  // Each batch is recorded the moment its command is sent, before the next host's work.
  const settle = async (started: readonly StartResult[]) => {
    const fresh = started.filter((start) => !settled.has(start.instanceId));
    for (const start of fresh) settled.add(start.instanceId);
    await recordCommands(deps, group, image, command.action, fresh, now);
    for (const start of fresh) {
      const item = claimed.find((candidate) => candidate.host.instanceId === start.instanceId);
      if (item) results.push(await settleStart(deps, group, image, command.action, item, start, now));
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
      ? await strategy.fetch(
          claimed.map((item) => item.host),
          image,
          options,
        )
      : await strategy.remove(
          claimed.map((item) => ({ host: item.host, entry: item.entry })),
          image,
          options,
        );
  await settle(started);
  return results;
};

const recordCommands = async (
  deps: ImageCacheDependencies,
  group: HostGroup,
  image: ImageSpec,
  action: CacheCommand['action'],
  started: readonly StartResult[],
  now: number,
): Promise<void> => {
  const byCommand = new Map<string, { document: string; instanceIds: string[] }>();
  for (const start of started) {
    if (!start.ok) continue;
    const record = byCommand.get(start.commandId) ?? {
      document: documentFor(action, start.via),
      instanceIds: [],
    };
    record.instanceIds.push(start.instanceId);
    byCommand.set(start.commandId, record);
  }
  for (const [commandId, record] of byCommand)
    await deps.store.putCommand({
      commandId,
      hostGroup: group.name,
      imageId: image.id,
      document: record.document,
      instanceIds: record.instanceIds,
      sentAt: now,
    });
};

const settleStart = async (
  deps: ImageCacheDependencies,
  group: HostGroup,
  image: ImageSpec,
  action: CacheCommand['action'],
  item: Claim,
  start: StartResult,
  now: number,
): Promise<CommandItem> => {
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
        ? fetchFailed({ ...item.entry, state: 'fetching' }, 'other', group, now, deps.random)
        : evictionEnded(item.entry, false, now);
    if (next) next = { ...next, note: `${start.error.code}: ${start.error.message}`.slice(0, 300) };
  }
  try {
    if (!(await deps.store.writeEntry(group.name, instanceId, image.id, next, item.version)))
      return { id: instanceId, ok: false, error: LOST_RACE };
  } catch (error) {
    return { id: instanceId, ok: false, error: itemErrorOf(error) };
  }
  return start.ok
    ? { id: instanceId, ok: true, commandId: start.commandId }
    : { id: instanceId, ok: false, error: start.error };
};

const recordMetrics = (
  deps: ImageCacheDependencies,
  group: HostGroup,
  cachePlan: CachePlan,
  hosts: readonly PlannerHost[],
  pins: number,
): void => {
  const metric = deps.metrics.singleMetric();
  metric.addDimension('HostGroup', group.name);
  metric.addMetric('WarmRatio', MetricUnit.Percent, cachePlan.warmRatio * 100);
  metric.addMetric(
    'CacheBytesUsed',
    MetricUnit.Bytes,
    hosts.reduce((sum, host) => sum + heldBytes(host.entries), 0),
  );
  metric.addMetric('CacheBudgetBytes', MetricUnit.Bytes, hosts.length * group.cacheBytes);
  metric.addMetric('PinnedImages', MetricUnit.Count, pins);
  metric.addMetric('CachePlanPendingActions', MetricUnit.Count, cachePlan.pendingActions);
};
