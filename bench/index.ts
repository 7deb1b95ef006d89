/**
 * `npm run bench -- <scenario> [--trace FILE] [--json FILE] [scenario flags]`
 *
 * Adding a scenario: export a `Scenario` (bench/report.ts) from `bench/<name>.ts` and add it to
 * `SCENARIOS` below.
 *
 *   interface Scenario {
 *     name: string;                 // the CLI name
 *     description: string;          // one line for the usage text
 *     flags: readonly FlagSpec[];   // { name, description, default } beyond --trace/--json
 *     run(args: BenchArgs): Promise<BenchResult>;
 *   }
 *   BenchArgs   = { scenario, trace?: string, json?: string, flags: ReadonlyMap<string, string> }
 *   BenchResult = { scenario, trace: string | null, policies: { [policy]: { [metric]: number } },
 *                   parameters?: {...}, notes?: string[] }
 *
 * Flags are checked against the scenario's `flags` before `run` (unknown flag → error listing
 * the valid ones); read them with `numberFlag` / `bytesFlag` from bench/args.ts. Every policy of
 * a scenario runs in the same `run` call on the same trace, fleet, budget and seed
 * (docs/benchmark-definitions.md). The harness prints the table and writes `--json FILE`.
 */
import { BenchUsageError, parseArgs } from './args';
import { cacheScenario } from './cache';
import { firehoseScenario } from './firehose';
import { lambdaScenario } from './lambda';
import { plannerScenario } from './planner';
import { poolScenario } from './pool';
import { formatReport, type Scenario, writeResultJson } from './report';
import { traceScenario } from './trace';
import { unshelveScenario } from './unshelve';

export const SCENARIOS: readonly Scenario[] = [
  lambdaScenario,
  cacheScenario,
  poolScenario,
  unshelveScenario,
  plannerScenario,
  firehoseScenario,
  traceScenario,
];

const usage = (): string =>
  [
    'usage: npm run bench -- <scenario> [--trace FILE] [--json FILE] [flags]',
    '',
    ...SCENARIOS.flatMap((scenario) => [
      `  ${scenario.name.padEnd(10)} ${scenario.description}`,
      ...scenario.flags.map((flag) => `      --${flag.name} (default ${flag.default}): ${flag.description}`),
    ]),
  ].join('\n');

const main = async (argv: readonly string[]): Promise<number> => {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h') {
    process.stdout.write(`${usage()}\n`);
    return argv.length === 0 ? 2 : 0;
  }
  try {
    const args = parseArgs(
      argv,
      SCENARIOS.map((scenario) => scenario.name),
      (name) => SCENARIOS.find((scenario) => scenario.name === name)?.flags ?? [],
    );
    const scenario = SCENARIOS.find((candidate) => candidate.name === args.scenario);
    if (!scenario) throw new BenchUsageError(`unknown scenario '${args.scenario}'`);
    const result = await scenario.run(args);
    process.stdout.write(`${formatReport(result)}\n`);
    if (args.json) {
      writeResultJson(args.json, result);
      process.stdout.write(`wrote ${args.json}\n`);
    }
    return 0;
  } catch (error) {
    if (error instanceof BenchUsageError) {
      process.stderr.write(`bench: ${error.message}\n\n${usage()}\n`);
      return 2;
    }
    throw error;
  }
};

process.exitCode = await main(process.argv.slice(2));
