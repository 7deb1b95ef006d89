import type { Target } from '@aws-sdk/client-ssm';
import type { CommandDocument } from '../../functions/shared/ssm-document';
import type { VirtualClock } from '../clock';
import type { SimulatorEvent } from '../ec2/events';
import type { IdGenerator, Random } from '../ec2/ids';
import type { Ec2Simulator } from '../ec2/simulator';
import type { SsmLatencies } from '../latency';
import { SimulatedAwsError } from '../sdk-bridge';
import type { AgentRegistry, DocumentBehaviour, ImageSource } from './agent';
import type { ParameterStore } from './parameter-store';
import type { AgentRegistration } from './registration';

/** The Run Command simulator's own records, and the context its modules share (as local/ec2 does). */

/** A deployed document's versions (version n at index n - 1) and which one is `$DEFAULT`. */
export interface DeployedDocument {
  readonly versions: CommandDocument[];
  defaultVersion: number;
}

export interface CommandRecord {
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
export type InvocationStatus =
  | 'Pending'
  | 'InProgress'
  | 'Delayed'
  | 'Success'
  | 'Cancelled'
  | 'TimedOut'
  | 'Failed';

export interface InvocationRecord {
  readonly command: CommandRecord;
  readonly instanceId: string;
  status: InvocationStatus;
  statusDetails: string;
  output: string;
  responseCode: number;
  startedAt: number | undefined;
  endedAt: number | undefined;
}

export type DeliveryOutcome = 'online' | 'gone' | 'timeout';

/** Everything the SSM modules share: dependencies and the simulator's tables. */
export interface SsmContext {
  readonly clock: VirtualClock;
  readonly region: string;
  readonly accountId: string;
  readonly ec2: Ec2Simulator;
  readonly emit: (event: SimulatorEvent) => void;
  readonly latency: SsmLatencies;
  readonly random: Random;
  readonly ids: IdGenerator;
  /** Deployed documents by their deployed name (functions/shared/ssm-document.ts). */
  readonly documents: Map<string, DeployedDocument>;
  /** What running each document does on a host, by document name. */
  readonly behaviours: Readonly<Record<string, DocumentBehaviour>>;
  readonly imageSource: ImageSource;
  /** The account's Parameter Store, as hosts read it with their instance profile's role. */
  readonly parameters: ParameterStore;
  readonly agents: AgentRegistry;
  /** Which agents registered (SSM's managed nodes) and which are online now. */
  readonly registration: AgentRegistration;
  readonly commands: Map<string, CommandRecord>;
  /** Invocations waiting for an instance's agent, by instance id (execution.ts deliver). */
  readonly waiters: Map<string, Set<(outcome: DeliveryOutcome) => void>>;
  /** Command invocations whose document was rendered and run in a real shell (local/ssm/execute.ts). */
  readonly counters: { executedCommands: number };
}

export const ssmError = (code: string, message: string): SimulatedAwsError =>
  new SimulatedAwsError(code, message);

export const validationError = (message: string): SimulatedAwsError =>
  ssmError('ValidationException', `1 validation error detected: ${message}`);

export const instanceArn = (ctx: SsmContext, instanceId: string): string =>
  `arn:aws:ec2:${ctx.region}:${ctx.accountId}:instance/${instanceId}`;
