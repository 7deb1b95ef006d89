import { EC2_STATE_CHANGE, SCHEDULED_EVENT, WARMBOOT } from '../catalog';
import type { ClientsWith } from '../shared/aws-clients';
import type { Caller } from '../shared/caller';
import { InvocationDeadline } from '../shared/deadline';
import { EventRegistry, route } from '../shared/event-registry';
import { createLambdaHandler } from '../shared/lambda';
import type { ItemResult } from '../shared/results';
import type { Runtime } from '../shared/runtime';
import { type DeletionResult, deleteShelvedRecord } from './application/deletion';
import type { RoundSummary } from './application/progress';
import {
  offloadInstances,
  type RequestOrigin,
  shelveInstances,
  unshelveInstances,
} from './application/requests';
import { RoundRunner } from './application/rounds';
import { loadShelvingConfig } from './config';
import { type ShelvingDependencies, shelvingDependencies } from './dependencies';
import { NO_CALLER } from './domain/tenancy';
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
  | { readonly kind: 'delete'; readonly result: DeletionResult };

/**
 * The routes: parse (by the registry), call one use case (application/), shape the answer. Every
 * request acts for the caller the registry derived from how it arrived (functions/shared/caller.ts);
 * one round runner per registry (per process) keeps concurrent rounds off each other's records.
 */
export const createShelvingRegistry = (deps: ShelvingDependencies): EventRegistry<ShelvingOutcome> => {
  const rounds = new RoundRunner(deps);
  const originOf = (event: { id: string; time: string; caller?: Caller }): RequestOrigin => ({
    requestId: event.id,
    sentAt: Date.parse(event.time),
    caller: event.caller ?? NO_CALLER,
  });
  return new EventRegistry<ShelvingOutcome>([
    route(WARMBOOT, SHELVE_INSTANCES, shelveInstancesDetail, async (event) => ({
      kind: 'items',
      results: await shelveInstances(deps, rounds, event.detail, originOf(event)),
    })),
    route(WARMBOOT, OFFLOAD_INSTANCES, offloadInstancesDetail, async (event) => ({
      kind: 'items',
      results: await offloadInstances(deps, rounds, event.detail, originOf(event)),
    })),
    route(WARMBOOT, UNSHELVE_INSTANCES, unshelveInstancesDetail, async (event) => ({
      kind: 'items',
      results: await unshelveInstances(deps, rounds, event.detail, originOf(event)),
    })),
    route(WARMBOOT, DELETE_SHELVED_RECORD, deleteShelvedRecordDetail, async ({ detail }) => ({
      kind: 'delete',
      result: await deleteShelvedRecord(deps, detail.recordId, detail.confirm),
    })),
    route('aws.ec2', EC2_STATE_CHANGE, instanceStateDetail, async ({ detail }) => ({
      kind: 'round',
      round: await rounds.onInstanceState(detail['instance-id']),
    })),
    route('aws.events', SCHEDULED_EVENT, scheduledDetail, async () => ({
      kind: 'round',
      round: await rounds.reconcile(),
    })),
  ]);
};

export const createShelvingHandler = (runtime: Runtime<ClientsWith<'ec2'>>) => {
  // A request or schedule invocation follows its records until they settle, ending before the
  // Lambda timeout (application/rounds.ts).
  const deadline = new InvocationDeadline(runtime.clock);
  return createLambdaHandler(
    createShelvingRegistry(shelvingDependencies(runtime, loadShelvingConfig(runtime.env), deadline)),
    runtime,
    { deadline },
  );
};
