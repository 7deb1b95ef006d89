import { describe, expect, it } from 'vitest';
import {
  CLAIM_GIVE_UP_MS,
  CLAIM_LEASE_MS,
  type ClaimRecord,
  healClaims,
} from '../../../functions/pools/domain/claims';
import { member, NOW } from './fixtures';

const claim = (overrides: Partial<ClaimRecord> = {}): ClaimRecord => ({
  requestId: 'r1',
  step: 'started',
  pool: 'linux-web',
  request: { pool: 'linux-web', ownerTags: { owner: 'team-a' } },
  requestedAt: NOW - 5 * 60_000,
  updatedAt: NOW - 4 * 60_000,
  instanceId: 'i-0000000000000000a',
  path: 'warm',
  version: 3,
  ...overrides,
});

describe('healClaims', () => {
  it('resumes a claim stuck mid-saga once nobody has driven it for a lease period', () => {
    const stuck = claim();

    expect(healClaims([stuck], [], NOW)).toEqual([{ kind: 'resume-claim', claim: stuck }]);
  });

  it('leaves alone a claim an invocation drives, or one that progressed within the lease period', () => {
    const driven = claim({ leaseUntil: NOW + 1 });
    const recent = claim({ updatedAt: NOW - CLAIM_LEASE_MS + 1 });
    const finished = [claim({ step: 'ready' }), claim({ step: 'failed' })];

    expect(healClaims([driven, recent, ...finished], [], NOW)).toEqual([]);
  });

  it('gives up and fails a claim that made no progress for CLAIM_GIVE_UP_MS', () => {
    const old = claim({
      requestedAt: NOW - CLAIM_GIVE_UP_MS - 1,
      updatedAt: NOW - CLAIM_GIVE_UP_MS - 1,
    });

    expect(healClaims([old], [], NOW)).toEqual([
      { kind: 'fail-claim', claim: old, error: expect.objectContaining({ code: 'ClaimTimedOut' }) },
    ]);
  });

  it('resumes, not fails, a claim requested long ago that waited for a member and moved on since', () => {
    const waited = claim({
      step: 'started',
      requestedAt: NOW - 3 * CLAIM_GIVE_UP_MS,
      updatedAt: NOW - CLAIM_GIVE_UP_MS / 2,
    });

    expect(healClaims([waited], [], NOW)).toEqual([{ kind: 'resume-claim', claim: waited }]);
  });

  /** A cold-launching claim of `server`, requested three give-up periods ago. */
  const longColdLaunchOf = (server: { instanceId: string }) =>
    claim({
      step: 'cold-launching',
      instanceId: server.instanceId,
      path: 'cold',
      requestedAt: NOW - 3 * CLAIM_GIVE_UP_MS,
      updatedAt: NOW - 3 * CLAIM_GIVE_UP_MS,
    });

  it('waits for a cold launch while it initializes, however long, and fails it once its server is retired', () => {
    const launching = member({ origin: 'claim', state: 'initializing', claimId: 'r1' });
    const cold = longColdLaunchOf(launching);
    const retired = { ...launching, state: 'retiring' as const, reason: 'init-failed' };

    expect(healClaims([cold], [launching], NOW)).toEqual([]);
    expect(healClaims([cold], [retired], NOW)).toEqual([
      {
        kind: 'fail-claim',
        claim: cold,
        error: expect.objectContaining({
          code: 'ColdLaunchFailed',
          message: expect.stringContaining('init-failed'),
        }),
      },
    ]);
  });

  it('resumes the hand-over of an initialized cold launch whose resume event was lost', () => {
    const initialized = member({
      origin: 'claim',
      state: 'claimed',
      claimId: 'r1',
      stateSince: NOW - 3 * 60_000,
    });
    const cold = longColdLaunchOf(initialized);

    expect(healClaims([cold], [initialized], NOW)).toEqual([{ kind: 'resume-claim', claim: cold }]);
  });
});
