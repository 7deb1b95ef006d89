import type { Logger } from '@aws-lambda-powertools/logger';

/** The logging and metrics the fast-restore round needs (Powertools in production). */
export type FastSnapshotRestoreLogger = Pick<Logger, 'warn' | 'info'>;

export interface FastRestoreMetrics {
  gauge(name: 'FastRestorePairs' | 'FastRestoreUsdPerHour', value: number): void;
}
