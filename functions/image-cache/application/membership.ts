import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { boundedWait, NO_DEADLINE } from '../../shared/deadline';
import { IncorrectStateError } from '../../shared/errors';
import { pollUntil } from '../../shared/retry';
import type { HostInfo } from '../adapters/ec2';
import type { GroupState, HostRecord } from '../adapters/store';
import type { HostGroup } from '../config';
import type { ImageCacheDependencies } from '../dependencies';
import { DOCUMENT_NAMES } from '../documents';
import { nextAgentCheck } from '../domain/joining';
import { fetchStrategyFor } from './fetch-strategies';
import { GroupRecords, withoutVersion } from './host-records';

/**
 * How long the `running` event's handler waits for the agent before leaving it to a due check: a
 * first registration takes tens of seconds after boot on Linux (docs/ssm-fidelity.md), and the
 * wait also ends within the invocation's deadline.
 */
const AGENT_WAIT_MS = 90_000;
/** Kept back from the invocation after that wait: the join's SendCommand and record writes. */
const AGENT_WAIT_RESERVE_MS = 15_000;

/**
 * A queue batch of EC2 state changes: the instances that may be joining or stopping hosts are
 * looked up together (adapters/batch-hosts.ts); a terminated one needs no lookup.
 */
export const prefetchHosts = async (
  deps: ImageCacheDependencies,
  changes: readonly { readonly instanceId: string; readonly state: string }[],
): Promise<void> => {
  // Without host groups no instance can be a host: nothing to list.
  if (deps.groups.length === 0) return;
  await deps.hosts.prefetch?.(
    changes
      .filter(({ state }) => state === 'running' || state === 'stopped')
      .map(({ instanceId }) => instanceId),
  );
};

/**
 * EC2 state change of any instance. A tagged instance that is running joins (or rejoins) its
 * group and gets `init` (inventory, then a plan); stopped is marked (its cache survives on
 * the volume, it is re-inventoried when it runs again); terminated is dropped with its entries.
 */
export const onHostState = async (
  deps: ImageCacheDependencies,
  instanceId: string,
  state: string,
): Promise<{ outcome: string }> => {
  if (state === 'terminated') {
    // Every termination of the account arrives here: read the one host item per group, never a
    // group's whole partition.
    for (const group of deps.groups) {
      if ((await deps.store.loadHost(group.name, instanceId)).host) {
        await deps.store.deleteHost(group.name, instanceId);
        return { outcome: `dropped from ${group.name}` };
      }
    }
    return { outcome: 'not a cache host' };
  }
  const host = await deps.hosts.host(instanceId);
  if (!host) return { outcome: 'not a cache host' };
  const group = deps.groups.find((candidate) => candidate.name === host.hostGroup);
  if (!group) return { outcome: `host group ${host.hostGroup} is not configured` };
  const groupState = await deps.store.loadGroup(group.name);
  const record = groupState.hosts.find((candidate) => candidate.instanceId === instanceId);
  if (state === 'stopped') {
    // A record another invocation changed first is newer; the reconcile marks a stopped host.
    if (record)
      await new GroupRecords(deps, group).putHost(
        { ...withoutVersion(record), status: 'stopped' },
        record.version,
      );
    return { outcome: 'marked stopped' };
  }
  if (state !== 'running') return { outcome: `ignored ${state}` };
  return join(deps, group, host, record, true);
};

/**
 * A running host joins its group. EC2 reports `running` before the SSM agent registers, and
 * SendCommand refuses an unregistered node (InvalidInstanceId), so the host is recorded as
 * `joining` until DescribeInstanceInformation shows its agent Online; each check that finds it
 * offline sets the next one after an exponential backoff (`initDueAt`), which the next plan or
 * reconcile honours. Nothing throws for a slow agent, so no handler retry is spent on it.
 * `waitForAgent` (the `running` event): a Linux agent registers tens of seconds after
 * `running`, so the handler first waits that while rather than leave the host to the next
 * reconcile. An agent still missing after `HOST_AGENT_DEADLINE_MS` is named on the record.
 */
export const join = async (
  deps: ImageCacheDependencies,
  group: HostGroup,
  host: HostInfo,
  record: HostRecord | undefined,
  waitForAgent = false,
): Promise<{ outcome: string }> => {
  if (waitForAgent) await awaitAgent(deps, host.instanceId);
  const records = new GroupRecords(deps, group);
  const now = deps.clock.now();
  const attempts = record?.status === 'joining' ? (record.initAttempts ?? 0) : 0;
  const base = {
    instanceId: host.instanceId,
    availabilityZone: host.availabilityZone,
    joinedAt: record?.status === 'joining' ? record.joinedAt : now,
    ...(record?.warmList !== undefined ? { warmList: record.warmList } : {}),
  };
  const online = (await deps.commands.agentsOnline([host.instanceId])).has(host.instanceId);
  let commandId: string | undefined;
  if (online) {
    try {
      ({ commandId } = await fetchStrategyFor({ ...deps, group }).init(host));
    } catch (error) {
      // Registered a moment after DescribeInstanceInformation answered: treat as offline.
      if (!(error instanceof IncorrectStateError)) throw error;
    }
  }
  if (commandId === undefined) {
    const { initDueAt, overdue } = nextAgentCheck(base.joinedAt, attempts, now, deps.random);
    if (overdue && record?.joinProblem === undefined) {
      deps.logger.warn('SSM agent never registered', {
        instanceId: host.instanceId,
        hostGroup: group.name,
        joinedAt: base.joinedAt,
        hint: 'the host needs an instance profile with AmazonSSMManagedInstanceCore, or Default Host Management Configuration on',
      });
      deps.metrics
        .singleMetric()
        .addDimension('HostGroup', group.name)
        .addMetric('HostAgentNeverRegistered', MetricUnit.Count, 1);
    }
    await records.putHost(
      {
        ...base,
        status: 'joining',
        initAttempts: attempts + 1,
        initDueAt,
        ...(overdue ? { joinProblem: 'agent-never-registered' as const } : {}),
      },
      record?.version ?? 'absent',
    );
    return {
      outcome: overdue
        ? `joining ${group.name}: SSM agent never registered (agent-never-registered), next check at ${initDueAt}`
        : `joining ${group.name}: SSM agent not online yet, next check at ${initDueAt}`,
    };
  }
  await records.putHost({ ...base, status: 'running' }, record?.version ?? 'absent');
  await deps.store.putCommand({
    commandId,
    hostGroup: group.name,
    document: DOCUMENT_NAMES.inventory,
    instanceIds: [host.instanceId],
    sentAt: now,
  });
  return { outcome: `joined ${group.name}, inventory ${commandId}` };
};

const awaitAgent = async (deps: ImageCacheDependencies, instanceId: string): Promise<void> => {
  await pollUntil(
    async () => ((await deps.commands.agentsOnline([instanceId])).has(instanceId) ? true : undefined),
    {
      clock: deps.clock,
      timeoutMs: boundedWait(deps.deadline ?? NO_DEADLINE, AGENT_WAIT_MS, AGENT_WAIT_RESERVE_MS),
      intervalMs: (attempt) => Math.min(2_000 * 2 ** attempt, 30_000),
    },
  );
};

/** Joining hosts whose next agent check is due get it (every plan and reconcile look). */
export const joinDue = async (
  deps: ImageCacheDependencies,
  group: HostGroup,
  state: GroupState,
): Promise<boolean> => {
  const now = deps.clock.now();
  const due = state.hosts.filter((host) => host.status === 'joining' && (host.initDueAt ?? 0) <= now);
  for (const record of due) {
    const host = await deps.hosts.host(record.instanceId);
    if (host?.state === 'running') await join(deps, group, host, record);
  }
  return due.length > 0;
};
