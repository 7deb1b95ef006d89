/**
 * How long the simulated cloud takes, in virtual milliseconds.
 *
 * `calibrated` uses the measurements in docs/ec2-timings.md (brevdev/ec2-coldboot-research,
 * m7i.large, Amazon Linux 2023, Jan 2026) where they exist; every other figure is a documented
 * choice. `zero` keeps every transition on the clock (so ordering and events are unchanged) but
 * with no delay, for fast unit tests.
 */
export type LatencyMode = 'calibrated' | 'zero';

export interface Ec2Latencies {
  /** RunInstances API call (measured 4.8 s). */
  readonly runInstancesApiMs: number;
  /** pending → running after RunInstances (measured 17.8 s). */
  readonly launchPendingMs: number;
  /**
   * running → OS booted after a launch (measured boot→SSH 3.2 s). A registered SSM agent is back
   * online then; a first registration takes longer (SsmLatencies.firstRegistrationMs).
   */
  readonly launchBootMs: number;
  /** StartInstances API call (measured 1.8 s). */
  readonly startInstancesApiMs: number;
  /** pending → running after StartInstances (measured 16.4 s). */
  readonly startPendingMs: number;
  /** running → OS booted after a start (measured 3.0 s). */
  readonly startBootMs: number;
  /** StartInstances API call when resuming from hibernation (measured 2.0 s). */
  readonly resumeApiMs: number;
  /** pending → running when resuming from hibernation (measured 16.3 s). */
  readonly resumePendingMs: number;
  /** running → OS usable when resuming from hibernation (measured 2.4 s). */
  readonly resumeBootMs: number;
  /** Any other mutating API call. Not measured; EC2 answers mutating calls in a few hundred ms. */
  readonly mutatingApiMs: number;
  /** stopping → stopped. Not measured; chosen: a clean OS shutdown of a small Linux instance. */
  readonly stoppingMs: number;
  /** stopping → stopped when hibernating: RAM is written to the root volume first. Chosen. */
  readonly hibernatingMs: number;
  /** shutting-down → terminated. Chosen. */
  readonly shuttingDownMs: number;
  /**
   * How long a terminated instance stays describable. ec2-instance-lifecycle: "remains visible
   * in the console for a short while" — about an hour in practice.
   */
  readonly terminatedVisibleMs: number;
  /** attaching → attached and detaching → detached. Chosen. */
  readonly attachMs: number;
  readonly detachMs: number;
  /** creating → available for CreateVolume. Chosen. */
  readonly createVolumeMs: number;
  /** deleting → gone for DeleteVolume. Chosen. */
  readonly deleteVolumeMs: number;
  /** Snapshot pending → completed: a fixed part plus a part per GiB (a first, full snapshot). Chosen. */
  readonly snapshotBaseMs: number;
  readonly snapshotPerGiBMs: number;
  /** FSR enabling → optimizing and disabling → disabled. Chosen. */
  readonly fsrEnablingMs: number;
  readonly fsrDisablingMs: number;
  /** FSR optimizing → enabled: view-fsr-enabled-snapshots says 60 minutes per TiB. */
  readonly fsrOptimizingPerTiBMs: number;
  /**
   * Root volume replacement with a given volume (replace-root): the task's `pending` phase. With
   * `VolumeId` there is no replacement volume to create. Chosen.
   */
  readonly replaceRootPendingMs: number;
  /**
   * `in-progress` until the instance boots from the new root: the OS is down, the original root is
   * detached and the new one attached. AWS publishes no figure; assumed no shorter than a stopped
   * instance's measured pending → running (16.4 s), the conservative reading of "the instance is
   * automatically rebooted" (replace-root).
   */
  readonly replaceRootSwapMs: number;
  /**
   * From the swap until the OS is back (and the task `succeeded`): assumed a start's measured
   * boot → SSH (3.0 s). With the API call and `replaceRootPendingMs` the whole replacement takes
   * 20.7 s, against 19.4 s for a start; the user guide's example task took 20 s.
   */
  readonly replaceRootBootMs: number;
}

/** A delay drawn uniformly between `minMs` and `maxMs`. */
export interface DelayRange {
  readonly minMs: number;
  readonly maxMs: number;
}

export interface SsmLatencies {
  /** SendCommand until an online agent picks the invocation up (InProgress). Chosen. */
  readonly commandDeliveryMs: number;
  /**
   * From the OS having booted (`launchBootMs` after `running`) until the agent's first
   * registration (the instance becomes a managed node), per platform. AWS publishes no figure; chosen, conservatively (docs/ssm-fidelity.md,
   * "Agent registration"): Linux tens of seconds after boot; Windows after EC2Launch's first-boot
   * tasks, which AWS says take "a few minutes" and up to 15 (API_GetPasswordData). The same
   * Windows range applies to the first boot after a sysprep generalization (specialize + OOBE).
   */
  readonly firstRegistrationMs: { readonly linux: DelayRange; readonly windows: DelayRange };
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;

const calibratedEc2: Ec2Latencies = {
  runInstancesApiMs: 4.8 * SECOND,
  launchPendingMs: 17.8 * SECOND,
  launchBootMs: 3.2 * SECOND,
  startInstancesApiMs: 1.8 * SECOND,
  startPendingMs: 16.4 * SECOND,
  startBootMs: 3.0 * SECOND,
  resumeApiMs: 2.0 * SECOND,
  resumePendingMs: 16.3 * SECOND,
  resumeBootMs: 2.4 * SECOND,
  mutatingApiMs: 0.3 * SECOND,
  stoppingMs: 12 * SECOND,
  hibernatingMs: 25 * SECOND,
  shuttingDownMs: 15 * SECOND,
  terminatedVisibleMs: 60 * MINUTE,
  attachMs: 3 * SECOND,
  detachMs: 3 * SECOND,
  createVolumeMs: 4 * SECOND,
  deleteVolumeMs: 2 * SECOND,
  snapshotBaseMs: 20 * SECOND,
  snapshotPerGiBMs: 5 * SECOND,
  fsrEnablingMs: 1 * MINUTE,
  fsrDisablingMs: 1 * MINUTE,
  fsrOptimizingPerTiBMs: 60 * MINUTE,
  replaceRootPendingMs: 1 * SECOND,
  replaceRootSwapMs: 16.4 * SECOND,
  replaceRootBootMs: 3.0 * SECOND,
};

/**
 * Zero mode keeps the delays that are not about speed: terminated instances still vanish after an
 * hour, and FSR optimizing still scales with size, so rules built on them stay testable.
 */
const zeroEc2: Ec2Latencies = {
  ...(Object.fromEntries(Object.keys(calibratedEc2).map((key) => [key, 0])) as unknown as Ec2Latencies),
  terminatedVisibleMs: calibratedEc2.terminatedVisibleMs,
};

/**
 * The latencies of a mode, with `overrides` on top: a benchmark sweeps an assumed figure (e.g. the
 * root replacement's restart) without changing the measured ones.
 */
export const ec2Latencies = (mode: LatencyMode, overrides: Partial<Ec2Latencies> = {}): Ec2Latencies => ({
  ...(mode === 'calibrated' ? calibratedEc2 : zeroEc2),
  ...overrides,
});

const calibratedSsm: SsmLatencies = {
  commandDeliveryMs: 0.5 * SECOND,
  firstRegistrationMs: {
    linux: { minMs: 20 * SECOND, maxMs: 60 * SECOND },
    windows: { minMs: 4 * MINUTE, maxMs: 15 * MINUTE },
  },
};

/** Zero mode: an agent allowed to register does so as soon as the OS has booted. */
const zeroSsm: SsmLatencies = {
  commandDeliveryMs: 0,
  firstRegistrationMs: { linux: { minMs: 0, maxMs: 0 }, windows: { minMs: 0, maxMs: 0 } },
};

export const ssmLatencies = (mode: LatencyMode): SsmLatencies =>
  mode === 'calibrated' ? calibratedSsm : zeroSsm;
