import type { SimulatorEvent } from '../ec2/events';

/**
 * Run Command events (monitoring-systems-manager-event-examples, "Run Command events"): source
 * aws.ssm, one event per invocation status change and one per command status change; the
 * resources are the instance ARNs.
 */

export const commandInvocationStatusChange = (invocation: {
  instanceArn: string;
  commandId: string;
  documentName: string;
  instanceId: string;
  requestedAt: number;
  status: string;
}): SimulatorEvent => ({
  source: 'aws.ssm',
  detailType: 'EC2 Command Invocation Status-change Notification',
  detail: {
    'command-id': invocation.commandId,
    'document-name': invocation.documentName,
    'instance-id': invocation.instanceId,
    'requested-date-time': new Date(invocation.requestedAt).toISOString(),
    status: invocation.status,
  },
  resources: [invocation.instanceArn],
});

export const commandStatusChange = (command: {
  instanceArns: string[];
  commandId: string;
  documentName: string;
  expiresAt: number;
  parameters: Record<string, string[]>;
  requestedAt: number;
  status: string;
}): SimulatorEvent => ({
  source: 'aws.ssm',
  detailType: 'EC2 Command Status-change Notification',
  detail: {
    'command-id': command.commandId,
    'document-name': command.documentName,
    'expire-after': new Date(command.expiresAt).toISOString(),
    parameters: command.parameters,
    'requested-date-time': new Date(command.requestedAt).toISOString(),
    status: command.status,
  },
  resources: command.instanceArns,
});
