import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { FUNCTIONS, type FunctionId } from '../functions/catalog';
import { TABLES, type TableId, tableEnvVar } from '../functions/shared/tables';
import { type BenchArgs, type FlagSpec, numberFlag } from './args';
import { type BenchResult, median, type Scenario } from './report';

/**
 * `lambda` scenario: bundle every catalog function whose entry exists the way CDK's
 * NodejsFunction does, then measure the bundle size and the time a fresh Node process needs to
 * import it (module load + init: SDK clients, Powertools, config parsing), next to a baseline
 * that only imports middy and one SDK client.
 */

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The esbuild settings NodejsFunction applies (aws-cdk-lib/aws-lambda-nodejs/lib/bundling.js). */
export interface LambdaBundling {
  readonly format: 'esm' | 'cjs';
  readonly target: string;
  readonly minify: boolean;
  /** Left out of the bundle (NodejsFunction's default for Node 18+ is `@aws-sdk/*`; warmboot bundles it). */
  readonly externals: readonly string[];
  readonly mainFields?: readonly string[];
  readonly banner?: string;
  readonly sourcemap: boolean;
}

/**
 * Mirrors `localBundling()` in infra/function.ts: NODEJS_22_X, minified ESM, `module` before
 * `main`, the AWS SDK bundled (externalModules: []), the createRequire banner for bundled
 * CommonJS that calls require(), an external source map (not counted in bundle_bytes).
 */
export const WARMBOOT_BUNDLING: LambdaBundling = {
  format: 'esm',
  target: 'node22',
  minify: true,
  externals: [],
  mainFields: ['module', 'main'],
  banner:
    "import { createRequire as warmbootCreateRequire } from 'node:module'; const require = warmbootCreateRequire(import.meta.url);",
  sourcemap: true,
};

/** The catalog id's folder: `fastRestore` → `functions/fast-restore/index.ts`. */
export const entryOf = (id: FunctionId): string =>
  join(
    projectRoot,
    'functions',
    id.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`),
    'index.ts',
  );

/** Middy and one SDK client, created at module scope like a warmboot handler does. */
const BASELINE_SOURCE = `
import middy from '@middy/core';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
const client = new DynamoDBClient({});
export const handler = middy(async () => client.config.serviceId);
`;

/**
 * The environment a deployed function gets, with dummy values, so module init never needs AWS:
 * every table name, a host group, static credentials, no metadata lookups, Powertools quiet.
 */
export const benchLambdaEnv = (): Record<string, string> => ({
  PATH: process.env.PATH ?? '',
  AWS_REGION: 'us-east-1',
  AWS_LAMBDA_FUNCTION_NAME: 'warmboot-bench',
  AWS_DEFAULT_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'bench',
  AWS_SECRET_ACCESS_KEY: 'bench',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  POWERTOOLS_LOG_LEVEL: 'SILENT',
  POWERTOOLS_METRICS_DISABLED: 'true',
  POWERTOOLS_TRACE_ENABLED: 'false',
  FACTS_BUS_NAME: 'warmboot-facts',
  HOST_GROUPS: JSON.stringify([
    { name: 'bench', cacheBytes: 2 ** 31, cacheDirectory: '/var/cache/warmboot', handler: 'download' },
  ]),
  ...Object.fromEntries((Object.keys(TABLES) as TableId[]).map((id) => [tableEnvVar(id), `bench-${id}`])),
});

/** Fails any socket connection: the measured init must not touch the network. */
const NO_NETWORK_PRELOAD = `
import net from 'node:net';
net.Socket.prototype.connect = function () { throw new Error('network disabled during the lambda bench'); };
`;

/** Imports the bundle once and prints how long the import (module evaluation, init) took. */
const IMPORT_TIMER = `
import { pathToFileURL } from 'node:url';
const cpu = process.cpuUsage();
const started = performance.now();
const module = await import(pathToFileURL(process.argv[2]).href);
const elapsed = performance.now() - started;
const used = process.cpuUsage(cpu);
if (typeof module.handler !== 'function') throw new Error('bundle exports no handler function');
process.stdout.write(JSON.stringify({ initMs: elapsed, cpuMs: (used.user + used.system) / 1000 }));
`;

interface Measured {
  readonly bundleBytes: number;
  readonly coldInitMs: number;
  readonly coldInitCpuMs: number;
}

const bundle = async (
  input: { readonly entry: string } | { readonly source: string },
  outfile: string,
  bundling: LambdaBundling,
): Promise<number> => {
  await build({
    ...('entry' in input
      ? { entryPoints: [input.entry] }
      : { stdin: { contents: input.source, resolveDir: projectRoot, loader: 'ts' } }),
    outfile,
    bundle: true,
    platform: 'node',
    target: bundling.target,
    format: bundling.format,
    minify: bundling.minify,
    external: [...bundling.externals],
    ...(bundling.mainFields ? { mainFields: [...bundling.mainFields] } : {}),
    ...(bundling.banner ? { banner: { js: bundling.banner } } : {}),
    sourcemap: bundling.sourcemap,
    sourcesContent: false,
    tsconfig: join(projectRoot, 'tsconfig.json'),
    logLevel: 'error',
  });
  return statSync(outfile).size;
};

/** Median wall and CPU time of importing the bundle, over `runs` fresh processes. */
const measureInit = (
  bundleFile: string,
  workDir: string,
  runs: number,
): { readonly wallMs: number; readonly cpuMs: number } => {
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let run = 0; run < runs; run++) {
    const child = spawnSync(
      process.execPath,
      ['--import', join(workDir, 'no-network.mjs'), join(workDir, 'import-timer.mjs'), bundleFile],
      { env: benchLambdaEnv(), encoding: 'utf8', cwd: workDir, timeout: 60_000 },
    );
    if (child.status !== 0) {
      const reason = (child.stderr || child.error?.message || 'no output')
        .trim()
        .split('\n')
        .slice(-3)
        .join(' | ');
      throw new Error(`init failed: ${reason}`);
    }
    const sample = JSON.parse(child.stdout) as { initMs: number; cpuMs: number };
    wall.push(sample.initMs);
    cpu.push(sample.cpuMs);
  }
  return { wallMs: median(wall), cpuMs: median(cpu) };
};

const RUNS: FlagSpec = {
  name: 'runs',
  description: 'fresh Node processes per bundle; cold_init_ms is their median',
  default: '10',
};

export const lambdaScenario: Scenario = {
  name: 'lambda',
  description:
    'bundle size and cold init (import + module init) of every Lambda entry vs a middy+SDK baseline',
  flags: [RUNS],
  run: async (args: BenchArgs): Promise<BenchResult> => {
    const runs = numberFlag(args, RUNS, { min: 1, integer: true });
    const workDir = mkdtempSync(join(tmpdir(), 'warmboot-bench-lambda-'));
    // Externals (the SDK) resolve from the project's node_modules, as they would from the runtime's.
    symlinkSync(join(projectRoot, 'node_modules'), join(workDir, 'node_modules'), 'dir');
    writeFileSync(join(workDir, 'no-network.mjs'), NO_NETWORK_PRELOAD);
    writeFileSync(join(workDir, 'import-timer.mjs'), IMPORT_TIMER);
    const extension = WARMBOOT_BUNDLING.format === 'esm' ? 'mjs' : 'cjs';
    const policies: Record<string, { bundle_bytes: number; cold_init_ms: number; cold_init_cpu_ms: number }> =
      {};
    const metricsOf = (measured: Measured) => ({
      bundle_bytes: measured.bundleBytes,
      cold_init_ms: measured.coldInitMs,
      cold_init_cpu_ms: measured.coldInitCpuMs,
    });
    const notes: string[] = [];
    const measure = async (name: string, input: Parameters<typeof bundle>[0]): Promise<Measured> => {
      const outfile = join(workDir, name, `index.${extension}`);
      const bundleBytes = await bundle(input, outfile, WARMBOOT_BUNDLING);
      const init = measureInit(outfile, workDir, runs);
      return { bundleBytes, coldInitMs: init.wallMs, coldInitCpuMs: init.cpuMs };
    };
    try {
      for (const id of Object.keys(FUNCTIONS) as FunctionId[]) {
        const entry = entryOf(id);
        if (!existsSync(entry)) {
          notes.push(`${id}: no entry ${entry.slice(projectRoot.length + 1)} yet, skipped`);
          continue;
        }
        try {
          const measured = await measure(id, { entry });
          policies[id] = metricsOf(measured);
        } catch (error) {
          notes.push(`${id}: ${(error as Error).message}`);
        }
      }
      const baseline = await measure('baseline', { source: BASELINE_SOURCE });
      policies.baseline = metricsOf(baseline);
    } finally {
      rmSync(workDir, { recursive: true, force: true });
    }
    return {
      scenario: 'lambda',
      trace: null,
      policies,
      parameters: {
        runs,
        format: WARMBOOT_BUNDLING.format,
        target: WARMBOOT_BUNDLING.target,
        minify: WARMBOOT_BUNDLING.minify,
        externals: WARMBOOT_BUNDLING.externals.join(' ') || 'none',
        node: process.version,
      },
      notes: [
        'cold_init_ms = median over fresh Node processes of the wall time `await import(bundle)` takes (module ' +
          'evaluation and init; Node start-up excluded); cold_init_cpu_ms = median CPU time (user+system) of ' +
          'the same import, less sensitive to other load on the machine.',
        ...notes,
      ],
    };
  },
};
