import { describe, expect, it } from 'vitest';
import { FUNCTIONS } from '../../functions/catalog';
import { type EventPattern, matchesPattern } from '../../functions/shared/event-pattern';
import { awsSampleEvent } from '../support/events';

const sample = (file: string) => awsSampleEvent<Record<string, unknown>>(file);

const patternOf = (functionId: keyof typeof FUNCTIONS, ruleId: string): EventPattern => {
  const rule = FUNCTIONS[functionId].patterns.find((candidate) => candidate.id === ruleId);
  if (!rule) throw new Error(`no rule ${ruleId} on ${functionId}`);
  return rule.pattern;
};

describe('matchesPattern (EventBridge content filtering)', () => {
  const event = {
    source: 'aws.ec2',
    'detail-type': 'EC2 Instance State-change Notification',
    resources: ['arn:aws:ec2:us-east-1:123456789012:instance/i-1234567890abcdef0'],
    detail: { 'instance-id': 'i-1234567890abcdef0', state: 'running', cpu: 4, tags: ['a', 'b'], owner: null },
  };

  it('matches when every key holds one of the listed values', () => {
    expect(matchesPattern(event, { source: ['aws.ec2'], detail: { state: ['pending', 'running'] } })).toBe(
      true,
    );
    expect(matchesPattern(event, { source: ['aws.ec2'], detail: { state: ['stopped'] } })).toBe(false);
  });

  it('fails on a key the event does not have', () => {
    expect(matchesPattern(event, { detail: { zone: ['us-east-1a'] } })).toBe(false);
  });

  it('matches an array in the event when any element matches', () => {
    expect(matchesPattern(event, { detail: { tags: ['b'] } })).toBe(true);
    expect(matchesPattern(event, { detail: { tags: ['c'] } })).toBe(false);
  });

  it('matches null only against null', () => {
    expect(matchesPattern(event, { detail: { owner: [null] } })).toBe(true);
    expect(matchesPattern(event, { detail: { state: [null] } })).toBe(false);
  });

  it('supports prefix', () => {
    expect(matchesPattern(event, { detail: { 'instance-id': [{ prefix: 'i-12' }] } })).toBe(true);
    expect(matchesPattern(event, { detail: { 'instance-id': [{ prefix: 'vol-' }] } })).toBe(false);
  });

  it('supports exists, true and false', () => {
    expect(matchesPattern(event, { detail: { state: [{ exists: true }] } })).toBe(true);
    expect(matchesPattern(event, { detail: { zone: [{ exists: false }] } })).toBe(true);
    expect(matchesPattern(event, { detail: { state: [{ exists: false }] } })).toBe(false);
  });

  it('supports anything-but with a value, a list and a prefix', () => {
    expect(matchesPattern(event, { detail: { state: [{ 'anything-but': 'stopped' }] } })).toBe(true);
    expect(matchesPattern(event, { detail: { state: [{ 'anything-but': ['running', 'stopped'] }] } })).toBe(
      false,
    );
    expect(matchesPattern(event, { detail: { state: [{ 'anything-but': { prefix: 'run' } }] } })).toBe(false);
    expect(matchesPattern(event, { detail: { zone: [{ 'anything-but': 'x' }] } })).toBe(false);
  });

  it('supports numeric ranges', () => {
    expect(matchesPattern(event, { detail: { cpu: [{ numeric: ['>', 2, '<=', 4] }] } })).toBe(true);
    expect(matchesPattern(event, { detail: { cpu: [{ numeric: ['>=', 8] }] } })).toBe(false);
    expect(matchesPattern(event, { detail: { state: [{ numeric: ['>', 0] }] } })).toBe(false);
  });

  describe("the catalog's rules against AWS's samples", () => {
    it('popularity counts launches: running instances, not pending ones', () => {
      const pending = sample('ec2-instance-state-change.json');
      const running = { ...pending, detail: { ...(pending.detail as object), state: 'running' } };

      expect(matchesPattern(pending, patternOf('popularity', 'Ec2Running'))).toBe(false);
      expect(matchesPattern(running, patternOf('popularity', 'Ec2Running'))).toBe(true);
    });

    it('popularity counts running ECS tasks', () => {
      expect(
        matchesPattern(sample('ecs-task-state-change.json'), patternOf('popularity', 'EcsTaskRunning')),
      ).toBe(true);
    });

    it("the image cache hears only its own documents' command results", () => {
      const ssm = sample('ssm-command-invocation-status-change.json');
      const own = { ...ssm, detail: { ...(ssm.detail as object), 'document-name': 'Warmboot-ImageFetch' } };

      expect(matchesPattern(ssm, patternOf('imageCache', 'CommandStatus'))).toBe(false);
      expect(matchesPattern(own, patternOf('imageCache', 'CommandStatus'))).toBe(true);
      expect(matchesPattern(own, patternOf('pools', 'InitStatus'))).toBe(false);
    });

    it('fast restore hears every fast snapshot restore state change', () => {
      expect(
        matchesPattern(
          sample('ebs-fast-snapshot-restore-state-change.json'),
          patternOf('fastRestore', 'FsrState'),
        ),
      ).toBe(true);
    });
  });
});
