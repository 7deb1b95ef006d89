import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { BenchArgs, FlagSpec } from './args';

/** Metric name → measured value, for one policy. */
export type Metrics = Record<string, number>;

/**
 * What every scenario returns and `--json FILE` writes. `policies` holds one entry per policy
 * compared in the same run (same trace, fleet, budget, seed); `parameters` records exactly the
 * constraints they shared, so a result file says how it was produced.
 */
export interface BenchResult {
  readonly scenario: string;
  /** The trace replayed (its path), or `null` for scenarios that do not read one. */
  readonly trace: string | null;
  readonly policies: Record<string, Metrics>;
  readonly parameters?: Record<string, string | number | boolean>;
  /** Short remarks printed under the table (how a number was computed, what was skipped). */
  readonly notes?: readonly string[];
}

/** One benchmark scenario. Register it in the `SCENARIOS` table of bench/index.ts. */
export interface Scenario {
  /** The CLI name: `npm run bench -- <name>`. */
  readonly name: string;
  readonly description: string;
  /** Flags beyond `--trace`/`--json`; anything else is rejected before `run` is called. */
  readonly flags: readonly FlagSpec[];
  run(args: BenchArgs): Promise<BenchResult>;
}

/** Nearest-rank percentile (p in 0..100) of a list; NaN for an empty list. Does not mutate. */
export const percentile = (values: readonly number[], p: number): number => {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] ?? Number.NaN;
};

export const median = (values: readonly number[]): number => percentile(values, 50);

const formatNumber = (value: number): string => {
  if (Number.isNaN(value)) return 'n/a';
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  return value.toFixed(Math.abs(value) >= 100 ? 1 : 3);
};

/** A plain-text table: one row per policy, one column per metric (union over policies). */
export const formatTable = (result: BenchResult): string => {
  const policies = Object.keys(result.policies);
  const metrics = [...new Set(policies.flatMap((policy) => Object.keys(result.policies[policy] ?? {})))];
  const header = ['policy', ...metrics];
  const rows = policies.map((policy) => [
    policy,
    ...metrics.map((metric) => {
      const value = result.policies[policy]?.[metric];
      return value === undefined ? '' : formatNumber(value);
    }),
  ]);
  const widths = header.map((cell, column) =>
    Math.max(cell.length, ...rows.map((row) => row[column]?.length ?? 0)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) =>
        column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0),
      )
      .join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
};

/** Everything printed to stdout for a result: title, parameters, table, notes. */
export const formatReport = (result: BenchResult): string => {
  const parameters = Object.entries(result.parameters ?? {})
    .map(([key, value]) => `${key}=${value}`)
    .join(' ');
  return [
    `scenario ${result.scenario}${result.trace ? ` — trace ${result.trace}` : ''}`,
    ...(parameters ? [`parameters: ${parameters}`] : []),
    '',
    formatTable(result),
    ...(result.notes?.length ? ['', ...result.notes.map((note) => `note: ${note}`)] : []),
  ].join('\n');
};

export const writeResultJson = (file: string, result: BenchResult): void => {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
};
