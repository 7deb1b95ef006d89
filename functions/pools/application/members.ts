import { ConflictError } from '../../shared/errors';
import type { PoolStore } from '../adapters/store';
import type { PoolMember } from '../domain/lifecycle';

/**
 * A member write whose condition failed ends the caller's step: another writer (a concurrent
 * reconcile, an event, a claim) moved the member first, and what the step was about to do next
 * must not happen on a member it no longer holds.
 */
export const writeMember = async (
  store: PoolStore,
  previous: PoolMember,
  next: PoolMember,
): Promise<PoolMember> => {
  if (!(await store.updateMember(previous, next))) {
    throw new ConflictError(
      `member ${previous.instanceId} is not at version ${previous.version} in state ${previous.state}`,
    );
  }
  return next;
};

/** Deletes a member record at its version; another writer's change first is a ConflictError. */
export const deleteMember = async (store: PoolStore, member: PoolMember): Promise<void> => {
  if (!(await store.deleteMember(member)))
    throw new ConflictError(`member ${member.instanceId} is not at version ${member.version}`);
};
