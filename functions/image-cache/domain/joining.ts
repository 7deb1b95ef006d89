import { backoffDelayMs } from '../../shared/retry';

/** Backoff of the agent-online checks of a joining host: 15 s, doubling with jitter, at most 5 min. */
const AGENT_CHECK_BASE_MS = 15_000;
const AGENT_CHECK_CAP_MS = 5 * 60_000;
/**
 * A host still `joining` this long after it was first seen running has an agent that is not
 * coming: no instance profile with AmazonSSMManagedInstanceCore and no Default Host Management
 * Configuration (a refused agent retries only every 25-30 minutes). It is recorded as
 * `agent-never-registered`, logged and counted, and checked at the agent's own retry pace.
 */
export const HOST_AGENT_DEADLINE_MS = 30 * 60_000;
const AGENT_RECHECK_AFTER_DEADLINE_MS = 30 * 60_000;

export interface AgentCheck {
  /** When the next agent-online check is due. */
  readonly initDueAt: number;
  /** The agent is past its registration deadline (`agent-never-registered`). */
  readonly overdue: boolean;
}

/**
 * The next agent check of a host whose agent was not online at check number `attempts + 1`:
 * an exponential backoff from the host's first `running`, then the agent's own retry pace once
 * the host is past HOST_AGENT_DEADLINE_MS.
 */
export const nextAgentCheck = (
  joinedAt: number,
  attempts: number,
  now: number,
  random: () => number,
): AgentCheck => {
  const overdue = now - joinedAt > HOST_AGENT_DEADLINE_MS;
  if (overdue) return { initDueAt: now + AGENT_RECHECK_AFTER_DEADLINE_MS, overdue };
  const delay = backoffDelayMs(attempts + 1, random, {
    baseMs: AGENT_CHECK_BASE_MS,
    capMs: AGENT_CHECK_CAP_MS,
  });
  return { initDueAt: now + Math.max(AGENT_CHECK_BASE_MS, delay), overdue };
};
