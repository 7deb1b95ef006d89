import type { DocumentOutcome, HostAgentState } from './agent';
import { commandInvocationStatusChange, commandStatusChange } from './events';
import { EXECUTED_DOCUMENTS, executeLinuxSteps, type HostAgentRun, hostFamilyOf } from './execute';
import { awsCliStub, resolveAgentReferences } from './host-parameters';
import {
  type CommandRecord,
  type DeliveryOutcome,
  type InvocationRecord,
  type InvocationStatus,
  instanceArn,
  type SsmContext,
} from './state';

/**
 * A command's rate-controlled fan-out (send-commands-multiple): at most MaxConcurrency invocations
 * at a time, no new one once more than MaxErrors failed (those never launched end Cancelled);
 * each waits for its instance's agent, runs the document's behaviour and emits its status changes.
 */

/** A count, or a percentage of `total` (at least one when the percentage is not zero). */
const resolveLimit = (value: string, total: number): number => {
  if (!value.endsWith('%')) return Number(value);
  const percent = Number(value.slice(0, -1));
  return percent === 0 ? 0 : Math.max(1, Math.floor((percent * total) / 100));
};

export const runCommand = async (ctx: SsmContext, command: CommandRecord): Promise<void> => {
  const total = command.invocations.length;
  const concurrency = resolveLimit(command.maxConcurrency, total);
  const errorLimit = resolveLimit(command.maxErrors, total);
  const queue = [...command.invocations];
  const worker = async (): Promise<void> => {
    for (let invocation = queue.shift(); invocation; invocation = queue.shift()) {
      if (command.errorCount > errorLimit) finish(ctx, invocation, { status: 'Cancelled' });
      else await invoke(ctx, invocation);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  completeCommand(ctx, command, errorLimit);
};

const invoke = async (ctx: SsmContext, invocation: InvocationRecord): Promise<void> => {
  const { command, instanceId } = invocation;
  const delivery = await deliver(ctx, invocation);
  if (delivery === 'timeout') {
    finish(ctx, invocation, { status: 'TimedOut', statusDetails: 'Delivery Timed Out' });
    return;
  }
  if (delivery === 'gone') {
    finish(ctx, invocation, {
      status: 'Failed',
      statusDetails: 'Undeliverable',
      eventStatus: 'Undeliverable',
    });
    return;
  }
  await ctx.clock.sleep(ctx.latency.commandDeliveryMs);
  const bootedAt = ctx.ec2.instance(instanceId)?.osReadyAt;
  invocation.status = 'InProgress';
  invocation.statusDetails = 'InProgress';
  invocation.startedAt = ctx.clock.now();
  if (command.status === 'Pending') {
    command.status = 'InProgress';
    command.statusDetails = 'InProgress';
  }
  emitInvocation(ctx, invocation, 'InProgress');
  const outcome = await runBehaviour(ctx, command, ctx.agents.get(instanceId));
  // The agent dies with the OS: a stop or reboot during the run fails the invocation.
  const interrupted = ctx.ec2.instance(instanceId)?.osReadyAt !== bootedAt || bootedAt === undefined;
  const final: DocumentOutcome = interrupted
    ? {
        status: 'Failed',
        output: `${outcome.output}\ninstance ${instanceId} stopped while the command ran`,
      }
    : outcome;
  if (final.status === 'Failed') command.errorCount += 1;
  finish(ctx, invocation, final);
};

/** Waits for an online agent: Pending while the instance boots, Delayed while it is not running. */
const deliver = async (ctx: SsmContext, invocation: InvocationRecord): Promise<DeliveryOutcome> => {
  const instance = ctx.ec2.instance(invocation.instanceId);
  if (!instance || instance.state === 'shutting-down' || instance.state === 'terminated') return 'gone';
  if (ctx.registration.receivesCommands(invocation.instanceId)) return 'online';
  if (instance.state !== 'running' && instance.state !== 'pending') {
    invocation.status = 'Delayed';
    invocation.statusDetails = 'Delayed';
  }
  return new Promise((resolve) => {
    const waiters = ctx.waiters.get(invocation.instanceId) ?? new Set();
    ctx.waiters.set(invocation.instanceId, waiters);
    let settled = false;
    const settle = (outcome: DeliveryOutcome): void => {
      if (settled) return;
      settled = true;
      waiters.delete(settle);
      resolve(outcome);
    };
    waiters.add(settle);
    ctx.clock.at(invocation.command.expiresAt, () => settle('timeout'));
  });
};

/** Settles every invocation waiting for the instance's agent: it came online, or the instance is gone. */
export const wake = (ctx: SsmContext, instanceId: string, outcome: DeliveryOutcome): void => {
  for (const settle of [...(ctx.waiters.get(instanceId) ?? [])]) settle(outcome);
};

const runBehaviour = async (
  ctx: SsmContext,
  command: CommandRecord,
  host: HostAgentState,
): Promise<DocumentOutcome> => {
  const behaviour = ctx.behaviours[command.document.name];
  if (!behaviour)
    return { status: 'Failed', output: `the local cloud has no behaviour for ${command.document.name}` };
  // Behaviours see every parameter, defaults filled in, as the agent substitutes them.
  const parameters = Object.fromEntries(
    Object.entries(command.document.parameters).map(([name, parameter]) => [
      name,
      command.parameters[name] ?? (parameter.default === undefined ? [] : [parameter.default]),
    ]),
  );
  if (EXECUTED_DOCUMENTS.has(command.document.name)) {
    const instance = ctx.ec2.instance(host.instanceId);
    const image = instance && ctx.ec2.image(instance.imageId);
    const platform =
      parameters.platform?.[0] === 'windows' || image?.platform === 'windows' ? 'Windows' : 'Linux';
    const caller = { instanceId: host.instanceId, profile: instance?.iamInstanceProfile };
    const agent: HostAgentRun = {
      environment: { AWS_SSM_INSTANCE_ID: host.instanceId, AWS_SSM_REGION_NAME: ctx.region },
      resolve: (script) => resolveAgentReferences(ctx.parameters, caller, script),
      aws: (names) => awsCliStub(ctx.parameters, caller, names),
    };
    const ran = executeLinuxSteps(
      command.document,
      command.parameters,
      hostFamilyOf(image?.name),
      platform,
      agent,
    );
    if (ran) ctx.counters.executedCommands += 1;
    if (ran?.status === 'Failed') return { status: ran.status, output: ran.output };
    // What the script left on the host stays there (it lives on the root volume, like `files`).
    for (const [path, content] of Object.entries(ran?.files ?? {})) host.files.set(`file:${path}`, content);
  }
  try {
    return await behaviour({
      host,
      parameters,
      clock: ctx.clock,
      ec2: ctx.ec2,
      imageSource: ctx.imageSource,
      random: ctx.random,
    });
  } catch (error) {
    return { status: 'Failed', output: error instanceof Error ? error.message : String(error) };
  }
};

/**
 * How an invocation ended. Its status details and the status its event reports are the status
 * itself unless said otherwise (Delivery Timed Out, Undeliverable); no output unless it ran.
 */
interface InvocationEnd {
  readonly status: InvocationStatus;
  readonly statusDetails?: string;
  readonly eventStatus?: string;
  readonly output?: string;
}

const finish = (ctx: SsmContext, invocation: InvocationRecord, end: InvocationEnd): void => {
  const { status } = end;
  invocation.status = status;
  invocation.statusDetails = end.statusDetails ?? status;
  invocation.output = end.output ?? '';
  invocation.responseCode =
    status === 'Success' ? 0 : status === 'Failed' && invocation.startedAt !== undefined ? 1 : -1;
  invocation.endedAt = ctx.clock.now();
  emitInvocation(ctx, invocation, end.eventStatus ?? status);
};

const emitInvocation = (ctx: SsmContext, invocation: InvocationRecord, status: string): void => {
  ctx.emit(
    commandInvocationStatusChange({
      instanceArn: instanceArn(ctx, invocation.instanceId),
      commandId: invocation.command.commandId,
      documentName: invocation.command.documentName,
      instanceId: invocation.instanceId,
      requestedAt: invocation.command.requestedAt,
      status,
    }),
  );
};

/**
 * monitor-commands, command statuses: Success when every delivered invocation succeeded;
 * Failed when more than MaxErrors failed; Delivery Timed Out (TimedOut) when more than MaxErrors
 * timed out in delivery; otherwise Incomplete, reported with status Failed.
 */
const completeCommand = (ctx: SsmContext, command: CommandRecord, errorLimit: number): void => {
  const count = (statusDetails: string) =>
    command.invocations.filter((invocation) => invocation.statusDetails === statusDetails).length;
  const delivered = command.invocations.filter((invocation) => invocation.statusDetails !== 'Undeliverable');
  if (delivered.every((invocation) => invocation.status === 'Success')) {
    command.status = 'Success';
    command.statusDetails = 'Success';
  } else if (command.errorCount > errorLimit) {
    command.status = 'Failed';
    command.statusDetails = 'Failed';
  } else if (count('Delivery Timed Out') > errorLimit) {
    command.status = 'TimedOut';
    command.statusDetails = 'Delivery Timed Out';
  } else {
    command.status = 'Failed';
    command.statusDetails = 'Incomplete';
  }
  ctx.emit(
    commandStatusChange({
      instanceArns: command.invocations.map((invocation) => instanceArn(ctx, invocation.instanceId)),
      commandId: command.commandId,
      documentName: command.documentName,
      expiresAt: command.expiresAt,
      parameters: command.parameters,
      requestedAt: command.requestedAt,
      status: command.status,
    }),
  );
};
