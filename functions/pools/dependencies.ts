import { type FactPublisher, factPublisher } from '../shared/adapters/facts';
import type { ClientsWith } from '../shared/aws-clients';
import type { Clock } from '../shared/clock';
import { type Deadline, InvocationDeadline } from '../shared/deadline';
import type { Runtime } from '../shared/runtime';
import { type PoolEc2, type PoolSsm, sdkPoolEc2, sdkPoolSsm } from './adapters/ec2';
import { dynamoPoolStore, type PoolStore } from './adapters/store';
import { type PoolTelemetry, powertoolsPoolTelemetry } from './adapters/telemetry';
import type { PoolModelConfig } from './config';

/** What the pools use cases work with; the claim function's dependencies build on these. */
export interface PoolsDependencies {
  readonly store: PoolStore;
  readonly ec2: PoolEc2;
  readonly ssm: PoolSsm;
  readonly facts: FactPublisher;
  readonly clock: Clock;
  /** Names this invocation's reconcile lease. */
  readonly random: () => number;
  readonly telemetry: PoolTelemetry;
  /** The invocation's time left (Lambda context); every wait and every further action fits in it. */
  readonly deadline?: Deadline;
}

/**
 * The composition root of the pool model, for the pools function and the claim function alike.
 * The deadline is the invocation's: the Lambda handler chain begins it with each context.
 */
export const poolsDependencies = (
  runtime: Runtime<ClientsWith<'ec2' | 'ssm'>>,
  config: PoolModelConfig,
): PoolsDependencies & { readonly deadline: InvocationDeadline } => ({
  store: dynamoPoolStore(runtime.clients.documents, config.tables.pools),
  ec2: sdkPoolEc2(runtime.clients.ec2, config.settings.policy.allowedImageOwners),
  ssm: sdkPoolSsm(runtime.clients.ssm),
  facts: factPublisher(runtime),
  clock: runtime.clock,
  random: runtime.random,
  telemetry: powertoolsPoolTelemetry(runtime.metrics, runtime.logger),
  deadline: new InvocationDeadline(runtime.clock),
});
