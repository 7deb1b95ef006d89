import { Metrics } from '@aws-lambda-powertools/metrics';
import type { EmfOutput, MetricsOptions } from '@aws-lambda-powertools/metrics/types';
import type { Clock } from '../functions/shared/clock';

/** Where captured EMF documents go, stamped with virtual time. */
export type EmfSink = EmfOutput[];

const silent = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/**
 * Powertools Metrics that keeps each EMF document it would print in `sink` instead: the sandbox
 * and bench read warmboot's metrics from there, and a simulated fleet never floods stdout.
 * The EMF `Timestamp` is the virtual clock's, so captured metrics line up with simulated time.
 */
export class CapturingMetrics extends Metrics {
  readonly #options: MetricsOptions;
  readonly #sink: EmfSink;
  readonly #clock: Clock;

  constructor(options: MetricsOptions, sink: EmfSink, clock: Clock) {
    super({ ...options, logger: silent });
    this.#options = options;
    this.#sink = sink;
    this.#clock = clock;
  }

  override publishStoredMetrics(): this {
    // Captured even when POWERTOOLS_METRICS_DISABLED is set: that switch exists to keep stdout quiet.
    if (this.hasStoredMetrics()) {
      const emf = this.serializeMetrics();
      this.#sink.push({ ...emf, _aws: { ...emf._aws, Timestamp: this.#clock.now() } });
    }
    this.clearMetrics();
    this.clearDimensions();
    this.clearMetadata();
    return this;
  }

  /** The cold-start metric goes through a single-metric instance; it must be captured too. */
  override singleMetric(): Metrics {
    return new CapturingMetrics({ ...this.#options, singleMetric: true }, this.#sink, this.#clock);
  }
}
