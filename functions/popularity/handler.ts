import { EC2_STATE_CHANGE, ECS_TASK_STATE, WARMBOOT } from '../catalog';
import type { ClientsWith } from '../shared/aws-clients';
import { EventRegistry, route } from '../shared/event-registry';
import { createLambdaHandler } from '../shared/lambda';
import type { Runtime } from '../shared/runtime';
import { ec2InstanceStateChangeDetail, ecsTaskStateChangeDetail } from '../shared/schemas/aws-events';
import {
  countInstanceLaunch,
  countReportedLaunch,
  countTaskLaunch,
  type LaunchOutcome,
  prefetchLaunchedInstances,
} from './application/launch-events';
import { loadPopularityConfig } from './config';
import { type PopularityDependencies, popularityDependencies } from './dependencies';
import { IMAGE_LAUNCHED, imageLaunchedSchema } from './schemas';

export const createPopularityRegistry = (
  dependencies: PopularityDependencies,
): EventRegistry<LaunchOutcome> =>
  new EventRegistry<LaunchOutcome>([
    route(
      'aws.ec2',
      EC2_STATE_CHANGE,
      ec2InstanceStateChangeDetail,
      (event) => countInstanceLaunch(dependencies, event),
      { prepare: (events) => prefetchLaunchedInstances(dependencies, events) },
    ),
    route('aws.ecs', ECS_TASK_STATE, ecsTaskStateChangeDetail, (event) =>
      countTaskLaunch(dependencies, event),
    ),
    route(WARMBOOT, IMAGE_LAUNCHED, imageLaunchedSchema, (event) => countReportedLaunch(dependencies, event)),
  ]);

export const createPopularityHandler = (runtime: Runtime<ClientsWith<'ec2'>>) =>
  createLambdaHandler(
    createPopularityRegistry(popularityDependencies(runtime, loadPopularityConfig(runtime.env))),
    runtime,
  );
