import { describe, expect, it } from 'vitest';
import { nextClaimStep, poolServes, poolUnavailable } from '../../../functions/claim/domain/saga';
import type { ClaimRecord } from '../../../functions/pools/domain/claims';
import { member, NOW } from '../pools/fixtures';

const claim = (overrides: Partial<ClaimRecord> = {}): ClaimRecord => ({
  requestId: 'r1',
  step: 'requested',
  pool: 'linux-web',
  request: { pool: 'linux-web', ownerTags: { owner: 'team-a' } },
  requestedAt: NOW - 60_000,
  version: 1,
  ...overrides,
});

describe('nextClaimStep', () => {
  it('takes a member while the saga holds none, and reports a finished saga again', () => {
    expect(nextClaimStep(claim())).toEqual({ kind: 'claim-member' });
    expect(nextClaimStep(claim({ step: 'member-claimed', instanceId: 'i-0000000000000000a' }))).toEqual({
      kind: 'claim-member',
    });
    expect(nextClaimStep(claim({ step: 'ready' }))).toEqual({ kind: 'republish' });
    expect(nextClaimStep(claim({ step: 'failed' }))).toEqual({ kind: 'republish' });
  });

  it('hands over the server a started or personalized saga names, on the path it recorded', () => {
    expect(nextClaimStep(claim({ step: 'started', instanceId: 'i-0000000000000000a', path: 'hot' }))).toEqual(
      {
        kind: 'hand-over',
        instanceId: 'i-0000000000000000a',
        path: 'hot',
      },
    );
    expect(nextClaimStep(claim({ step: 'personalized', instanceId: 'i-0000000000000000a' }))).toEqual({
      kind: 'hand-over',
      instanceId: 'i-0000000000000000a',
      path: 'warm',
    });
    expect(nextClaimStep(claim({ step: 'transferred', path: 'cold' }))).toEqual({
      kind: 'finish',
      path: 'cold',
    });
  });

  it('hands over a cold launch once the pools function claimed it, and fails one whose server was retired', () => {
    const launched = claim({ step: 'cold-launching', instanceId: 'i-0000000000000000b', path: 'cold' });

    expect(
      nextClaimStep(
        launched,
        member({ instanceId: 'i-0000000000000000b', origin: 'claim', state: 'claimed' }),
      ),
    ).toEqual({ kind: 'hand-over', instanceId: 'i-0000000000000000b', path: 'cold' });
    expect(
      nextClaimStep(
        launched,
        member({
          instanceId: 'i-0000000000000000b',
          origin: 'claim',
          state: 'retiring',
          reason: 'init-failed',
        }),
      ),
    ).toEqual({
      kind: 'fail',
      error: {
        code: 'ColdLaunchFailed',
        message: 'the server launched for the request (i-0000000000000000b) is retiring: init-failed',
      },
    });
  });

  it('fails a saga past member-claimed that names no server instead of handing over an unnamed one', () => {
    expect(nextClaimStep(claim({ step: 'started' }))).toMatchObject({
      kind: 'fail',
      error: { code: 'ServerLost' },
    });
    expect(nextClaimStep(claim({ step: 'cold-launching' }))).toMatchObject({
      kind: 'fail',
      error: { code: 'ServerLost' },
    });
  });
});

describe('poolServes', () => {
  it('lets a saga that holds a member finish in a draining pool, but starts no new one there', () => {
    const draining = { status: 'draining' as const };

    expect(poolServes(claim(), { status: 'active' })).toBe(true);
    expect(poolServes(claim(), draining)).toBe(false);
    expect(poolServes(claim({ step: 'member-claimed' }), draining)).toBe(true);
    expect(poolServes(claim({ step: 'member-claimed' }), undefined)).toBe(false);
    expect(poolUnavailable(claim())).toEqual({
      code: 'NotFound',
      message: 'pool linux-web is not defined or is draining',
    });
  });
});
