import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { EC2_STATE_CHANGE, SCHEDULED_EVENT, WARMBOOT } from '../catalog';
import { factPublisher } from '../shared/adapters/facts';
import type { Caller } from '../shared/caller';
import { ValidationError } from '../shared/errors';
import { EventRegistry, route } from '../shared/event-registry';
import { createLambdaHandler } from '../shared/lambda';
import type { Runtime } from '../shared/runtime';
import { sdkShelvingEc2 } from './adapters/ec2';
import { dynamoShelfStore } from './adapters/store';
import { loadShelvingConfig, type ShelvingSettings } from './config';
import { Pacer } from './domain/pacer';
import { NO_CALLER, requestedTenantRefusal } from './domain/tenancy';
import type { ItemResult, ShelvingFact } from './domain/types';
import { type RoundSummary, type ShelvingDeps, ShelvingEngine } from './engine';
import {
  deleteShelvedRecordDetail,
  instanceStateDetail,
  offloadInstancesDetail,
  scheduledDetail,
  shelveInstancesDetail,
  unshelveInstancesDetail,
} from './schemas';

export const SHELVE_INSTANCES = 'Shelve Instances';
export const OFFLOAD_INSTANCES = 'Offload Instances';
export const UNSHELVE_INSTANCES = 'Unshelve Instances';
export const DELETE_SHELVED_RECORD = 'Delete Shelved Record';

/** What every route answers: per-item results for requests, the round's progress for events. */
export type ShelvingOutcome =
  | { readonly kind: 'items'; readonly results: readonly ItemResult[] }
  | { readonly kind: 'round'; readonly round: RoundSummary }
  | { readonly kind: 'delete'; readonly result: Awaited<ReturnType<ShelvingEngine['deleteRecord']>> };

const checkSize = (
  field: string,
  items: readonly unknown[] | undefined,
  settings: ShelvingSettings,
): void => {
  if (items && items.length > settings.maxInstancesPerRequest) {
    throw new ValidationError(field, `at most ${settings.maxInstancesPerRequest} items per request`);
  }
};

/** A `detail.tenant` the caller does not act for refuses the whole request, naming the field. */
const checkRequestedTenant = (caller: Caller, tenant: string | undefined): void => {
  const refusal = requestedTenantRefusal(caller, tenant);
  if (refusal) throw new ValidationError('detail.tenant', refusal);
};

/**
 * The routes: parse (by the registry), call the engine once, shape the answer. Every request acts
 * for the caller the registry derived from how it arrived (functions/shared/caller.ts).
 */
export const createShelvingRegistry = (engine: ShelvingEngine): EventRegistry<ShelvingOutcome> =>
  new EventRegistry<ShelvingOutcome>([
    route(WARMBOOT, SHELVE_INSTANCES, shelveInstancesDetail, async ({ id, time, detail, caller }) => {
      checkSize('detail.instanceIds', detail.instanceIds, engine.settings);
      const actingFor = caller ?? NO_CALLER;
      checkRequestedTenant(actingFor, detail.tenant);
      const results = await engine.shelve(
        detail.instanceIds.map((instanceId) => ({
          instanceId,
          ...(detail.tenant !== undefined ? { tenant: detail.tenant } : {}),
          ...(detail.offloadAfterSeconds !== undefined
            ? { offloadAfterSeconds: detail.offloadAfterSeconds }
            : {}),
          ...(detail.snapshot !== undefined ? { snapshot: detail.snapshot } : {}),
        })),
        id,
        Date.parse(time),
        actingFor,
      );
      return { kind: 'items', results };
    }),
    route(WARMBOOT, OFFLOAD_INSTANCES, offloadInstancesDetail, async ({ id, time, detail, caller }) => {
      checkSize('detail.recordIds', detail.recordIds, engine.settings);
      checkSize('detail.instanceIds', detail.instanceIds, engine.settings);
      return {
        kind: 'items',
        results: await engine.offloadRequest(
          { recordIds: detail.recordIds, instanceIds: detail.instanceIds },
          id,
          Date.parse(time),
          caller ?? NO_CALLER,
        ),
      };
    }),
    route(WARMBOOT, UNSHELVE_INSTANCES, unshelveInstancesDetail, async ({ id, time, detail, caller }) => {
      checkSize('detail.recordIds', detail.recordIds, engine.settings);
      checkSize('detail.instanceIds', detail.instanceIds, engine.settings);
      const actingFor = caller ?? NO_CALLER;
      checkRequestedTenant(actingFor, detail.tenant);
      return {
        kind: 'items',
        results: await engine.unshelveRequest(
          { recordIds: detail.recordIds, instanceIds: detail.instanceIds, tenant: detail.tenant },
          id,
          Date.parse(time),
          actingFor,
        ),
      };
    }),
    route(WARMBOOT, DELETE_SHELVED_RECORD, deleteShelvedRecordDetail, async ({ detail }) => ({
      kind: 'delete',
      result: await engine.deleteRecord(detail.recordId, detail.confirm),
    })),
    route('aws.ec2', EC2_STATE_CHANGE, instanceStateDetail, async ({ detail }) => ({
      kind: 'round',
      round: await engine.onInstanceState(detail['instance-id']),
    })),
    route('aws.events', SCHEDULED_EVENT, scheduledDetail, async () => ({
      kind: 'round',
      round: await engine.reconcile(),
    })),
  ]);

/** EMF: time to ready per path, shelved GiB, throttles. */
const recordFactMetrics = (runtime: Runtime) => (fact: ShelvingFact) => {
  if (fact.detailType === 'Instance Unshelved') {
    const metric = runtime.metrics.singleMetric();
    metric.addDimension('Path', `${fact.detail.path}-unshelve`);
    metric.addMetric('TimeToReadySeconds', MetricUnit.Seconds, fact.detail.timeToReadySeconds);
  } else if (fact.detailType === 'Instance Shelved') {
    runtime.metrics.addMetric('ShelvedVolumeGiB', MetricUnit.Gigabytes, fact.detail.shelvedVolumeGiB);
  }
};

/** The composition root: production adapters over the runtime's clients, one pacer per environment. */
export const shelvingDependencies = (runtime: Runtime): ShelvingDeps => {
  const config = loadShelvingConfig(runtime.env);
  return {
    ec2: sdkShelvingEc2(runtime.clients.ec2, new Pacer(), runtime.clock),
    store: dynamoShelfStore(runtime.clients.documents, config.tableName),
    facts: factPublisher(runtime),
    clock: runtime.clock,
    settings: config.settings,
    onFact: recordFactMetrics(runtime),
    onThrottle: () => runtime.metrics.addMetric('Throttles', MetricUnit.Count, 1),
  };
};

export const createShelvingHandler = (runtime: Runtime) =>
  createLambdaHandler(createShelvingRegistry(new ShelvingEngine(shelvingDependencies(runtime))), runtime);
