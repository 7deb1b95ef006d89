import { EC2_STATE_CHANGE, SCHEDULED_EVENT, SSM_COMMAND_STATUS, WARMBOOT, WARMBOOT_FACT } from '../catalog';
import type { ClientsWith } from '../shared/aws-clients';
import { InvocationDeadline } from '../shared/deadline';
import { EventRegistry, type ParsedEvent, route } from '../shared/event-registry';
import { createLambdaHandler } from '../shared/lambda';
import type { Runtime } from '../shared/runtime';
import { logicalDocumentName } from '../shared/ssm-document';
import { ImageCacheService } from './application/image-cache';
import { loadImageCacheConfig } from './config';
import { imageCacheDependencies } from './dependencies';
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

/**
 * The routes. `serviceFor(account)`: the use cases of the account the event is for, which the
 * envelope check has pinned to the function's own (what `self` in the allowlists stands for).
 */
export const createImageCacheRegistry = (serviceFor: (account: string) => ImageCacheService) => {
  const planCache = (event: ParsedEvent<PlanCacheDetail>) =>
    serviceFor(event.account).planCache(event.detail);
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
    route(WARMBOOT_FACT, 'Popularity Changed', popularityChangedDetail, (event) =>
      serviceFor(event.account).planForPopularity(event.detail.scope),
    ),
    route('aws.ssm', SSM_COMMAND_STATUS, ssmCommandInvocationStatusDetail, (event) =>
      serviceFor(event.account).onCommandStatus({
        commandId: event.detail['command-id'],
        instanceId: event.detail['instance-id'],
        status: event.detail.status,
        document: logicalDocumentName(event.detail['document-name']),
      }),
    ),
    route(
      'aws.ec2',
      EC2_STATE_CHANGE,
      ec2InstanceStateChangeDetail,
      (event) => serviceFor(event.account).onHostState(event.detail['instance-id'], event.detail.state),
      {
        prepare: async (events) => {
          const [first] = events;
          if (!first) return;
          await serviceFor(first.account).prefetchHosts(
            events.map(({ detail }) => ({ instanceId: detail['instance-id'], state: detail.state })),
          );
        },
      },
    ),
    route('aws.events', SCHEDULED_EVENT, scheduledEventDetail, (event) =>
      serviceFor(event.account).reconcileAll(),
    ),
  ]);
};

export const createImageCacheHandler = (runtime: Runtime<ClientsWith<'ec2' | 'ssm'>>) => {
  // The wait for a joining host's agent ends before the Lambda timeout (application/membership.ts).
  const deadline = new InvocationDeadline(runtime.clock);
  const config = loadImageCacheConfig(runtime.env);
  // One account per function in practice (the envelope check refuses any other); the use cases
  // are bound on the first event, when the account is known.
  const services = new Map<string, ImageCacheService>();
  const serviceFor = (account: string): ImageCacheService => {
    const existing = services.get(account);
    if (existing) return existing;
    const service = new ImageCacheService({ ...imageCacheDependencies(runtime, config, account), deadline });
    services.set(account, service);
    return service;
  };
  return createLambdaHandler(createImageCacheRegistry(serviceFor), runtime, { deadline });
};
