import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

/**
 * What the pool model tells operators (Powertools metrics and logs in production; the dashboard
 * in infra/dashboard.ts reads these metric names). One port for both functions on the model.
 */
export interface PoolTelemetry {
  /**
   * Instances someone else tagged as pool members (security review H1): left alone, but an
   * operator must hear of them; `ForeignTaggedInstances` is the metric to alarm on.
   */
  foreignTagged(pool: string, instanceIds: readonly string[]): void;
  readyMembers(pool: string, count: number): void;
  /** A claim handed a server over: how long it took, and whether the pool had one (hot or warm). */
  serverReady(pool: string, path: 'hot' | 'warm' | 'cold', timeToReadySeconds: number): void;
}

export const powertoolsPoolTelemetry = (metrics: Metrics, logger: Pick<Logger, 'warn'>): PoolTelemetry => ({
  foreignTagged(pool, instanceIds) {
    if (instanceIds.length > 0) {
      logger.warn('instances carry the pool tag but warmboot did not launch them; left alone', {
        pool,
        instanceIds,
      });
    }
    metrics
      .singleMetric()
      .addDimension('Pool', pool)
      .addMetric('ForeignTaggedInstances', MetricUnit.Count, instanceIds.length);
  },
  readyMembers(pool, count) {
    metrics.singleMetric().addDimension('Pool', pool).addMetric('PoolReadyMembers', MetricUnit.Count, count);
  },
  serverReady(pool, path, timeToReadySeconds) {
    metrics
      .singleMetric()
      .addDimension('Path', path)
      .addMetric('TimeToReadySeconds', MetricUnit.Seconds, timeToReadySeconds);
    metrics
      .singleMetric()
      .addDimension('Pool', pool)
      .addMetric('PoolHitRatio', MetricUnit.Percent, path === 'cold' ? 0 : 100);
  },
});
