import { EC2_STATE_CHANGE, SCHEDULED_EVENT, SSM_COMMAND_STATUS, WARMBOOT, WARMBOOT_FACT } from '../catalog';
import type { ClientsWith } from '../shared/aws-clients';
import { EventRegistry, route } from '../shared/event-registry';
import { createLambdaHandler } from '../shared/lambda';
import type { Runtime } from '../shared/runtime';
import {
  ec2InstanceStateChangeDetail,
  scheduledEventDetail,
  ssmCommandInvocationStatusDetail,
} from '../shared/schemas/aws-events';
import { logicalDocumentName } from '../shared/ssm-document';
import { onInitStatus, onInstanceState } from './application/member-events';
import { reconcileAllPools, reconcileOne } from './application/reconcile-round';
import { defineRuntimePool, drainPool, reconcileRequested } from './application/requests';
import { loadPoolsConfig, type PoolsConfig } from './config';
import { type PoolsDependencies, poolsDependencies } from './dependencies';
import { definePoolDetail, drainPoolDetail, reconcilePoolsDetail, serverClaimedDetail } from './schemas';

/**
 * The pools function's routes: Define / Drain / Reconcile Pools, Server Claimed (refill), member
 * EC2 state changes and init command results, and the scheduled reconcile that heals lost events
 * and upserts the pools defined in CDK context (POOLS).
 */
export const createPoolsRegistry = (deps: PoolsDependencies, settings: PoolsConfig['settings']) => {
  const now = () => deps.clock.now();
  return new EventRegistry<unknown>([
    route(WARMBOOT, 'Define Pool', definePoolDetail, ({ detail }) =>
      defineRuntimePool(deps, detail.pool, settings.pools, settings.policy, now()),
    ),
    route(WARMBOOT, 'Drain Pool', drainPoolDetail, ({ detail }) => drainPool(deps, detail.pool, now())),
    route(WARMBOOT, 'Reconcile Pools', reconcilePoolsDetail, ({ detail }) =>
      reconcileRequested(deps, detail.pool, settings.pools, now()),
    ),
    route('aws.events', SCHEDULED_EVENT, scheduledEventDetail, () =>
      reconcileAllPools(deps, settings.pools, now()),
    ),
    route(WARMBOOT_FACT, 'Server Claimed', serverClaimedDetail, ({ detail }) =>
      reconcileOne(deps, detail.pool, now()),
    ),
    route('aws.ec2', EC2_STATE_CHANGE, ec2InstanceStateChangeDetail, ({ detail }) =>
      onInstanceState(deps, detail['instance-id'], detail.state, now()),
    ),
    route('aws.ssm', SSM_COMMAND_STATUS, ssmCommandInvocationStatusDetail, ({ detail }) =>
      onInitStatus(
        deps,
        {
          instanceId: detail['instance-id'],
          commandId: detail['command-id'],
          status: detail.status,
          documentName: logicalDocumentName(detail['document-name']),
        },
        now(),
      ),
    ),
  ]);
};

export const createPoolsHandler = (runtime: Runtime<ClientsWith<'ec2' | 'ssm'>>) => {
  const config = loadPoolsConfig(runtime.env);
  // Every wait and every action of an invocation ends before the Lambda timeout.
  const deps = poolsDependencies(runtime, config);
  return createLambdaHandler(createPoolsRegistry(deps, config.settings), runtime, {
    deadline: deps.deadline,
  });
};
