import { EC2_STATE_CHANGE, SCHEDULED_EVENT, SSM_COMMAND_STATUS, WARMBOOT, WARMBOOT_FACT } from '../catalog';
import { DynamoPopularityStore } from '../popularity/adapters/dynamodb-popularity-store';
import { loadPopularityConfig } from '../popularity/config';
import { decayParameters } from '../popularity/domain/decay';
import { factPublisher } from '../shared/adapters/facts';
import { InvocationDeadline } from '../shared/deadline';
import { errorMessage, WarmbootError } from '../shared/errors';
import { EventRegistry, type ParsedEvent, route } from '../shared/event-registry';
import { createLambdaHandler } from '../shared/lambda';
import type { Runtime } from '../shared/runtime';
import { logicalDocumentName } from '../shared/ssm-document';
import { ec2HostDirectory, ec2VolumeLinks } from './adapters/ec2';
import { groupPopularity } from './adapters/popularity';
import { ssmCacheCommands } from './adapters/ssm';
import { DynamoImageCacheStore } from './adapters/store';
import { loadImageCacheConfig } from './config';
import {
  ec2InstanceStateChangeDetail,
  type PlanCacheDetail,
  pinImageDetail,
  planCacheDetail,
  popularityChangedDetail,
  registerImageDetail,
  scheduledEventDetail,
  ssmCommandInvocationStatusDetail,
  unpinImageDetail,
} from './schemas';
import { type ImageCacheDependencies, ImageCacheService, type PlanSummary } from './service';

type GroupResult =
  | { readonly id: string; readonly ok: true; readonly plan: PlanSummary }
  | {
      readonly id: string;
      readonly ok: false;
      readonly error: { readonly code: string; readonly message: string };
    };

/** Runs `work` for each group; one failing group never stops the others. */
const perGroup = async (
  groups: readonly string[],
  work: (group: string) => Promise<PlanSummary>,
): Promise<GroupResult[]> => {
  const results: GroupResult[] = [];
  for (const id of groups) {
    try {
      results.push({ id, ok: true, plan: await work(id) });
    } catch (error) {
      results.push({
        id,
        ok: false,
        error: { code: error instanceof WarmbootError ? error.code : 'Error', message: errorMessage(error) },
      });
    }
  }
  return results;
};

/**
 * The routes. `serviceFor(account)`: the service of the account the event is for, which the
 * envelope check has pinned to the function's own (what `self` in the allowlists stands for).
 */
export const imageCacheRegistry = (
  serviceFor: (account: string) => ImageCacheService,
  groupNames: readonly string[],
) => {
  const planCache = async (event: ParsedEvent<PlanCacheDetail>): Promise<PlanSummary | GroupResult[]> => {
    const service = serviceFor(event.account);
    const requested = (event.detail.warm ?? []).flatMap((warm) =>
      warm.instanceIds.map((instanceId) => ({ instanceId, imageId: warm.imageId })),
    );
    return event.detail.hostGroup
      ? service.plan(event.detail.hostGroup, requested)
      : perGroup(groupNames, (group) => service.plan(group));
  };
  return new EventRegistry<unknown>([
    route(WARMBOOT, 'Register Image', registerImageDetail, (event) =>
      serviceFor(event.account).registerImage(event.detail.image, {
        ...(event.detail.expectedVersion !== undefined
          ? { expectedVersion: event.detail.expectedVersion }
          : {}),
        ...(event.caller ? { caller: event.caller } : {}),
      }),
    ),
    route(WARMBOOT, 'Pin Image', pinImageDetail, (event) =>
      serviceFor(event.account).pin(
        event.detail.hostGroup,
        event.detail.imageId,
        event.detail.image,
        event.caller,
      ),
    ),
    route(WARMBOOT, 'Unpin Image', unpinImageDetail, (event) =>
      serviceFor(event.account).unpin(event.detail.hostGroup, event.detail.imageId),
    ),
    route(WARMBOOT, 'Plan Cache', planCacheDetail, planCache),
    // Placement asks for a plan when it found no warm host for an image.
    route(WARMBOOT_FACT, 'Plan Cache', planCacheDetail, planCache),
    route(WARMBOOT_FACT, 'Popularity Changed', popularityChangedDetail, (event) => {
      const { scope } = event.detail;
      const groups =
        scope.kind === 'hostGroup' ? groupNames.filter((name) => name === scope.hostGroup) : groupNames;
      return perGroup(groups, (group) => serviceFor(event.account).plan(group));
    }),
    route('aws.ssm', SSM_COMMAND_STATUS, ssmCommandInvocationStatusDetail, (event) =>
      serviceFor(event.account).onCommandStatus({
        commandId: event.detail['command-id'],
        instanceId: event.detail['instance-id'],
        status: event.detail.status,
        document: logicalDocumentName(event.detail['document-name']),
      }),
    ),
    route('aws.ec2', EC2_STATE_CHANGE, ec2InstanceStateChangeDetail, (event) =>
      serviceFor(event.account).onHostState(event.detail['instance-id'], event.detail.state),
    ),
    route('aws.events', SCHEDULED_EVENT, scheduledEventDetail, (event) =>
      perGroup(groupNames, (group) => serviceFor(event.account).reconcile(group)),
    ),
  ]);
};

/** The composition root: production adapters over the runtime's clients. */
export const imageCacheDependencies = (runtime: Runtime, account: string): ImageCacheDependencies => {
  const config = loadImageCacheConfig(runtime.env);
  const popularity = loadPopularityConfig(runtime.env);
  return {
    groups: config.HOST_GROUPS,
    region: runtime.env.AWS_REGION ?? 'us-east-1',
    account,
    store: new DynamoImageCacheStore(runtime.clients.documents, config.IMAGE_CACHE_TABLE),
    hosts: ec2HostDirectory(runtime.clients.ec2),
    commands: ssmCacheCommands(runtime.clients.ssm),
    volumes: ec2VolumeLinks(runtime.clients.ec2),
    popularity: groupPopularity(
      new DynamoPopularityStore({
        client: runtime.clients.dynamodb,
        tableName: popularity.popularityTable,
        settings: {
          decay: decayParameters(popularity.settings.halfLifeHours),
          shards: popularity.settings.shards,
        },
        dedupeTtlMs: popularity.settings.dedupeTtlHours * 3_600_000,
        sleep: (ms) => runtime.clock.sleep(ms),
        random: runtime.random,
      }),
    ),
    facts: factPublisher(runtime),
    clock: runtime.clock,
    random: runtime.random,
    logger: runtime.logger,
    metrics: runtime.metrics,
  };
};

export const createImageCacheHandler = (runtime: Runtime) => {
  // The wait for a joining host's agent ends before the Lambda timeout (service.ts).
  const deadline = new InvocationDeadline(runtime.clock);
  const config = loadImageCacheConfig(runtime.env);
  // One account per function in practice (the envelope check refuses any other); the service is
  // built on its first event, when the account is known.
  const services = new Map<string, ImageCacheService>();
  const serviceFor = (account: string): ImageCacheService => {
    const existing = services.get(account);
    if (existing) return existing;
    const service = new ImageCacheService({ ...imageCacheDependencies(runtime, account), deadline });
    services.set(account, service);
    return service;
  };
  return createLambdaHandler(
    imageCacheRegistry(
      serviceFor,
      config.HOST_GROUPS.map((group) => group.name),
    ),
    runtime,
    { deadline },
  );
};
