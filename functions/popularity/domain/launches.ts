import type { ItemError } from '../../shared/results';
import { hostGroupSchema, isValidImageId } from '../schemas';
import type { LaunchRecord } from './counters';

/**
 * Turning the three kinds of launch events into launch records. Pure: the instance facts come
 * from the adapter, the time from the event.
 */

export const launchFromOperator = (
  eventId: string,
  at: number,
  detail: {
    image: string;
    count: number;
    availabilityZone?: string | undefined;
    hostGroup?: string | undefined;
  },
): LaunchRecord => ({
  eventId,
  at,
  images: [{ image: detail.image, count: detail.count }],
  availabilityZone: detail.availabilityZone,
  hostGroup: detail.hostGroup,
});

/** An instance's launch, or why it cannot be counted (its image id is not a valid image id). */
export type InstanceLaunch =
  | { readonly ok: true; readonly record: LaunchRecord }
  | { readonly ok: false; readonly error: ItemError };

export const launchFromInstance = (
  eventId: string,
  at: number,
  instance: { imageId: string; availabilityZone?: string | undefined; hostGroup?: string | undefined },
): InstanceLaunch =>
  isValidImageId(instance.imageId)
    ? {
        ok: true,
        record: {
          eventId,
          at,
          images: [{ image: instance.imageId, count: 1 }],
          availabilityZone: instance.availabilityZone,
          // The tag is set by people; a malformed one only loses the host-group scope.
          hostGroup: hostGroupSchema.safeParse(instance.hostGroup).success ? instance.hostGroup : undefined,
        },
      }
    : {
        ok: false,
        error: { code: 'ValidationError', message: `image id of instance is not a valid image id` },
      };

/**
 * ECS sends a Task State Change with `lastStatus: RUNNING` more than once per task (container
 * health, a desired-status change, a network attachment…), each with its own event id. A task
 * is one launch, so the dedupe key is the task ARN, not the event id.
 */
const ecsTaskDedupeKey = (taskArn: string): string => `ecs-task:${taskArn}`;

export interface EcsLaunch {
  readonly record: LaunchRecord | undefined;
  /** Containers whose image is not a valid image id: skipped, named, the others still count. */
  readonly rejected: readonly { readonly container: string; readonly error: ItemError }[];
}

export const launchFromEcsTask = (
  at: number,
  task: {
    taskArn: string;
    availabilityZone?: string | undefined;
    containers: readonly { name?: string | undefined; image?: string | undefined }[];
  },
): EcsLaunch => {
  const images: { image: string; count: number }[] = [];
  const rejected: { container: string; error: ItemError }[] = [];
  task.containers.forEach((container, index) => {
    const name = container.name ?? `containers.${index}`;
    if (container.image === undefined) return;
    if (isValidImageId(container.image)) images.push({ image: container.image, count: 1 });
    else
      rejected.push({
        container: name,
        error: { code: 'ValidationError', message: `containers.${index}.image is not a valid image id` },
      });
  });
  return {
    record:
      images.length > 0
        ? { eventId: ecsTaskDedupeKey(task.taskArn), at, images, availabilityZone: task.availabilityZone }
        : undefined,
    rejected,
  };
};
