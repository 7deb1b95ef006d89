import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type BenchArgs, BenchUsageError, type FlagSpec, flagText, numberFlag } from './args';
import type { PlannerMeasurement } from './planner-child';
import type { BenchResult, Metrics, Scenario } from './report';

/**
 * `planner` scenario: the image cache's planning cost as the fleet grows (issue 17, "Planner
 * cost"; aim: 10,000 hosts × 20,000 images within 60 s and 1 GB per invocation). Every
 * combination of `--hosts` and `--images` is measured in a child process of its own
 * (bench/planner-child.ts), so each row's peak RSS is that size's alone. No trace, no simulator:
 * the production application code over the in-memory store, with EC2/SSM answered at once.
 */

const FLAGS = {
  hosts: { name: 'hosts', description: 'comma-separated host counts', default: '1000,10000' },
  images: { name: 'images', description: 'comma-separated distinct-image counts', default: '2000,20000' },
  groups: { name: 'groups', description: 'host groups the hosts are spread over (evenly)', default: '100' },
  seed: { name: 'seed', description: 'seed of the synthetic fleet', default: '1' },
  heapMb: {
    name: 'heap-mb',
    description: "each size's V8 heap limit (--max-old-space-size): 1024 as in a 1 GB function",
    default: '1024',
  },
  timeoutS: {
    name: 'timeout-s',
    description: 'a size still running after this many seconds is reported as n/a',
    default: '1800',
  },
} satisfies Record<string, FlagSpec>;

const counts = (args: BenchArgs, spec: FlagSpec): number[] => {
  const values = flagText(args, spec).split(',').map(Number);
  if (values.some((value) => !Number.isInteger(value) || value < 1))
    throw new BenchUsageError(`--${spec.name} must be positive integers separated by commas`);
  return values;
};

const CHILD = fileURLToPath(new URL('./planner-child.ts', import.meta.url));

/** Runs one size in a child process; undefined when it timed out or failed. */
const measure = (
  argv: readonly number[],
  options: { readonly timeoutS: number; readonly heapMb: number },
): Promise<PlannerMeasurement | undefined> =>
  new Promise((resolve) => {
    const child = fork(CHILD, argv.map(String), {
      execArgv: [...process.execArgv, `--max-old-space-size=${options.heapMb}`],
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutS * 1000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const line = output.trim().split('\n').at(-1);
      resolve(code === 0 && line ? (JSON.parse(line) as PlannerMeasurement) : undefined);
    });
  });

const metricsOf = (result: PlannerMeasurement | undefined): Metrics =>
  result
    ? {
        'held images': result.heldImages,
        entries: result.entries,
        'largest group': result.largestGroup,
        'reconcile all s': result.reconcileAllS,
        'plan all s': result.planAllS,
        'planner s': result.plannerS,
        'advise s': result.adviseS,
        'setup RSS MB': Math.round(result.setupRssMb),
        'peak RSS MB': Math.round(result.peakRssMb),
      }
    : { 'reconcile all s': Number.NaN, 'peak RSS MB': Number.NaN };

export const plannerScenario: Scenario = {
  name: 'planner',
  description: 'image-cache planner and placement advice cost at 1k/10k hosts × 2k/20k images',
  flags: Object.values(FLAGS),
  async run(args: BenchArgs): Promise<BenchResult> {
    const hostCounts = counts(args, FLAGS.hosts);
    const imageCounts = counts(args, FLAGS.images);
    const groups = numberFlag(args, FLAGS.groups, { min: 1, integer: true });
    const seed = numberFlag(args, FLAGS.seed, { integer: true });
    const timeoutS = numberFlag(args, FLAGS.timeoutS, { min: 1 });
    const heapMb = numberFlag(args, FLAGS.heapMb, { min: 64, integer: true });
    const policies: Record<string, Metrics> = {};
    for (const hosts of hostCounts)
      for (const images of imageCounts)
        policies[`${hosts} hosts × ${images} images`] = metricsOf(
          await measure([hosts, images, groups, seed], { timeoutS, heapMb }),
        );
    return {
      scenario: 'planner',
      trace: null,
      policies,
      parameters: {
        groups,
        seed,
        heapMb,
        cacheBytesPerHost: '64GB',
        imageSizes: '1-4GB',
        topImagesPerGroup: 100,
      },
      notes: [
        'reconcile all = the 5-minute scheduled invocation (every group reconciled and planned); plan all = Plan Cache of every group; planner = planHostGroup alone; advise = one placement advice per group',
        'peak RSS is the child process maximum (node + tsx + the synthetic fleet in the in-memory store); setup RSS is after building the fleet',
        'n/a: the size did not finish within --timeout-s, or ran out of its --heap-mb heap',
      ],
    };
  },
};
