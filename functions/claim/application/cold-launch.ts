import type { PoolRecord } from '../../pools/adapters/store';
import { recordLaunchIntent } from '../../pools/application/actions';
import { isOnItsWay, usesPoolCapacity } from '../../pools/domain/claims';
import { TAG } from '../../pools/domain/tags';
import { awsErrorCode, classifyAwsError } from '../../shared/aws-errors';
import { CapacityError, WarmbootError } from '../../shared/errors';
import { OPTED_IN } from '../../shared/tags';
import type { ClaimDependencies } from '../dependencies';
import { wantedInstanceType } from '../domain/choice';
import { coldLaunchClientToken } from '../domain/request-digest';
import { type ClaimOutcome, coldLaunching, fail, inProgress } from './outcomes';
import type { Saga } from './saga-lease';

/**
 * No ready member fits: the claim launches its own server from the pool's spec (one subnet after
 * another while EC2 has no capacity), and the pools function initializes it and resumes the claim.
 */
export const coldLaunch = async (
  deps: ClaimDependencies,
  saga: Saga,
  record: PoolRecord,
): Promise<ClaimOutcome> => {
  const { spec } = record;
  const instanceType = wantedInstanceType(saga.request, spec);
  const requestId = saga.requestId;
  const members = await deps.store.listMembers(spec.name);
  const live = members.filter(usesPoolCapacity).length;
  if (live >= spec.maxSize) {
    // The pool is full of members still on their way: the claim waits for one instead of failing,
    // at most as long as a member may take to initialize. It stays at `requested`; once its lease
    // ends the pools reconcile resumes it (pools/domain/claims.ts healClaims).
    const waitedMs = deps.clock.now() - saga.record.requestedAt;
    if (members.some(isOnItsWay) && waitedMs < spec.initialization.timeoutMinutes * 60_000) {
      await saga.step(); // marks the wait, so the give-up counts from here
      return inProgress(saga.record);
    }
    return fail(deps, saga, {
      code: 'PoolAtCapacity',
      message: `pool ${spec.name} has ${live} members and cold launches under way, its maxSize is ${spec.maxSize}: no ready member and no room for a cold launch`,
    });
  }
  let lastError: WarmbootError | undefined;
  for (const subnetId of spec.subnets) {
    try {
      // The client token makes a retried launch return the instance a crashed attempt started.
      const clientToken = coldLaunchClientToken(requestId, subnetId);
      // The intent first: if this saga dies before the member write and is never resumed, the
      // pools reconcile adopts the instance only because its ClientToken names this intent
      // (pools/domain/launch-intents.ts); the tags alone would not do.
      await recordLaunchIntent(deps, {
        clientToken,
        pool: spec.name,
        subnetId,
        count: 1,
        origin: 'claim',
        claimId: requestId,
        createdAt: deps.clock.now(),
      });
      const instance = await deps.ec2.launch({
        spec,
        imageId: await deps.ssm.resolveImage(spec.image),
        subnetId,
        clientToken,
        instanceType,
        tags: {
          [TAG.optIn]: OPTED_IN,
          [TAG.pool]: spec.name,
          [TAG.memberState]: 'launching',
          [TAG.claim]: requestId,
        },
      });
      const now = deps.clock.now();
      // Not written when the crashed attempt created it (or the reconcile adopted it under its
      // launch intent): that record is the same server's.
      await deps.store.createMember({
        pool: spec.name,
        instanceId: instance.instanceId,
        origin: 'claim',
        state: 'launching',
        running: true,
        imageId: instance.imageId,
        instanceType,
        availabilityZone: instance.availabilityZone,
        subnetId,
        launchedAt: now,
        stateSince: now,
        version: 0,
        claimId: requestId,
      });
      await saga.step({ step: 'cold-launching', instanceId: instance.instanceId, path: 'cold' });
      return coldLaunching(requestId, instance.instanceId, spec.name);
    } catch (error) {
      if (error instanceof WarmbootError && classifyAwsError(error.cause) === 'invalid-parameter') {
        // EC2 refuses the pool's image on this type (architecture, boot mode, ENA): another subnet
        // or a retry of the request would be refused the same way, so the request ends here.
        return fail(deps, saga, {
          code: 'LaunchRefused',
          message: `detail.instanceType: EC2 refused ${instanceType} for pool ${spec.name}'s image (${awsErrorCode(error.cause)}): ${error.message}`,
        });
      }
      if (!(error instanceof CapacityError)) throw error;
      lastError = error;
    }
  }
  return fail(deps, saga, {
    code: lastError?.code ?? 'InsufficientCapacity',
    message: lastError?.message ?? 'no capacity',
  });
};
