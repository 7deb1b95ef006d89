import type { EventPattern } from './shared/event-pattern';
import type { TableId } from './shared/tables';

/**
 * Every warmboot function, the events it receives and the tables it uses. The CDK stack
 * deploys one Lambda, one EventBridge rule per pattern (with a DLQ) and one schedule per entry;
 * the local bus routes with the very same patterns.
 */
export interface FunctionSpec {
  /** Stable id: construct id, log group, and the folder `functions/<id>/`. */
  readonly id: FunctionId;
  readonly description: string;
  readonly patterns: readonly { readonly id: string; readonly pattern: EventPattern }[];
  /** Level-triggered reconcile, as an EventBridge schedule expression. */
  readonly schedule?: string;
  /** Also invoked synchronously (RequestResponse) by callers who want the answer. */
  readonly synchronous?: boolean;
  /**
   * Lambda timeout: the stack deploys it and the local bus enforces it (an invocation still
   * running then fails as `Task timed out`, and Lambda's async retries follow).
   */
  readonly timeoutSeconds: number;
  readonly memoryMb: number;
  readonly tables: readonly TableId[];
}

export type FunctionId =
  | 'popularity'
  | 'imageCache'
  | 'fastRestore'
  | 'placement'
  | 'pools'
  | 'claim'
  | 'shelving';

export const EC2_STATE_CHANGE = 'EC2 Instance State-change Notification';
export const SSM_COMMAND_STATUS = 'EC2 Command Invocation Status-change Notification';
export const ECS_TASK_STATE = 'ECS Task State Change';
export const FSR_STATE_CHANGE = 'EBS Fast Snapshot Restore State-change Notification';
export const SCHEDULED_EVENT = 'Scheduled Event';
export const WARMBOOT = 'warmboot';
/** Every SSM document warmboot deploys has a name starting with this (see infra/documents). */
export const DOCUMENT_PREFIX = 'Warmboot-';

const operator = (...detailTypes: string[]): EventPattern => ({
  source: [WARMBOOT],
  'detail-type': detailTypes,
});

export const FUNCTIONS: Record<FunctionId, FunctionSpec> = {
  popularity: {
    id: 'popularity',
    description:
      'Records image launches (EC2 running, ECS task running, Image Launched) as decayed popularity',
    patterns: [
      {
        id: 'Ec2Running',
        pattern: { source: ['aws.ec2'], 'detail-type': [EC2_STATE_CHANGE], detail: { state: ['running'] } },
      },
      {
        id: 'EcsTaskRunning',
        pattern: {
          source: ['aws.ecs'],
          'detail-type': [ECS_TASK_STATE],
          detail: { lastStatus: ['RUNNING'] },
        },
      },
      { id: 'ImageLaunched', pattern: operator('Image Launched') },
    ],
    tables: ['popularity', 'idempotency'],
    timeoutSeconds: 30,
    memoryMb: 512,
  },
  imageCache: {
    id: 'imageCache',
    description: 'Plans and applies warm images per host group: pins, warm/evict over SSM, host join/leave',
    patterns: [
      {
        id: 'Operator',
        pattern: operator('Register Image', 'Pin Image', 'Unpin Image', 'Plan Cache', 'Popularity Changed'),
      },
      {
        id: 'CommandStatus',
        pattern: {
          source: ['aws.ssm'],
          'detail-type': [SSM_COMMAND_STATUS],
          detail: { 'document-name': [{ prefix: `${DOCUMENT_PREFIX}Image` }] },
        },
      },
      {
        id: 'HostState',
        pattern: {
          source: ['aws.ec2'],
          'detail-type': [EC2_STATE_CHANGE],
          detail: { state: ['running', 'stopped', 'terminated'] },
        },
      },
    ],
    schedule: 'rate(5 minutes)',
    tables: ['imageCache', 'popularity', 'idempotency'],
    timeoutSeconds: 120,
    memoryMb: 512,
  },
  fastRestore: {
    id: 'fastRestore',
    description: 'Keeps fast snapshot restore on for the AMIs launched most per AZ, within a budget',
    patterns: [
      { id: 'FsrState', pattern: { source: ['aws.ec2'], 'detail-type': [FSR_STATE_CHANGE] } },
      { id: 'Operator', pattern: operator('Plan Fast Restore') },
    ],
    schedule: 'rate(15 minutes)',
    tables: ['imageCache', 'popularity', 'idempotency'],
    timeoutSeconds: 120,
    memoryMb: 256,
  },
  placement: {
    id: 'placement',
    description: 'Advises which warm hosts to place instances on, spread across hosts and AZs',
    patterns: [{ id: 'Operator', pattern: operator('Advise Placement') }],
    synchronous: true,
    tables: ['imageCache', 'idempotency'],
    timeoutSeconds: 10,
    memoryMb: 512,
  },
  pools: {
    id: 'pools',
    description: 'Defines, fills, initializes, sizes and retires prestarted pools',
    patterns: [
      { id: 'Operator', pattern: operator('Define Pool', 'Drain Pool', 'Reconcile Pools', 'Server Claimed') },
      {
        id: 'MemberState',
        pattern: {
          source: ['aws.ec2'],
          'detail-type': [EC2_STATE_CHANGE],
          detail: { state: ['running', 'stopped', 'terminated', 'shutting-down'] },
        },
      },
      {
        id: 'InitStatus',
        pattern: {
          source: ['aws.ssm'],
          'detail-type': [SSM_COMMAND_STATUS],
          detail: { 'document-name': [{ prefix: `${DOCUMENT_PREFIX}Pool` }] },
        },
      },
    ],
    schedule: 'rate(2 minutes)',
    tables: ['pools', 'popularity', 'idempotency'],
    timeoutSeconds: 120,
    memoryMb: 512,
  },
  claim: {
    id: 'claim',
    description: 'Hands out a prestarted server: claim, resize, re-own, start, personalize',
    patterns: [{ id: 'Operator', pattern: operator('Request Server') }],
    synchronous: true,
    tables: ['pools', 'popularity', 'idempotency'],
    timeoutSeconds: 600,
    memoryMb: 512,
  },
  shelving: {
    id: 'shelving',
    description: 'Shelves instances keeping their volumes, offloads them, and unshelves them fast',
    patterns: [
      {
        id: 'Operator',
        pattern: operator(
          'Shelve Instances',
          'Offload Instances',
          'Unshelve Instances',
          'Delete Shelved Record',
        ),
      },
      {
        id: 'InstanceState',
        pattern: {
          source: ['aws.ec2'],
          'detail-type': [EC2_STATE_CHANGE],
          detail: { state: ['running', 'stopped', 'terminated'] },
        },
      },
    ],
    schedule: 'rate(1 minute)',
    tables: ['shelves', 'idempotency'],
    timeoutSeconds: 180,
    memoryMb: 1024,
  },
};
