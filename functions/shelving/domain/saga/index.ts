import type { Step } from '../types';
import { type StepDecision, wait } from './decisions';
import { offload, prepare, shelved, snapshot, stopForShelve } from './shelve';
import { choosePath, finalize, startInPlace } from './unshelve';
import { launch, startReplacement, stopReplacement, swapRoot } from './unshelve-fast';
import { replaceRoot } from './unshelve-in-place';
import { launchFromSnapshots } from './unshelve-slow';

/**
 * The shelve / offload / unshelve saga as one pure, level-triggered function: from the record
 * (what warmboot decided so far) and a fresh observation of EC2 (what is true now), the next
 * thing to do. Nothing here remembers that a call was made: every action is derived from what
 * EC2 shows, so a call repeated after a crash, a duplicate event or a lost one is either skipped
 * (EC2 already shows its effect) or harmless (EC2 treats it as a no-op). docs/shelving.md lists
 * each step with its idempotency argument.
 *
 * One file a phase: shelve.ts (shelve and offload), unshelve.ts (start in place, the path
 * choice, finalize), unshelve-in-place.ts (the root replaced while the replacement runs),
 * unshelve-fast.ts (the launch and the swap on the stopped replacement), unshelve-slow.ts (from
 * the safety snapshots), replacement.ts (what the two swaps share); ../relocation.ts decides a
 * move to another AZ.
 */

/** Each step's decision; a Record over every step, so a new step cannot be left without one. */
const STEPS: Readonly<Record<Step, StepDecision>> = {
  'shelve.prepare': prepare,
  'shelve.stop': stopForShelve,
  'shelve.snapshot': snapshot,
  shelved: (record, _observation, now) => shelved(record, now),
  'offload.terminate': offload,
  offloaded: () => wait('offloaded', null),
  'unshelve.start': startInPlace,
  'unshelve.choose': choosePath,
  'unshelve.launch': launch,
  'unshelve.replace-root': replaceRoot,
  'unshelve.stop-replacement': stopReplacement,
  'unshelve.swap-root': swapRoot,
  'unshelve.start-replacement': startReplacement,
  'unshelve.launch-from-snapshots': launchFromSnapshots,
  'unshelve.finalize': finalize,
  unshelved: () => wait('unshelved', null),
  failed: () => wait('failed', null),
  // The engine's deletion finishes it; the saga only keeps its reconcile time.
  deleting: (record) => wait('deleting', record.nextDueAt),
};

export const nextStep: StepDecision = (record, observation, now, settings) =>
  STEPS[record.step](record, observation, now, settings);

export {
  encryptionKeyUnusable,
  HOST_WAIT_RETRY_MS,
  LAUNCH_REISSUE_MS,
  reissueDueAt,
  rootOf,
  slowReissueDueAt,
} from './decisions';
export { ownedVolumeIds, privateIpInUse, unshelveAttempt } from './unshelve';
export { fastLaunchRefused } from './unshelve-fast';
export { slowLaunchRefused } from './unshelve-slow';
