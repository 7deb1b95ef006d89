import type {
  DescribeInstanceInformationRequest,
  GetCommandInvocationRequest,
  ListCommandInvocationsRequest,
  ListCommandsRequest,
  SendCommandRequest,
} from '@aws-sdk/client-ssm';
import { type CommandDocument, deployedDocumentName } from '../../functions/shared/ssm-document';
import type { VirtualClock } from '../clock';
import type { SimulatorEvent } from '../ec2/events';
import { IdGenerator, type Random, seededRandom } from '../ec2/ids';
import type { Ec2Simulator } from '../ec2/simulator';
import type { FaultInjector } from '../faults';
import { InstanceProfiles } from '../iam/instance-profiles';
import { type LatencyMode, ssmLatencies } from '../latency';
import type { OperationDispatch } from '../sdk-bridge';
import {
  type AgentDefaults,
  AgentRegistry,
  DEFAULT_AGENT,
  type DocumentBehaviour,
  type HostAgentState,
  ImageSource,
  SYSPREP_GENERALIZED,
} from './agent';
import { publishDocumentVersion, sendCommand } from './commands';
import { wake } from './execution';
import { ParameterStore } from './parameter-store';
import { AgentRegistration } from './registration';
import { type SsmContext, ssmError } from './state';
import {
  describeInstanceInformation,
  getCommandInvocation,
  listCommandInvocations,
  listCommands,
} from './views';

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

/**
 * A stateful Systems Manager Run Command for the local cloud, plugged under a real SSMClient. The
 * operations live in modules over a shared SsmContext, as EC2's do: request validation and limits
 * in ./commands.ts, the rate-controlled fan-out in ./execution.ts, SDK views and paging in ./views.ts.
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
  readonly #ctx: SsmContext;

  constructor(options: SsmSimulatorOptions) {
    const latency = ssmLatencies(options.latency ?? 'calibrated');
    const random = options.random ?? seededRandom(2);
    const ids = new IdGenerator(random);
    const agents = new AgentRegistry({ ...DEFAULT_AGENT, ...options.agentDefaults });
    const profiles = options.instanceProfiles ?? new InstanceProfiles(options.accountId);
    const registration: AgentRegistration = new AgentRegistration({
      clock: options.clock,
      ec2: options.ec2,
      profiles,
      latencies: latency,
      random,
      defaultHostManagement: options.defaultHostManagement ?? false,
      onOnline: (instanceId) => {
        if (registration.receivesCommands(instanceId)) wake(ctx, instanceId, 'online');
      },
    });
    const ctx: SsmContext = {
      clock: options.clock,
      region: options.region,
      accountId: options.accountId,
      ec2: options.ec2,
      emit: options.emit,
      latency,
      random,
      ids,
      documents: new Map(
        options.documents.map((document) => [
          deployedDocumentName(document),
          { versions: [document], defaultVersion: 1 },
        ]),
      ),
      behaviours: options.behaviours,
      imageSource: options.imageSource ?? new ImageSource(),
      parameters: new ParameterStore({
        region: options.region,
        accountId: options.accountId,
        kms: options.ec2.kms,
        profiles,
      }),
      agents,
      registration,
      commands: new Map(),
      waiters: new Map(),
      counters: { executedCommands: 0 },
    };
    this.#ctx = ctx;
    options.ec2.onInstanceLifecycle((change) => {
      if (change.kind === 'os-ready') {
        // The pool document's sysprep leaves this marker: the next boot specializes the OS again.
        const generalized = agents.get(change.instanceId).files.delete(SYSPREP_GENERALIZED);
        registration.booted(change.instanceId, { generalized });
      } else if (change.state === 'shutting-down' || change.state === 'terminated') {
        wake(ctx, change.instanceId, 'gone');
        if (change.state === 'terminated') {
          registration.forget(change.instanceId);
          agents.forget(change.instanceId);
        }
      }
    });
    // The real SDK client has already shaped each input as its command's input type.
    const typed =
      <I>(operation: (ctx: SsmContext, input: I) => Promise<object>) =>
      (input: Record<string, unknown>) =>
        operation(ctx, input as I);
    const operations: Readonly<Record<string, (input: Record<string, unknown>) => Promise<object>>> = {
      SendCommand: typed((c, input: SendCommandRequest) => sendCommand(c, input)),
      GetCommandInvocation: typed((c, input: GetCommandInvocationRequest) => getCommandInvocation(c, input)),
      ListCommandInvocations: typed((c, input: ListCommandInvocationsRequest) =>
        listCommandInvocations(c, input),
      ),
      ListCommands: typed((c, input: ListCommandsRequest) => listCommands(c, input)),
      DescribeInstanceInformation: typed((c, input: DescribeInstanceInformationRequest) =>
        describeInstanceInformation(c, input),
      ),
    };
    this.dispatch = async (operation, input) => {
      options.faults.beforeCall('ssm', operation);
      const run = operations[operation];
      if (!run) throw ssmError('UnknownOperationException', `${operation} is not simulated`);
      return (await run(input)) as Record<string, unknown>;
    };
  }

  get imageSource(): ImageSource {
    return this.#ctx.imageSource;
  }

  /** The account's Parameter Store: seed it with `putParameter` as an administrator would. */
  get parameters(): ParameterStore {
    return this.#ctx.parameters;
  }

  /** Command invocations whose document was rendered and run in a real shell (local/ssm/execute.ts). */
  get executedCommands(): number {
    return this.#ctx.counters.executedCommands;
  }

  /** The account's Default Host Management Configuration (UpdateServiceSetting); see registration.ts. */
  get defaultHostManagement(): boolean {
    return this.#ctx.registration.defaultHostManagement;
  }

  setDefaultHostManagement(on: boolean): void {
    this.#ctx.registration.setDefaultHostManagement(on);
  }

  /** The agent state of an instance (created if needed), e.g. to seed a warm cache in a test. */
  agent(instanceId: string): HostAgentState {
    return this.#ctx.agents.get(instanceId);
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
    return [...this.#ctx.commands.values()].flatMap((command) =>
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
   * What UpdateDocument and UpdateDocumentDefaultVersion do when someone edits a deployed
   * document outside the stack (the console, a script): a new version, optionally the default.
   * Tests use it to show warmboot still runs the version it was deployed with.
   */
  publishDocumentVersion(
    deployedName: string,
    content: CommandDocument,
    options: { makeDefault: boolean },
  ): number {
    return publishDocumentVersion(this.#ctx, deployedName, content, options);
  }
}
