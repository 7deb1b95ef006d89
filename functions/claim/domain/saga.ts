import type { ClaimError, ClaimRecord } from '../../pools/domain/claims';
import type { PoolMember } from '../../pools/domain/lifecycle';
import type { ClaimPath } from './choice';

/**
 * What the driver of a saga does next, from its recorded step alone (pure): the claim saga's
 * counterpart of shelving's `nextStep`. The steps themselves wait on EC2 and SSM, so the driver
 * runs them; this decides which one, and what ends the saga before it.
 */
export type ClaimNext =
  /** `requested` or `member-claimed`: take a member (or find the one this saga took), else launch cold. */
  | { readonly kind: 'claim-member' }
  /** A member is the saga's: personalize it (unless done) and transfer it. */
  | { readonly kind: 'hand-over'; readonly instanceId: string; readonly path: ClaimPath }
  /** Transferred: record `ready` and report it. */
  | { readonly kind: 'finish'; readonly path: ClaimPath }
  /** Finished already: report the outcome again. */
  | { readonly kind: 'republish' }
  | { readonly kind: 'fail'; readonly error: ClaimError };

/**
 * `coldMember`: the member record of a cold-launching saga's server, when the driver read it. A
 * step past `member-claimed` names its server; one that names none cannot go on (a record no
 * release writes), so it fails instead of handing over a server it cannot name.
 */
export const nextClaimStep = (claim: ClaimRecord, coldMember?: PoolMember): ClaimNext => {
  const { step, instanceId } = claim;
  switch (step) {
    case 'requested':
    case 'member-claimed':
      return { kind: 'claim-member' };
    case 'ready':
    case 'failed':
      return { kind: 'republish' };
    case 'transferred':
      return { kind: 'finish', path: claim.path ?? 'warm' };
    case 'cold-launching':
      if (coldMember && coldMember.state !== 'claimed' && coldMember.state !== 'handed-over') {
        return {
          kind: 'fail',
          error: {
            code: 'ColdLaunchFailed',
            message: `the server launched for the request (${coldMember.instanceId}) is ${coldMember.state}: ${coldMember.reason ?? 'unknown'}`,
          },
        };
      }
      return handOverOf(claim, instanceId, 'cold');
    case 'started':
    case 'personalized':
      return handOverOf(claim, instanceId, claim.path ?? 'warm');
  }
};

const handOverOf = (claim: ClaimRecord, instanceId: string | undefined, path: ClaimPath): ClaimNext =>
  instanceId === undefined
    ? {
        kind: 'fail',
        error: {
          code: 'ServerLost',
          message: `claim ${claim.requestId} is at step ${claim.step} but names no server`,
        },
      }
    : { kind: 'hand-over', instanceId, path };

/**
 * Whether a saga may take a member from its pool: the pool is defined, and active unless the saga
 * took a member already (a claim that holds one finishes even if the pool started draining).
 */
export const poolServes = <P extends { readonly status: 'active' | 'draining' }>(
  claim: ClaimRecord,
  pool: P | undefined,
): pool is P => pool !== undefined && (pool.status === 'active' || claim.step !== 'requested');

/** Why a saga whose pool does not serve it fails. */
export const poolUnavailable = (claim: ClaimRecord): ClaimError => ({
  code: 'NotFound',
  message: `pool ${claim.pool} is not defined or is draining`,
});
