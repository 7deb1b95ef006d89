import { describe, expect, it } from 'vitest';
import { ECS_TASK_STATE, SSM_COMMAND_STATUS } from '../../functions/catalog';
import { DependencyError, ValidationError } from '../../functions/shared/errors';
import { EventRegistry, type ParsedEvent, route } from '../../functions/shared/event-registry';
import {
  ecsTaskStateChangeDetail,
  type SsmCommandInvocationStatusDetail,
  ssmCommandInvocationStatusDetail,
} from '../../functions/shared/schemas/aws-events';
import { awsSampleEvent } from '../support/events';

const sample = (file: string) =>
  awsSampleEvent<Record<string, unknown> & { detail: Record<string, unknown> }>(file);

describe('EventRegistry', () => {
  const handled: ParsedEvent<SsmCommandInvocationStatusDetail>[] = [];
  const registry = new EventRegistry<string>([
    route('aws.ssm', SSM_COMMAND_STATUS, ssmCommandInvocationStatusDetail, async (event) => {
      handled.push(event);
      return event.detail['command-id'];
    }),
    route('aws.ecs', ECS_TASK_STATE, ecsTaskStateChangeDetail, async (event) => {
      if (event.detail.containers.length === 0)
        throw new ValidationError('detail.containers', 'no containers');
      throw new DependencyError('DynamoDB unavailable');
    }),
  ]);

  it('hands a known event to its route with the envelope and the parsed detail', async () => {
    const event = sample('ssm-command-invocation-status-change.json');

    const outcome = await registry.dispatch(event);

    expect(outcome).toEqual({
      status: 'handled',
      source: 'aws.ssm',
      detailType: SSM_COMMAND_STATUS,
      result: 'e8d3c0e4-71f7-4491-898f-c9b35bee5f3b',
    });
    expect(handled.at(-1)).toMatchObject({
      id: event.id,
      account: '123456789012',
      region: 'us-east-1',
      time: '2016-07-10T21:51:32Z',
      detail: { 'instance-id': 'i-9bb89e2b', status: 'Success' },
    });
  });

  it('ignores an event nobody registered, as an explicit no-op', async () => {
    const handledBefore = handled.length;
    const outcome = await registry.dispatch({
      ...sample('ssm-command-invocation-status-change.json'),
      'detail-type': 'EC2 Command Status-change Notification',
    });

    expect(outcome).toEqual({
      status: 'ignored',
      reason: 'no handler for aws.ssm / EC2 Command Status-change Notification',
    });
    expect(handled).toHaveLength(handledBefore);
  });

  it('rejects a malformed detail, naming the field, without calling the route', async () => {
    const event = sample('ssm-command-invocation-status-change.json');
    const handledBefore = handled.length;

    const outcome = await registry.dispatch({
      ...event,
      detail: { ...event.detail, 'instance-id': 'i-; reboot' },
    });

    expect(outcome).toMatchObject({
      status: 'rejected',
      error: { code: 'ValidationError', field: 'detail.instance-id' },
    });
    expect(handled).toHaveLength(handledBefore);
  });

  it('rejects a malformed envelope, naming the field', async () => {
    const { id: _dropped, ...withoutId } = sample('ssm-command-invocation-status-change.json');

    expect(await registry.dispatch(withoutId)).toMatchObject({ status: 'rejected', error: { field: 'id' } });
  });

  it('reports a ValidationError raised by the route as a rejection (never retried)', async () => {
    const event = sample('ecs-task-state-change.json');

    const outcome = await registry.dispatch({ ...event, detail: { ...event.detail, containers: [] } });

    expect(outcome).toMatchObject({ status: 'rejected', error: { field: 'detail.containers' } });
  });

  it('lets any other failure propagate, so Lambda retries the event', async () => {
    await expect(registry.dispatch(sample('ecs-task-state-change.json'))).rejects.toThrow(DependencyError);
  });
});
