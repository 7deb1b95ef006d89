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
  SendCommandRequest,
  SendCommandResult,
  Target,
} from '@aws-sdk/client-ssm';
import {
  type CommandDocument,
  deployedDocumentName,
  invalidDocumentParameter,
} from '../../functions/shared/ssm-document';
import type { VirtualClock } from '../clock';
import type { SimulatorEvent } from '../ec2/events';
import { IdGenerator, type Random, seededRandom } from '../ec2/ids';
import type { Ec2Simulator } from '../ec2/simulator';
import type { FaultInjector } from '../faults';
import { InstanceProfiles } from '../iam/instance-profiles';
import { type LatencyMode, type SsmLatencies, ssmLatencies } from '../latency';
import { type OperationDispatch, SimulatedAwsError } from '../sdk-bridge';
import {
  type AgentDefaults,
  AgentRegistry,
  DEFAULT_AGENT,
  type DocumentBehaviour,
  type DocumentOutcome,
  type HostAgentState,
  ImageSource,
  SYSPREP_GENERALIZED,
} from './agent';
import { commandInvocationStatusChange, commandStatusChange } from './events';
import { EXECUTED_DOCUMENTS, executeLinuxSteps, hostFamilyOf } from './execute';
import { AgentRegistration } from './registration';

export interface SsmSimulatorOptions {
  readonly clock: VirtualClock;
  readonly region: string;
  readonly accountId: string;
  readonly ec2: Ec2Simulator;
  readonly emit: (event: SimulatorEvent) => void;
  readonly faults: FaultInjector;
  /** The Command documents SendCommand accepts (the same objects the CDK stack deploys). */
  readonly documents: readonly CommandDocument[];
  /** What running each document does on a host, by document name. */
  readonly behaviours: Readonly<Record<string, DocumentBehaviour>>;
  readonly latency?: LatencyMode;
  readonly random?: Random;
  /** Default: an empty, reachable source. */
  readonly imageSource?: ImageSource;
  readonly agentDefaults?: Partial<AgentDefaults>;
  /**
   * The account's instance profiles: an agent registers only with a role that allows it
   * (local/ssm/registration.ts). Default: none.
   */
  readonly instanceProfiles?: InstanceProfiles;
  /** Default Host Management Configuration in this account and Region (default off, as in a new account). */
  readonly defaultHostManagement?: boolean;
}

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

/** A deployed document's versions (version n at index n - 1) and which one is `$DEFAULT`. */
interface DeployedDocument {
  readonly versions: CommandDocument[];
  defaultVersion: number;
}

interface CommandRecord {
  readonly commandId: string;
  /** The content of the version the command runs. */
  readonly document: CommandDocument;
  /** The name SendCommand was given (the deployed, content-addressed name). */
  readonly documentName: string;
  readonly documentVersion: string;
  readonly parameters: Record<string, string[]>;
  readonly comment: string;
  readonly requestedAt: number;
  readonly expiresAt: number;
  readonly timeoutSeconds: number;
  readonly maxConcurrency: string;
  readonly maxErrors: string;
  readonly instanceIds: string[];
  readonly targets: Target[];
  readonly invocations: InvocationRecord[];
  status: 'Pending' | 'InProgress' | 'Success' | 'Failed' | 'TimedOut';
  statusDetails: string;
  errorCount: number;
}

/** CommandInvocationStatus without Cancelling: the simulator does not model CancelCommand. */
type InvocationStatus =
  | 'Pending'
  | 'InProgress'
  | 'Delayed'
  | 'Success'
  | 'Cancelled'
  | 'TimedOut'
  | 'Failed';

interface InvocationRecord {
  readonly command: CommandRecord;
  readonly instanceId: string;
  status: InvocationStatus;
  statusDetails: string;
  output: string;
  responseCode: number;
  startedAt: number | undefined;
  endedAt: number | undefined;
}

type DeliveryOutcome = 'online' | 'gone' | 'timeout';

const ssmError = (code: string, message: string): SimulatedAwsError => new SimulatedAwsError(code, message);

const validationError = (message: string): SimulatedAwsError =>
  ssmError('ValidationException', `1 validation error detected: ${message}`);

/** A count, or a percentage of `total` (at least one when the percentage is not zero). */
const resolveLimit = (value: string, total: number): number => {
  if (!value.endsWith('%')) return Number(value);
  const percent = Number(value.slice(0, -1));
  return percent === 0 ? 0 : Math.max(1, Math.floor((percent * total) / 100));
};

const isoDuration = (ms: number): string => `PT${(ms / 1000).toFixed(3)}S`;

/** Opaque position tokens for the List* calls. */
const page = <T>(items: readonly T[], maxResults: number | undefined, nextToken: string | undefined) => {
  const start = nextToken === undefined ? 0 : Number(Buffer.from(nextToken, 'base64url').toString());
  if (!Number.isInteger(start) || start < 0 || start > items.length)
    throw ssmError('InvalidNextToken', 'The specified token is not valid.');
  const end = maxResults === undefined ? items.length : Math.min(items.length, start + maxResults);
  return {
    items: items.slice(start, end),
    nextToken: end < items.length ? Buffer.from(String(end)).toString('base64url') : undefined,
  };
};

/**
 * A stateful Systems Manager Run Command for the local cloud, plugged under a real SSMClient.
 *
 * - SendCommand validates like SSM (unknown document → InvalidDocument; a value failing the
 *   document's allowedPattern → InvalidParameters; over 50 instance ids → ValidationException;
 *   an instance that is not a managed node, e.g. never registered or terminated →
 *   InvalidInstanceId) and then runs invocations in the background, at most MaxConcurrency at a
 *   time, launching no new one once more than MaxErrors failed (send-commands-multiple); those
 *   never launched end Cancelled.
 * - An agent registers only with an instance profile whose role allows it, or with Default Host
 *   Management Configuration on, and its first registration takes tens of seconds (Linux) to
 *   minutes (Windows) after boot (./registration.ts).
 * - An invocation waits for the instance's agent (online again once a registered node's OS
 *   booted) until TimeoutSeconds; then it is Delivery Timed Out. A node that terminates meanwhile makes
 *   it Undeliverable (monitor-commands). Delivery timeouts and undeliverable invocations do not
 *   count against MaxErrors.
 * - Every invocation status change emits "EC2 Command Invocation Status-change Notification",
 *   and the command's final status "EC2 Command Status-change Notification".
 */
export class SsmSimulator {
  readonly dispatch: OperationDispatch;
  readonly imageSource: ImageSource;
  readonly #clock: VirtualClock;
  readonly #region: string;
  readonly #accountId: string;
  readonly #ec2: Ec2Simulator;
  #executedCommands = 0;

  /** Command invocations whose document was rendered and run in a real shell (local/ssm/execute.ts). */
  get executedCommands(): number {
    return this.#executedCommands;
  }
  readonly #emit: (event: SimulatorEvent) => void;
  /** Deployed documents by their deployed name (functions/shared/ssm-document.ts). */
  readonly #documents: Map<string, DeployedDocument>;
  readonly #behaviours: Readonly<Record<string, DocumentBehaviour>>;
  readonly #latency: SsmLatencies;
  readonly #random: Random;
  readonly #ids: IdGenerator;
  readonly #agents: AgentRegistry;
  /** Which agents registered (SSM's managed nodes) and which are online now. */
  readonly #registration: AgentRegistration;
  readonly #commands = new Map<string, CommandRecord>();
  readonly #waiters = new Map<string, Set<(outcome: DeliveryOutcome) => void>>();

  constructor(options: SsmSimulatorOptions) {
    this.#clock = options.clock;
    this.#region = options.region;
    this.#accountId = options.accountId;
    this.#ec2 = options.ec2;
    this.#emit = options.emit;
    this.#documents = new Map(
      options.documents.map((document) => [
        deployedDocumentName(document),
        { versions: [document], defaultVersion: 1 },
      ]),
    );
    this.#behaviours = options.behaviours;
    this.#latency = ssmLatencies(options.latency ?? 'calibrated');
    this.#random = options.random ?? seededRandom(2);
    this.#ids = new IdGenerator(this.#random);
    this.#agents = new AgentRegistry({ ...DEFAULT_AGENT, ...options.agentDefaults });
    this.#registration = new AgentRegistration({
      clock: options.clock,
      ec2: options.ec2,
      profiles: options.instanceProfiles ?? new InstanceProfiles(options.accountId),
      latencies: this.#latency,
      random: this.#random,
      defaultHostManagement: options.defaultHostManagement ?? false,
      onOnline: (instanceId) => {
        if (this.#registration.receivesCommands(instanceId)) this.#wake(instanceId, 'online');
      },
    });
    this.imageSource = options.imageSource ?? new ImageSource();
    options.ec2.onInstanceLifecycle((change) => {
      if (change.kind === 'os-ready') {
        // The pool document's sysprep leaves this marker: the next boot specializes the OS again.
        const generalized = this.#agents.get(change.instanceId).files.delete(SYSPREP_GENERALIZED);
        this.#registration.booted(change.instanceId, { generalized });
      } else if (change.state === 'shutting-down' || change.state === 'terminated') {
        this.#wake(change.instanceId, 'gone');
        if (change.state === 'terminated') {
          this.#registration.forget(change.instanceId);
          this.#agents.forget(change.instanceId);
        }
      }
    });
    // The real SDK client has already shaped each input as its command's input type.
    const typed =
      <I>(operation: (input: I) => Promise<object>) =>
      (input: Record<string, unknown>) =>
        operation(input as I);
    const operations: Readonly<Record<string, (input: Record<string, unknown>) => Promise<object>>> = {
      SendCommand: typed((input: SendCommandRequest) => this.#sendCommand(input)),
      GetCommandInvocation: typed((input: GetCommandInvocationRequest) => this.#getCommandInvocation(input)),
      ListCommandInvocations: typed((input: ListCommandInvocationsRequest) =>
        this.#listCommandInvocations(input),
      ),
      ListCommands: typed((input: ListCommandsRequest) => this.#listCommands(input)),
      DescribeInstanceInformation: typed((input: DescribeInstanceInformationRequest) =>
        this.#describeInstanceInformation(input),
      ),
    };
    this.dispatch = async (operation, input) => {
      options.faults.beforeCall('ssm', operation);
      const run = operations[operation];
      if (!run) throw ssmError('UnknownOperationException', `${operation} is not simulated`);
      return (await run(input)) as Record<string, unknown>;
    };
  }

  /** The account's Default Host Management Configuration (UpdateServiceSetting); see registration.ts. */
  get defaultHostManagement(): boolean {
    return this.#registration.defaultHostManagement;
  }

  setDefaultHostManagement(on: boolean): void {
    this.#registration.setDefaultHostManagement(on);
  }

  /** The agent state of an instance (created if needed), e.g. to seed a warm cache in a test. */
  agent(instanceId: string): HostAgentState {
    return this.#agents.get(instanceId);
  }

  /**
   * Read model: every invocation with its current status, oldest command first. `documentName` is
   * the logical name (tests ask "how many fetches"); the SDK and events carry the deployed one.
   */
  invocations(): {
    commandId: string;
    instanceId: string;
    documentName: string;
    status: string;
    statusDetails: string;
    output: string;
  }[] {
    return [...this.#commands.values()].flatMap((command) =>
      command.invocations.map((invocation) => ({
        commandId: command.commandId,
        instanceId: invocation.instanceId,
        documentName: command.document.name,
        status: invocation.status,
        statusDetails: invocation.statusDetails,
        output: invocation.output,
      })),
    );
  }

  /**
   * Resolves SendCommand's `DocumentVersion` (API_SendCommand): `$DEFAULT` when omitted, `$LATEST`,
   * or a version number that must exist (`InvalidDocumentVersion`); anything else fails the
   * parameter's pattern (`ValidationException`).
   */
  #resolveVersion(deployed: DeployedDocument, requested: string | undefined): number {
    if (requested === undefined || requested === '$DEFAULT') return deployed.defaultVersion;
    if (!DOCUMENT_VERSION.test(requested))
      throw validationError(`Value '${requested}' at 'documentVersion' failed to satisfy constraint`);
    if (requested === '$LATEST') return deployed.versions.length;
    const version = Number(requested);
    if (version > deployed.versions.length)
      throw ssmError('InvalidDocumentVersion', `Document version ${requested} does not exist.`);
    return version;
  }

  /**
   * What UpdateDocument and UpdateDocumentDefaultVersion do when someone edits a deployed
   * document outside the stack (the console, a script): a new version, optionally the default.
   * Tests use it to show warmboot still runs the version it was deployed with.
   */
  publishDocumentVersion(
    deployedName: string,
    content: CommandDocument,
    options: { makeDefault: boolean },
  ): number {
    const deployed = this.#documents.get(deployedName);
    if (!deployed) throw ssmError('InvalidDocument', `Document ${deployedName} does not exist.`);
    deployed.versions.push(content);
    if (options.makeDefault) deployed.defaultVersion = deployed.versions.length;
    return deployed.versions.length;
  }

  async #sendCommand(input: SendCommandRequest): Promise<SendCommandResult> {
    const deployed = input.DocumentName === undefined ? undefined : this.#documents.get(input.DocumentName);
    if (!deployed) throw ssmError('InvalidDocument', `Document ${input.DocumentName ?? ''} does not exist.`);
    const documentVersion = this.#resolveVersion(deployed, input.DocumentVersion);
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

    const notManaged = instanceIds.filter((id) => !this.#isManaged(id));
    if (notManaged.length > 0)
      throw ssmError(
        'InvalidInstanceId',
        `Instances [[${notManaged.join(', ')}]] not in a valid state for account ${this.#accountId}`,
      );
    const resolved = [
      ...new Set([...instanceIds, ...targets.flatMap((target) => this.#resolveTarget(target))]),
    ];

    const timeoutSeconds = input.TimeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
    const now = this.#clock.now();
    const command: CommandRecord = {
      commandId: this.#ids.uuid(),
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
    this.#commands.set(command.commandId, command);
    void this.#run(command);
    return { Command: this.#toSdkCommand(command) };
  }

  #isManaged(instanceId: string): boolean {
    const state = this.#ec2.instance(instanceId)?.state;
    return this.#registration.isManaged(instanceId) && state !== 'shutting-down' && state !== 'terminated';
  }

  /** send-commands-multiple: tag:KEY targets every managed node with that tag value; InstanceIds lists ids. */
  #resolveTarget(target: Target): string[] {
    const key = target.Key ?? '';
    const values = target.Values ?? [];
    if (key === 'InstanceIds') return values.filter((id) => this.#isManaged(id));
    if (!key.startsWith('tag:'))
      throw validationError(`Target key ${key} is not supported by the local cloud`);
    const tagKey = key.slice('tag:'.length);
    return this.#ec2
      .instances()
      .filter(
        (instance) => values.includes(instance.tags[tagKey] ?? '') && this.#isManaged(instance.instanceId),
      )
      .map((instance) => instance.instanceId);
  }

  async #run(command: CommandRecord): Promise<void> {
    const total = command.invocations.length;
    const concurrency = resolveLimit(command.maxConcurrency, total);
    const errorLimit = resolveLimit(command.maxErrors, total);
    const queue = [...command.invocations];
    const worker = async (): Promise<void> => {
      for (let invocation = queue.shift(); invocation; invocation = queue.shift()) {
        if (command.errorCount > errorLimit)
          this.#finish(invocation, 'Cancelled', 'Cancelled', 'Cancelled', '');
        else await this.#invoke(invocation);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
    this.#completeCommand(command, errorLimit);
  }

  async #invoke(invocation: InvocationRecord): Promise<void> {
    const { command, instanceId } = invocation;
    const delivery = await this.#deliver(invocation);
    if (delivery === 'timeout') {
      this.#finish(invocation, 'TimedOut', 'Delivery Timed Out', 'TimedOut', '');
      return;
    }
    if (delivery === 'gone') {
      this.#finish(invocation, 'Failed', 'Undeliverable', 'Undeliverable', '');
      return;
    }
    await this.#clock.sleep(this.#latency.commandDeliveryMs);
    const bootedAt = this.#ec2.instance(instanceId)?.osReadyAt;
    invocation.status = 'InProgress';
    invocation.statusDetails = 'InProgress';
    invocation.startedAt = this.#clock.now();
    if (command.status === 'Pending') {
      command.status = 'InProgress';
      command.statusDetails = 'InProgress';
    }
    this.#emitInvocation(invocation, 'InProgress');
    const outcome = await this.#runBehaviour(command, this.#agents.get(instanceId));
    // The agent dies with the OS: a stop or reboot during the run fails the invocation.
    const interrupted = this.#ec2.instance(instanceId)?.osReadyAt !== bootedAt || bootedAt === undefined;
    const final: DocumentOutcome = interrupted
      ? {
          status: 'Failed',
          output: `${outcome.output}\ninstance ${instanceId} stopped while the command ran`,
        }
      : outcome;
    if (final.status === 'Failed') command.errorCount += 1;
    this.#finish(invocation, final.status, final.status, final.status, final.output);
  }

  /** Waits for an online agent: Pending while the instance boots, Delayed while it is not running. */
  async #deliver(invocation: InvocationRecord): Promise<DeliveryOutcome> {
    const instance = this.#ec2.instance(invocation.instanceId);
    if (!instance || instance.state === 'shutting-down' || instance.state === 'terminated') return 'gone';
    if (this.#registration.receivesCommands(invocation.instanceId)) return 'online';
    if (instance.state !== 'running' && instance.state !== 'pending') {
      invocation.status = 'Delayed';
      invocation.statusDetails = 'Delayed';
    }
    return new Promise((resolve) => {
      const waiters = this.#waiters.get(invocation.instanceId) ?? new Set();
      this.#waiters.set(invocation.instanceId, waiters);
      let settled = false;
      const settle = (outcome: DeliveryOutcome): void => {
        if (settled) return;
        settled = true;
        waiters.delete(settle);
        resolve(outcome);
      };
      waiters.add(settle);
      this.#clock.at(invocation.command.expiresAt, () => settle('timeout'));
    });
  }

  #wake(instanceId: string, outcome: DeliveryOutcome): void {
    for (const settle of [...(this.#waiters.get(instanceId) ?? [])]) settle(outcome);
  }

  async #runBehaviour(command: CommandRecord, host: HostAgentState): Promise<DocumentOutcome> {
    const behaviour = this.#behaviours[command.document.name];
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
      const instance = this.#ec2.instance(host.instanceId);
      const image = instance && this.#ec2.image(instance.imageId);
      const platform =
        parameters.platform?.[0] === 'windows' || image?.platform === 'windows' ? 'Windows' : 'Linux';
      const ran = executeLinuxSteps(
        command.document,
        command.parameters,
        hostFamilyOf(image?.name),
        platform,
      );
      if (ran) this.#executedCommands += 1;
      if (ran?.status === 'Failed') return ran;
    }
    try {
      return await behaviour({
        host,
        parameters,
        clock: this.#clock,
        ec2: this.#ec2,
        imageSource: this.imageSource,
        random: this.#random,
      });
    } catch (error) {
      return { status: 'Failed', output: error instanceof Error ? error.message : String(error) };
    }
  }

  #finish(
    invocation: InvocationRecord,
    status: InvocationStatus,
    statusDetails: string,
    eventStatus: string,
    output: string,
  ): void {
    invocation.status = status;
    invocation.statusDetails = statusDetails;
    invocation.output = output;
    invocation.responseCode =
      status === 'Success' ? 0 : status === 'Failed' && invocation.startedAt !== undefined ? 1 : -1;
    invocation.endedAt = this.#clock.now();
    this.#emitInvocation(invocation, eventStatus);
  }

  #emitInvocation(invocation: InvocationRecord, status: string): void {
    this.#emit(
      commandInvocationStatusChange({
        instanceArn: this.#instanceArn(invocation.instanceId),
        commandId: invocation.command.commandId,
        documentName: invocation.command.documentName,
        instanceId: invocation.instanceId,
        requestedAt: invocation.command.requestedAt,
        status,
      }),
    );
  }

  /**
   * monitor-commands, command statuses: Success when every delivered invocation succeeded;
   * Failed when more than MaxErrors failed; Delivery Timed Out (TimedOut) when more than MaxErrors
   * timed out in delivery; otherwise Incomplete, reported with status Failed.
   */
  #completeCommand(command: CommandRecord, errorLimit: number): void {
    const count = (statusDetails: string) =>
      command.invocations.filter((invocation) => invocation.statusDetails === statusDetails).length;
    const delivered = command.invocations.filter(
      (invocation) => invocation.statusDetails !== 'Undeliverable',
    );
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
    this.#emit(
      commandStatusChange({
        instanceArns: command.invocations.map((invocation) => this.#instanceArn(invocation.instanceId)),
        commandId: command.commandId,
        documentName: command.documentName,
        expiresAt: command.expiresAt,
        parameters: command.parameters,
        requestedAt: command.requestedAt,
        status: command.status,
      }),
    );
  }

  #instanceArn(instanceId: string): string {
    return `arn:aws:ec2:${this.#region}:${this.#accountId}:instance/${instanceId}`;
  }

  #pluginName(command: CommandRecord): string {
    const name = command.document.mainSteps[0]?.name;
    return typeof name === 'string' ? name : 'aws:runShellScript';
  }

  #toSdkCommand(command: CommandRecord): Command {
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
  }

  #invocation(commandId: string | undefined, instanceId: string | undefined): InvocationRecord {
    const invocation = this.#commands
      .get(commandId ?? '')
      ?.invocations.find((candidate) => candidate.instanceId === instanceId);
    // Also what SSM answers right after SendCommand, before the invocation exists (eventual consistency).
    if (!invocation) throw ssmError('InvocationDoesNotExist', '');
    return invocation;
  }

  async #getCommandInvocation(input: GetCommandInvocationRequest): Promise<GetCommandInvocationResult> {
    const invocation = this.#invocation(input.CommandId, input.InstanceId);
    const { startedAt, endedAt } = invocation;
    return {
      CommandId: invocation.command.commandId,
      InstanceId: invocation.instanceId,
      Comment: invocation.command.comment,
      DocumentName: invocation.command.documentName,
      DocumentVersion: invocation.command.documentVersion,
      PluginName: this.#pluginName(invocation.command),
      ResponseCode: invocation.responseCode,
      ExecutionStartDateTime: startedAt === undefined ? '' : new Date(startedAt).toISOString(),
      ExecutionEndDateTime:
        endedAt === undefined || startedAt === undefined ? '' : new Date(endedAt).toISOString(),
      ExecutionElapsedTime:
        startedAt === undefined ? '' : isoDuration((endedAt ?? this.#clock.now()) - startedAt),
      Status: invocation.status,
      StatusDetails: invocation.statusDetails,
      // API_GetCommandInvocation: StandardOutputContent holds at most the first 24,000 characters.
      StandardOutputContent: invocation.output.slice(0, 24_000),
      StandardOutputUrl: '',
      StandardErrorContent: '',
      StandardErrorUrl: '',
    };
  }

  #toSdkInvocation(invocation: InvocationRecord, details: boolean): CommandInvocation {
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
              Name: this.#pluginName(command),
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
  }

  async #listCommandInvocations(input: ListCommandInvocationsRequest): Promise<ListCommandInvocationsResult> {
    const matching = [...this.#commands.values()]
      .filter((command) => input.CommandId === undefined || command.commandId === input.CommandId)
      .flatMap((command) => command.invocations)
      .filter((invocation) => input.InstanceId === undefined || invocation.instanceId === input.InstanceId);
    const { items, nextToken } = page(matching, input.MaxResults, input.NextToken);
    return {
      CommandInvocations: items.map((invocation) =>
        this.#toSdkInvocation(invocation, input.Details === true),
      ),
      NextToken: nextToken,
    };
  }

  async #listCommands(input: ListCommandsRequest): Promise<ListCommandsResult> {
    if (input.CommandId !== undefined && !this.#commands.has(input.CommandId))
      throw ssmError('InvalidCommandId', `Command ${input.CommandId} does not exist`);
    const matching = [...this.#commands.values()].filter(
      (command) =>
        (input.CommandId === undefined || command.commandId === input.CommandId) &&
        (input.InstanceId === undefined ||
          command.invocations.some((invocation) => invocation.instanceId === input.InstanceId)),
    );
    const { items, nextToken } = page(matching, input.MaxResults, input.NextToken);
    return { Commands: items.map((command) => this.#toSdkCommand(command)), NextToken: nextToken };
  }

  /**
   * API_DescribeInstanceInformation: managed nodes only; PingStatus Online while the instance runs
   * with its agent up, ConnectionLost otherwise (e.g. stopped).
   */
  async #describeInstanceInformation(
    input: DescribeInstanceInformationRequest,
  ): Promise<DescribeInstanceInformationResult> {
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
    const nodes = this.#registration.managedNodes().flatMap((instanceId): InstanceInformation[] => {
      const instance = this.#ec2.instance(instanceId);
      if (!instance) return [];
      const online = this.#registration.isOnline(instanceId);
      return [
        {
          InstanceId: instanceId,
          PingStatus: online ? 'Online' : 'ConnectionLost',
          LastPingDateTime: new Date(online ? this.#clock.now() : instance.launchTime),
          AgentVersion: '3.3.0.0',
          IsLatestVersion: true,
          PlatformType: instance.platform === 'windows' ? 'Windows' : 'Linux',
          PlatformName:
            instance.platform === 'windows' ? 'Microsoft Windows Server 2022 Datacenter' : 'Amazon Linux',
          ResourceType: 'EC2Instance',
          ComputerName: `ip-${instanceId.slice(2, 10)}.${this.#region}.compute.internal`,
        },
      ];
    });
    const matching = nodes.filter(
      (node) =>
        (ids === undefined || ids.includes(node.InstanceId ?? '')) &&
        (pingStatuses === undefined || pingStatuses.includes(node.PingStatus ?? '')),
    );
    const { items, nextToken } = page(matching, input.MaxResults, input.NextToken);
    return { InstanceInformationList: items, NextToken: nextToken };
  }
}
