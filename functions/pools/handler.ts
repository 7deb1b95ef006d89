import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { EC2_STATE_CHANGE, SCHEDULED_EVENT, SSM_COMMAND_STATUS, WARMBOOT, WARMBOOT_FACT } from '../catalog';
import { factPublisher } from '../shared/adapters/facts';
import { loadConfig } from '../shared/config';
import { InvocationDeadline } from '../shared/deadline';
import { EventRegistry, route } from '../shared/event-registry';
import { createLambdaHandler } from '../shared/lambda';
import type { Runtime } from '../shared/runtime';
import {
  ec2InstanceStateChangeDetail,
  scheduledEventDetail,
  ssmCommandInvocationStatusDetail,
} from '../shared/schemas/aws-events';
import { logicalDocumentName } from '../shared/ssm-document';
import { sdkPoolEc2, sdkPoolSsm } from './adapters/ec2';
import { dynamoPoolStore } from './adapters/store';
import { defineRuntimePool } from './admission';
import { poolsConfigSchema } from './config';
import { definePoolDetail, drainPoolDetail, reconcilePoolsDetail, serverClaimedDetail } from './schemas';
import {
  drainPool,
  onInitStatus,
  onInstanceState,
  type PoolDeps,
  type ReconcileSummary,
  reconcileAllPools,
  reconcileOne,
} from './service';

/**
 * The pools function: Define / Drain / Reconcile Pools, Server Claimed (refill), member EC2 state
 * changes and init command results, and the scheduled reconcile that heals lost events and
 * upserts the pools defined in CDK context (POOLS).
 */
export const createPoolsHandler = (runtime: Runtime) => {
  const config = loadConfig(poolsConfigSchema, runtime.env);
  // Every wait and every action of an invocation ends before the Lambda timeout (service.ts).
  const deadline = new InvocationDeadline(runtime.clock);
  const deps: PoolDeps = {
    store: dynamoPoolStore(runtime.clients.documents, config.POOLS_TABLE),
    ec2: sdkPoolEc2(runtime.clients.ec2, config.POOL_POLICY.allowedImageOwners),
    ssm: sdkPoolSsm(runtime.clients.ssm),
    facts: factPublisher(runtime),
    clock: runtime.clock,
    random: runtime.random,
    deadline,
  };
  const now = () => runtime.clock.now();
  /**
   * Instances someone else tagged as pool members (security review H1): left alone, but an
   * operator must hear of them; `ForeignTaggedInstances` is the metric to alarm on.
   */
  const reportForeign = (summary: ReconcileSummary): ReconcileSummary => {
    const foreign = summary.foreignTagged ?? [];
    if (foreign.length > 0) {
      runtime.logger.warn('instances carry the pool tag but warmboot did not launch them; left alone', {
        pool: summary.pool,
        instanceIds: foreign,
      });
    }
    runtime.metrics
      .singleMetric()
      .addDimension('Pool', summary.pool)
      .addMetric('ForeignTaggedInstances', MetricUnit.Count, foreign.length);
    return summary;
  };
  const reconcileAll = async () => {
    const results = await reconcileAllPools(deps, config.POOLS, now());
    for (const result of results) {
      reportForeign(result);
      runtime.metrics
        .singleMetric()
        .addDimension('Pool', result.pool)
        .addMetric('PoolReadyMembers', MetricUnit.Count, result.ready);
    }
    return results;
  };

  const registry = new EventRegistry<unknown>([
    route(WARMBOOT, 'Define Pool', definePoolDetail, ({ detail }) =>
      defineRuntimePool(deps, detail.pool, config.POOLS, config.POOL_POLICY, now()).then(reportForeign),
    ),
    route(WARMBOOT, 'Drain Pool', drainPoolDetail, ({ detail }) =>
      drainPool(deps, detail.pool, now()).then(reportForeign),
    ),
    route(WARMBOOT, 'Reconcile Pools', reconcilePoolsDetail, async ({ detail }) =>
      detail.pool ? [reportForeign(await reconcileOne(deps, detail.pool, now()))] : reconcileAll(),
    ),
    route('aws.events', SCHEDULED_EVENT, scheduledEventDetail, () => reconcileAll()),
    route(WARMBOOT_FACT, 'Server Claimed', serverClaimedDetail, ({ detail }) =>
      reconcileOne(deps, detail.pool, now()).then(reportForeign),
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
  return createLambdaHandler(registry, runtime, { deadline });
};
