/**
 * What a simulator hands to the local bus: the parts of an EventBridge event the service decides.
 * The bus adds the envelope (version, id, account, time, region).
 */
export interface SimulatorEvent {
  readonly source: string;
  readonly detailType: string;
  readonly detail: Record<string, unknown>;
  readonly resources: string[];
}

export type InstanceStateName =
  | 'pending'
  | 'running'
  | 'stopping'
  | 'stopped'
  | 'shutting-down'
  | 'terminated';

export type FastSnapshotRestoreStateName = 'enabling' | 'optimizing' | 'enabled' | 'disabling' | 'disabled';

/** monitoring-instance-state-changes: detail is exactly `{ "instance-id", "state" }`. */
export const instanceStateChange = (
  arn: string,
  instanceId: string,
  state: InstanceStateName,
): SimulatorEvent => ({
  source: 'aws.ec2',
  detailType: 'EC2 Instance State-change Notification',
  detail: { 'instance-id': instanceId, state },
  resources: [arn],
});

/**
 * ebs-cloud-watch-events, "EBS fast snapshot restore events": detail is
 * `{ "snapshot-id", "state", "zone", "message" }`; the resource is the snapshot ARN, which has no
 * account id (`arn:aws:ec2:REGION::snapshot/ID`).
 */
export const fastSnapshotRestoreStateChange = (
  region: string,
  snapshotId: string,
  zone: string,
  state: FastSnapshotRestoreStateName,
  message: string,
): SimulatorEvent => ({
  source: 'aws.ec2',
  detailType: 'EBS Fast Snapshot Restore State-change Notification',
  detail: { 'snapshot-id': snapshotId, state, zone, message },
  resources: [`arn:aws:ec2:${region}::snapshot/${snapshotId}`],
});
