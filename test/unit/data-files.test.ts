import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadImageSizes, loadLoadLatenciesMs, loadTrace } from '../../local/trace';

/**
 * The data in `data/` is kept byte for byte as published (data/README.md). These are the digests
 * and counts that README states: a file re-encoded, truncated or replaced by a Git LFS pointer
 * fails here instead of silently moving a benchmark result.
 */
const DATA = resolve(__dirname, '../../data');

const PUBLISHED = [
  {
    file: 'alibaba-genai-requests.csv',
    bytes: 2_012_418,
    rows: 26_823,
    sha256: '263fb88f1095f62d360cf89ded8cfc24fa2c5d111c1b16e7aaa9ccbfc4b37d78',
  },
  {
    file: 'alibaba-genai-basemodel-load-latency.csv',
    bytes: 404_128,
    rows: 7_531,
    sha256: '06d1d39fea0e702dbeb209494fbb3ceec8ded62ade30dfa5b294b9adfbe27da7',
  },
  {
    file: 'dockerhub-image-sizes.csv',
    bytes: 80_273,
    rows: 936,
    sha256: 'c1d82dfdea566682c1eecc61cb29bc0f1f5c800066ba72b0914dbbbac27a02ce',
  },
] as const;

describe('data/ holds the published files unchanged', () => {
  it.each(PUBLISHED)('$file has the published size, rows and digest', ({ file, bytes, rows, sha256 }) => {
    const content = readFileSync(resolve(DATA, file));

    expect(content.length).toBe(bytes);
    expect(content.toString('utf8').trimEnd().split('\n').length - 1).toBe(rows);
    expect(createHash('sha256').update(content).digest('hex')).toBe(sha256);
  });

  it('the loaders read what data/README.md says they read', () => {
    const trace = loadTrace(resolve(DATA, 'alibaba-genai-requests.csv'));

    expect(trace.format).toBe('alibaba');
    expect(trace.requests.length).toBe(26_798);
    expect(trace.skippedRows).toBe(25);
    expect(new Set(trace.requests.map((request) => request.image)).size).toBe(86);
    expect(loadLoadLatenciesMs(resolve(DATA, 'alibaba-genai-basemodel-load-latency.csv'))).toHaveLength(
      7_531,
    );
    expect(loadImageSizes(resolve(DATA, 'dockerhub-image-sizes.csv'))).toHaveLength(930);
  });
});
