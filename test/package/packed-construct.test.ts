import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUNCTIONS } from '../../functions/catalog';
import { functionFolder } from '../../infra/function';

/**
 * The `Warmboot` construct as another team gets it: `npm pack` (which builds dist/ through
 * `prepack`), the tarball installed into a plain CDK TypeScript app, the app compiled by tsc and
 * run by `cdk synth` with node, no tsx. No network: the tarball is unpacked where npm would put
 * it, and each package the app or the tarball declares, and only those, is linked from this
 * repository's node_modules (`npm ci` filled it from the same lockfile), so an import the package
 * makes without declaring it fails here as it would in the app.
 */

const root = resolve(__dirname, '../..');
const OPERATOR = 'arn:aws:iam::123456789012:role/platform-operators';
/** What `cdk init app --language typescript` puts in devDependencies and the app needs to build and synth. */
const APP_TOOLS = ['aws-cdk', 'typescript', '@types/node'];

/** `cdk init app --language typescript`'s compiler options, emitting: this app runs its JavaScript. */
const APP_TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    lib: ['es2022'],
    strict: true,
    noImplicitReturns: true,
    skipLibCheck: true,
    isolatedModules: true,
    typeRoots: ['./node_modules/@types'],
    types: ['node'],
  },
  include: ['bin/**/*.ts'],
};

const APP_SOURCE = `#!/usr/bin/env node
import { App, Stack } from 'aws-cdk-lib';
import { Warmboot, type WarmbootProps } from 'warmboot';

const app = new App();
const stack = new Stack(app, 'Platform', { env: { account: '123456789012', region: 'eu-west-1' } });
const props: WarmbootProps = {
  operators: [{ principal: '${OPERATOR}', requests: ['*'], tenants: ['*'] }],
};
new Warmboot(stack, 'Warmboot', props);

// @ts-expect-error the declarations type the props: a misspelt one fails the build, it is not \`any\`
const misspelt: WarmbootProps = { operatorz: [] };
`;

/** No credentials, profiles or instance metadata: a synth that tried to reach AWS would fail. */
const offlineEnvironment = (): NodeJS.ProcessEnv => ({
  ...Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !/^(AWS_|AMAZON_|CDK_DEFAULT_)/.test(key)),
  ),
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
  AWS_CONFIG_FILE: '/dev/null',
  CDK_DISABLE_VERSION_CHECK: 'true',
  CDK_DISABLE_CLI_TELEMETRY: 'true',
});

const run = (command: string, args: string[], cwd: string): SpawnSyncReturns<string> => {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', env: offlineEnvironment() });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} failed (exit ${result.status}):\n${result.stdout.slice(-4000)}\n${result.stderr.slice(-4000)}`,
    );
  }
  return result;
};

interface Resource {
  readonly Type: string;
  readonly Properties: Record<string, unknown>;
}

const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;

describe('the Warmboot construct installed from its packed tarball', () => {
  let work: string;
  let app: string;
  let resources: Resource[];

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'warmboot-package-'));
    run('npm', ['pack', '--pack-destination', work], root);
    const tarball = readdirSync(work).find((file) => file.endsWith('.tgz'));
    if (!tarball) throw new Error('npm pack wrote no tarball');

    app = join(work, 'app');
    const modules = join(app, 'node_modules');
    mkdirSync(join(modules, 'warmboot'), { recursive: true });
    run('tar', ['-xzf', join(work, tarball), '-C', join(modules, 'warmboot'), '--strip-components=1'], work);
    const packed = readJson<{
      dependencies?: Record<string, string>;
      peerDependencies?: Record<string, string>;
    }>(join(modules, 'warmboot', 'package.json'));
    const declared = [
      ...Object.keys(packed.dependencies ?? {}),
      ...Object.keys(packed.peerDependencies ?? {}),
      ...APP_TOOLS,
    ];
    for (const name of new Set(declared)) {
      mkdirSync(dirname(join(modules, name)), { recursive: true });
      symlinkSync(join(root, 'node_modules', name), join(modules, name), 'dir');
    }

    // No "type": CommonJS, as `cdk init` generates; the app require()s the ES module package.
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({
        name: 'platform',
        version: '0.1.0',
        private: true,
        dependencies: {
          warmboot: `file:../${tarball}`,
          'aws-cdk-lib': packed.peerDependencies?.['aws-cdk-lib'],
          constructs: packed.peerDependencies?.constructs,
        },
      }),
    );
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify(APP_TSCONFIG));
    writeFileSync(join(app, 'cdk.json'), JSON.stringify({ app: 'node bin/app.js' }));
    mkdirSync(join(app, 'bin'));
    writeFileSync(join(app, 'bin', 'app.ts'), APP_SOURCE);

    run(process.execPath, [join(modules, 'typescript', 'bin', 'tsc'), '-p', '.'], app);
    run(
      process.execPath,
      [
        join(modules, 'aws-cdk', 'bin', 'cdk'),
        'synth',
        '--quiet',
        '--no-notices',
        '--ci',
        '--output',
        'cdk.out',
      ],
      app,
    );
    resources = Object.values(
      readJson<{ Resources: Record<string, Resource> }>(join(app, 'cdk.out', 'Platform.template.json'))
        .Resources,
    );
  }, 600_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('has every function, running the bundle the package ships for it', () => {
    const functions = resources.filter((resource) => resource.Type === 'AWS::Lambda::Function');
    for (const spec of Object.values(FUNCTIONS)) {
      const fn = functions.find(
        (candidate) => candidate.Properties.Description === spec.description.slice(0, 256),
      );
      if (!fn) throw new Error(`${spec.id}: no function with its catalog description`);
      expect(fn.Properties).toMatchObject({ Runtime: 'nodejs22.x', Handler: 'index.handler' });

      const { S3Key } = fn.Properties.Code as { S3Key: string };
      const deployed = readFileSync(
        join(app, 'cdk.out', `asset.${S3Key.replace(/\.zip$/, '')}`, 'index.mjs'),
      );
      const shipped = readFileSync(
        join(app, 'node_modules', 'warmboot', 'dist', 'lambda', functionFolder(spec.id), 'index.mjs'),
      );
      expect(deployed.equals(shipped), `${spec.id}: deployed bundle is the shipped one`).toBe(true);
    }
  });

  it('installs the warmboot command, which runs with plain node through the link npm makes', () => {
    const bin = join(app, 'node_modules', '.bin');
    mkdirSync(bin, { recursive: true });
    symlinkSync(join('..', 'warmboot', 'dist', 'cli.js'), join(bin, 'warmboot'));

    const help = spawnSync(join(bin, 'warmboot'), ['--help'], { cwd: app, encoding: 'utf8' });

    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toContain('--function-url');
  });

  it('has the request bus, admitting the operator the app named', () => {
    const bus = resources.find(
      (resource) =>
        resource.Type === 'AWS::Events::EventBus' && resource.Properties.Name === 'warmboot-requests',
    );

    expect(bus).toBeDefined();
    expect(JSON.stringify(bus?.Properties.Policy)).toContain(OPERATOR);
  });
});
