import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The IAM evaluator of the local cloud (`@cloud-copilot/iam-simulate`) is AGPL-3.0. It may serve
 * the local cloud, tests, sandbox and benches, but no Lambda bundle or construct may contain it:
 * a devDependency only, and nothing under `functions/` or `infra/` imports it.
 */
const root = resolve(__dirname, '../..');
const AGPL = ['@cloud-copilot/iam-simulate'];

describe('AGPL dependencies stay out of what warmboot deploys', () => {
  it('lists the evaluator as a devDependency only', () => {
    const manifest = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };

    for (const name of AGPL) {
      expect(manifest.devDependencies[name], name).toBeDefined();
      expect(manifest.dependencies[name], name).toBeUndefined();
    }
  });

  it('is imported by no file under functions/ or infra/', () => {
    // git grep exits 1 when nothing matches, 0 with the matching files listed.
    const search = spawnSync('git', ['grep', '-l', '-e', '@cloud-copilot', '--', 'functions', 'infra'], {
      cwd: root,
      encoding: 'utf8',
    });

    expect(search.status).toBe(1);
    expect(search.stdout).toBe('');
  });
});
