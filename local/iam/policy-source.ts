import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { SynthesizedRolePolicies } from './policy-template';

/**
 * Where the local cloud's role policies come from: the CDK app in `infra/`, synthesized once per
 * content of its sources and cached in `node_modules/.cache/warmboot-iam/<hash>.json`.
 *
 * The hash covers every module the app reaches through relative imports (infra/ and the
 * functions/ files it reads tag names, documents and schemas from), `cdk.json`, the aws-cdk-lib
 * version and the synthesizer itself, so any change that could change a policy makes a new synth.
 * Synthesizing takes ~20 s in a child process; parallel test workers wait on one lock instead of
 * synthesizing side by side. The integration global setup warms the cache before any worker starts.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SYNTHESIZER = path.join(ROOT, 'local', 'iam', 'synthesize.ts');
const CACHE_DIR = path.join(ROOT, 'node_modules', '.cache', 'warmboot-iam');
/** A synth that has not finished in this long died with its lock held. */
const STALE_LOCK_MS = 10 * 60_000;
const LOCK_POLL_MS = 250;

const IMPORT = /(?:import|export)\s[^'"]*?from\s+['"](\.{1,2}\/[^'"]+)['"]/g;

/** Every source file reachable from `entry` through relative imports. */
const reachableSources = (entry: string): string[] => {
  const seen = new Set<string>();
  const pending = [entry];
  while (pending.length > 0) {
    const file = pending.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    const text = fs.readFileSync(file, 'utf8');
    for (const match of text.matchAll(IMPORT)) {
      const target = path.resolve(path.dirname(file), match[1] as string);
      const candidates = [target, `${target}.ts`, path.join(target, 'index.ts')];
      const found = candidates.find(
        (candidate) => fs.existsSync(candidate) && fs.statSync(candidate).isFile(),
      );
      if (found) pending.push(found);
    }
  }
  return [...seen].sort();
};

/** The cache key: a hash of everything a synth of the role policies reads. */
export const rolePoliciesKey = (): string => {
  const hash = createHash('sha256');
  const files = [
    ...reachableSources(SYNTHESIZER),
    path.join(ROOT, 'cdk.json'),
    path.join(ROOT, 'node_modules', 'aws-cdk-lib', 'package.json'),
  ];
  for (const file of files) {
    hash.update(path.relative(ROOT, file));
    hash.update('\0');
    hash.update(fs.readFileSync(file));
    hash.update('\0');
  }
  return hash.digest('hex').slice(0, 24);
};

const readCache = (file: string, key: string): SynthesizedRolePolicies | undefined => {
  if (!fs.existsSync(file)) return undefined;
  const cached = JSON.parse(fs.readFileSync(file, 'utf8')) as SynthesizedRolePolicies;
  return cached.key === key ? cached : undefined;
};

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const runSynthesizer = async (file: string, key: string): Promise<void> => {
  await promisify(execFile)(process.execPath, ['--import', 'tsx', SYNTHESIZER, file, key], {
    cwd: ROOT,
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    maxBuffer: 64 * 1024 * 1024,
  });
};

let loaded: Promise<SynthesizedRolePolicies> | undefined;

/**
 * The synthesized role policies for the current sources: from the cache, or synthesized now
 * (holding a lock directory so that only one process synthesizes). Memoized per process.
 */
export const synthesizedRolePolicies = (): Promise<SynthesizedRolePolicies> => {
  loaded ??= (async () => {
    const key = rolePoliciesKey();
    const file = path.join(CACHE_DIR, `${key}.json`);
    const lock = `${file}.lock`;
    fs.mkdirSync(CACHE_DIR, { recursive: true });
    for (;;) {
      const cached = readCache(file, key);
      if (cached) return cached;
      try {
        fs.mkdirSync(lock);
      } catch {
        const age = Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
        if (age > STALE_LOCK_MS) fs.rmSync(lock, { recursive: true, force: true });
        await sleep(LOCK_POLL_MS);
        continue;
      }
      try {
        if (!readCache(file, key)) await runSynthesizer(file, key);
      } finally {
        fs.rmSync(lock, { recursive: true, force: true });
      }
    }
  })();
  loaded.catch(() => {
    loaded = undefined;
  });
  return loaded;
};
