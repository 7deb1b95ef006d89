import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FUNCTIONS } from '../../functions/catalog';

/**
 * Every function folder has the same shape (CONTRIBUTING.md, "Layout and conventions"), no source
 * file in functions/ grows into a god file, and the folders that share a model share it in one
 * direction only. A newcomer who has read one folder can find their way in any other.
 */

const root = resolve(__dirname, '../..');
const functionsDir = join(root, 'functions');

const folderOf = (id: string): string => id.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);

const sourceFiles = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });

/** Relative imports of a file, resolved to repository paths. */
const importsOf = (file: string): string[] =>
  [...readFileSync(file, 'utf8').matchAll(/from '(\.[^']+)'/g)].map((match) =>
    relative(root, resolve(dirname(file), match[1] ?? '')).replace(/(\/index)?(\.js)?$/, ''),
  );

/** The size past which a file is doing more than one job (issue 16: "about 500 lines"). */
const MAX_LINES = 500;

const SHAPE = [
  'index.ts',
  'handler.ts',
  'dependencies.ts',
  'config.ts',
  'schemas.ts',
  'application',
  'domain',
];

describe('every function folder', () => {
  const folders = Object.values(FUNCTIONS).map((spec) => folderOf(spec.id));

  it.each(folders)('%s has the shared shape', (folder) => {
    const missing = SHAPE.filter((entry) => !existsSync(join(functionsDir, folder, entry)));

    expect(missing).toEqual([]);
  });

  it.each(folders)('%s keeps its domain pure: no SDK, adapter or application import', (folder) => {
    const domain = join(functionsDir, folder, 'domain');
    const offending = sourceFiles(domain).flatMap((file) => {
      const text = readFileSync(file, 'utf8');
      const sdk = /from '@aws-sdk\//.test(text) ? ['@aws-sdk'] : [];
      const layers = importsOf(file).filter((path) => /\/(adapters|application)\//.test(`${path}/`));
      return [...sdk, ...layers].map((what) => `${relative(root, file)} imports ${what}`);
    });

    expect(offending).toEqual([]);
  });
});

describe('functions/ source files', () => {
  it(`are at most ${MAX_LINES} lines each`, () => {
    const long = sourceFiles(functionsDir)
      .map((file) => ({ file: relative(root, file), lines: readFileSync(file, 'utf8').split('\n').length }))
      .filter(({ lines }) => lines > MAX_LINES);

    expect(long).toEqual([]);
  });
});

describe('shared models', () => {
  /** [folder, folders it must never import]: the home of a model never imports its users. */
  const oneWay: readonly [string, readonly string[]][] = [
    ['image-cache', ['placement']],
    ['pools', ['claim']],
    ['popularity', ['image-cache', 'placement', 'fast-restore']],
    ['shared', ['claim', 'fast-restore', 'image-cache', 'placement', 'pools', 'popularity', 'shelving']],
  ];

  it.each(oneWay)('functions/%s imports none of %j', (folder, forbidden) => {
    const offending = sourceFiles(join(functionsDir, folder)).flatMap((file) =>
      importsOf(file)
        .filter((path) => forbidden.some((other) => path.startsWith(`functions/${other}/`)))
        .map((path) => `${relative(root, file)} imports ${path}`),
    );

    expect(offending).toEqual([]);
  });
});
