import {
  EC2_STATE_CHANGE,
  FSR_STATE_CHANGE,
  SCHEDULED_EVENT,
  SSM_COMMAND_STATUS,
  WARMBOOT,
  WARMBOOT_FACT,
} from '../../../functions/catalog';

/** The deliveries an event fault may hit. Operator requests are never dropped (see docs/reliability.md). */
export interface EventTarget {
  readonly source: string;
  readonly detailType: string;
  /** Drops allowed: EventBridge may lose AWS service events and schedule ticks; reconciles heal them. */
  readonly droppable: boolean;
}

/**
 * The AWS events warmboot's functions take: EventBridge may lose any of them, and the capability's
 * reconcile (or the next schedule tick) heals what a lost one said.
 */
export const AWS_EVENTS = {
  ec2StateChange: { source: 'aws.ec2', detailType: EC2_STATE_CHANGE, droppable: true },
  ssmCommandStatus: { source: 'aws.ssm', detailType: SSM_COMMAND_STATUS, droppable: true },
  fastSnapshotRestoreStateChange: { source: 'aws.ec2', detailType: FSR_STATE_CHANGE, droppable: true },
  scheduleTick: { source: 'aws.events', detailType: SCHEDULED_EVENT, droppable: true },
} as const satisfies Record<string, EventTarget>;

/** Deliveries of one of warmboot's own sources, by detail type: never dropped (docs/reliability.md). */
const neverDropped =
  (source: string) =>
  (detailType: string): EventTarget => ({ source, detailType, droppable: false });
/** An operator request, by detail type. */
export const operatorRequest = neverDropped(WARMBOOT);
/** One of warmboot's own facts (a function published it), by detail type. */
export const warmbootFact = neverDropped(WARMBOOT_FACT);
