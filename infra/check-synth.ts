/**
 * `npm run test:synth`: `cdk synth` exactly as an operator runs it (cdk.json context, local esbuild
 * bundling, cdk-nag), but with no way to reach AWS: every credential and profile variable is
 * removed, instance metadata is disabled, and the CLI's notices, version check and telemetry are
 * off. The stack is environment-agnostic, so a synth that needed an account would fail here.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PROJECT_ROOT } from './function';

const CREDENTIAL_VARIABLE = /^(AWS_|AMAZON_|CDK_DEFAULT_)/;

const scrubbedEnvironment = (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv => {
  const clean: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(env)) {
    if (!CREDENTIAL_VARIABLE.test(key)) clean[key] = value;
  }
  return {
    ...clean,
    AWS_EC2_METADATA_DISABLED: 'true',
    // An empty file set: the SDK cannot find ~/.aws/credentials or ~/.aws/config either.
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_CONFIG_FILE: '/dev/null',
    CDK_DISABLE_VERSION_CHECK: 'true',
    CDK_DISABLE_CLI_TELEMETRY: 'true',
  };
};

const main = (): void => {
  const outdir = path.join(PROJECT_ROOT, 'cdk.out');
  const started = Date.now();
  const result = spawnSync('npx', ['cdk', 'synth', '--quiet', '--no-notices', '--ci', '--output', outdir], {
    cwd: PROJECT_ROOT,
    env: scrubbedEnvironment(process.env),
    stdio: 'inherit',
  });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    console.error(`cdk synth failed (exit ${result.status})`);
    process.exit(result.status ?? 1);
  }
  const template = path.join(outdir, 'Warmboot.template.json');
  if (!fs.existsSync(template)) {
    console.error(`cdk synth wrote no ${path.relative(PROJECT_ROOT, template)}`);
    process.exit(1);
  }
  console.log(`cdk synth: ok in ${((Date.now() - started) / 1000).toFixed(1)} s (${template})`);
};

main();
