import type {
  Command,
  CommandInvocation,
  DescribeInstanceInformationRequest,
  DescribeInstanceInformationResult,
  GetCommandInvocationRequest,
  GetCommandInvocationResult,
  InstanceInformation,
  ListCommandInvocationsRequest,
  ListCommandInvocationsResult,
  ListCommandsRequest,
  ListCommandsResult,
} from '@aws-sdk/client-ssm';
import { pageOf } from '../pagination';
import { type CommandRecord, type InvocationRecord, type SsmContext, ssmError } from './state';

/** What the SDK reads back: commands, invocations and managed nodes, paged as SSM pages them. */

const isoDuration = (ms: number): string => `PT${(ms / 1000).toFixed(3)}S`;

const ssmPage = <T>(items: readonly T[], request: { MaxResults?: number; NextToken?: string }) =>
  pageOf(items, request, () => ssmError('InvalidNextToken', 'The specified token is not valid.'));

const pluginName = (command: CommandRecord): string => {
  const name = command.document.mainSteps[0]?.name;
  return typeof name === 'string' ? name : 'aws:runShellScript';
};

export const toSdkCommand = (command: CommandRecord): Command => {
  const completed = command.invocations.filter((invocation) => invocation.endedAt !== undefined);
  return {
    CommandId: command.commandId,
    DocumentName: command.documentName,
    DocumentVersion: command.documentVersion,
    Comment: command.comment,
    ExpiresAfter: new Date(command.expiresAt),
    Parameters: command.parameters,
    InstanceIds: command.instanceIds,
    Targets: command.targets,
    RequestedDateTime: new Date(command.requestedAt),
    Status: command.status,
    StatusDetails: command.statusDetails,
    MaxConcurrency: command.maxConcurrency,
    MaxErrors: command.maxErrors,
    TimeoutSeconds: command.timeoutSeconds,
    TargetCount: command.invocations.length,
    CompletedCount: completed.length,
    ErrorCount: command.errorCount,
    DeliveryTimedOutCount: command.invocations.filter(
      (invocation) => invocation.statusDetails === 'Delivery Timed Out',
    ).length,
  };
};

const invocationOrThrow = (
  ctx: SsmContext,
  commandId: string | undefined,
  instanceId: string | undefined,
): InvocationRecord => {
  const invocation = ctx.commands
    .get(commandId ?? '')
    ?.invocations.find((candidate) => candidate.instanceId === instanceId);
  // Also what SSM answers right after SendCommand, before the invocation exists (eventual consistency).
  if (!invocation) throw ssmError('InvocationDoesNotExist', '');
  return invocation;
};

export const getCommandInvocation = async (
  ctx: SsmContext,
  input: GetCommandInvocationRequest,
): Promise<GetCommandInvocationResult> => {
  const invocation = invocationOrThrow(ctx, input.CommandId, input.InstanceId);
  const { startedAt, endedAt } = invocation;
  return {
    CommandId: invocation.command.commandId,
    InstanceId: invocation.instanceId,
    Comment: invocation.command.comment,
    DocumentName: invocation.command.documentName,
    DocumentVersion: invocation.command.documentVersion,
    PluginName: pluginName(invocation.command),
    ResponseCode: invocation.responseCode,
    ExecutionStartDateTime: startedAt === undefined ? '' : new Date(startedAt).toISOString(),
    ExecutionEndDateTime:
      endedAt === undefined || startedAt === undefined ? '' : new Date(endedAt).toISOString(),
    ExecutionElapsedTime:
      startedAt === undefined ? '' : isoDuration((endedAt ?? ctx.clock.now()) - startedAt),
    Status: invocation.status,
    StatusDetails: invocation.statusDetails,
    // API_GetCommandInvocation: StandardOutputContent holds at most the first 24,000 characters.
    StandardOutputContent: invocation.output.slice(0, 24_000),
    StandardOutputUrl: '',
    StandardErrorContent: '',
    StandardErrorUrl: '',
  };
};

const toSdkInvocation = (invocation: InvocationRecord, details: boolean): CommandInvocation => {
  const { command, startedAt, endedAt } = invocation;
  return {
    CommandId: command.commandId,
    InstanceId: invocation.instanceId,
    DocumentName: command.documentName,
    DocumentVersion: command.documentVersion,
    Comment: command.comment,
    RequestedDateTime: new Date(command.requestedAt),
    Status: invocation.status,
    StatusDetails: invocation.statusDetails,
    CommandPlugins: details
      ? [
          {
            Name: pluginName(command),
            // A plugin has no Delayed state: it has not started, so it is Pending.
            Status: invocation.status === 'Delayed' ? 'Pending' : invocation.status,
            StatusDetails: invocation.statusDetails,
            ResponseCode: invocation.responseCode,
            ResponseStartDateTime: startedAt === undefined ? undefined : new Date(startedAt),
            ResponseFinishDateTime: endedAt === undefined ? undefined : new Date(endedAt),
            Output: invocation.output.slice(0, 2_500),
          },
        ]
      : [],
  };
};

export const listCommandInvocations = async (
  ctx: SsmContext,
  input: ListCommandInvocationsRequest,
): Promise<ListCommandInvocationsResult> => {
  const matching = [...ctx.commands.values()]
    .filter((command) => input.CommandId === undefined || command.commandId === input.CommandId)
    .flatMap((command) => command.invocations)
    .filter((invocation) => input.InstanceId === undefined || invocation.instanceId === input.InstanceId);
  const { page, nextToken } = ssmPage(matching, input);
  return {
    CommandInvocations: page.map((invocation) => toSdkInvocation(invocation, input.Details === true)),
    NextToken: nextToken,
  };
};

export const listCommands = async (
  ctx: SsmContext,
  input: ListCommandsRequest,
): Promise<ListCommandsResult> => {
  if (input.CommandId !== undefined && !ctx.commands.has(input.CommandId))
    throw ssmError('InvalidCommandId', `Command ${input.CommandId} does not exist`);
  const matching = [...ctx.commands.values()].filter(
    (command) =>
      (input.CommandId === undefined || command.commandId === input.CommandId) &&
      (input.InstanceId === undefined ||
        command.invocations.some((invocation) => invocation.instanceId === input.InstanceId)),
  );
  const { page, nextToken } = ssmPage(matching, input);
  return { Commands: page.map(toSdkCommand), NextToken: nextToken };
};

/**
 * API_DescribeInstanceInformation: managed nodes only; PingStatus Online while the instance runs
 * with its agent up, ConnectionLost otherwise (e.g. stopped).
 */
export const describeInstanceInformation = async (
  ctx: SsmContext,
  input: DescribeInstanceInformationRequest,
): Promise<DescribeInstanceInformationResult> => {
  const filterValues = (key: string): string[] | undefined => {
    const values = [
      ...(input.Filters ?? [])
        .filter((filter) => filter.Key === key)
        .flatMap((filter) => filter.Values ?? []),
      ...(input.InstanceInformationFilterList ?? [])
        .filter((filter) => filter.key === key)
        .flatMap((filter) => filter.valueSet ?? []),
    ];
    return values.length > 0 ? values : undefined;
  };
  const ids = filterValues('InstanceIds');
  const pingStatuses = filterValues('PingStatus');
  const nodes = ctx.registration.managedNodes().flatMap((instanceId): InstanceInformation[] => {
    const instance = ctx.ec2.instance(instanceId);
    if (!instance) return [];
    const online = ctx.registration.isOnline(instanceId);
    return [
      {
        InstanceId: instanceId,
        PingStatus: online ? 'Online' : 'ConnectionLost',
        LastPingDateTime: new Date(online ? ctx.clock.now() : instance.launchTime),
        AgentVersion: '3.3.0.0',
        IsLatestVersion: true,
        PlatformType: instance.platform === 'windows' ? 'Windows' : 'Linux',
        PlatformName:
          instance.platform === 'windows' ? 'Microsoft Windows Server 2022 Datacenter' : 'Amazon Linux',
        ResourceType: 'EC2Instance',
        ComputerName: `ip-${instanceId.slice(2, 10)}.${ctx.region}.compute.internal`,
      },
    ];
  });
  const matching = nodes.filter(
    (node) =>
      (ids === undefined || ids.includes(node.InstanceId ?? '')) &&
      (pingStatuses === undefined || pingStatuses.includes(node.PingStatus ?? '')),
  );
  const { page, nextToken } = ssmPage(matching, input);
  return { InstanceInformationList: page, NextToken: nextToken };
};
