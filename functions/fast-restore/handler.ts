import { FSR_STATE_CHANGE, SCHEDULED_EVENT, WARMBOOT } from '../catalog';
import type { ClientsWith } from '../shared/aws-clients';
import { EventRegistry, route } from '../shared/event-registry';
import { createLambdaHandler } from '../shared/lambda';
import type { Runtime } from '../shared/runtime';
import { fastSnapshotRestoreStateChangeDetail, scheduledEventDetail } from '../shared/schemas/aws-events';
import { type FastRestoreRound, runFastRestoreRound } from './application/rounds';
import { recordStateChange, type StateRecorded } from './application/state-changes';
import { loadFastRestoreConfig } from './config';
import { type FastRestoreDependencies, fastRestoreDependencies } from './dependencies';
import { PLAN_FAST_RESTORE, planFastRestoreSchema } from './schemas';

export type FastRestoreOutcome = FastRestoreRound | StateRecorded;

export const createFastRestoreRegistry = (
  dependencies: FastRestoreDependencies,
): EventRegistry<FastRestoreOutcome> =>
  new EventRegistry<FastRestoreOutcome>([
    route('aws.events', SCHEDULED_EVENT, scheduledEventDetail, () =>
      runFastRestoreRound(dependencies, dependencies.clock.now(), { dryRun: false }),
    ),
    route(WARMBOOT, PLAN_FAST_RESTORE, planFastRestoreSchema, (event) =>
      runFastRestoreRound(dependencies, dependencies.clock.now(), { dryRun: event.detail.dryRun }),
    ),
    route('aws.ec2', FSR_STATE_CHANGE, fastSnapshotRestoreStateChangeDetail, (event) =>
      recordStateChange(dependencies, event),
    ),
  ]);

export const createFastRestoreHandler = (runtime: Runtime<ClientsWith<'ec2'>>) =>
  createLambdaHandler(
    createFastRestoreRegistry(fastRestoreDependencies(runtime, loadFastRestoreConfig(runtime.env))),
    runtime,
  );
