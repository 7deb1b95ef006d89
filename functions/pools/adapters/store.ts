import {
  DeleteCommand,
  type DeleteCommandInput,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  type PutCommandInput,
  QueryCommand,
  type QueryCommandInput,
  TransactWriteCommand,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import type * as z from 'zod';
import { callAws, conditionalWrite } from '../../shared/aws-errors';
import { ValidationError } from '../../shared/errors';
import { collectPages } from '../../shared/pagination';
import type { PoolSpec } from '../config';
import { type ClaimRecord, isTerminal } from '../domain/claims';
import { LAUNCH_INTENT_TTL_MS, type LaunchIntent } from '../domain/launch-intents';
import type { MemberState, PoolMember } from '../domain/lifecycle';
import type { SizingState } from '../domain/sizing';
import { claimRecord, launchIntentRecord, poolMemberRecord, poolRecord } from '../schemas';

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

/**
 * A stored pool whose spec today's rules no longer accept (an operator's Define Pool of an older
 * release): it is reported, not reconciled, until it is defined again; the other pools go on.
 */
export interface UnreadablePool {
  readonly name: string;
  readonly problem: string;
}

export type { ClaimRecord, ClaimStep } from '../domain/claims';

export interface PoolStore {
  /** Creates or replaces the spec, source and status; keeps the stored sizing state and lease. */
  putPool(record: PoolRecord, now: number): Promise<void>;
  getPool(name: string): Promise<PoolRecord | undefined>;
  listPools(): Promise<{ readonly pools: PoolRecord[]; readonly unreadable: UnreadablePool[] }>;
  /** False if the pool is not defined. */
  setStatus(name: string, status: PoolRecord['status'], now: number): Promise<boolean>;
  /** False if the pool is not defined. */
  saveSizing(name: string, sizing: SizingState): Promise<boolean>;
  /**
   * Takes the pool's reconcile lease (conditional write): true if `owner` now holds it. Only one
   * reconcile of a pool applies actions at a time, so two concurrent reconciles cannot both count
   * the same free slots and launch past `maxSize`. A crashed holder's lease lapses at `until`.
   */
  acquireLease(name: string, owner: string, now: number, until: number): Promise<boolean>;
  /** Gives the lease back if `owner` still holds it; false if it lapsed and another took it. */
  releaseLease(name: string, owner: string): Promise<boolean>;
  listMembers(pool: string): Promise<PoolMember[]>;
  findMember(instanceId: string): Promise<PoolMember | undefined>;
  /** False if the member exists already. */
  createMember(member: PoolMember): Promise<boolean>;
  /**
   * Records a launch intent before the RunInstances that uses its ClientToken (domain/
   * launch-intents.ts). Writing the same launch again (same token, pool, subnet and origin: a
   * retried claim) changes nothing and is true; false if another launch holds the token.
   */
  recordLaunchIntent(intent: LaunchIntent): Promise<boolean>;
  /** The pool's intents of the last LAUNCH_INTENT_TTL_MS before `now`, open and closed (strongly consistent). */
  launchIntents(pool: string, now: number): Promise<LaunchIntent[]>;
  /**
   * Creates the member of an instance launched under `clientToken` and closes that open intent, in
   * one transaction: false (nothing written) if the member exists or the intent is not open.
   */
  recordLaunch(member: PoolMember, clientToken: string): Promise<boolean>;
  /** Closes an open intent whose instance already has a member record; false if already closed. */
  closeLaunchIntent(pool: string, clientToken: string, instanceId: string): Promise<boolean>;
  /** Writes `next` only if the stored member is still at `previous.version` and `previous.state`. */
  updateMember(previous: PoolMember, next: PoolMember): Promise<boolean>;
  /** Deletes the member if it is still at its version (true if it is gone already). */
  deleteMember(member: PoolMember): Promise<boolean>;
  recordRequest(pool: string, now: number): Promise<void>;
  /**
   * Counts one new request of `caller` (an opaque key) against its quota for the pool in the clock
   * hour of `now`: true if it was under `limit` (and is now counted), false if the quota is spent.
   * Conditional, so concurrent requests never count past the limit.
   */
  takeRequestQuota(pool: string, caller: string, now: number, limit: number): Promise<boolean>;
  demandCounts(pool: string, since: number): Promise<Map<number, number>>;
  /** False if a claim of that request id exists. */
  createClaim(claim: ClaimRecord): Promise<boolean>;
  getClaim(requestId: string): Promise<ClaimRecord | undefined>;
  /** Writes `next` only if the stored claim is still at `previous.version`. */
  updateClaim(previous: ClaimRecord, next: ClaimRecord): Promise<boolean>;
  /** The pool's claims not yet `ready` or `failed` (eventually consistent index). */
  listOpenClaims(pool: string): Promise<ClaimRecord[]>;
}

/** Why a stored spec does not parse, naming the pool and the first field at fault. */
const unreadable = (name: string, error: z.ZodError): UnreadablePool & { readonly field: string } => {
  const [issue] = error.issues;
  const field = issue?.path.length ? issue.path.join('.') : 'the record';
  return {
    name,
    field,
    problem: `pool ${name}: the stored definition no longer passes today's rules (${field}: ${issue?.message ?? 'invalid'}); define the pool again`,
  };
};

const poolKey = (name: string) => `POOL#${name}`;
const specKey = (name: string) => ({ pk: poolKey(name), sk: 'SPEC' });
const memberSk = (instanceId: string) => `MEMBER#${instanceId}`;
const intentSk = (clientToken: string) => `LAUNCH#${clientToken}`;
const claimKey = (requestId: string) => ({ pk: `CLAIM#${requestId}`, sk: 'CLAIM' });
// Sizing reads the same hour one day back: keep the counters a little longer than a day.
const DEMAND_TTL_S = 26 * 3600;
const CLAIM_TTL_S = 7 * 86_400;
const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

type Omitted<T> = Omit<T, 'TableName'>;

/**
 * The pools table over DynamoDB. Every conditional write follows conditionalWrite's convention:
 * false when its condition failed, a transaction conflict thrown as TransactionConflictError.
 */
export const dynamoPoolStore = (client: DynamoDBDocumentClient, tableName: string): PoolStore => {
  const update = (input: Omitted<UpdateCommandInput>) =>
    conditionalWrite('UpdateItem', () => client.send(new UpdateCommand({ TableName: tableName, ...input })));
  const put = (input: Omitted<PutCommandInput>) =>
    conditionalWrite('PutItem', () => client.send(new PutCommand({ TableName: tableName, ...input })));
  const remove = (input: Omitted<DeleteCommandInput>) =>
    conditionalWrite('DeleteItem', () => client.send(new DeleteCommand({ TableName: tableName, ...input })));
  const get = async (key: Record<string, string>) =>
    (
      await callAws('GetItem', () =>
        client.send(new GetCommand({ TableName: tableName, Key: key, ConsistentRead: true })),
      )
    ).Item;
  /**
   * Every page of a query, so no read stops at DynamoDB's 1 MB page. The page key travels as JSON
   * text (collectPages' token): the document client's keys are plain strings.
   */
  const query = (input: Omitted<QueryCommandInput>) =>
    collectPages<Record<string, unknown>>(async (nextToken) => {
      const output = await callAws('Query', () =>
        client.send(
          new QueryCommand({
            TableName: tableName,
            ...input,
            ExclusiveStartKey: nextToken === undefined ? undefined : JSON.parse(nextToken),
          }),
        ),
      );
      return {
        items: output.Items ?? [],
        ...(output.LastEvaluatedKey ? { nextToken: JSON.stringify(output.LastEvaluatedKey) } : {}),
      };
    });
  return {
    async putPool(record, now) {
      // An update, not a put: the sizing state and a running reconcile's lease stay as they are.
      await update({
        Key: specKey(record.spec.name),
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
      });
    },
    async getPool(name) {
      const item = await get(specKey(name));
      if (!item) return undefined;
      const parsed = poolRecord.safeParse(item);
      if (!parsed.success) {
        const problem = unreadable(name, parsed.error);
        throw new ValidationError(problem.field, problem.problem);
      }
      return parsed.data;
    },
    async listPools() {
      const items = await query({
        IndexName: 'gsi1',
        KeyConditionExpression: 'gsi1pk = :pools',
        ExpressionAttributeValues: { ':pools': 'POOLS' },
      });
      const pools: PoolRecord[] = [];
      const unreadablePools: UnreadablePool[] = [];
      for (const item of items) {
        const parsed = poolRecord.safeParse(item);
        if (parsed.success) pools.push(parsed.data);
        else unreadablePools.push(unreadable(String(item.pk).slice(poolKey('').length), parsed.error));
      }
      return { pools, unreadable: unreadablePools };
    },
    setStatus: (name, status, now) =>
      update({
        Key: specKey(name),
        UpdateExpression: 'SET #status = :status, updatedAt = :now',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':status': status, ':now': now },
      }),
    saveSizing: (name, sizing) =>
      update({
        Key: specKey(name),
        UpdateExpression: 'SET sizing = :sizing',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':sizing': sizing },
      }),
    acquireLease: (name, owner, now, until) =>
      update({
        Key: specKey(name),
        UpdateExpression: 'SET #lease = :lease',
        ConditionExpression:
          'attribute_exists(pk) AND (attribute_not_exists(#lease) OR #lease.#until < :now OR #lease.#owner = :owner)',
        ExpressionAttributeNames: { '#lease': 'lease', '#until': 'until', '#owner': 'owner' },
        ExpressionAttributeValues: { ':lease': { owner, until }, ':now': now, ':owner': owner },
      }),
    releaseLease: (name, owner) =>
      update({
        Key: specKey(name),
        UpdateExpression: 'REMOVE #lease',
        ConditionExpression: '#lease.#owner = :owner',
        ExpressionAttributeNames: { '#lease': 'lease', '#owner': 'owner' },
        ExpressionAttributeValues: { ':owner': owner },
      }),
    async listMembers(pool) {
      const items = await query({
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :member)',
        ExpressionAttributeValues: { ':pk': poolKey(pool), ':member': 'MEMBER#' },
        ConsistentRead: true,
      });
      return items.map((item) => poolMemberRecord.parse(item.member));
    },
    async findMember(instanceId) {
      const index = await query({
        IndexName: 'gsi1',
        KeyConditionExpression: 'gsi1pk = :instance',
        ExpressionAttributeValues: { ':instance': `INSTANCE#${instanceId}` },
      });
      const pool = index[0]?.gsi1sk;
      if (typeof pool !== 'string') return undefined;
      // The index is eventually consistent: read the member itself strongly.
      const item = await get({ pk: poolKey(pool), sk: memberSk(instanceId) });
      return item ? poolMemberRecord.parse(item.member) : undefined;
    },
    createMember: (member) =>
      put({ Item: memberItem(member), ConditionExpression: 'attribute_not_exists(pk)' }),
    async recordLaunchIntent(intent) {
      const key = { pk: poolKey(intent.pool), sk: intentSk(intent.clientToken) };
      const expiresAt = Math.floor((intent.createdAt + LAUNCH_INTENT_TTL_MS) / 1000);
      if (await put({ Item: { ...key, intent, expiresAt }, ConditionExpression: 'attribute_not_exists(pk)' }))
        return true;
      // A retried claim writes its launch again: the stored intent (maybe closed) stays as it is.
      const stored = await get(key);
      return sameLaunch(stored ? launchIntentRecord.parse(stored.intent) : undefined, intent);
    },
    async launchIntents(pool, now) {
      const items = await query({
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :launch)',
        ExpressionAttributeValues: { ':pk': poolKey(pool), ':launch': 'LAUNCH#' },
        ConsistentRead: true,
      });
      // DynamoDB deletes expired items eventually (days later): the window is applied here.
      return items
        .map((item) => launchIntentRecord.parse(item.intent))
        .filter((intent) => now - intent.createdAt < LAUNCH_INTENT_TTL_MS);
    },
    recordLaunch: (member, clientToken) =>
      conditionalWrite('TransactWriteItems', () =>
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
                Update: { TableName: tableName, ...closeIntent(member.pool, clientToken, member.instanceId) },
              },
            ],
          }),
        ),
      ),
    closeLaunchIntent: (pool, clientToken, instanceId) => update(closeIntent(pool, clientToken, instanceId)),
    updateMember: (previous, next) =>
      put({
        Item: memberItem(next),
        ConditionExpression: '#member.#version = :version AND #member.#state = :state',
        ExpressionAttributeNames: { '#member': 'member', '#version': 'version', '#state': 'state' },
        ExpressionAttributeValues: { ':version': previous.version, ':state': previous.state },
      }),
    deleteMember: (member) =>
      remove({
        Key: { pk: poolKey(member.pool), sk: memberSk(member.instanceId) },
        ConditionExpression: 'attribute_not_exists(pk) OR #member.#version = :version',
        ExpressionAttributeNames: { '#member': 'member', '#version': 'version' },
        ExpressionAttributeValues: { ':version': member.version },
      }),
    takeRequestQuota(pool, caller, now, limit) {
      const hour = Math.floor(now / HOUR_MS) * HOUR_MS;
      return update({
        Key: { pk: poolKey(pool), sk: `QUOTA#${hour}#${caller}` },
        UpdateExpression: 'ADD #requests :one SET #expiresAt = :ttl',
        ConditionExpression: 'attribute_not_exists(#requests) OR #requests < :limit',
        ExpressionAttributeNames: { '#requests': 'requests', '#expiresAt': 'expiresAt' },
        ExpressionAttributeValues: {
          ':one': 1,
          ':limit': limit,
          ':ttl': Math.floor((hour + 2 * HOUR_MS) / 1000),
        },
      });
    },
    async recordRequest(pool, now) {
      const minute = Math.floor(now / MINUTE_MS) * MINUTE_MS;
      await update({
        Key: { pk: poolKey(pool), sk: `DEMAND#${minute}` },
        UpdateExpression: 'ADD #requests :one SET #expiresAt = :ttl, #minute = :minute',
        // MINUTE is a DynamoDB reserved word: every attribute goes through a name placeholder.
        ExpressionAttributeNames: { '#requests': 'requests', '#expiresAt': 'expiresAt', '#minute': 'minute' },
        ExpressionAttributeValues: {
          ':one': 1,
          ':ttl': Math.floor(now / 1000) + DEMAND_TTL_S,
          ':minute': minute,
        },
      });
    },
    async demandCounts(pool, since) {
      const items = await query({
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
        ExpressionAttributeValues: {
          ':pk': poolKey(pool),
          ':from': `DEMAND#${Math.floor(since / MINUTE_MS) * MINUTE_MS}`,
          ':to': 'DEMAND#~',
        },
      });
      return new Map(items.map((item) => [Number(item.minute), Number(item.requests)]));
    },
    createClaim: (claim) =>
      put({
        Item: {
          ...claimKey(claim.requestId),
          claim,
          ...openClaimIndex(claim),
          expiresAt: Math.floor(claim.requestedAt / 1000) + CLAIM_TTL_S,
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    async getClaim(requestId) {
      const item = await get(claimKey(requestId));
      return item ? claimRecord.parse(item.claim) : undefined;
    },
    updateClaim(previous, next) {
      const index = openClaimIndex(next);
      return update({
        Key: claimKey(previous.requestId),
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
      });
    },
    async listOpenClaims(pool) {
      const items = await query({
        IndexName: 'gsi1',
        KeyConditionExpression: 'gsi1pk = :claims',
        ExpressionAttributeValues: { ':claims': openClaimsKey(pool) },
      });
      return items.map((item) => claimRecord.parse(item.claim)).filter((claim) => !isTerminal(claim.step));
    },
  };
};

const openClaimsKey = (pool: string) => `CLAIMS#${pool}`;

/** Closes an open launch intent: names the instance its member record was written for. */
const closeIntent = (pool: string, clientToken: string, instanceId: string) => ({
  Key: { pk: poolKey(pool), sk: intentSk(clientToken) },
  UpdateExpression: 'SET #intent.#instance = :instance',
  ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(#intent.#instance)',
  ExpressionAttributeNames: { '#intent': 'intent', '#instance': 'instanceId' },
  ExpressionAttributeValues: { ':instance': instanceId },
});

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
