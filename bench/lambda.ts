import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { FUNCTIONS, type FunctionId } from '../functions/catalog';
import { TABLES, type TableId, tableEnvVar } from '../functions/shared/tables';
import { type BenchArgs, BenchUsageError, type FlagSpec, flagText, numberFlag } from './args';
import { type BenchResult, median, type Scenario } from './report';

/**
 * `lambda` scenario: bundle every catalog function whose entry exists the way CDK's
 * NodejsFunction does, then measure the bundle size and the time a fresh Node process needs to
 * import it (module load + init: SDK clients, Powertools, config parsing), next to two
 * baselines: middy and one SDK client, and per function middy with the same SDK clients that
 * function bundles (read from esbuild's metafile), so what the function adds over the SDK
 * clients it cannot do without is one ratio.
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

/**
 * What aws/aws-sdk-js-v3#7607 costs: the SDK (since 3.930) writes its schema trait objects with
 * computed keys (`{ [_xN]: "…" }`), which esbuild must assume have side effects, so a client keeps
 * nearly all of its structure schemas however few commands a function sends. This rewrites each
 * `[_x]:` whose `_x` is a module-level string constant into the literal key, the change of the
 * pending upstream fix (smithy-lang/smithy-typescript#1889). Bench only (`--sdk-schema-keys
 * literal`): deployed bundles are built as CDK builds them (docs/benchmarks.md says why).
 */
const literalSchemaKeys: Plugin = {
  name: 'literal-sdk-schema-keys',
  setup(build) {
    build.onLoad(
      { filter: /[\\/]@aws-sdk[\\/]client-[^\\/]+[\\/]dist-es[\\/]schemas[\\/]schemas_\d+\.js$/ },
      async (args) => {
        const text = await readFile(args.path, 'utf8');
        const constants = new Map(
          [...text.matchAll(/^const (_[A-Za-z0-9]+) = ("[^"\\]*");$/gm)].map((match) => [match[1], match[2]]),
        );
        const contents = text.replace(/\[(_[A-Za-z0-9]+)\]:/g, (key, name: string) => {
          const literal = constants.get(name);
          return literal === undefined ? key : `${literal}:`;
        });
        return { contents, loader: 'js' };
      },
    );
  },
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
 * How the same-clients baseline creates each SDK package a function bundles: the import and the
 * module-scope construction (the document client wraps the DynamoDB client, as warmboot's does).
 */
const SDK_CLIENTS: Readonly<Record<string, { readonly imports: string; readonly create: string }>> = {
  'client-dynamodb': {
    imports: "import { DynamoDBClient } from '@aws-sdk/client-dynamodb';",
    create: 'const dynamodb = new DynamoDBClient({}); clients.push(dynamodb);',
  },
  'lib-dynamodb': {
    imports: "import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';",
    create: 'clients.push(DynamoDBDocumentClient.from(dynamodb));',
  },
  'client-eventbridge': {
    imports: "import { EventBridgeClient } from '@aws-sdk/client-eventbridge';",
    create: 'clients.push(new EventBridgeClient({}));',
  },
  'client-ec2': {
    imports: "import { EC2Client } from '@aws-sdk/client-ec2';",
    create: 'clients.push(new EC2Client({}));',
  },
  'client-ssm': {
    imports: "import { SSMClient } from '@aws-sdk/client-ssm';",
    create: 'clients.push(new SSMClient({}));',
  },
};

/** The `@aws-sdk/*` client packages a bundle holds (its metafile inputs with bytes in the output). */
const sdkClientsOf = (inputs: readonly string[]): string[] => {
  const found = new Set<string>();
  for (const input of inputs) {
    const name = /node_modules\/@aws-sdk\/((?:client|lib)-[a-z0-9-]+)\//.exec(input)?.[1];
    if (name) found.add(name);
  }
  // Known packages in SDK_CLIENTS order (the DynamoDB client before the document client wrapping it).
  const known = Object.keys(SDK_CLIENTS).filter((name) => found.has(name));
  return [...known, ...[...found].filter((name) => !SDK_CLIENTS[name])];
};

/** Middy and exactly these SDK clients, created at module scope; no zod, Powertools or project code. */
const sameClientsSource = (clients: readonly string[]): string => {
  const unknown = clients.filter((name) => !SDK_CLIENTS[name]);
  if (unknown.length > 0)
    throw new Error(`no same-clients baseline for ${unknown.join(', ')}: add it to SDK_CLIENTS`);
  const parts = clients.map((name) => SDK_CLIENTS[name] as { imports: string; create: string });
  return [
    "import middy from '@middy/core';",
    ...parts.map((part) => part.imports),
    'const clients = [];',
    ...parts.map((part) => part.create),
    'export const handler = middy(async () => clients.map((client) => client.config?.serviceId));',
  ].join('\n');
};

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

const bundle = async (
  input: { readonly entry: string } | { readonly source: string },
  outfile: string,
  bundling: LambdaBundling,
  plugins: readonly Plugin[],
): Promise<{ readonly bytes: number; readonly inputs: readonly string[] }> => {
  const result = await build({
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
    metafile: true,
    plugins: [...plugins],
    logLevel: 'error',
  });
  // The inputs that contribute to the output: esbuild reads modules it then shakes out entirely.
  const output = Object.entries(result.metafile.outputs).find(([path]) => !path.endsWith('.map'))?.[1];
  const inputs = Object.entries(output?.inputs ?? {})
    .filter(([, input]) => input.bytesInOutput > 0)
    .map(([path]) => path);
  return { bytes: statSync(outfile).size, inputs };
};

/** Wall and CPU time of importing the bundle once, in a fresh Node process. */
const sampleInit = (
  bundleFile: string,
  workDir: string,
): { readonly wallMs: number; readonly cpuMs: number } => {
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
  return { wallMs: sample.initMs, cpuMs: sample.cpuMs };
};

const SDK_SCHEMA_KEYS: FlagSpec = {
  name: 'sdk-schema-keys',
  description:
    "'as-shipped' (as CDK bundles) or 'literal': every bundle, baselines included, built with the SDK's " +
    'computed schema keys made literal, what aws/aws-sdk-js-v3#7607 costs',
  default: 'as-shipped',
};

const RUNS: FlagSpec = {
  name: 'runs',
  description: 'fresh Node processes per bundle; cold_init_ms is their median',
  default: '10',
};

/** A label per SDK package, for the same-clients baseline's policy name. */
const CLIENT_LABELS: Readonly<Record<string, string>> = {
  'client-dynamodb': 'dynamodb',
  'lib-dynamodb': 'documents',
  'client-eventbridge': 'events',
  'client-ec2': 'ec2',
  'client-ssm': 'ssm',
};

interface Bundled {
  readonly file: string;
  readonly bytes: number;
  readonly wall: number[];
  readonly cpu: number[];
}

export const lambdaScenario: Scenario = {
  name: 'lambda',
  description:
    'bundle size and cold init (import + module init) of every Lambda entry vs middy+SDK baselines',
  flags: [RUNS, SDK_SCHEMA_KEYS],
  run: async (args: BenchArgs): Promise<BenchResult> => {
    const runs = numberFlag(args, RUNS, { min: 1, integer: true });
    const schemaKeys = flagText(args, SDK_SCHEMA_KEYS);
    if (schemaKeys !== 'as-shipped' && schemaKeys !== 'literal') {
      throw new BenchUsageError(`--sdk-schema-keys must be as-shipped or literal, not ${schemaKeys}`);
    }
    const plugins = schemaKeys === 'literal' ? [literalSchemaKeys] : [];
    const workDir = mkdtempSync(join(tmpdir(), 'warmboot-bench-lambda-'));
    // Externals (the SDK) resolve from the project's node_modules, as they would from the runtime's.
    symlinkSync(join(projectRoot, 'node_modules'), join(workDir, 'node_modules'), 'dir');
    writeFileSync(join(workDir, 'no-network.mjs'), NO_NETWORK_PRELOAD);
    writeFileSync(join(workDir, 'import-timer.mjs'), IMPORT_TIMER);
    const extension = WARMBOOT_BUNDLING.format === 'esm' ? 'mjs' : 'cjs';
    const notes: string[] = [];
    const bundled = new Map<string, Bundled>();
    /** Function id → the policy name of its same-clients baseline. */
    const sameClients = new Map<FunctionId, string>();
    const bundleAs = async (
      name: string,
      input: Parameters<typeof bundle>[0],
    ): Promise<readonly string[]> => {
      const file = join(workDir, name.replace(/[^a-zA-Z0-9+-]/g, '_'), `index.${extension}`);
      const { bytes, inputs } = await bundle(input, file, WARMBOOT_BUNDLING, plugins);
      bundled.set(name, { file, bytes, wall: [], cpu: [] });
      return inputs;
    };
    try {
      for (const id of Object.keys(FUNCTIONS) as FunctionId[]) {
        const entry = entryOf(id);
        if (!existsSync(entry)) {
          notes.push(`${id}: no entry ${entry.slice(projectRoot.length + 1)} yet, skipped`);
          continue;
        }
        try {
          const clients = sdkClientsOf(await bundleAs(id, { entry }));
          const name = `clients:${clients.map((client) => CLIENT_LABELS[client] ?? client).join('+')}`;
          if (!bundled.has(name)) await bundleAs(name, { source: sameClientsSource(clients) });
          sameClients.set(id, name);
        } catch (error) {
          bundled.delete(id);
          notes.push(`${id}: ${(error as Error).message}`);
        }
      }
      await bundleAs('baseline', { source: BASELINE_SOURCE });
      // Round robin, one sample of every bundle per round: load on the shared machine drifts, and
      // a ratio is only fair between samples taken at about the same time.
      for (let run = 0; run < runs; run++) {
        for (const [name, measured] of bundled) {
          try {
            const sample = sampleInit(measured.file, workDir);
            measured.wall.push(sample.wallMs);
            measured.cpu.push(sample.cpuMs);
          } catch (error) {
            bundled.delete(name);
            notes.push(`${name}: ${(error as Error).message}`);
          }
        }
      }
    } finally {
      rmSync(workDir, { recursive: true, force: true });
    }
    const metricsOf = (measured: Bundled) => ({
      bundle_bytes: measured.bytes,
      cold_init_ms: median(measured.wall),
      cold_init_cpu_ms: median(measured.cpu),
    });
    const baseline = bundled.get('baseline');
    const policies: Record<string, Record<string, number>> = {};
    for (const [name, measured] of bundled) {
      const metrics = metricsOf(measured);
      const id = name as FunctionId;
      const same = sameClients.has(id) ? bundled.get(sameClients.get(id) as string) : undefined;
      policies[name] = {
        ...metrics,
        ...(same
          ? {
              same_clients_bundle_bytes: same.bytes,
              same_clients_cpu_ms: median(same.cpu),
              x_same_clients: metrics.cold_init_cpu_ms / median(same.cpu),
            }
          : {}),
        ...(baseline && name !== 'baseline'
          ? { x_baseline: metrics.cold_init_cpu_ms / median(baseline.cpu) }
          : {}),
      };
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
        sdk_schema_keys: schemaKeys,
        node: process.version,
      },
      notes: [
        'cold_init_ms = median over fresh Node processes of the wall time `await import(bundle)` takes (module ' +
          'evaluation and init; Node start-up excluded); cold_init_cpu_ms = median CPU time (user+system) of ' +
          'the same import, less sensitive to other load on the machine. Bundles are sampled round robin.',
        '`baseline` = middy + one DynamoDB client; `clients:…` = middy + exactly the SDK clients a function ' +
          'bundles (from the metafile), created at module scope; x_baseline and x_same_clients divide a ' +
          "function's cold_init_cpu_ms by theirs (same_clients_* name its own).",
        ...notes,
      ],
    };
  },
};
