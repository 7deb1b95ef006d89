import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { ValidationError } from '../../functions/shared/errors';
import { parseOrThrow } from '../../functions/shared/event-registry';
import {
  ec2InstanceStateChangeDetail,
  ecsTaskStateChangeDetail,
  fastSnapshotRestoreStateChangeDetail,
  scheduledEventDetail,
  ssmCommandInvocationStatusDetail,
} from '../../functions/shared/schemas/aws-events';
import { awsSampleEvent } from '../support/events';

const sampleDetail = (file: string): Record<string, unknown> => awsSampleEvent(file).detail;

/** The field a rejection names, as the event registry reports it. */
const rejectedField = (schema: z.ZodType, detail: unknown): string => {
  try {
    parseOrThrow(schema, detail, 'detail');
  } catch (error) {
    if (error instanceof ValidationError) return error.field;
    throw error;
  }
  throw new Error('the schema accepted the detail');
};

/** The AWS events of these schemas, each with AWS's published sample (test/fixtures/aws). */
const EVENTS = {
  ec2: {
    event: 'EC2 Instance State-change Notification',
    file: 'ec2-instance-state-change.json',
    schema: ec2InstanceStateChangeDetail,
  },
  ssmCommand: {
    event: 'EC2 Command Invocation Status-change Notification',
    file: 'ssm-command-invocation-status-change.json',
    schema: ssmCommandInvocationStatusDetail,
  },
  ecsTask: {
    event: 'ECS Task State Change',
    file: 'ecs-task-state-change.json',
    schema: ecsTaskStateChangeDetail,
  },
  fastSnapshotRestore: {
    event: 'EBS Fast Snapshot Restore State-change Notification',
    file: 'ebs-fast-snapshot-restore-state-change.json',
    schema: fastSnapshotRestoreStateChangeDetail,
  },
  scheduled: { event: 'Scheduled Event', file: 'scheduled-event.json', schema: scheduledEventDetail },
};

/** Samples whose whole detail the schema keeps: what each parses to. */
const PUBLISHED = [
  { ...EVENTS.ec2, parsed: { 'instance-id': 'i-1234567890abcdef0', state: 'pending' } },
  {
    ...EVENTS.fastSnapshotRestore,
    parsed: {
      'snapshot-id': 'snap-1234567890abcdef0',
      state: 'optimizing',
      zone: 'us-east-1a',
      message: 'Client.UserInitiated - Lifecycle state transition',
    },
  },
  // Its detail is empty.
  { ...EVENTS.scheduled, parsed: {} },
];

/** One field of a published sample made wrong, and the field the rejection must name. */
const REJECTED = [
  {
    ...EVENTS.ec2,
    why: 'an instance id that is not one',
    change: { 'instance-id': 'i-$(reboot)' },
    field: 'detail.instance-id',
  },
  { ...EVENTS.ec2, why: 'a state EC2 never reports', change: { state: 'exploded' }, field: 'detail.state' },
  {
    ...EVENTS.ssmCommand,
    why: 'a malformed command id',
    change: { 'command-id': 'nope' },
    field: 'detail.command-id',
  },
  {
    ...EVENTS.ssmCommand,
    why: 'a document name with shell characters',
    change: { 'document-name': 'a;rm -rf /' },
    field: 'detail.document-name',
  },
  {
    ...EVENTS.ecsTask,
    why: 'a container whose image is not a string, naming its index',
    change: { containers: [{ name: 'app', image: 42 }] },
    field: 'detail.containers.0.image',
  },
  {
    ...EVENTS.fastSnapshotRestore,
    why: 'an unknown state',
    change: { state: 'warm' },
    field: 'detail.state',
  },
  {
    ...EVENTS.fastSnapshotRestore,
    why: 'a zone that is not an availability zone',
    change: { zone: 'us-east-1' },
    field: 'detail.zone',
  },
];

describe('AWS event detail schemas', () => {
  it.each(PUBLISHED)("accept AWS's published sample of $event", ({ file, schema, parsed }) => {
    expect(schema.parse(sampleDetail(file))).toEqual(parsed);
  });

  it.each(REJECTED)('reject $why in $event, naming $field', ({ file, schema, change, field }) => {
    expect(rejectedField(schema, { ...sampleDetail(file), ...change })).toBe(field);
  });

  it("accept AWS's published EC2 Command Invocation Status-change sample, whose instance id has the old 8-digit format", () => {
    const detail = ssmCommandInvocationStatusDetail.parse(sampleDetail(EVENTS.ssmCommand.file));
    expect(detail['instance-id']).toBe('i-9bb89e2b');
    expect(detail['document-name']).toBe('AWS-RunPowerShellScript');
    expect(detail.status).toBe('Success');
  });

  describe('ECS Task State Change', () => {
    const sample = sampleDetail(EVENTS.ecsTask.file);

    it("accepts AWS's published sample and keeps every container image", () => {
      const detail = ecsTaskStateChangeDetail.parse(sample);
      expect(detail.lastStatus).toBe('RUNNING');
      expect(detail.containers.map((container) => container.image)).toEqual([
        '111122223333.dkr.ecr.us-west-2.amazonaws.com/hello-repository:latest',
      ]);
      expect(detail.availabilityZone).toBe('us-west-2c');
    });

    it('rejects a task without containers', () => {
      const { containers: _dropped, ...withoutContainers } = sample;
      expect(rejectedField(ecsTaskStateChangeDetail, withoutContainers)).toBe('detail.containers');
    });
  });
});
