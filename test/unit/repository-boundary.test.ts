import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The repository stands alone: a clone into an empty folder must run, test, bench and document
 * itself with nothing beside it. So no tracked file may name a path above the repository's root,
 * whether as a relative reference (`../shared/…` from the root), as an absolute path of the
 * machine that wrote it, or as a path call that climbs out of the root.
 */

const root = resolve(__dirname, '../..');
/** This file's own samples below are the paths the scan must catch, so it does not scan itself. */
const SELF = relative(root, __filename);

const trackedTextFiles = (): string[] =>
  execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8' })
    .split('\0')
    .filter((path) => path !== '' && path !== SELF && existsSync(resolve(root, path)))
    .filter((path) => !readFileSync(resolve(root, path)).subarray(0, 8000).includes(0));

/** `../a/b` chains, as written in imports, strings, Markdown links and comments. */
const RELATIVE_REFERENCE = /(?<![\w./-])((?:\.\.\/)+)([\w@.-][\w@./-]*)?/g;
/**
 * Absolute paths of the machine that wrote the file: the folder this clone sits in, and the
 * folder developers' and CI's checkouts live in here. Host paths in SSM scripts (`/mnt/…`,
 * `/var/…`) are paths on the EC2 host and stay allowed.
 */
const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const MACHINE_PATH = new RegExp(`(?<![\\w.-])(?:${escapeRegExp(dirname(root))}|/work)/[\\w.-]+`, 'g');
/** `resolve(projectRoot, '..', …)`-style calls: a root variable followed by a parent segment. */
const ROOT_THEN_PARENT = /\b\w*[Rr]oot\w*\s*,\s*['"]\.\.['"]/g;

/** Where a relative reference lands when read from the folder of the file that holds it. */
const landing = (file: string, parents: string, rest: string | undefined): string =>
  resolve(root, dirname(file), parents, rest ?? '');

const outsideRoot = (path: string): boolean => {
  const inside = relative(root, path);
  return inside === '..' || inside.startsWith('../') || isAbsolute(inside);
};

/** A reference inside the repository must name something that exists (module suffixes allowed). */
const exists = (path: string): boolean =>
  ['', '.ts', '.js', '.json', '/index.ts'].some((suffix) => existsSync(`${path}${suffix}`)) ||
  (existsSync(dirname(path)) && statSync(dirname(path)).isDirectory() && path.endsWith('/'));

interface Finding {
  readonly file: string;
  readonly line: number;
  readonly text: string;
  readonly why: string;
}

const lineOf = (text: string, index: number): number => text.slice(0, index).split('\n').length;

const findingsIn = (file: string): Finding[] => {
  const text = readFileSync(resolve(root, file), 'utf8');
  const findings: Finding[] = [];
  for (const match of text.matchAll(RELATIVE_REFERENCE)) {
    const [whole, parents = '', rest] = match;
    const target = landing(file, parents, rest);
    if (outsideRoot(target)) {
      findings.push({ file, line: lineOf(text, match.index), text: whole, why: 'leaves the repository' });
    } else if (/(^|\/)shared\//.test(whole) && !exists(target)) {
      findings.push({
        file,
        line: lineOf(text, match.index),
        text: whole,
        why: 'names a shared/ path that is not here',
      });
    }
  }
  for (const match of text.matchAll(MACHINE_PATH)) {
    findings.push({
      file,
      line: lineOf(text, match.index),
      text: match[0],
      why: "names a machine's absolute path",
    });
  }
  for (const match of text.matchAll(ROOT_THEN_PARENT)) {
    findings.push({
      file,
      line: lineOf(text, match.index),
      text: match[0],
      why: 'climbs above a root directory',
    });
  }
  return findings;
};

describe('the repository stands alone', () => {
  it('no tracked file names a path outside the repository', () => {
    const files = trackedTextFiles();
    expect(files.length).toBeGreaterThan(100);

    const findings = files.flatMap(findingsIn).map((f) => `${f.file}:${f.line} ${f.text} (${f.why})`);

    expect(findings).toEqual([]);
  });

  it('the data the benchmarks, sandbox and scenarios read is inside the repository', () => {
    for (const file of [
      'data/alibaba-genai-requests.csv',
      'data/alibaba-genai-basemodel-load-latency.csv',
      'data/dockerhub-image-sizes.csv',
      'data/README.md',
    ]) {
      expect(existsSync(resolve(root, file)), file).toBe(true);
    }
  });

  describe('the scan itself', () => {
    // The scan must catch the ways a file has reached out before, or a green run proves nothing.
    const scan = (file: string, text: string): string[] => {
      const found: string[] = [];
      for (const match of text.matchAll(RELATIVE_REFERENCE)) {
        const [whole, parents = '', rest] = match;
        const target = landing(file, parents, rest);
        if (outsideRoot(target) || (/(^|\/)shared\//.test(whole) && !exists(target))) found.push(whole);
      }
      for (const match of text.matchAll(MACHINE_PATH)) found.push(match[0]);
      for (const match of text.matchAll(ROOT_THEN_PARENT)) found.push(match[0]);
      return found;
    };

    it('catches a root-level reference to ../shared', () => {
      expect(scan('README.md', 'Read `../shared/DESIGN.md` first.')).toEqual(['../shared/DESIGN.md']);
    });

    it('catches a deep relative path that climbs out from a nested file', () => {
      expect(scan('test/unit/bench/trace.test.ts', "resolve(__dirname, '../../../../shared/data')")).toEqual([
        '../../../../shared/data',
      ]);
    });

    it('catches a shared/ path in a nested doc that exists nowhere in the repository', () => {
      expect(scan('docs/benchmarks.md', 'Definitions follow `../shared/BENCHMARKS.md`.')).toEqual([
        '../shared/BENCHMARKS.md',
      ]);
    });

    it("catches a machine's absolute path and a root variable followed by '..'", () => {
      expect(scan('bench/results/cache.json', '"trace": "/work/shared/data/x.csv"')).toEqual([
        '/work/shared',
      ]);
      expect(scan('bench/trace.ts', "resolve(projectRoot, '..', 'shared', 'data')")).toEqual([
        "projectRoot, '..'",
      ]);
    });

    it('accepts imports of functions/shared and paths that stay inside', () => {
      expect(scan('functions/claim/handler.ts', "import { x } from '../shared/lambda';")).toEqual([]);
      expect(scan('test/unit/bench/trace.test.ts', "resolve(__dirname, '../../../data')")).toEqual([]);
    });
  });
});
