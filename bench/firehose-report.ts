import { plannerScenario } from './planner';
import type { Metrics } from './report';

/** Aims of issue 17 judged here. */
const AIMS = {
  describesPerSecond: 2,
  otherClientThrottles: 0,
  lagP99Seconds: 60,
  invocationsPer1000: 20,
} as const;

/** What one rate measured against the aims. */
export interface AimInputs {
  readonly describesPerSecond: number;
  readonly otherThrottles: number;
  readonly lagP99: number;
  readonly unreflected: number;
  readonly invocationsPer1000: number;
}

/** One line per aim: met or not, with the measured figure. */
export const aimNotes = (label: string, measured: AimInputs): string[] => {
  const verdict = (met: boolean) => (met ? 'met' : 'NOT met');
  return [
    `${label}: aim ≤ ${AIMS.describesPerSecond} DescribeInstances/s from warmboot: ${verdict(measured.describesPerSecond <= AIMS.describesPerSecond)} (${measured.describesPerSecond}/s in the busiest 60 s of the window)`,
    `${label}: aim zero throttles to the other client: ${verdict(measured.otherThrottles === AIMS.otherClientThrottles)} (${measured.otherThrottles})`,
    `${label}: aim popularity lag p99 ≤ ${AIMS.lagP99Seconds} s: ${verdict(measured.lagP99 <= AIMS.lagP99Seconds && measured.unreflected === 0)} (${measured.lagP99} s${measured.unreflected > 0 ? `, at least: ${measured.unreflected} launches not reflected by the end` : ''})`,
    `${label}: aim ≤ ${AIMS.invocationsPer1000} invocations per 1,000 launches: ${verdict(measured.invocationsPer1000 <= AIMS.invocationsPer1000)} (${measured.invocationsPer1000})`,
  ];
};

/** The planner's rows, measured by the planner scenario itself (bench/planner.ts). */
export const plannerRows = async (hosts: string, images: string): Promise<Record<string, Metrics>> => {
  if (hosts === 'none') return {};
  const result = await plannerScenario.run({
    scenario: plannerScenario.name,
    flags: new Map([
      ['hosts', hosts],
      ['images', images],
    ]),
  });
  return Object.fromEntries(
    Object.entries(result.policies).map(([size, metrics]) => [
      `planner ${size}`,
      {
        'planner s': metrics['planner s'] ?? Number.NaN,
        'reconcile all s': metrics['reconcile all s'] ?? Number.NaN,
        'peak RSS MB': metrics['peak RSS MB'] ?? Number.NaN,
      },
    ]),
  );
};
