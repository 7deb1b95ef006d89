import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { callAws } from '../../shared/aws-errors';
import { ConflictError } from '../../shared/errors';
import type { PoolSpec } from '../config';
import { type ClaimRecord, isTerminal } from '../domain/claims';
import { LAUNCH_INTENT_TTL_MS, type LaunchIntent } from '../domain/launch-intents';
import type { MemberState, PoolMember } from '../domain/lifecycle';
import type { SizingState } from '../domain/sizing';

/**
 * The pools table (pk/sk, gsi1):
 *   POOL#<name> / SPEC              the spec, its source (context | operator), status, sizing state
 *   POOL#<name> / MEMBER#<id>       one member; gsi1pk INSTANCE#<id> finds it from an EC2/SSM event
 *   POOL#<name> / DEMAND#<minute>   requests in that minute (ADD, TTL after the long window)
 *   POOL#<name> / QUOTA#<hour>#<caller>  one caller's new requests in that hour (ADD, TTL 2 h)
 *   POOL#<name> / LAUNCH#<token>    a launch intent, written before the RunInstances with that
 *                                   ClientToken; closed (instanceId) with the member write (TTL 24 h)
 *   CLAIM#<requestId> / CLAIM       the claim saga: request, step, member, outcome (TTL 7 days);
 *                                   gsi1pk CLAIMS#<pool> while unfinished, so the reconcile finds it
 * gsi1pk POOLS lists every pool.
 */
export interface PoolRecord {
  readonly spec: PoolSpec;
  readonly source: 'context' | 'operator';
  readonly status: 'active' | 'draining';
  readonly sizing?: SizingState;
}

export type { ClaimRecord, ClaimStep } from '../domain/claims';

export interface PoolStore {
  /** Creates or replaces the spec, source and status; keeps the stored sizing state and lease. */
  putPool(record: PoolRecord, now: number): Promise<void>;
  getPool(name: string): Promise<PoolRecord | undefined>;
  listPools(): Promise<PoolRecord[]>;
  setStatus(name: string, status: PoolRecord['status'], now: number): Promise<void>;
  saveSizing(name: string, sizing: SizingState): Promise<void>;
  /**
   * Takes the pool's reconcile lease (conditional write): true if `owner` now holds it. Only one
   * reconcile of a pool applies actions at a time, so two concurrent reconciles cannot both count
   * the same free slots and launch past `maxSize`. A crashed holder's lease lapses at `until`.
   */
  acquireLease(name: string, owner: string, now: number, until: number): Promise<boolean>;
  /** Gives the lease back if `owner` still holds it. */
  releaseLease(name: string, owner: string): Promise<void>;
  listMembers(pool: string): Promise<PoolMember[]>;
  findMember(instanceId: string): Promise<PoolMember | undefined>;
  createMember(member: PoolMember): Promise<void>;
  /**
   * Records a launch intent before the RunInstances that uses its ClientToken (domain/
   * launch-intents.ts). Writing the same launch again (same token, pool, subnet and origin: a
   * retried claim) changes nothing; another launch under the token is a ConflictError.
   */
  recordLaunchIntent(intent: LaunchIntent): Promise<void>;
  /** The pool's intents of the last LAUNCH_INTENT_TTL_MS before `now`, open and closed (strongly consistent). */
  launchIntents(pool: string, now: number): Promise<LaunchIntent[]>;
  /**
   * Creates the member of an instance launched under `clientToken` and closes that open intent, in
   * one transaction: ConflictError (nothing written) if the member exists or the intent is not open.
   */
  recordLaunch(member: PoolMember, clientToken: string): Promise<void>;
  /** Closes an open intent whose instance already has a member record (no-op if already closed). */
  closeLaunchIntent(pool: string, clientToken: string, instanceId: string): Promise<void>;
  /** Writes `next` only if the stored member is still at `previous.version` and `previous.state`. */
  updateMember(previous: PoolMember, next: PoolMember): Promise<void>;
  deleteMember(member: PoolMember): Promise<void>;
  recordRequest(pool: string, now: number): Promise<void>;
  /**
   * Counts one new request of `caller` (an opaque key) against its quota for the pool in the clock
   * hour of `now`: true if it was under `limit` (and is now counted), false if the quota is spent.
   * Conditional, so concurrent requests never count past the limit.
   */
  takeRequestQuota(pool: string, caller: string, now: number, limit: number): Promise<boolean>;
  demandCounts(pool: string, since: number): Promise<Map<number, number>>;
  createClaim(claim: ClaimRecord): Promise<boolean>;
  getClaim(requestId: string): Promise<ClaimRecord | undefined>;
  /** Writes `next` only if the stored claim is still at `previous.version`. */
  updateClaim(previous: ClaimRecord, next: ClaimRecord): Promise<void>;
  /** The pool's claims not yet `ready` or `failed` (eventually consistent index). */
  listOpenClaims(pool: string): Promise<ClaimRecord[]>;
}

const poolKey = (name: string) => `POOL#${name}`;
const memberSk = (instanceId: string) => `MEMBER#${instanceId}`;
const intentSk = (clientToken: string) => `LAUNCH#${clientToken}`;
// Sizing reads the same hour one day back: keep the counters a little longer than a day.
const DEMAND_TTL_S = 26 * 3600;
const CLAIM_TTL_S = 7 * 86_400;
const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

const memberFrom = (item: Record<string, unknown>): PoolMember => item.member as PoolMember;
const intentFrom = (item: Record<string, unknown>): LaunchIntent => item.intent as LaunchIntent;
const recordFrom = (item: Record<string, unknown>): PoolRecord => ({
  spec: item.spec as PoolSpec,
  source: item.source as PoolRecord['source'],
  status: item.status as PoolRecord['status'],
  ...(item.sizing ? { sizing: item.sizing as SizingState } : {}),
});

export const dynamoPoolStore = (client: DynamoDBDocumentClient, tableName: string): PoolStore => {
  const conflict = async (operation: string, call: () => Promise<unknown>): Promise<void> => {
    await callAws(operation, call);
  };
  return {
    async putPool(record, now) {
      // An update, not a put: the sizing state and a running reconcile's lease stay as they are.
      await conflict('UpdateItem', () =>
        client.send(
          new UpdateCommand({
            TableName: tableName,
            Key: { pk: poolKey(record.spec.name), sk: 'SPEC' },
            UpdateExpression: `SET gsi1pk = :pools, gsi1sk = :name, #spec = :spec, #source = :source, #status = :status, updatedAt = :now${record.sizing ? ', sizing = if_not_exists(sizing, :sizing)' : ''}`,
            ExpressionAttributeNames: { '#spec': 'spec', '#source': 'source', '#status': 'status' },
            ExpressionAttributeValues: {
              ':pools': 'POOLS',
              ':name': record.spec.name,
              ':spec': record.spec,
              ':source': record.source,
              ':status': record.status,
              ':now': now,
              ...(record.sizing ? { ':sizing': record.sizing } : {}),
            },
          }),
        ),
      );
    },
    async getPool(name) {
      const output = await callAws('GetItem', () =>
        client.send(
          new GetCommand({
            TableName: tableName,
            Key: { pk: poolKey(name), sk: 'SPEC' },
            ConsistentRead: true,
          }),
        ),
      );
      return output.Item ? recordFrom(output.Item) : undefined;
    },
    async listPools() {
      const output = await callAws('Query', () =>
        client.send(
          new QueryCommand({
            TableName: tableName,
            IndexName: 'gsi1',
            KeyConditionExpression: 'gsi1pk = :pools',
            ExpressionAttributeValues: { ':pools': 'POOLS' },
          }),
        ),
      );
      return (output.Items ?? []).map(recordFrom);
    },
    async setStatus(name, status, now) {
      await conflict('UpdateItem', () =>
        client.send(
          new UpdateCommand({
            TableName: tableName,
            Key: { pk: poolKey(name), sk: 'SPEC' },
            UpdateExpression: 'SET #status = :status, updatedAt = :now',
            ConditionExpression: 'attribute_exists(pk)',
            ExpressionAttributeNames: { '#status': 'status' },
            ExpressionAttributeValues: { ':status': status, ':now': now },
          }),
        ),
      );
    },
    async saveSizing(name, sizing) {
      await conflict('UpdateItem', () =>
        client.send(
          new UpdateCommand({
            TableName: tableName,
            Key: { pk: poolKey(name), sk: 'SPEC' },
            UpdateExpression: 'SET sizing = :sizing',
            ConditionExpression: 'attribute_exists(pk)',
            ExpressionAttributeValues: { ':sizing': sizing },
          }),
        ),
      );
    },
    async acquireLease(name, owner, now, until) {
      try {
        await conflict('UpdateItem', () =>
          client.send(
            new UpdateCommand({
              TableName: tableName,
              Key: { pk: poolKey(name), sk: 'SPEC' },
              UpdateExpression: 'SET #lease = :lease',
              ConditionExpression:
                'attribute_exists(pk) AND (attribute_not_exists(#lease) OR #lease.#until < :now OR #lease.#owner = :owner)',
              ExpressionAttributeNames: { '#lease': 'lease', '#until': 'until', '#owner': 'owner' },
              ExpressionAttributeValues: { ':lease': { owner, until }, ':now': now, ':owner': owner },
            }),
          ),
        );
        return true;
      } catch (error) {
        if (error instanceof ConflictError) return false;
        throw error;
      }
    },
    async releaseLease(name, owner) {
      try {
        await conflict('UpdateItem', () =>
          client.send(
            new UpdateCommand({
              TableName: tableName,
              Key: { pk: poolKey(name), sk: 'SPEC' },
              UpdateExpression: 'REMOVE #lease',
              ConditionExpression: '#lease.#owner = :owner',
              ExpressionAttributeNames: { '#lease': 'lease', '#owner': 'owner' },
              ExpressionAttributeValues: { ':owner': owner },
            }),
          ),
        );
      } catch (error) {
        // Lapsed and taken by another reconcile: nothing to give back.
        if (!(error instanceof ConflictError)) throw error;
      }
    },
    async listMembers(pool) {
      const output = await callAws('Query', () =>
        client.send(
          new QueryCommand({
            TableName: tableName,
            KeyConditionExpression: 'pk = :pk AND begins_with(sk, :member)',
            ExpressionAttributeValues: { ':pk': poolKey(pool), ':member': 'MEMBER#' },
            ConsistentRead: true,
          }),
        ),
      );
      return (output.Items ?? []).map(memberFrom);
    },
    async findMember(instanceId) {
      const index = await callAws('Query', () =>
        client.send(
          new QueryCommand({
            TableName: tableName,
            IndexName: 'gsi1',
            KeyConditionExpression: 'gsi1pk = :instance',
            ExpressionAttributeValues: { ':instance': `INSTANCE#${instanceId}` },
          }),
        ),
      );
      const pool = index.Items?.[0]?.gsi1sk as string | undefined;
      if (pool === undefined) return undefined;
      // The index is eventually consistent: read the member itself strongly.
      const output = await callAws('GetItem', () =>
        client.send(
          new GetCommand({
            TableName: tableName,
            Key: { pk: poolKey(pool), sk: memberSk(instanceId) },
            ConsistentRead: true,
          }),
        ),
      );
      return output.Item ? memberFrom(output.Item) : undefined;
    },
    async createMember(member) {
      await conflict('PutItem', () =>
        client.send(
          new PutCommand({
            TableName: tableName,
            Item: memberItem(member),
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        ),
      );
    },
    async recordLaunchIntent(intent) {
      await conflict('PutItem', () =>
        client.send(
          new PutCommand({
            TableName: tableName,
            Item: {
              pk: poolKey(intent.pool),
              sk: intentSk(intent.clientToken),
              intent,
              expiresAt: Math.floor((intent.createdAt + LAUNCH_INTENT_TTL_MS) / 1000),
            },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        ),
      ).catch(async (error: unknown) => {
        if (!(error instanceof ConflictError)) throw error;
        // A retried claim writes its launch again: the stored intent (maybe closed) stays as it is.
        const stored = await callAws('GetItem', () =>
          client.send(
            new GetCommand({
              TableName: tableName,
              Key: { pk: poolKey(intent.pool), sk: intentSk(intent.clientToken) },
              ConsistentRead: true,
            }),
          ),
        );
        const existing = stored.Item ? intentFrom(stored.Item) : undefined;
        if (!sameLaunch(existing, intent)) throw error;
      });
    },
    async launchIntents(pool, now) {
      const intents: LaunchIntent[] = [];
      let start: Record<string, unknown> | undefined;
      do {
        const output = await callAws('Query', () =>
          client.send(
            new QueryCommand({
              TableName: tableName,
              KeyConditionExpression: 'pk = :pk AND begins_with(sk, :launch)',
              ExpressionAttributeValues: { ':pk': poolKey(pool), ':launch': 'LAUNCH#' },
              ConsistentRead: true,
              ExclusiveStartKey: start,
            }),
          ),
        );
        intents.push(...(output.Items ?? []).map(intentFrom));
        start = output.LastEvaluatedKey;
      } while (start);
      // DynamoDB deletes expired items eventually (days later): the window is applied here.
      return intents.filter((intent) => now - intent.createdAt < LAUNCH_INTENT_TTL_MS);
    },
    async recordLaunch(member, clientToken) {
      await conflict('TransactWriteItems', () =>
        client.send(
          new TransactWriteCommand({
            TransactItems: [
              {
                Put: {
                  TableName: tableName,
                  Item: memberItem(member),
                  ConditionExpression: 'attribute_not_exists(pk)',
                },
              },
              {
                Update: {
                  TableName: tableName,
                  Key: { pk: poolKey(member.pool), sk: intentSk(clientToken) },
                  UpdateExpression: 'SET #intent.#instance = :instance',
                  ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(#intent.#instance)',
                  ExpressionAttributeNames: { '#intent': 'intent', '#instance': 'instanceId' },
                  ExpressionAttributeValues: { ':instance': member.instanceId },
                },
              },
            ],
          }),
        ),
      );
    },
    async closeLaunchIntent(pool, clientToken, instanceId) {
      try {
        await conflict('UpdateItem', () =>
          client.send(
            new UpdateCommand({
              TableName: tableName,
              Key: { pk: poolKey(pool), sk: intentSk(clientToken) },
              UpdateExpression: 'SET #intent.#instance = :instance',
              ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(#intent.#instance)',
              ExpressionAttributeNames: { '#intent': 'intent', '#instance': 'instanceId' },
              ExpressionAttributeValues: { ':instance': instanceId },
            }),
          ),
        );
      } catch (error) {
        if (!(error instanceof ConflictError)) throw error;
      }
    },
    async updateMember(previous, next) {
      await conflict('PutItem', () =>
        client.send(
          new PutCommand({
            TableName: tableName,
            Item: memberItem(next),
            ConditionExpression: '#member.#version = :version AND #member.#state = :state',
            ExpressionAttributeNames: { '#member': 'member', '#version': 'version', '#state': 'state' },
            ExpressionAttributeValues: { ':version': previous.version, ':state': previous.state },
          }),
        ),
      );
    },
    async deleteMember(member) {
      await conflict('DeleteItem', () =>
        client.send(
          new DeleteCommand({
            TableName: tableName,
            Key: { pk: poolKey(member.pool), sk: memberSk(member.instanceId) },
            ConditionExpression: 'attribute_not_exists(pk) OR #member.#version = :version',
            ExpressionAttributeNames: { '#member': 'member', '#version': 'version' },
            ExpressionAttributeValues: { ':version': member.version },
          }),
        ),
      );
    },
    async takeRequestQuota(pool, caller, now, limit) {
      const hour = Math.floor(now / HOUR_MS) * HOUR_MS;
      try {
        await conflict('UpdateItem', () =>
          client.send(
            new UpdateCommand({
              TableName: tableName,
              Key: { pk: poolKey(pool), sk: `QUOTA#${hour}#${caller}` },
              UpdateExpression: 'ADD #requests :one SET #expiresAt = :ttl',
              ConditionExpression: 'attribute_not_exists(#requests) OR #requests < :limit',
              ExpressionAttributeNames: { '#requests': 'requests', '#expiresAt': 'expiresAt' },
              ExpressionAttributeValues: {
                ':one': 1,
                ':limit': limit,
                ':ttl': Math.floor((hour + 2 * HOUR_MS) / 1000),
              },
            }),
          ),
        );
        return true;
      } catch (error) {
        if (error instanceof ConflictError) return false;
        throw error;
      }
    },
    async recordRequest(pool, now) {
      const minute = Math.floor(now / MINUTE_MS) * MINUTE_MS;
      await conflict('UpdateItem', () =>
        client.send(
          new UpdateCommand({
            TableName: tableName,
            Key: { pk: poolKey(pool), sk: `DEMAND#${minute}` },
            UpdateExpression: 'ADD #requests :one SET #expiresAt = :ttl, #minute = :minute',
            // MINUTE is a DynamoDB reserved word: every attribute goes through a name placeholder.
            ExpressionAttributeNames: {
              '#requests': 'requests',
              '#expiresAt': 'expiresAt',
              '#minute': 'minute',
            },
            ExpressionAttributeValues: {
              ':one': 1,
              ':ttl': Math.floor(now / 1000) + DEMAND_TTL_S,
              ':minute': minute,
            },
          }),
        ),
      );
    },
    async demandCounts(pool, since) {
      const output = await callAws('Query', () =>
        client.send(
          new QueryCommand({
            TableName: tableName,
            KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
            ExpressionAttributeValues: {
              ':pk': poolKey(pool),
              ':from': `DEMAND#${Math.floor(since / MINUTE_MS) * MINUTE_MS}`,
              ':to': 'DEMAND#~',
            },
          }),
        ),
      );
      return new Map((output.Items ?? []).map((item) => [Number(item.minute), Number(item.requests)]));
    },
    async createClaim(claim) {
      try {
        await conflict('PutItem', () =>
          client.send(
            new PutCommand({
              TableName: tableName,
              Item: {
                pk: `CLAIM#${claim.requestId}`,
                sk: 'CLAIM',
                claim,
                ...openClaimIndex(claim),
                expiresAt: Math.floor(claim.requestedAt / 1000) + CLAIM_TTL_S,
              },
              ConditionExpression: 'attribute_not_exists(pk)',
            }),
          ),
        );
        return true;
      } catch (error) {
        if (error instanceof ConflictError) return false;
        throw error;
      }
    },
    async getClaim(requestId) {
      const output = await callAws('GetItem', () =>
        client.send(
          new GetCommand({
            TableName: tableName,
            Key: { pk: `CLAIM#${requestId}`, sk: 'CLAIM' },
            ConsistentRead: true,
          }),
        ),
      );
      return output.Item?.claim as ClaimRecord | undefined;
    },
    async updateClaim(previous, next) {
      const index = openClaimIndex(next);
      await conflict('UpdateItem', () =>
        client.send(
          new UpdateCommand({
            TableName: tableName,
            Key: { pk: `CLAIM#${previous.requestId}`, sk: 'CLAIM' },
            // A finished claim leaves the index the reconcile heals from.
            UpdateExpression: index.gsi1pk
              ? 'SET #claim = :next, gsi1pk = :gsi1pk, gsi1sk = :gsi1sk'
              : 'SET #claim = :next REMOVE gsi1pk, gsi1sk',
            ConditionExpression: '#claim.#version = :version',
            ExpressionAttributeNames: { '#claim': 'claim', '#version': 'version' },
            ExpressionAttributeValues: {
              ':next': next,
              ':version': previous.version,
              ...(index.gsi1pk ? { ':gsi1pk': index.gsi1pk, ':gsi1sk': index.gsi1sk } : {}),
            },
          }),
        ),
      );
    },
    async listOpenClaims(pool) {
      const output = await callAws('Query', () =>
        client.send(
          new QueryCommand({
            TableName: tableName,
            IndexName: 'gsi1',
            KeyConditionExpression: 'gsi1pk = :claims',
            ExpressionAttributeValues: { ':claims': openClaimsKey(pool) },
          }),
        ),
      );
      return (output.Items ?? [])
        .map((item) => item.claim as ClaimRecord)
        .filter((claim) => !isTerminal(claim.step));
    },
  };
};

const openClaimsKey = (pool: string) => `CLAIMS#${pool}`;

/** The stored intent is the same launch written again (a retried claim), not another one under its token. */
export const sameLaunch = (stored: LaunchIntent | undefined, intent: LaunchIntent): boolean =>
  stored !== undefined &&
  stored.pool === intent.pool &&
  stored.subnetId === intent.subnetId &&
  stored.origin === intent.origin &&
  stored.claimId === intent.claimId;

const openClaimIndex = (claim: ClaimRecord): { gsi1pk?: string; gsi1sk?: string } =>
  isTerminal(claim.step) ? {} : { gsi1pk: openClaimsKey(claim.pool), gsi1sk: claim.requestId };

const memberItem = (member: PoolMember): Record<string, unknown> => ({
  pk: poolKey(member.pool),
  sk: memberSk(member.instanceId),
  gsi1pk: `INSTANCE#${member.instanceId}`,
  gsi1sk: member.pool,
  state: member.state satisfies MemberState,
  member,
});
