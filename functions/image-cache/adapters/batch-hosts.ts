import type { HostDirectory, HostInfo } from './ec2';

/**
 * Host lookups for a queue batch of EC2 state changes (functions/shared/event-batch.ts). Most
 * instances of a busy account are no cache host, and asking EC2 about each, or about a list of
 * ids (which fails whole on one id EC2 does not know yet), would spend the account's
 * DescribeInstances bucket per launch. Instead the batch lists the opted-in group hosts once
 * (one call per 1,000 hosts, however many events the batch holds), and each event's `host()`
 * is answered from that list: an instance not on it is no cache host. An event outside a batch,
 * or a second event of one instance in a batch, asks EC2 as before.
 */
export class BatchHostDirectory implements HostDirectory {
  #listed = new Map<string, HostInfo | undefined>();

  constructor(private readonly directory: HostDirectory) {}

  /** Lists the group hosts for these instances of the batch, replacing the last batch's list. */
  async prefetch(instanceIds: readonly string[]): Promise<void> {
    this.#listed = new Map();
    if (instanceIds.length === 0) return;
    const hosts = new Map((await this.directory.groupHosts()).map((host) => [host.instanceId, host]));
    for (const instanceId of instanceIds) this.#listed.set(instanceId, hosts.get(instanceId));
  }

  groupHosts(group?: string): Promise<HostInfo[]> {
    return this.directory.groupHosts(group);
  }

  host(instanceId: string): Promise<HostInfo | undefined> {
    if (!this.#listed.has(instanceId)) return this.directory.host(instanceId);
    const listed = this.#listed.get(instanceId);
    this.#listed.delete(instanceId);
    return Promise.resolve(listed);
  }

  tagHost(host: HostInfo, tags: Readonly<Record<string, string>>): Promise<void> {
    return this.directory.tagHost(host, tags);
  }
}
