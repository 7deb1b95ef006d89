/**
 * `npm run build` (run by `npm pack` through `prepack`): the `Warmboot` construct as a package that
 * a plain CDK TypeScript app installs and runs with node, without tsx. Everything lands in dist/:
 *
 * - `dist/index.js`: infra/index.ts and all it imports as one ES module, by esbuild; packages stay
 *   imports (the package's dependencies, and aws-cdk-lib and constructs, its peers). One file,
 *   because Node's ES module loader needs the file extensions the sources' relative imports omit;
 *   one folder deep like infra/function.ts, so PROJECT_ROOT there is the package's root.
 * - `dist/types/**.d.ts`: declarations by tsc (tsconfig.build.json), their relative imports
 *   rewritten to name the `.js` file, which `moduleResolution: nodenext` (the one `cdk init` sets)
 *   requires; unresolved, the props would silently be `any` in the app.
 * - `dist/lambda/<folder>/index.mjs` (and its source map): each function bundled by the local
 *   esbuild from the entry and with the options the repository's own synth gives NodejsFunction
 *   (`handlerCode` in infra/function.ts), against this lockfile's dependencies.
 *
 * Why ship bundles rather than the functions' TypeScript for the app's synth to bundle: that synth
 * would need esbuild (or Docker, which NodejsFunction silently falls back to), warmboot's tsconfig
 * and lockfile (npm never packs package-lock.json), and would resolve the functions' dependencies
 * from the app's node_modules, so the code deployed would depend on the app's installed versions
 * rather than the ones warmboot is tested with. Prebuilt, the app's synth only copies them.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as esbuild from 'esbuild';
import { FUNCTIONS } from '../functions/catalog';
import { handlerCode, PROJECT_ROOT, packagedBundleDirectory } from './function';

const DIST = path.join(PROJECT_ROOT, 'dist');
const TYPES = path.join(DIST, 'types');
const LAMBDA = path.join(DIST, 'lambda');

/**
 * One of the package's own modules as a single ES module for Node, its dependencies left as
 * imports (they are the package's dependencies, installed beside it).
 */
const bundleModule = (entry: string, outfile: string, banner?: string): Promise<esbuild.BuildResult> =>
  esbuild.build({
    entryPoints: [path.join(PROJECT_ROOT, entry)],
    outfile: path.join(DIST, outfile),
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    // package.json `engines`.
    target: 'node20',
    tsconfig: path.join(PROJECT_ROOT, 'tsconfig.json'),
    logLevel: 'warning',
    ...(banner ? { banner: { js: banner } } : {}),
  });

const bundleConstruct = async (): Promise<void> => {
  await bundleModule('infra/index.ts', 'index.js');
};

/**
 * The `warmboot` command (cli/warmboot.ts) as one self-contained script: a consumer of the package
 * has no tsx, and its imports other than the SDK's signer and credential chain are bundled in.
 */
const bundleCli = async (): Promise<void> => {
  await bundleModule('cli/warmboot.ts', 'cli.js', '#!/usr/bin/env node');
  fs.chmodSync(path.join(DIST, 'cli.js'), 0o755);
};

const emitDeclarations = async (): Promise<void> => {
  const tsc = spawn('npx', ['--no-install', 'tsc', '-p', 'tsconfig.build.json'], {
    cwd: PROJECT_ROOT,
    stdio: 'inherit',
  });
  const [status] = (await once(tsc, 'close')) as [number | null];
  if (status !== 0) throw new Error(`tsc -p tsconfig.build.json failed (exit ${status})`);
  for (const file of fs.readdirSync(TYPES, { recursive: true, encoding: 'utf8' })) {
    if (file.endsWith('.d.ts')) withJsExtensions(path.join(TYPES, file));
  }
};

/** `from './warmboot'` and `import('../functions/catalog')` as the `.js` files they resolve to. */
const RELATIVE_SPECIFIER = /(\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)(['"])(\.\.?\/[^'"]*)\2/g;

const withJsExtensions = (declarationFile: string): void => {
  const directory = path.dirname(declarationFile);
  const text = fs.readFileSync(declarationFile, 'utf8');
  const rewritten = text.replace(
    RELATIVE_SPECIFIER,
    (_whole, keyword: string, quote: string, specifier: string) => {
      const resolved = [`${specifier}.js`, `${specifier}/index.js`].find((candidate) =>
        fs.existsSync(path.join(directory, candidate.replace(/\.js$/, '.d.ts'))),
      );
      if (!resolved) {
        throw new Error(`${path.relative(DIST, declarationFile)}: no declaration for ${specifier}`);
      }
      return `${keyword}${quote}${resolved}${quote}`;
    },
  );
  fs.writeFileSync(declarationFile, rewritten);
};

/**
 * The functions' bundles with exactly the options `handlerCode` gives NodejsFunction, in one
 * esbuild run: seven separate CDK bundlings take a minute or more on two busy cores.
 */
const bundleFunctions = async (): Promise<void> => {
  const code = Object.values(FUNCTIONS).map((spec) => ({ id: spec.id, ...handlerCode(spec.id) }));
  const entryPoints: Record<string, string> = {};
  for (const { id, entry } of code) {
    if (!entry) throw new Error(`${id}: handlerCode gave no entry: is this the built package?`);
    entryPoints[path.relative(LAMBDA, path.join(packagedBundleDirectory(id), 'index'))] = entry;
  }
  // localBundling() gives every function the same options.
  const bundling = code[0]?.bundling;
  if (!bundling) throw new Error('handlerCode gave no bundling options');
  await esbuild.build({
    entryPoints,
    outdir: LAMBDA,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    ...esbuildOptionsOf(bundling),
    logLevel: 'warning',
  });
};

/** CDK's esbuild arguments (aws-lambda-nodejs bundling) for each option `localBundling` sets. */
const esbuildOptionsOf = (bundling: nodejs.BundlingOptions): esbuild.BuildOptions => {
  const {
    forceDockerBundling,
    format,
    target,
    minify,
    sourceMap,
    sourcesContent,
    mainFields,
    externalModules,
    banner,
    tsconfig,
    ...rest
  } = bundling;
  const untranslated = Object.keys(rest);
  if (untranslated.length > 0) {
    throw new Error(`bundling options ${untranslated.join(', ')} have no esbuild translation here yet`);
  }
  if (forceDockerBundling) throw new Error('warmboot bundles locally, never in Docker');
  return {
    ...(format ? { format } : {}),
    ...(target ? { target } : {}),
    ...(minify ? { minify } : {}),
    ...(sourceMap ? { sourcemap: true } : {}),
    ...(sourcesContent === false ? { sourcesContent: false } : {}),
    ...(mainFields ? { mainFields } : {}),
    ...(externalModules ? { external: externalModules } : {}),
    ...(banner ? { banner: { js: banner } } : {}),
    ...(tsconfig ? { tsconfig } : {}),
  };
};

const main = async (): Promise<void> => {
  const started = Date.now();
  fs.rmSync(DIST, { recursive: true, force: true });
  // tsc runs in its own process meanwhile: the machine has two cores.
  const declarations = emitDeclarations();
  await Promise.all([bundleConstruct(), bundleFunctions(), bundleCli()]);
  await declarations;
  console.log(`build: dist/ in ${((Date.now() - started) / 1000).toFixed(1)} s`);
};

await main();
