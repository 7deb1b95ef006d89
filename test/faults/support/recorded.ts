import fc from 'fast-check';
import type { EventFault } from '../../../local/bus';
import type { SimulatedService } from '../../../local/faults';
import type { EventTarget } from './deliveries';
import { type AwsFaultCode, FaultSchedule, type ScheduledFault } from './schedule';

/**
 * Recorded cases: a regression's fixed fault schedule (a shrunk or first failing run), written
 * down fault by fault as `describeFault` prints it: when, what, how many times.
 */

/** A recorded case's event fault: `fault` on the next `times` deliveries of `target`, from `atMs`. */
export const eventFault = (
  atMs: number,
  target: EventTarget,
  fault: EventFault,
  times: number,
): ScheduledFault => ({ kind: 'event', atMs, target, fault, times });

/** A recorded case's call fault: the next `times` calls of `service`'s `operation` fail with `code`, from `atMs`. */
export const callFault = (
  atMs: number,
  service: SimulatedService,
  operation: string,
  code: AwsFaultCode,
  times: number,
): ScheduledFault => ({ kind: 'call', atMs, service, operation, code, times });

/** A recorded case's schedule: exactly these faults, on its one run. */
export const recordedSchedule = (...faults: readonly ScheduledFault[]): fc.Arbitrary<FaultSchedule> =>
  fc.constant(new FaultSchedule(faults));
