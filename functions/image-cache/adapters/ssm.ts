import {
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  ListCommandInvocationsCommand,
  SendCommandCommand,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { callAws } from '../../shared/aws-errors';
import { DependencyError, ValidationError } from '../../shared/errors';
import { collectPages, collectPagesInChunks } from '../../shared/pagination';
import {
  deployedDocumentName,
  invalidDocumentParameter,
  PINNED_DOCUMENT_VERSION,
} from '../../shared/ssm-document';
import { type DocumentName, documentNamed, RESULT_MARKER } from '../documents';
import { MAX_INSTANCES_PER_COMMAND } from '../domain/planner';

export interface SendOptions {
  readonly maxConcurrency: string;
  readonly maxErrors: string;
  readonly comment: string;
}

export interface InvocationResult {
  readonly status: string;
  readonly responseCode?: number;
  /** The parsed `WARMBOOT_RESULT` line of the output, if the script printed one. */
  readonly result?: Record<string, unknown>;
  readonly error?: string;
}

/** Exactly the SSM calls the image cache makes. */
export interface CacheCommands {
  send(
    document: DocumentName,
    instanceIds: readonly string[],
    parameters: Readonly<Record<string, string>>,
    options: SendOptions,
  ): Promise<string>;
  invocation(commandId: string, instanceId: string): Promise<InvocationResult>;
  /**
   * Which of `instanceIds` have their SSM agent Online (DescribeInstanceInformation): EC2 says
   * `running` before the agent registers, and SendCommand refuses the others (InvalidInstanceId).
   */
  agentsOnline(instanceIds: readonly string[]): Promise<Set<string>>;
  /** Status of every invocation of a command (ListCommandInvocations), for reconciles. */
  invocations(commandId: string): Promise<{ instanceId: string; status: string }[]>;
}

export const parseResultLine = (output: string | undefined): Record<string, unknown> | undefined => {
  const line = output
    ?.split('\n')
    .reverse()
    .find((candidate) => candidate.startsWith(RESULT_MARKER));
  if (!line) return undefined;
  try {
    const value: unknown = JSON.parse(line.slice(RESULT_MARKER.length));
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
};

export const ssmCacheCommands = (client: SSMClient): CacheCommands => ({
  async send(document, instanceIds, parameters, options) {
    if (instanceIds.length === 0 || instanceIds.length > MAX_INSTANCES_PER_COMMAND)
      throw new ValidationError('instanceIds', `1 to ${MAX_INSTANCES_PER_COMMAND} instances per SendCommand`);
    // The same allowedPatterns SSM applies: a bad value never leaves the function.
    const invalid = invalidDocumentParameter(
      documentNamed(document),
      Object.fromEntries(Object.entries(parameters).map(([name, value]) => [name, [value]])),
    );
    if (invalid) throw new ValidationError(`parameters.${invalid.parameter}`, invalid.message);
    const output = await callAws('SendCommand', () =>
      client.send(
        new SendCommandCommand({
          DocumentName: deployedDocumentName(documentNamed(document)),
          DocumentVersion: PINNED_DOCUMENT_VERSION,
          InstanceIds: [...instanceIds],
          Parameters: Object.fromEntries(Object.entries(parameters).map(([name, value]) => [name, [value]])),
          MaxConcurrency: options.maxConcurrency,
          MaxErrors: options.maxErrors,
          Comment: options.comment.slice(0, 100),
        }),
      ),
    );
    const commandId = output.Command?.CommandId;
    if (!commandId) throw new DependencyError('SendCommand returned no command id');
    return commandId;
  },
  async invocation(commandId, instanceId) {
    const output = await callAws('GetCommandInvocation', () =>
      client.send(new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instanceId })),
    );
    const result = parseResultLine(output.StandardOutputContent);
    return {
      status: output.Status ?? 'Pending',
      ...(output.ResponseCode !== undefined ? { responseCode: output.ResponseCode } : {}),
      ...(result ? { result } : {}),
      ...(output.StandardErrorContent || output.StandardOutputContent
        ? { error: (output.StandardErrorContent || output.StandardOutputContent || '').slice(0, 500) }
        : {}),
    };
  },
  async agentsOnline(instanceIds) {
    // DescribeInstanceInformation's InstanceIds filter takes at most 50 values (SSM API reference).
    const nodes = await collectPagesInChunks(instanceIds, MAX_INSTANCES_PER_COMMAND, async (ids, token) => {
      const output = await callAws('DescribeInstanceInformation', () =>
        client.send(
          new DescribeInstanceInformationCommand({
            Filters: [
              { Key: 'InstanceIds', Values: [...ids] },
              { Key: 'PingStatus', Values: ['Online'] },
            ],
            ...(token ? { NextToken: token } : {}),
          }),
        ),
      );
      return { items: output.InstanceInformationList ?? [], nextToken: output.NextToken };
    });
    return new Set(
      nodes.flatMap((node) => (node.InstanceId && node.PingStatus === 'Online' ? [node.InstanceId] : [])),
    );
  },
  invocations: (commandId) =>
    collectPages(async (token) => {
      const output = await callAws('ListCommandInvocations', () =>
        client.send(
          new ListCommandInvocationsCommand({ CommandId: commandId, ...(token ? { NextToken: token } : {}) }),
        ),
      );
      return {
        items: (output.CommandInvocations ?? []).flatMap((invocation) =>
          invocation.InstanceId
            ? [{ instanceId: invocation.InstanceId, status: invocation.Status ?? 'Pending' }]
            : [],
        ),
        nextToken: output.NextToken,
      };
    }),
});
