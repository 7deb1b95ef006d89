import { isTerminal } from '../domain/claims';
import { LAUNCH_INTENT_TTL_MS, type LaunchIntent } from '../domain/launch-intents';
import type { PoolMember } from '../domain/lifecycle';
import type { SizingState } from '../domain/sizing';
import { type ClaimRecord, type PoolRecord, type PoolStore, sameLaunch } from './store';

const MINUTE_MS = 60_000;

/**
 * The pools table in memory, with the same conditional-write semantics as `dynamoPoolStore`
 * (a lost condition is `false`), for service tests and the bench. Values are copied in
 * and out so a caller cannot change stored state by mutating what it holds.
 */
export class MemoryPoolStore implements PoolStore {
  readonly #pools = new Map<
    string,
    { record: PoolRecord; lease?: { owner: string; until: number }; updatedAt: number }
  >();
  readonly #members = new Map<string, PoolMember>();
  readonly #demand = new Map<string, Map<number, number>>();
  /** Request quota counters: pool, clock hour and caller. */
  readonly #quotas = new Map<string, number>();
  readonly #claims = new Map<string, ClaimRecord>();
  /** By `<pool>|<clientToken>`. */
  readonly #intents = new Map<string, LaunchIntent>();

  async putPool(record: PoolRecord, now: number): Promise<void> {
    const existing = this.#pools.get(record.spec.name);
    const sizing = existing?.record.sizing ?? record.sizing;
    this.#pools.set(record.spec.name, {
      record: structuredClone({ ...record, ...(sizing ? { sizing } : {}) }),
      ...(existing?.lease ? { lease: existing.lease } : {}),
      updatedAt: now,
    });
  }

  async getPool(name: string): Promise<PoolRecord | undefined> {
    const stored = this.#pools.get(name);
    return stored && structuredClone(stored.record);
  }

  async listPools(): Promise<{ pools: PoolRecord[]; unreadable: [] }> {
    // Records here are typed objects, never an older release's items: none is unreadable.
    return {
      pools: [...this.#pools.values()].map((stored) => structuredClone(stored.record)),
      unreadable: [],
    };
  }

  async setStatus(name: string, status: PoolRecord['status'], now: number): Promise<boolean> {
    const stored = this.#pools.get(name);
    if (!stored) return false;
    stored.record = { ...stored.record, status };
    stored.updatedAt = now;
    return true;
  }

  async saveSizing(name: string, sizing: SizingState): Promise<boolean> {
    const stored = this.#pools.get(name);
    if (!stored) return false;
    stored.record = { ...stored.record, sizing: { ...sizing } };
    return true;
  }

  async acquireLease(name: string, owner: string, now: number, until: number): Promise<boolean> {
    const stored = this.#pools.get(name);
    if (!stored) return false;
    if (stored.lease && stored.lease.until >= now && stored.lease.owner !== owner) return false;
    stored.lease = { owner, until };
    return true;
  }

  async releaseLease(name: string, owner: string): Promise<boolean> {
    const stored = this.#pools.get(name);
    if (stored?.lease?.owner !== owner) return false;
    delete stored.lease;
    return true;
  }

  async listMembers(pool: string): Promise<PoolMember[]> {
    return [...this.#members.values()]
      .filter((member) => member.pool === pool)
      .map((member) => structuredClone(member));
  }

  async findMember(instanceId: string): Promise<PoolMember | undefined> {
    const member = this.#members.get(instanceId);
    return member && structuredClone(member);
  }

  async createMember(member: PoolMember): Promise<boolean> {
    if (this.#members.has(member.instanceId)) return false;
    this.#members.set(member.instanceId, structuredClone(member));
    return true;
  }

  async recordLaunchIntent(intent: LaunchIntent): Promise<boolean> {
    const key = `${intent.pool}|${intent.clientToken}`;
    const stored = this.#intents.get(key);
    if (stored !== undefined) return sameLaunch(stored, intent);
    this.#intents.set(key, structuredClone(intent));
    return true;
  }

  async launchIntents(pool: string, now: number): Promise<LaunchIntent[]> {
    return [...this.#intents.values()]
      .filter((intent) => intent.pool === pool && now - intent.createdAt < LAUNCH_INTENT_TTL_MS)
      .map((intent) => structuredClone(intent));
  }

  async recordLaunch(member: PoolMember, clientToken: string): Promise<boolean> {
    const key = `${member.pool}|${clientToken}`;
    const intent = this.#intents.get(key);
    if (intent === undefined || intent.instanceId !== undefined) return false;
    if (!(await this.createMember(member))) return false;
    this.#intents.set(key, { ...intent, instanceId: member.instanceId });
    return true;
  }

  async closeLaunchIntent(pool: string, clientToken: string, instanceId: string): Promise<boolean> {
    const key = `${pool}|${clientToken}`;
    const intent = this.#intents.get(key);
    if (intent === undefined || intent.instanceId !== undefined) return false;
    this.#intents.set(key, { ...intent, instanceId });
    return true;
  }

  async updateMember(previous: PoolMember, next: PoolMember): Promise<boolean> {
    const stored = this.#members.get(previous.instanceId);
    if (stored?.version !== previous.version || stored.state !== previous.state) return false;
    this.#members.set(next.instanceId, structuredClone(next));
    return true;
  }

  async deleteMember(member: PoolMember): Promise<boolean> {
    const stored = this.#members.get(member.instanceId);
    if (stored !== undefined && stored.version !== member.version) return false;
    this.#members.delete(member.instanceId);
    return true;
  }

  async takeRequestQuota(pool: string, caller: string, now: number, limit: number): Promise<boolean> {
    const key = `${pool}\u0000${Math.floor(now / 3_600_000)}\u0000${caller}`;
    const taken = this.#quotas.get(key) ?? 0;
    if (taken >= limit) return false;
    this.#quotas.set(key, taken + 1);
    return true;
  }

  async recordRequest(pool: string, now: number): Promise<void> {
    const minute = Math.floor(now / MINUTE_MS) * MINUTE_MS;
    const counts = this.#demand.get(pool) ?? new Map<number, number>();
    counts.set(minute, (counts.get(minute) ?? 0) + 1);
    this.#demand.set(pool, counts);
  }

  async demandCounts(pool: string, since: number): Promise<Map<number, number>> {
    const from = Math.floor(since / MINUTE_MS) * MINUTE_MS;
    return new Map(
      [...(this.#demand.get(pool) ?? new Map<number, number>())].filter(([minute]) => minute >= from),
    );
  }

  async createClaim(claim: ClaimRecord): Promise<boolean> {
    if (this.#claims.has(claim.requestId)) return false;
    this.#claims.set(claim.requestId, structuredClone(claim));
    return true;
  }

  async getClaim(requestId: string): Promise<ClaimRecord | undefined> {
    const claim = this.#claims.get(requestId);
    return claim && structuredClone(claim);
  }

  async updateClaim(previous: ClaimRecord, next: ClaimRecord): Promise<boolean> {
    const stored = this.#claims.get(previous.requestId);
    if (stored?.version !== previous.version) return false;
    this.#claims.set(next.requestId, structuredClone(next));
    return true;
  }

  async listOpenClaims(pool: string): Promise<ClaimRecord[]> {
    return [...this.#claims.values()]
      .filter((claim) => claim.pool === pool && !isTerminal(claim.step))
      .map((claim) => structuredClone(claim));
  }
}
