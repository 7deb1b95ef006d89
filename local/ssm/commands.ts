import type { SendCommandRequest, SendCommandResult, Target } from '@aws-sdk/client-ssm';
import { type CommandDocument, invalidDocumentParameter } from '../../functions/shared/ssm-document';
import { runCommand } from './execution';
import {
  type CommandRecord,
  type DeployedDocument,
  type SsmContext,
  ssmError,
  validationError,
} from './state';
import { toSdkCommand } from './views';

/** SendCommand: request validation and Run Command's limits, then the command starts (execution.ts). */

/** Run Command limits (send-commands-multiple, API_SendCommand). */
const MAX_INSTANCE_IDS = 50;
const MAX_TARGETS = 5;
const DEFAULT_MAX_CONCURRENCY = '50';
const DEFAULT_MAX_ERRORS = '0';
const DEFAULT_TIMEOUT_SECONDS = 3600;
/** API_SendCommand patterns for MaxConcurrency and MaxErrors: a count or a percentage. */
const MAX_CONCURRENCY = /^(?:[1-9]\d*|[1-9]\d%|[1-9]%|100%)$/;
const MAX_ERRORS = /^(?:[1-9]\d*|0|[1-9]\d%|\d%|100%)$/;

/** API_SendCommand `DocumentVersion` pattern. */
const DOCUMENT_VERSION = /^(?:\$LATEST|\$DEFAULT|[1-9][0-9]*)$/;

/**
 * Resolves SendCommand's `DocumentVersion` (API_SendCommand): `$DEFAULT` when omitted, `$LATEST`,
 * or a version number that must exist (`InvalidDocumentVersion`); anything else fails the
 * parameter's pattern (`ValidationException`).
 */
const resolveVersion = (deployed: DeployedDocument, requested: string | undefined): number => {
  if (requested === undefined || requested === '$DEFAULT') return deployed.defaultVersion;
  if (!DOCUMENT_VERSION.test(requested))
    throw validationError(`Value '${requested}' at 'documentVersion' failed to satisfy constraint`);
  if (requested === '$LATEST') return deployed.versions.length;
  const version = Number(requested);
  if (version > deployed.versions.length)
    throw ssmError('InvalidDocumentVersion', `Document version ${requested} does not exist.`);
  return version;
};

/**
 * What UpdateDocument and UpdateDocumentDefaultVersion do when someone edits a deployed
 * document outside the stack (the console, a script): a new version, optionally the default.
 */
export const publishDocumentVersion = (
  ctx: SsmContext,
  deployedName: string,
  content: CommandDocument,
  options: { makeDefault: boolean },
): number => {
  const deployed = ctx.documents.get(deployedName);
  if (!deployed) throw ssmError('InvalidDocument', `Document ${deployedName} does not exist.`);
  deployed.versions.push(content);
  if (options.makeDefault) deployed.defaultVersion = deployed.versions.length;
  return deployed.versions.length;
};

export const sendCommand = async (ctx: SsmContext, input: SendCommandRequest): Promise<SendCommandResult> => {
  const deployed = input.DocumentName === undefined ? undefined : ctx.documents.get(input.DocumentName);
  if (!deployed) throw ssmError('InvalidDocument', `Document ${input.DocumentName ?? ''} does not exist.`);
  const documentVersion = resolveVersion(deployed, input.DocumentVersion);
  const document = deployed.versions[documentVersion - 1] as CommandDocument;
  const parameters = input.Parameters ?? {};
  const invalid = invalidDocumentParameter(document, parameters);
  if (invalid) throw ssmError('InvalidParameters', `${invalid.parameter}: ${invalid.message}`);
  const instanceIds = input.InstanceIds ?? [];
  const targets = input.Targets ?? [];
  if (instanceIds.length > MAX_INSTANCE_IDS)
    throw validationError(
      `Value at 'instanceIds' failed to satisfy constraint: Member must have length less than or equal to ${MAX_INSTANCE_IDS}`,
    );
  if (targets.length > MAX_TARGETS)
    throw validationError(
      `Value at 'targets' failed to satisfy constraint: Member must have length less than or equal to ${MAX_TARGETS}`,
    );
  if (instanceIds.length === 0 && targets.length === 0)
    throw validationError('Either InstanceIds or Targets must be specified.');
  const maxConcurrency = input.MaxConcurrency ?? DEFAULT_MAX_CONCURRENCY;
  const maxErrors = input.MaxErrors ?? DEFAULT_MAX_ERRORS;
  if (!MAX_CONCURRENCY.test(maxConcurrency))
    throw validationError(`Value '${maxConcurrency}' at 'maxConcurrency' failed to satisfy constraint`);
  if (!MAX_ERRORS.test(maxErrors))
    throw validationError(`Value '${maxErrors}' at 'maxErrors' failed to satisfy constraint`);

  const notManaged = instanceIds.filter((id) => !isManaged(ctx, id));
  if (notManaged.length > 0)
    throw ssmError(
      'InvalidInstanceId',
      `Instances [[${notManaged.join(', ')}]] not in a valid state for account ${ctx.accountId}`,
    );
  const resolved = [...new Set([...instanceIds, ...targets.flatMap((target) => resolveTarget(ctx, target))])];

  const timeoutSeconds = input.TimeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
  const now = ctx.clock.now();
  const command: CommandRecord = {
    commandId: ctx.ids.uuid(),
    document,
    documentName: input.DocumentName as string,
    documentVersion: String(documentVersion),
    parameters,
    comment: input.Comment ?? '',
    requestedAt: now,
    expiresAt: now + timeoutSeconds * 1000,
    timeoutSeconds,
    maxConcurrency,
    maxErrors,
    instanceIds,
    targets,
    invocations: [],
    status: 'Pending',
    statusDetails: 'Pending',
    errorCount: 0,
  };
  for (const instanceId of resolved) {
    command.invocations.push({
      command,
      instanceId,
      status: 'Pending',
      statusDetails: 'Pending',
      output: '',
      responseCode: -1,
      startedAt: undefined,
      endedAt: undefined,
    });
  }
  ctx.commands.set(command.commandId, command);
  void runCommand(ctx, command);
  return { Command: toSdkCommand(command) };
};

const isManaged = (ctx: SsmContext, instanceId: string): boolean => {
  const state = ctx.ec2.instance(instanceId)?.state;
  return ctx.registration.isManaged(instanceId) && state !== 'shutting-down' && state !== 'terminated';
};

/** send-commands-multiple: tag:KEY targets every managed node with that tag value; InstanceIds lists ids. */
const resolveTarget = (ctx: SsmContext, target: Target): string[] => {
  const key = target.Key ?? '';
  const values = target.Values ?? [];
  if (key === 'InstanceIds') return values.filter((id) => isManaged(ctx, id));
  if (!key.startsWith('tag:')) throw validationError(`Target key ${key} is not supported by the local cloud`);
  const tagKey = key.slice('tag:'.length);
  return ctx.ec2
    .instances()
    .filter((instance) => values.includes(instance.tags[tagKey] ?? '') && isManaged(ctx, instance.instanceId))
    .map((instance) => instance.instanceId);
};
