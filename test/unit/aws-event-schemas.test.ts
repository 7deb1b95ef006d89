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

describe('AWS event detail schemas', () => {
  describe('EC2 Instance State-change Notification', () => {
    const sample = sampleDetail('ec2-instance-state-change.json');

    it("accepts AWS's published sample", () => {
      expect(ec2InstanceStateChangeDetail.parse(sample)).toEqual({
        'instance-id': 'i-1234567890abcdef0',
        state: 'pending',
      });
    });

    it('rejects an instance id that is not one, naming the field', () => {
      expect(rejectedField(ec2InstanceStateChangeDetail, { ...sample, 'instance-id': 'i-$(reboot)' })).toBe(
        'detail.instance-id',
      );
    });

    it('rejects a state EC2 never reports', () => {
      expect(rejectedField(ec2InstanceStateChangeDetail, { ...sample, state: 'exploded' })).toBe(
        'detail.state',
      );
    });
  });

  describe('EC2 Command Invocation Status-change Notification', () => {
    const sample = sampleDetail('ssm-command-invocation-status-change.json');

    it("accepts AWS's published sample, whose instance id has the old 8-digit format", () => {
      const detail = ssmCommandInvocationStatusDetail.parse(sample);
      expect(detail['instance-id']).toBe('i-9bb89e2b');
      expect(detail['document-name']).toBe('AWS-RunPowerShellScript');
      expect(detail.status).toBe('Success');
    });

    it('rejects a malformed command id and a document name with shell characters', () => {
      expect(rejectedField(ssmCommandInvocationStatusDetail, { ...sample, 'command-id': 'nope' })).toBe(
        'detail.command-id',
      );
      expect(
        rejectedField(ssmCommandInvocationStatusDetail, { ...sample, 'document-name': 'a;rm -rf /' }),
      ).toBe('detail.document-name');
    });
  });

  describe('ECS Task State Change', () => {
    const sample = sampleDetail('ecs-task-state-change.json');

    it("accepts AWS's published sample and keeps every container image", () => {
      const detail = ecsTaskStateChangeDetail.parse(sample);
      expect(detail.lastStatus).toBe('RUNNING');
      expect(detail.containers.map((container) => container.image)).toEqual([
        '111122223333.dkr.ecr.us-west-2.amazonaws.com/hello-repository:latest',
      ]);
      expect(detail.availabilityZone).toBe('us-west-2c');
    });

    it('rejects a container whose image is not a string, naming its index', () => {
      expect(
        rejectedField(ecsTaskStateChangeDetail, { ...sample, containers: [{ name: 'app', image: 42 }] }),
      ).toBe('detail.containers.0.image');
    });

    it('rejects a task without containers', () => {
      const { containers: _dropped, ...withoutContainers } = sample;
      expect(rejectedField(ecsTaskStateChangeDetail, withoutContainers)).toBe('detail.containers');
    });
  });

  describe('EBS Fast Snapshot Restore State-change Notification', () => {
    const sample = sampleDetail('ebs-fast-snapshot-restore-state-change.json');

    it("accepts AWS's published sample", () => {
      expect(fastSnapshotRestoreStateChangeDetail.parse(sample)).toEqual({
        'snapshot-id': 'snap-1234567890abcdef0',
        state: 'optimizing',
        zone: 'us-east-1a',
        message: 'Client.UserInitiated - Lifecycle state transition',
      });
    });

    it('rejects an unknown state and a zone that is not an availability zone', () => {
      expect(rejectedField(fastSnapshotRestoreStateChangeDetail, { ...sample, state: 'warm' })).toBe(
        'detail.state',
      );
      expect(rejectedField(fastSnapshotRestoreStateChangeDetail, { ...sample, zone: 'us-east-1' })).toBe(
        'detail.zone',
      );
    });
  });

  describe('Scheduled Event', () => {
    it("accepts AWS's published sample, whose detail is empty", () => {
      expect(scheduledEventDetail.parse(sampleDetail('scheduled-event.json'))).toEqual({});
    });
  });
});
