import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { sdkPoolEc2 } from '../pools/adapters/ec2';
import { dynamoPoolStore } from '../pools/adapters/store';
import { type FactPublisher, factPublisher } from '../shared/adapters/facts';
import type { ClientsWith } from '../shared/aws-clients';
import type { Clock } from '../shared/clock';
import type { Deadline } from '../shared/deadline';
import type { Runtime } from '../shared/runtime';
import { type ShelvingEc2, sdkShelvingEc2 } from './adapters/ec2';
import { dynamoShelfStore, type ShelfStore } from './adapters/store';
import type { PoolAccess } from './application/pool-members';
import type { ShelvingConfig, ShelvingSettings } from './config';
import type { ShelvingFact } from './domain/actions';

/** What the shelving use cases (application/) work with: the ports, the clock and the settings. */
export interface ShelvingDependencies {
  readonly ec2: ShelvingEc2;
  readonly store: ShelfStore;
  readonly facts: FactPublisher;
  readonly clock: Clock;
  readonly settings: ShelvingSettings;
  /**
   * How long the invocation may keep following its records (rounds.ts); absent: only the
   * follow limits bound it (tests and scripts).
   */
  readonly deadline?: Deadline;
  /** The pools whose running members may serve an unshelve (`unshelveFromPools`); absent otherwise. */
  readonly pools?: PoolAccess;
  /** Called for every fact published (metrics); optional. */
  readonly onFact?: (fact: ShelvingFact) => void;
  /** Called for every call still throttled after the SDK's retries (metrics); optional. */
  readonly onThrottle?: () => void;
}

/** EMF: time to ready per path, shelved GiB. */
const recordFactMetrics = (runtime: Runtime<ClientsWith<'ec2'>>) => (fact: ShelvingFact) => {
  if (fact.detailType === 'Instance Unshelved') {
    const metric = runtime.metrics.singleMetric();
    metric.addDimension('Path', `${fact.detail.path}-unshelve`);
    metric.addMetric('TimeToReadySeconds', MetricUnit.Seconds, fact.detail.timeToReadySeconds);
  } else if (fact.detailType === 'Instance Shelved') {
    runtime.metrics.addMetric('ShelvedVolumeGiB', MetricUnit.Gigabytes, fact.detail.shelvedVolumeGiB);
  }
};

/** The composition root: production adapters over the runtime's clients (the EC2 client paced by the account budget). */
export const shelvingDependencies = (
  runtime: Runtime<ClientsWith<'ec2'>>,
  config: ShelvingConfig,
  deadline?: Deadline,
): ShelvingDependencies => ({
  ec2: sdkShelvingEc2(runtime.clients.ec2),
  store: dynamoShelfStore(runtime.clients.documents, config.tables.shelf),
  facts: factPublisher(runtime),
  clock: runtime.clock,
  settings: config.settings,
  ...(deadline ? { deadline } : {}),
  ...(config.tables.pools !== undefined
    ? {
        pools: {
          store: dynamoPoolStore(runtime.clients.documents, config.tables.pools),
          // Only describe and untag are used: no launch, so no image owner to allow.
          ec2: sdkPoolEc2(runtime.clients.ec2, []),
        },
      }
    : {}),
  onFact: recordFactMetrics(runtime),
  onThrottle: () => runtime.metrics.addMetric('Throttles', MetricUnit.Count, 1),
});
