import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FUNCTIONS, type FunctionId, REQUEST_REJECTED } from '../../functions/catalog';
import { functionFolder } from '../../local/functions';

/**
 * docs/events.md is the event catalogue a user reads before wiring warmboot into an account. It is
 * written by hand, so this keeps it whole: every detail-type a function's rule routes, and every
 * detail-type a function publishes, has a row there.
 */
const root = resolve(__dirname, '../..');
const catalogue = readFileSync(resolve(root, 'docs/events.md'), 'utf8');

const routedDetailTypes = (): string[] =>
  Object.values(FUNCTIONS).flatMap((spec) =>
    spec.patterns.flatMap(({ pattern }) => {
      const detailTypes = pattern['detail-type'];
      return Array.isArray(detailTypes) ? detailTypes.map(String) : [];
    }),
  );

/** The literal detail-types in `detailType: '…'` and the constants they are built from, under `path`. */
const publishedDetailTypes = (path = 'functions'): string[] => {
  const source = execFileSync(
    'git',
    ['grep', '-h', '-E', "detailType: '|fact\\('|_CHANGED = '", '--', path],
    {
      cwd: root,
      encoding: 'utf8',
    },
  );
  return [...source.matchAll(/(?:detailType: |fact\(|_CHANGED = )'([A-Z][A-Za-z ]+)'/g)].map(
    (match) => match[1] ?? '',
  );
};

describe('docs/events.md', () => {
  it('lists every detail-type the catalog routes to a function', () => {
    const routed = [...new Set(routedDetailTypes())];
    expect(routed.length).toBeGreaterThan(15);

    expect(routed.filter((detailType) => !catalogue.includes(`\`${detailType}\``))).toEqual([]);
  });

  it('lists every fact a function publishes', () => {
    const published = [
      ...new Set([
        ...publishedDetailTypes(),
        ...Object.values(FUNCTIONS).flatMap((spec) => spec.publishes),
        REQUEST_REJECTED,
      ]),
    ];
    expect(published).toEqual(expect.arrayContaining(['Image Warmed', 'Server Ready', 'Request Rejected']));

    expect(published.filter((detailType) => !catalogue.includes(`\`${detailType}\``))).toEqual([]);
  });

  it('has in each catalog entry every fact the function’s code publishes (its role may put only those)', () => {
    for (const id of Object.keys(FUNCTIONS) as FunctionId[]) {
      const literals = [...new Set(publishedDetailTypes(`functions/${functionFolder(id)}`))];
      expect(literals.length, id).toBeGreaterThan(0);
      expect(
        literals.filter((detailType) => !FUNCTIONS[id].publishes.includes(detailType)),
        id,
      ).toEqual([]);
    }
  });
});
