import { deleteMember, writeMember } from '../../pools/application/members';
import { PERSONALIZE_DOCUMENT } from '../../pools/documents';
import type { ClaimError } from '../../pools/domain/claims';
import { transition } from '../../pools/domain/lifecycle';
import { isManagedBy, TAG } from '../../pools/domain/tags';
import { isEncryptionKeyStateReason } from '../../shared/aws-errors';
import { waitFor } from '../../shared/polling';
import { isGoneState as isGone } from '../../shared/schemas/aws-events';
import type { ClaimDependencies } from '../dependencies';
import type { ClaimPath } from '../domain/choice';
import { personalizeParameters } from '../schemas';
import { type ClaimOutcome, fail, republish } from './outcomes';
import { type Saga, sagaWait } from './saga-lease';

const COMMAND_WAIT_MS = 10 * 60_000;

const POOL_TAGS = [TAG.pool, TAG.memberState, TAG.optIn, TAG.claim];

/**
 * Personalization, then the ownership transfer. In that order because the claim role may send
 * commands only to instances that still carry warmboot's pool tags (IAM conditions on
 * `ssm:resourceTag/warmboot:*`): the transfer removes them, so a command sent after it is denied.
 * Idempotent from any point: a saga resumed after a crash sends the commands again while the pool
 * tags are on, and finds the owner tags applied and the pool tags gone once it transferred, or the
 * member record already handed over or deleted (the reconcile hands over a claimed member whose
 * instance lost its pool tags).
 */
export const handOver = async (
  deps: ClaimDependencies,
  saga: Saga,
  instanceId: string,
  path: ClaimPath,
): Promise<ClaimOutcome> => {
  const requestId = saga.requestId;
  const member = await deps.store.findMember(instanceId);
  const ours =
    member?.claimId === requestId && (member.state === 'claimed' || member.state === 'handed-over');
  if (member && !ours) {
    return fail(deps, saga, {
      code: 'ClaimLost',
      message: `${instanceId} went back to the pool (${member.state}) before it was handed over`,
    });
  }
  const instance = await deps.ec2.describe(instanceId);
  if (!instance || isGone(instance.state)) {
    if (isEncryptionKeyStateReason(instance?.stateReason)) {
      // A cold launch EC2 ended at once: an EBS volume's KMS key is not the claim role's to use.
      return fail(deps, saga, {
        code: 'EncryptionKeyUnusable',
        message: `${instanceId} ended at launch (${instance?.stateReason}): EC2 could not use an EBS encryption key for warmboot's role. Add the key to ebsKmsKeyArns (or enable it)`,
      });
    }
    return fail(deps, saga, { code: 'ServerLost', message: `${instanceId} is gone` });
  }
  const pool = saga.record.pool;
  const stillPooled = isManagedBy(instance.tags, pool);
  if (stillPooled && !member) {
    return fail(deps, saga, {
      code: 'ClaimLost',
      message: `${instanceId} is no longer claimed for this request`,
    });
  }
  if (saga.record.step !== 'personalized') {
    if (!stillPooled) {
      // Only a transfer this saga did not record removes the pool tags before personalization
      // (an older release transferred first): the commands can no longer be sent.
      return fail(deps, saga, {
        code: 'PersonalizationFailed',
        message: `${instanceId} left the pool before it was personalized`,
      });
    }
    const failure = await personalize(deps, saga, instanceId);
    if (failure) return fail(deps, saga, failure);
    await saga.step({ step: 'personalized', instanceId, path });
  }
  if (stillPooled) {
    await deps.ec2.tag(instanceId, saga.request.ownerTags);
    // Volumes first: their fence is the instance's pool tags, which the next call removes.
    await deps.ec2.untagVolumes(instance, pool, POOL_TAGS);
    await deps.ec2.untag(instanceId, POOL_TAGS);
  }
  if (member?.state === 'claimed') {
    const handedOver = await writeMember(
      deps.store,
      member,
      transition(member, 'handed-over', deps.clock.now()),
    );
    await deleteMember(deps.store, handedOver);
  } else if (member) {
    await deleteMember(deps.store, member);
  }
  await saga.step({ step: 'transferred', instanceId, path });
  return finish(deps, saga, path);
};

/**
 * Personalization over SSM, on the still-pooled member; what went wrong, or nothing. A failed or
 * timed-out personalization leaves the member claimed and pool-tagged: it is running, so the
 * pools reconcile retires it once the claim is over (`claim-abandoned`) and it never goes back to
 * the pool with a half-applied requester's key or host name on it.
 */
const personalize = async (
  deps: ClaimDependencies,
  saga: Saga,
  instanceId: string,
): Promise<ClaimError | undefined> => {
  const request = saga.request;
  const record = await deps.store.getPool(saga.record.pool);
  const platform = record?.spec.initialization.platform ?? 'linux';
  const commands: [string, Record<string, string[]>][] = [
    [PERSONALIZE_DOCUMENT, personalizeParameters(request, platform)],
  ];
  const named = request.personalization?.document;
  if (named) commands.push([named.name, named.parameters]);
  for (const [document, parameters] of commands) {
    const commandId = await deps.ssm.send(instanceId, document, parameters);
    const result = await waitFor(
      `${document} on ${instanceId}`,
      async () => {
        await saga.keep();
        const status = await deps.ssm.result(commandId, instanceId);
        return status === 'pending' ? undefined : status;
      },
      sagaWait(deps, COMMAND_WAIT_MS),
    );
    if (result === 'failed') {
      return { code: 'PersonalizationFailed', message: `${document} failed on ${instanceId}` };
    }
  }
  return undefined;
};

/** The server is personalized and the requester's: Server Ready. */
export const finish = async (deps: ClaimDependencies, saga: Saga, path: ClaimPath): Promise<ClaimOutcome> => {
  await saga.step({ step: 'ready' });
  const outcome = await republish(deps, saga.record);
  if (outcome.status === 'ready') deps.telemetry.serverReady(outcome.pool, path, outcome.timeToReadySeconds);
  return outcome;
};
