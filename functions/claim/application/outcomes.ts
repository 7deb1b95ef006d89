import type { ClaimError, ClaimRecord } from '../../pools/domain/claims';
import type { ClaimDependencies } from '../dependencies';
import type { ClaimPath } from '../domain/choice';
import type { Saga } from './saga-lease';

export type ClaimOutcome =
  | {
      readonly status: 'ready';
      readonly requestId: string;
      readonly instanceId: string;
      readonly path: ClaimPath;
      readonly pool: string;
      readonly timeToReadySeconds: number;
    }
  | {
      readonly status: 'launching';
      readonly requestId: string;
      readonly instanceId: string;
      readonly path: 'cold';
      readonly pool: string;
    }
  | {
      readonly status: 'failed';
      readonly requestId: string;
      readonly error: { readonly code: string; readonly message: string };
    }
  | { readonly status: 'in-progress'; readonly requestId: string; readonly step: string };

export const inProgress = (claim: ClaimRecord): ClaimOutcome => ({
  status: 'in-progress',
  requestId: claim.requestId,
  step: claim.step,
});

/** The claim's own server is launching: the pools function initializes it and resumes the claim. */
export const coldLaunching = (requestId: string, instanceId: string, pool: string): ClaimOutcome => ({
  status: 'launching',
  requestId,
  instanceId,
  path: 'cold',
  pool,
});

const secondsSince = (from: number, to: number): number => Math.round((to - from) / 100) / 10;

/** Publishes the failure every asynchronous requester waits for. */
export const publishFailure = async (
  deps: Pick<ClaimDependencies, 'facts'>,
  detail: { requestId: string; pool?: string; image?: string; instanceId?: string; error: ClaimError },
): Promise<ClaimOutcome> => {
  await deps.facts.publish([{ detailType: 'Server Request Failed', detail }]);
  return { status: 'failed', requestId: detail.requestId, error: detail.error };
};

/**
 * A finished saga's fact, published again: a request seen again (client retry, a retry after a
 * crash between the step write and the publish) gets the same answer, at least once.
 */
export const republish = async (
  deps: Pick<ClaimDependencies, 'facts'>,
  claim: ClaimRecord,
): Promise<ClaimOutcome> => {
  if (claim.step === 'ready' && claim.instanceId && claim.path) {
    const timeToReadySeconds = secondsSince(claim.requestedAt, claim.updatedAt ?? claim.requestedAt);
    await deps.facts.publish([
      {
        detailType: 'Server Ready',
        detail: {
          requestId: claim.requestId,
          instanceId: claim.instanceId,
          path: claim.path,
          timeToReadySeconds,
          pool: claim.pool,
        },
        resources: [],
      },
    ]);
    return {
      status: 'ready',
      requestId: claim.requestId,
      instanceId: claim.instanceId,
      path: claim.path,
      pool: claim.pool,
      timeToReadySeconds,
    };
  }
  return publishFailure(deps, {
    requestId: claim.requestId,
    pool: claim.pool,
    ...(claim.instanceId ? { instanceId: claim.instanceId } : {}),
    error: claim.error ?? { code: 'ClaimFailed', message: `claim ended at step ${claim.step}` },
  });
};

/** Records the failure on the saga, then reports it (a retry of a failed saga reports it again). */
export const fail = async (
  deps: Pick<ClaimDependencies, 'facts'>,
  saga: Saga,
  error: ClaimError,
): Promise<ClaimOutcome> => {
  await saga.step({ step: 'failed', error });
  return republish(deps, saga.record);
};
