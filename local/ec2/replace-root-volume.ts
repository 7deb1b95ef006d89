import type {
  CreateReplaceRootVolumeTaskRequest,
  CreateReplaceRootVolumeTaskResult,
  DescribeReplaceRootVolumeTasksRequest,
  DescribeReplaceRootVolumeTasksResult,
  ReplaceRootVolumeTask,
} from '@aws-sdk/client-ec2';
import { keyRefusal } from './encryption';
import { ec2Error, invalidParameterValue, missingParameter, notFound } from './errors';
import { describePage, namedOrAll, tagList, tagsFor } from './filters';
import { isWellFormedId } from './ids';
import {
  checkClientToken,
  checkSameParameters,
  idempotentParameters,
  lookupInstances,
  shutDownOs,
} from './instances';
import type {
  Ec2Context,
  InstanceRecord,
  ReplaceRootVolumeTaskRecord,
  ReplaceRootVolumeTaskState,
  VolumeRecord,
} from './state';
import { deleteVolumeRecord, linkAttachment, releaseVolume, rootVolume } from './volumes';

/**
 * Root volume replacement with a given volume (EC2 User Guide "Replace the root volume for an
 * Amazon EC2 instance without stopping it", `replace-root`; API_CreateReplaceRootVolumeTask,
 * API_DescribeReplaceRootVolumeTasks, API_ReplaceRootVolumeTask).
 *
 * What the local cloud models: the `VolumeId` mode only. Restoring to the launch state (no source
 * given), from a snapshot (`SnapshotId`) or from an AMI (`ImageId`) is refused loudly, not as an AWS
 * error: the simulator is stricter than AWS there, and says so (docs/aws-fidelity.md).
 *
 * The task: `pending` (replaceRootPendingMs) → `in-progress`: the instance "is automatically
 * rebooted during the process" and stays `running` (no state-change notification), its OS down,
 * the original root `detaching` → after replaceRootSwapMs the original root is detached (deleted
 * with `DeleteReplacedRootVolume`, else `available`) and the given volume attached at the root
 * device → the OS boots (replaceRootBootMs) and the task is `succeeded`: "the replacement volume
 * has been successfully attached to the instance and the instance is available". Kept, as the
 * user guide lists: network interfaces and their IP addresses, non-root EBS volumes, instance store,
 * the instance profile (and everything else on the instance record: security groups, tags).
 *
 * Failure: "If the root volume replacement task fails, the instance is rebooted and the original
 * root volume remains attached" (`failing` → `failed`). The simulator fails a task whose given
 * volume is no longer usable when the swap comes (attached elsewhere, deleted) or whose KMS key
 * the caller may not use; an instance stopped or terminated meanwhile fails it at once. The
 * `-detached` states (the instance left without a root) have no cause the simulator models.
 */

/** API_ReplaceRootVolumeTask `StartTime` / `CompleteTime`: the user guide's example shows `2020-11-06 13:09:54.0`. */
const taskTime = (ms: number): string => `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')}.0`;

const toSdkTask = (task: ReplaceRootVolumeTaskRecord): ReplaceRootVolumeTask => ({
  ReplaceRootVolumeTaskId: task.taskId,
  InstanceId: task.instanceId,
  TaskState: task.state,
  StartTime: taskTime(task.startTime),
  ...(task.completeTime !== undefined ? { CompleteTime: taskTime(task.completeTime) } : {}),
  DeleteReplacedRootVolume: task.deleteReplacedRootVolume,
  Tags: tagList(task.tags),
});

const FINISHED = new Set<ReplaceRootVolumeTaskState>(['succeeded', 'failed', 'failed-detached']);

/**
 * replace-root, considerations: "You can replace the root volume for all virtualized instance
 * types and Amazon EC2 Mac metal instances only. All other metal instances are not supported."
 */
const isUnsupportedMetal = (instanceType: string): boolean => {
  const [family = '', size = ''] = instanceType.split('.');
  return (size === 'metal' || size.startsWith('metal-')) && !family.startsWith('mac');
};

/**
 * Why EC2 refuses to replace this instance's root with this volume, checked at the call and again
 * when the key check returns. Codes: IncorrectInstanceState and VolumeInUse / IncorrectState /
 * InvalidVolume.ZoneMismatch are the ones EC2 answers the same conditions with elsewhere
 * (API_StartInstances, API_AttachVolume); AWS documents none for this call. UnsupportedOperation
 * (instance store root, metal) and InvalidParameterValue (encryption) are the simulator's choice.
 */
const checkReplaceable = (
  ctx: Ec2Context,
  instance: InstanceRecord,
  volumeId: string,
): { readonly volume: VolumeRecord; readonly original: VolumeRecord } => {
  // replace-root: "You can't replace the root volume if it is an instance store volume."
  if (instance.rootDeviceType === 'instance-store')
    throw ec2Error(
      'UnsupportedOperation',
      `The instance '${instance.instanceId}' does not have an EBS root volume, which root volume replacement requires.`,
    );
  if (isUnsupportedMetal(instance.instanceType))
    throw ec2Error(
      'UnsupportedOperation',
      `Root volume replacement is not supported for instance type '${instance.instanceType}'.`,
    );
  // API_CreateReplaceRootVolumeTask: "for a `running` instance"; replace-root: "The instance must
  // be in the running state."
  if (instance.state !== 'running')
    throw ec2Error(
      'IncorrectInstanceState',
      `The instance '${instance.instanceId}' is not in the 'running' state.`,
    );
  // One task at a time per instance (the simulator's choice: AWS documents no rule either way).
  const busy = [...ctx.replaceRootVolumeTasks.values()].find(
    (task) => task.instanceId === instance.instanceId && !FINISHED.has(task.state),
  );
  if (busy)
    throw ec2Error(
      'IncorrectInstanceState',
      `The instance '${instance.instanceId}' has a root volume replacement task in progress (${busy.taskId}).`,
    );
  const original = rootVolume(ctx, instance);
  if (!original)
    throw ec2Error(
      'IncorrectInstanceState',
      `The instance '${instance.instanceId}' has no volume attached at root (${instance.rootDeviceName}).`,
    );
  if (!isWellFormedId('vol', volumeId))
    throw ec2Error('InvalidVolumeID.Malformed', `Invalid id: "${volumeId}" (expecting "vol-...")`);
  const volume = ctx.volumes.get(volumeId);
  if (!volume) throw notFound('InvalidVolume.NotFound', [volumeId], 'volume');
  // API_CreateReplaceRootVolumeTask, VolumeId: "must be in the same Availability Zone as the
  // instance, must be in the available state, and must not be attached to an instance. If the
  // original root volume is encrypted, the specified volume must also be encrypted."
  if (volume.attachment)
    throw ec2Error('VolumeInUse', `${volume.volumeId} is already attached to an instance`);
  if (volume.state !== 'available')
    throw ec2Error('IncorrectState', `Volume '${volume.volumeId}' is not 'available'.`);
  if (volume.availabilityZone !== instance.availabilityZone)
    throw ec2Error(
      'InvalidVolume.ZoneMismatch',
      `The volume '${volume.volumeId}' is not in the same availability zone as instance '${instance.instanceId}'`,
    );
  if (original.kmsKeyId !== undefined && volume.kmsKeyId === undefined)
    throw invalidParameterValue(
      `The volume '${volume.volumeId}' is not encrypted; the root volume of '${instance.instanceId}' is, so its replacement must be.`,
    );
  return { volume, original };
};

/**
 * The modes the simulator does not model, refused as a plain error (not an AWS error code) so no
 * caller mistakes the gap for AWS's answer. A mode's combination with `VolumeId` is refused as
 * AWS's parameter docs describe ("If you want to restore ... omit this parameter"); the code,
 * InvalidParameterCombination, is the simulator's choice.
 */
const checkMode = (input: CreateReplaceRootVolumeTaskRequest): string => {
  const volumeId = input.VolumeId;
  if (volumeId !== undefined && (input.SnapshotId !== undefined || input.ImageId !== undefined))
    throw ec2Error('InvalidParameterCombination', 'VolumeId cannot be combined with SnapshotId or ImageId.');
  // VolumeInitializationRate is the rate a snapshot's blocks are restored at; a given volume has none.
  if (volumeId !== undefined && input.VolumeInitializationRate !== undefined)
    throw ec2Error(
      'InvalidParameterCombination',
      'VolumeInitializationRate applies only to a replacement volume restored from a snapshot or AMI.',
    );
  if (volumeId === undefined) {
    const mode =
      input.SnapshotId !== undefined
        ? 'SnapshotId'
        : input.ImageId !== undefined
          ? 'ImageId'
          : 'launch state';
    throw new Error(
      `local EC2: CreateReplaceRootVolumeTask models only VolumeId; the ${mode} mode is not modelled (docs/aws-fidelity.md)`,
    );
  }
  return volumeId;
};

const finish = (
  ctx: Ec2Context,
  task: ReplaceRootVolumeTaskRecord,
  state: ReplaceRootVolumeTaskState,
): void => {
  task.state = state;
  task.completeTime = ctx.clock.now();
};

/** The task's later phases, on the virtual clock (see the module comment). */
const runTask = (ctx: Ec2Context, task: ReplaceRootVolumeTaskRecord, keyRefused: boolean): void => {
  ctx.clock.at(ctx.clock.now() + ctx.latency.replaceRootPendingMs, () => {
    const instance = ctx.instances.get(task.instanceId);
    if (instance?.state !== 'running') {
      finish(ctx, task, 'failed');
      return;
    }
    task.state = 'in-progress';
    const original = rootVolume(ctx, instance);
    const os = shutDownOs(ctx, instance);
    if (original?.attachment) original.attachment.state = 'detaching';
    const keepOriginal = (): void => {
      if (original?.attachment?.instanceId === instance.instanceId) original.attachment.state = 'attached';
    };
    ctx.clock.at(ctx.clock.now() + ctx.latency.replaceRootSwapMs, () => {
      if (!os.stillDown()) {
        keepOriginal();
        finish(ctx, task, 'failed');
        return;
      }
      const replacement = ctx.volumes.get(task.volumeId);
      const swappable =
        !keyRefused &&
        replacement?.state === 'available' &&
        replacement.attachment === undefined &&
        replacement.availabilityZone === instance.availabilityZone &&
        original?.attachment?.instanceId === instance.instanceId;
      if (!swappable) {
        keepOriginal();
        task.state = 'failing';
        os.restart(ctx.latency.replaceRootBootMs, () => finish(ctx, task, 'failed'));
        return;
      }
      // The other modes give the new root "the same type, size, and delete on termination
      // attributes as the original root volume" (replace-root); a given volume keeps its own type
      // and size, and, the simulator assumes, takes the original's DeleteOnTermination too.
      const deleteOnTermination = original.attachment?.deleteOnTermination ?? true;
      if (task.deleteReplacedRootVolume) deleteVolumeRecord(ctx, original);
      else releaseVolume(ctx, original);
      replacement.generation += 1;
      linkAttachment(ctx, replacement, {
        instanceId: instance.instanceId,
        device: instance.rootDeviceName,
        deleteOnTermination,
        state: 'attached',
        attachTime: ctx.clock.now(),
      });
      os.restart(ctx.latency.replaceRootBootMs, () => finish(ctx, task, 'succeeded'));
    });
  });
};

/**
 * A repeat with the same ClientToken (ec2-api-idempotency): the same task in its current state;
 * other parameters under that token: IdempotentParameterMismatch. Tokens are bound for the life
 * of the simulated cloud, as RunInstances' are (docs/ec2-fidelity-notes.md).
 */
const repeatedTask = (
  ctx: Ec2Context,
  input: CreateReplaceRootVolumeTaskRequest,
): ReplaceRootVolumeTaskRecord | undefined => {
  if (input.ClientToken === undefined) return undefined;
  const original = ctx.replaceRootVolumeTokens.get(input.ClientToken);
  if (!original) return undefined;
  checkSameParameters(original, input);
  return original;
};

export const createReplaceRootVolumeTask = async (
  ctx: Ec2Context,
  input: CreateReplaceRootVolumeTaskRequest,
): Promise<CreateReplaceRootVolumeTaskResult> => {
  if (input.ClientToken !== undefined) checkClientToken(input.ClientToken);
  const repeated = repeatedTask(ctx, input);
  if (repeated) return { ReplaceRootVolumeTask: toSdkTask(repeated) };
  if (input.InstanceId === undefined) throw missingParameter('InstanceId');
  const volumeId = checkMode(input);
  const [instance] = lookupInstances(ctx, [input.InstanceId]);
  if (!instance) throw missingParameter('InstanceId');
  const { volume } = checkReplaceable(ctx, instance, volumeId);
  // The new root is given to the instance as AttachVolume gives a volume: a customer managed key
  // is used with the caller's KMS permissions (encryption.ts). EBS checks it asynchronously, so a
  // refusal fails the task, not the call.
  const checking = keyRefusal(ctx, 'CreateReplaceRootVolumeTask', [volume]);
  const keyRefused = checking !== undefined && (await checking) !== undefined;
  if (checking) {
    // Checked again: other calls may have run while the caller's IAM was evaluated.
    const raced = repeatedTask(ctx, input);
    if (raced) return { ReplaceRootVolumeTask: toSdkTask(raced) };
    checkReplaceable(ctx, instance, volumeId);
  }
  const task: ReplaceRootVolumeTaskRecord = {
    taskId: ctx.ids.next('replacevol'),
    instanceId: instance.instanceId,
    volumeId,
    deleteReplacedRootVolume: input.DeleteReplacedRootVolume === true,
    state: 'pending',
    startTime: ctx.clock.now(),
    completeTime: undefined,
    tags: tagsFor(input.TagSpecifications, 'replace-root-volume-task'),
    parameters: idempotentParameters(input),
  };
  ctx.replaceRootVolumeTasks.set(task.taskId, task);
  if (input.ClientToken !== undefined) ctx.replaceRootVolumeTokens.set(input.ClientToken, task);
  runTask(ctx, task, keyRefused);
  return { ReplaceRootVolumeTask: toSdkTask(task) };
};

/**
 * API_DescribeReplaceRootVolumeTasks: by id, or every task; filter `instance-id` (and tags, as
 * every EC2 Describe); MaxResults / NextToken. An unknown or malformed id fails the call; AWS
 * documents neither code, these follow EC2's `Invalid<Resource>Id.NotFound` / `.Malformed` pattern
 * (the simulator's choice).
 */
export const describeReplaceRootVolumeTasks = async (
  ctx: Ec2Context,
  input: DescribeReplaceRootVolumeTasksRequest,
): Promise<DescribeReplaceRootVolumeTasksResult> => {
  const ids = input.ReplaceRootVolumeTaskIds ?? [];
  const malformed = ids.find((id) => !isWellFormedId('replacevol', id));
  if (malformed !== undefined)
    throw ec2Error('InvalidReplaceRootVolumeTaskId.Malformed', `Invalid id: "${malformed}"`);
  const named = namedOrAll(ctx.replaceRootVolumeTasks, ids, (missing) =>
    notFound('InvalidReplaceRootVolumeTaskId.NotFound', missing, 'root volume replacement task'),
  );
  const { page, nextToken } = describePage(
    named,
    input,
    { 'instance-id': (task) => [task.instanceId] },
    (task) => task.tags,
  );
  return { ReplaceRootVolumeTasks: page.map(toSdkTask), NextToken: nextToken };
};
