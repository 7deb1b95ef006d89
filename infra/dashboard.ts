import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import type { FunctionId } from '../functions/catalog';
import type { FastRestoreSettings } from '../functions/fast-restore/config';
import type { HostGroup } from '../functions/image-cache/config';
import type { PoolSpec } from '../functions/pools/config';
import { METRICS_NAMESPACE } from '../functions/shared/runtime';
import type { WarmbootFunction } from './function';

/**
 * The metrics contract with the capability teams. Powertools EMF, namespace `Warmboot`; every
 * metric carries Powertools' default `service` dimension (the catalog function id passed to
 * productionRuntime) plus the dimension listed here. A metric emitted with another dimension set
 * is a different CloudWatch metric and will not show up here.
 *
 * | metric                   | service     | dimension | unit    |
 * |--------------------------|-------------|-----------|---------|
 * | WarmRatio                | imageCache  | HostGroup | Percent |
 * | CacheBytesUsed           | imageCache  | HostGroup | Bytes   |
 * | CacheBudgetBytes         | imageCache  | HostGroup | Bytes   |
 * | PinnedImages             | imageCache  | HostGroup | Count   |
 * | CachePlanPendingActions  | imageCache  | HostGroup | Count   |
 * | FastRestorePairs         | fastRestore | -         | Count   |
 * | FastRestoreUsdPerHour    | fastRestore | -         | None    |
 * | PoolReadyMembers         | pools       | Pool      | Count   |
 * | PoolHitRatio             | claim       | Pool      | Percent (100 per hit, 0 per cold launch) |
 * | TimeToReadySeconds       | claim       | Path = hot, warm, cold                   | Seconds |
 * | TimeToReadySeconds       | shelving    | Path = fast-unshelve, slow-unshelve      | Seconds |
 * | ShelvedVolumeGiB         | shelving    | -         | Gigabytes |
 * | Throttles                | any         | -         | Count   |
 */
export const METRICS = {
  warmRatio: 'WarmRatio',
  cacheBytesUsed: 'CacheBytesUsed',
  cacheBudgetBytes: 'CacheBudgetBytes',
  pinnedImages: 'PinnedImages',
  cachePlanPendingActions: 'CachePlanPendingActions',
  fastRestorePairs: 'FastRestorePairs',
  fastRestoreUsdPerHour: 'FastRestoreUsdPerHour',
  poolReadyMembers: 'PoolReadyMembers',
  poolHitRatio: 'PoolHitRatio',
  timeToReadySeconds: 'TimeToReadySeconds',
  shelvedVolumeGiB: 'ShelvedVolumeGiB',
  throttles: 'Throttles',
} as const;

const READY_PATHS: readonly { service: FunctionId; path: string }[] = [
  { service: 'claim', path: 'hot' },
  { service: 'claim', path: 'warm' },
  { service: 'claim', path: 'cold' },
  { service: 'shelving', path: 'fast-unshelve' },
  { service: 'shelving', path: 'slow-unshelve' },
];

export interface WarmbootDashboardProps {
  /** Every function: errors, throttles and dead-letter depth, and their alarms in one widget. */
  readonly functions: readonly WarmbootFunction[];
  /** Host groups from configuration; each gets its cache metrics and a convergence alarm. @default [] */
  readonly hostGroups?: readonly HostGroup[];
  /** Pools from configuration; each with `minSize > 0` gets a pool-empty alarm. @default [] */
  readonly pools?: readonly PoolSpec[];
  /** The fast-restore budget, drawn on the cost graph and alarmed on. */
  readonly fastRestore: FastRestoreSettings;
  /** Alarm notifications. @default - alarms without actions */
  readonly alarmTopic?: sns.ITopic;
  /**
   * How long a host group's cache plan may keep pending actions before it counts as not
   * converging. @default Duration.minutes(30)
   */
  readonly convergenceWindow?: Duration;
}

/** One CloudWatch dashboard for the whole system plus the capability-level alarms. */
export class WarmbootDashboard extends Construct {
  readonly dashboard: cloudwatch.Dashboard;
  readonly alarms: readonly cloudwatch.Alarm[];

  constructor(scope: Construct, id: string, props: WarmbootDashboardProps) {
    super(scope, id);
    const hostGroups = props.hostGroups ?? [];
    const pools = props.pools ?? [];
    const alarms: cloudwatch.Alarm[] = [];
    const period = Duration.minutes(5);

    for (const group of hostGroups) {
      const window = props.convergenceWindow ?? Duration.minutes(30);
      alarms.push(
        new cloudwatch.Alarm(this, `CacheNotConverging${group.name}`, {
          alarmDescription: `warmboot host group ${group.name}: the cache plan kept pending actions for ${window.toMinutes()} minutes`,
          metric: metric(
            METRICS.cachePlanPendingActions,
            'imageCache',
            { HostGroup: group.name },
            'Minimum',
            period,
          ),
          threshold: 0,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          evaluationPeriods: Math.max(1, Math.round(window.toMinutes() / period.toMinutes())),
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
      );
    }
    for (const pool of pools.filter((spec) => spec.minSize > 0)) {
      alarms.push(
        new cloudwatch.Alarm(this, `PoolEmpty${pool.name}`, {
          alarmDescription: `warmboot pool ${pool.name}: no ready member for 15 minutes (minSize ${pool.minSize})`,
          metric: metric(METRICS.poolReadyMembers, 'pools', { Pool: pool.name }, 'Maximum', period),
          threshold: 0,
          comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_OR_EQUAL_TO_THRESHOLD,
          evaluationPeriods: 3,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
      );
    }
    alarms.push(
      new cloudwatch.Alarm(this, 'FastRestoreBudgetExceeded', {
        alarmDescription: `warmboot fast snapshot restore above its budget of ${props.fastRestore.maxUsdPerHour} USD/hour`,
        metric: metric(METRICS.fastRestoreUsdPerHour, 'fastRestore', {}, 'Maximum', Duration.minutes(15)),
        threshold: props.fastRestore.maxUsdPerHour,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
    );
    if (props.alarmTopic) {
      for (const alarm of alarms) alarm.addAlarmAction(new cloudwatchActions.SnsAction(props.alarmTopic));
    }
    this.alarms = alarms;

    const byGroup = (name: string, statistic: string, suffix = '') =>
      hostGroups.map((group) =>
        metric(
          name,
          'imageCache',
          { HostGroup: group.name },
          statistic,
          period,
          `${group.name} ${suffix}`.trim(),
        ),
      );
    const byPool = (name: string, service: FunctionId, statistic: string) =>
      pools.map((pool) => metric(name, service, { Pool: pool.name }, statistic, period, pool.name));
    const perFunction = (make: (fn: WarmbootFunction) => cloudwatch.IMetric) => props.functions.map(make);

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.hours(6),
      widgets: [
        [
          graph('Warm ratio per host group (%)', byGroup(METRICS.warmRatio, 'Average'), { min: 0, max: 100 }),
          graph('Cache bytes used vs budget', [
            ...byGroup(METRICS.cacheBytesUsed, 'Maximum', 'used'),
            ...byGroup(METRICS.cacheBudgetBytes, 'Maximum', 'budget'),
          ]),
          graph('Pinned images', byGroup(METRICS.pinnedImages, 'Maximum')),
          graph('Cache plan pending actions', byGroup(METRICS.cachePlanPendingActions, 'Maximum')),
        ],
        [
          graph('Fast restore pairs', [
            metric(METRICS.fastRestorePairs, 'fastRestore', {}, 'Maximum', period),
          ]),
          new cloudwatch.GraphWidget({
            title: 'Fast restore cost (USD/hour)',
            width: 6,
            left: [metric(METRICS.fastRestoreUsdPerHour, 'fastRestore', {}, 'Maximum', period)],
            leftAnnotations: [{ value: props.fastRestore.maxUsdPerHour, label: 'budget' }],
          }),
          graph('Pool ready members', byPool(METRICS.poolReadyMembers, 'pools', 'Minimum')),
          graph('Pool hit ratio (%)', byPool(METRICS.poolHitRatio, 'claim', 'Average'), { min: 0, max: 100 }),
        ],
        [
          graph(
            'Time to ready p50 by path (s)',
            READY_PATHS.map(({ service, path }) =>
              metric(METRICS.timeToReadySeconds, service, { Path: path }, 'p50', period, path),
            ),
          ),
          graph(
            'Time to ready p90 by path (s)',
            READY_PATHS.map(({ service, path }) =>
              metric(METRICS.timeToReadySeconds, service, { Path: path }, 'p90', period, path),
            ),
          ),
          graph('Shelved volumes (GiB)', [
            metric(METRICS.shelvedVolumeGiB, 'shelving', {}, 'Maximum', period),
          ]),
          graph(
            'Throttles (AWS API)',
            perFunction((fn) => metric(METRICS.throttles, fn.spec.id, {}, 'Sum', period, fn.spec.id)),
          ),
        ],
        [
          graph(
            'Dead-letter depth',
            perFunction((fn) =>
              fn.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period, label: fn.spec.id }),
            ),
          ),
          graph(
            'Handler errors',
            perFunction((fn) => fn.function.metricErrors({ period, label: fn.spec.id })),
          ),
          graph(
            'Lambda throttles',
            perFunction((fn) => fn.function.metricThrottles({ period, label: fn.spec.id })),
          ),
          new cloudwatch.AlarmStatusWidget({
            title: 'Alarms',
            width: 6,
            alarms: [...props.functions.flatMap((fn) => fn.alarms), ...alarms],
          }),
        ],
      ],
    });
  }
}

const metric = (
  metricName: string,
  service: string,
  dimensions: Record<string, string>,
  statistic: string,
  period: Duration,
  label?: string,
): cloudwatch.Metric =>
  new cloudwatch.Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { service, ...dimensions },
    statistic,
    period,
    ...(label ? { label } : {}),
  });

const graph = (
  title: string,
  left: cloudwatch.IMetric[],
  leftYAxis: cloudwatch.YAxisProps = {},
): cloudwatch.GraphWidget => new cloudwatch.GraphWidget({ title, width: 6, left, leftYAxis });
