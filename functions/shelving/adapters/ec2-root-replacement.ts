import {
  CreateReplaceRootVolumeTaskCommand,
  DescribeReplaceRootVolumeTasksCommand,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { callAws } from '../../shared/aws-errors';
import { UnmanagedResourceError } from '../../shared/errors';
import { collectPages } from '../../shared/pagination';
import { chunk } from '../domain/bulk';
import { rootReplacementRefusal } from '../domain/safety';
import type { ObservedInstance, ObservedRootReplacement } from '../domain/types';
import type { ShelvingEc2 } from './ec2';

/** Instance ids a DescribeReplaceRootVolumeTasks call filters on: small calls, paged, like the other describes. */
const INSTANCE_FILTER_MAX = 50;

const TASK_STATES: ReadonlySet<string> = new Set<ObservedRootReplacement['state']>([
  'pending',
  'in-progress',
  'failing',
  'succeeded',
  'failed',
  'failing-detached',
  'failed-detached',
]);

/**
 * Unshelve in place: CreateReplaceRootVolumeTask with `VolumeId` (EC2 user guide, "Replace a root
 * volume"), fenced like every call that makes EC2 delete a volume (domain/safety.ts), and the
 * tasks' progress.
 */
export const rootReplacement = (
  client: EC2Client,
  describeInstance: (instanceId: string) => Promise<ObservedInstance | undefined>,
): Pick<ShelvingEc2, 'replaceRootVolume' | 'describeRootReplacements'> => ({
  async replaceRootVolume(request) {
    const instance = await describeInstance(request.instanceId);
    if (!instance)
      throw new UnmanagedResourceError(`refusing CreateReplaceRootVolumeTask: ${request.instanceId} is gone`);
    const refusal = rootReplacementRefusal(instance, request);
    if (refusal) throw new UnmanagedResourceError(`refusing CreateReplaceRootVolumeTask: ${refusal}`);
    await callAws('CreateReplaceRootVolumeTask', () =>
      client.send(
        new CreateReplaceRootVolumeTaskCommand({
          InstanceId: request.instanceId,
          VolumeId: request.volumeId,
          DeleteReplacedRootVolume: true,
          ClientToken: request.clientToken,
        }),
      ),
    );
  },
  async describeRootReplacements(instanceIds) {
    const latest = new Map<string, { task: ObservedRootReplacement; startedAt: string }>();
    for (const part of chunk([...new Set(instanceIds)], INSTANCE_FILTER_MAX)) {
      const tasks = await collectPages(async (token) => {
        const page = await callAws('DescribeReplaceRootVolumeTasks', () =>
          client.send(
            new DescribeReplaceRootVolumeTasksCommand({
              Filters: [{ Name: 'instance-id', Values: part }],
              ...(token ? { NextToken: token } : {}),
            }),
          ),
        );
        return { items: page.ReplaceRootVolumeTasks ?? [], nextToken: page.NextToken };
      });
      for (const task of tasks) {
        const { ReplaceRootVolumeTaskId: taskId, InstanceId: instanceId, TaskState: state } = task;
        if (!taskId || !instanceId || !state || !TASK_STATES.has(state)) continue;
        const startedAt = task.StartTime ?? '';
        const known = latest.get(instanceId);
        // An instance's tasks from earlier attempts stay listed; the newest one is this attempt's.
        if (!known || startedAt > known.startedAt) {
          latest.set(instanceId, {
            task: { taskId, instanceId, state: state as ObservedRootReplacement['state'] },
            startedAt,
          });
        }
      }
    }
    return [...latest.values()].map(({ task }) => task);
  },
});
