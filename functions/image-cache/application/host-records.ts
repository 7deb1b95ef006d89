import { ConditionFailedError, falseIfConditionFailed } from '../../shared/errors';
import { retrying } from '../../shared/retry';
import type { Expected, HostRecord } from '../adapters/store';
import type { HostGroup } from '../config';
import type { ImageCacheDependencies } from '../dependencies';
import type { HostImageEntry, SourceHealth } from '../domain/model';

type RecordDependencies = Pick<ImageCacheDependencies, 'store' | 'logger' | 'clock' | 'random'>;

/** A host record as written: the store sets the version. */
export type HostWrite = Omit<HostRecord, 'version'>;

export const withoutVersion = <T extends { version: number }>(record: T): Omit<T, 'version'> => {
  const { version: _version, ...rest } = record;
  return rest;
};

/**
 * The group's records, written by work that may race with another invocation (an event and the
 * reconcile, two events of one host). Every write is conditional on the version read; one that
 * lost its race means someone else already moved the record, and that newer state wins: the
 * write answers false and is logged. Any error is thrown.
 */
export class GroupRecords {
  constructor(
    private readonly deps: RecordDependencies,
    private readonly group: HostGroup,
  ) {}

  writeEntry(
    instanceId: string,
    imageId: string,
    next: HostImageEntry | undefined,
    expected: Expected,
  ): Promise<boolean> {
    return this.unlessRaced('entry changed concurrently; leaving it', { instanceId, imageId }, () =>
      this.deps.store.writeEntry(this.group.name, instanceId, imageId, next, expected),
    );
  }

  writeSource(next: SourceHealth, version: number): Promise<boolean> {
    return this.unlessRaced('source health changed concurrently; leaving it', {}, () =>
      this.deps.store.writeSource(this.group.name, next, version === 0 ? 'absent' : version),
    );
  }

  putHost(host: HostWrite, expected: Expected): Promise<boolean> {
    return this.unlessRaced('host changed concurrently; leaving it', { instanceId: host.instanceId }, () =>
      this.deps.store.putHost(this.group.name, host, expected),
    );
  }

  /**
   * Read-modify-write of one host record; a lost race re-reads and applies `change` again (a few
   * times, then the change is left to the next reconcile). `change` returns undefined for "no
   * change"; a host with no record is left alone.
   */
  updateHost(instanceId: string, change: (current: HostRecord) => HostWrite | undefined): Promise<boolean> {
    // `retrying` runs the change again on a thrown error: a lost race is thrown inside it, and
    // answered false once the attempts are spent.
    const attempt = async () => {
      const { host } = await this.deps.store.loadHost(this.group.name, instanceId);
      const next = host && change(host);
      if (host && next && !(await this.deps.store.putHost(this.group.name, next, host.version)))
        throw new ConditionFailedError(`host ${instanceId} changed since it was read`);
      return true;
    };
    return this.unlessRaced(
      'host changed concurrently; leaving it to the next reconcile',
      { instanceId },
      () =>
        retrying(attempt, {
          sleep: (ms) => this.deps.clock.sleep(ms),
          random: this.deps.random,
          attempts: 3,
          retryable: (error) => error instanceof ConditionFailedError,
          baseMs: 100,
          capMs: 1_000,
        }).catch(falseIfConditionFailed),
    );
  }

  /** The record of this host can no longer be trusted: the next reconcile re-inventories it. */
  markInventoryDue(instanceId: string, now: number): Promise<boolean> {
    return this.updateHost(instanceId, (current) =>
      current.inventoryDueAt !== undefined && current.inventoryDueAt <= now
        ? undefined
        : { ...withoutVersion(current), inventoryDueAt: now },
    );
  }

  private async unlessRaced(
    message: string,
    context: Readonly<Record<string, string>>,
    write: () => Promise<boolean>,
  ): Promise<boolean> {
    const written = await write();
    if (!written) this.deps.logger.info(message, { hostGroup: this.group.name, ...context });
    return written;
  }
}
