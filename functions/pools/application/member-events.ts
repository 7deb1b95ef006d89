import type { PoolsDependencies } from '../dependencies';
import { PERSONALIZE_DOCUMENT, SECRETS_DOCUMENT } from '../documents';
import { afterInitialization, type ObservedInstance, type PoolAction } from '../domain/reconcile';
import { applied, applyAll } from './actions';

/** An EC2 state change for a member: the event-driven fast path of what reconcile would do. */
export const onInstanceState = async (
  deps: PoolsDependencies,
  instanceId: string,
  state: ObservedInstance['state'],
  now: number,
) => {
  const member = await deps.store.findMember(instanceId);
  if (!member) return { instanceId, ignored: 'not a pool member' };
  const record = await deps.store.getPool(member.pool);
  if (!record) return { instanceId, ignored: 'pool not defined' };
  let action: PoolAction | undefined;
  if (state === 'terminated') action = { kind: 'forget', member, reason: 'terminated' };
  else if (state === 'running' && (member.state === 'launching' || member.state === 'joining'))
    action = { kind: 'initialize', member, waitForAgent: true };
  else if (state === 'running' && member.state === 'starting')
    action = { kind: 'mark-ready', member, running: true };
  else if (state === 'stopped' && member.state === 'stopping')
    action = { kind: 'mark-ready', member, running: false };
  if (!action) return { instanceId, ignored: `no change for ${member.state} on ${state}` };
  return { instanceId, ...applied(await applyAll(deps, record.spec, [action], now)) };
};

/** An SSM status for a member's init command: ready (or stopped first) on success, retire on failure. */
const FINAL_COMMAND_STATUSES = new Set([
  'Success',
  'Failed',
  'Cancelled',
  'TimedOut',
  'DeliveryTimedOut',
  'ExecutionTimedOut',
  'Undeliverable',
  'Terminated',
]);

export const onInitStatus = async (
  deps: PoolsDependencies,
  input: { instanceId: string; commandId: string; status: string; documentName?: string },
  now: number,
) => {
  // Decided from the event alone, before any read: personalization commands (the claim function
  // waits for those itself) and in-progress statuses change nothing here.
  if (input.documentName === PERSONALIZE_DOCUMENT || input.documentName === SECRETS_DOCUMENT) {
    return { instanceId: input.instanceId, ignored: 'personalization is followed by the claim' };
  }
  if (!FINAL_COMMAND_STATUSES.has(input.status)) {
    return { instanceId: input.instanceId, ignored: `in progress: ${input.status}` };
  }
  const member = await deps.store.findMember(input.instanceId);
  if (member?.state !== 'initializing' || member.initCommandId !== input.commandId) {
    return { instanceId: input.instanceId, ignored: 'not an initializing member of this command' };
  }
  const record = await deps.store.getPool(member.pool);
  if (!record) return { instanceId: input.instanceId, ignored: 'pool not defined' };
  const action: PoolAction =
    input.status === 'Success'
      ? afterInitialization(
          member,
          await deps.store.listMembers(member.pool),
          record.sizing?.runningSize ?? 0,
        )
      : { kind: 'retire', member, reason: 'init-failed' };
  return { instanceId: input.instanceId, ...applied(await applyAll(deps, record.spec, [action], now)) };
};
