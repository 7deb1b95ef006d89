import * as z from 'zod';
import { INSTANCE_ID_PATTERN, regex, SNAPSHOT_ID_PATTERN } from '../aws-ids';

/**
 * The `detail` of every AWS event warmboot consumes. Each schema is strict on the fields warmboot
 * reads and loose on everything else: AWS adds fields to its events over time, and an unknown
 * field must never turn a real event into a rejection. test/unit/aws-event-schemas.test.ts
 * proves each one against AWS's published sample (test/fixtures/aws/).
 */

/** Regional AZ names (`us-east-1a`) and Local Zones (`us-west-2-lax-1a`). */
const EVENT_AVAILABILITY_ZONE_PATTERN = '^[a-z]{2}(?:-gov)?-[a-z]+-[0-9]+(?:-[a-z]+-[0-9]+)?[a-z]$';
/** SSM document names (SSM API reference, CommandInvocation.DocumentName). */
const DOCUMENT_NAME_PATTERN = '^[a-zA-Z0-9_\\-.]{3,128}$';

export const instanceIdSchema = z
  .string()
  .regex(regex(INSTANCE_ID_PATTERN), 'not an EC2 instance id (i- and 8 or 17 hex digits)');
const snapshotIdSchema = z
  .string()
  .regex(regex(SNAPSHOT_ID_PATTERN), 'not an EBS snapshot id (snap- and 8 or 17 hex digits)');
export const availabilityZoneSchema = z
  .string()
  .regex(regex(EVENT_AVAILABILITY_ZONE_PATTERN), 'not an availability zone name');

export const INSTANCE_STATES = [
  'pending',
  'running',
  'stopping',
  'stopped',
  'shutting-down',
  'terminated',
] as const;

/** EC2 is ending the instance or has ended it: nothing started, stopped, attached or handed over on it helps any more. */
export const isGoneState = (state: string): boolean => state === 'shutting-down' || state === 'terminated';

/** `aws.ec2` / EC2 Instance State-change Notification (EC2 User Guide, monitoring-instance-state-changes). */
export const ec2InstanceStateChangeDetail = z.looseObject({
  'instance-id': instanceIdSchema,
  state: z.enum(INSTANCE_STATES),
});
export type Ec2InstanceStateChangeDetail = z.infer<typeof ec2InstanceStateChangeDetail>;

/**
 * `aws.ssm` / EC2 Command Invocation Status-change Notification, one per instance of a command
 * (Systems Manager User Guide, monitoring-systems-manager-event-examples). `status` stays a
 * string: warmboot acts on Success and treats any other terminal status as a failure.
 */
export const ssmCommandInvocationStatusDetail = z.looseObject({
  'command-id': z.guid('not an SSM command id'),
  'document-name': z.string().regex(regex(DOCUMENT_NAME_PATTERN), 'not an SSM document name'),
  'instance-id': instanceIdSchema,
  status: z.string().min(1),
  'requested-date-time': z.string().optional(),
});
export type SsmCommandInvocationStatusDetail = z.infer<typeof ssmCommandInvocationStatusDetail>;

/**
 * `aws.ecs` / ECS Task State Change (ECS Developer Guide, ecs_task_events). Containers of a task
 * that has not pulled yet may carry no `image`, so it is optional per container.
 */
export const ecsTaskStateChangeDetail = z.looseObject({
  taskArn: z.string().startsWith('arn:', 'not a task ARN'),
  lastStatus: z.string().min(1),
  availabilityZone: availabilityZoneSchema.optional(),
  containers: z.array(
    z.looseObject({
      name: z.string().optional(),
      image: z.string().min(1).optional(),
    }),
  ),
});
export type EcsTaskStateChangeDetail = z.infer<typeof ecsTaskStateChangeDetail>;

const FAST_SNAPSHOT_RESTORE_STATES = ['enabling', 'optimizing', 'enabled', 'disabling', 'disabled'] as const;

/** `aws.ec2` / EBS Fast Snapshot Restore State-change Notification (EBS User Guide, ebs-cloud-watch-events). */
export const fastSnapshotRestoreStateChangeDetail = z.looseObject({
  'snapshot-id': snapshotIdSchema,
  state: z.enum(FAST_SNAPSHOT_RESTORE_STATES),
  zone: availabilityZoneSchema,
  message: z.string().optional(),
});
export type FastSnapshotRestoreStateChangeDetail = z.infer<typeof fastSnapshotRestoreStateChangeDetail>;

/** `aws.events` / Scheduled Event: the detail is always `{}`; the schedule itself is the message. */
export const scheduledEventDetail = z.looseObject({});
