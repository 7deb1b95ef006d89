import type { VirtualClock } from '../clock';
import type { Random } from '../ec2/ids';
import type { Ec2Simulator, InstanceView } from '../ec2/simulator';
import {
  AGENT_COMMAND_ACTIONS,
  AGENT_REGISTRATION_ACTIONS,
  type InstanceProfiles,
} from '../iam/instance-profiles';
import type { DelayRange, SsmLatencies } from '../latency';

/**
 * When the SSM agent on an instance becomes a managed node and when it is online, for the SSM
 * simulator. Rules (docs/ssm-fidelity.md, "Agent registration"):
 *
 * - The agent gets credentials from the instance metadata service: those of the instance
 *   profile's role if that role may call ssm:UpdateInstanceInformation, otherwise, when the
 *   account has Default Host Management Configuration (DHMC) on, the DHMC role's
 *   (amazon-ssm-agent `ec2roleprovider.go` `RemoteRetrieve`: the instance profile first, DHMC as
 *   the fallback; SSM User Guide, setup-instance-permissions). With neither it never registers,
 *   and SendCommand answers InvalidInstanceId (API_SendCommand). With the metadata service
 *   disabled neither path has credentials.
 * - A refused attempt is tried again 25 to 30 minutes later (`credentialrefresher_deps.go`
 *   `getLongSleepDuration`: AccessDenied, which is what the DHMC fallback answers when DHMC is
 *   off), so a profile or DHMC fixed later takes effect at the next attempt, not at once.
 * - The first registration takes `firstRegistrationMs` of the platform after the OS booted
 *   (latency.ts); so does the first boot after a Windows sysprep generalization. A registered
 *   node's agent is back online when its OS has booted again, and offline (ConnectionLost) while
 *   the instance is not running.
 * - A registered agent whose role lacks the message-channel permissions of
 *   AmazonSSMManagedInstanceCore (ec2messages, ssmmessages) is Online but never receives a
 *   command: its invocations end Delivery Timed Out.
 */

/** amazon-ssm-agent `getLongSleepDuration`: 25 minutes plus up to 5 minutes of jitter. */
const RETRY_AFTER_REFUSAL_MS = 25 * 60_000;
const RETRY_JITTER_MS = 5 * 60_000;

export interface AgentRegistrationOptions {
  readonly clock: VirtualClock;
  readonly ec2: Ec2Simulator;
  readonly profiles: InstanceProfiles;
  readonly latencies: SsmLatencies;
  readonly random: Random;
  readonly defaultHostManagement: boolean;
  /** The agent of `instanceId` came online (registered, or back after a boot). */
  readonly onOnline: (instanceId: string) => void;
}

interface AgentRecord {
  /** A managed node: the first registration happened (kept across stop/start). */
  registered: boolean;
  /** The next boot is a first boot (a new instance, or the first boot after sysprep). */
  firstBootPending: boolean;
  /** The `osReadyAt` of the boot in which the agent is online. */
  onlineInBoot: number | undefined;
  /** The role grants the message channels, so commands reach the agent. */
  receivesCommands: boolean;
}

const draw = (range: DelayRange, random: Random): number =>
  range.minMs + Math.floor(random() * (range.maxMs - range.minMs));

export class AgentRegistration {
  readonly #options: AgentRegistrationOptions;
  readonly #agents = new Map<string, AgentRecord>();
  #defaultHostManagement: boolean;

  constructor(options: AgentRegistrationOptions) {
    this.#options = options;
    this.#defaultHostManagement = options.defaultHostManagement;
  }

  /** The account's Default Host Management Configuration setting for this Region. */
  get defaultHostManagement(): boolean {
    return this.#defaultHostManagement;
  }

  /**
   * UpdateServiceSetting of `/ssm/managed-instance/default-ec2-instance-management-role`: agents
   * that were refused pick it up at their next attempt.
   */
  setDefaultHostManagement(on: boolean): void {
    this.#defaultHostManagement = on;
  }

  /** The OS booted: the agent starts and, after its platform's delay on a first boot, tries to register. */
  booted(instanceId: string, options: { readonly generalized?: boolean } = {}): void {
    const instance = this.#options.ec2.instance(instanceId);
    const boot = instance?.osReadyAt;
    if (!instance || boot === undefined) return;
    const agent = this.#record(instanceId);
    if (options.generalized && instance.platform === 'windows') agent.firstBootPending = true;
    const range =
      this.#options.latencies.firstRegistrationMs[instance.platform === 'windows' ? 'windows' : 'linux'];
    const delay = agent.registered && !agent.firstBootPending ? 0 : draw(range, this.#options.random);
    this.#attemptAt(instanceId, boot, this.#options.clock.now() + delay);
  }

  /** A managed node: its agent registered at least once (and the instance was not terminated). */
  isManaged(instanceId: string): boolean {
    return this.#agents.get(instanceId)?.registered === true;
  }

  /** Every managed node, in registration order. */
  managedNodes(): string[] {
    return [...this.#agents.entries()]
      .filter(([, agent]) => agent.registered)
      .map(([instanceId]) => instanceId);
  }

  /** The agent runs and is registered in the instance's current boot (PingStatus Online). */
  isOnline(instanceId: string): boolean {
    const instance = this.#options.ec2.instance(instanceId);
    const agent = this.#agents.get(instanceId);
    return (
      instance?.state === 'running' &&
      instance.osReadyAt !== undefined &&
      agent?.registered === true &&
      agent.onlineInBoot === instance.osReadyAt
    );
  }

  /** Online, and its role lets it receive commands. */
  receivesCommands(instanceId: string): boolean {
    return this.isOnline(instanceId) && this.#agents.get(instanceId)?.receivesCommands === true;
  }

  /** The instance terminated: it is no managed node any more. */
  forget(instanceId: string): void {
    this.#agents.delete(instanceId);
  }

  #record(instanceId: string): AgentRecord {
    let agent = this.#agents.get(instanceId);
    if (!agent) {
      agent = { registered: false, firstBootPending: true, onlineInBoot: undefined, receivesCommands: false };
      this.#agents.set(instanceId, agent);
    }
    return agent;
  }

  #attemptAt(instanceId: string, boot: number, at: number): void {
    this.#options.clock.at(at, () => this.#attempt(instanceId, boot));
  }

  /** One attempt to get credentials and report in; the agent of another boot has nothing to do. */
  #attempt(instanceId: string, boot: number): void {
    const instance = this.#options.ec2.instance(instanceId);
    const agent = this.#agents.get(instanceId);
    if (!instance || !agent || instance.state !== 'running' || instance.osReadyAt !== boot) return;
    const credentials = this.#credentials(instance);
    if (!credentials) {
      const retryIn = RETRY_AFTER_REFUSAL_MS + Math.floor(this.#options.random() * RETRY_JITTER_MS);
      this.#attemptAt(instanceId, boot, this.#options.clock.now() + retryIn);
      return;
    }
    agent.registered = true;
    agent.firstBootPending = false;
    agent.onlineInBoot = boot;
    agent.receivesCommands = credentials.receivesCommands;
    this.#options.onOnline(instanceId);
  }

  /** Whose credentials the agent gets, if any: the instance profile's role first, then DHMC's. */
  #credentials(instance: InstanceView): { readonly receivesCommands: boolean } | undefined {
    if (instance.metadataOptions.httpEndpoint === 'disabled') return undefined;
    const { profiles } = this.#options;
    if (profiles.allows(instance.iamInstanceProfile, AGENT_REGISTRATION_ACTIONS))
      return { receivesCommands: profiles.allows(instance.iamInstanceProfile, AGENT_COMMAND_ACTIONS) };
    // The DHMC role carries AmazonSSMManagedEC2InstanceDefaultPolicy: the core permissions.
    if (this.#defaultHostManagement) return { receivesCommands: true };
    return undefined;
  }
}
