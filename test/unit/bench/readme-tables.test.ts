import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  BenchTableError,
  formatMetric,
  type LoadResult,
  renderDocument,
  TABLE_DOCUMENTS,
} from '../../../bench/readme-tables';

const root = resolve(__dirname, '../../..');

describe('the committed bench tables', () => {
  it.each(TABLE_DOCUMENTS)('%s: every bench-table block is what its JSON renders', (document) => {
    const text = readFileSync(resolve(root, document), 'utf8');
    const rendered = renderDocument(text, document);

    expect(rendered.blocks.length).toBeGreaterThan(0);
    const stale = rendered.blocks.filter((block) => block.stale).map((block) => `${document}:${block.line}`);
    // A stale block means a result JSON changed after its table was written: npm run bench:tables.
    expect(stale).toEqual([]);
    expect(rendered.text).toBe(text);
  });
});

describe('formatMetric', () => {
  it('prints fixed decimals, thousands separators and optional decimals', () => {
    expect(formatMetric(0.98126, '0.000')).toBe('0.981');
    expect(formatMetric(26798, '#,##0')).toBe('26,798');
    expect(formatMetric(1234567.891, '#,##0.00')).toBe('1,234,567.89');
    expect(formatMetric(26798, '0')).toBe('26798');
    expect(formatMetric(15.96, '0.#')).toBe('16');
    expect(formatMetric(20.7, '0.#')).toBe('20.7');
    expect(formatMetric(24, '0.0#')).toBe('24.0');
  });

  it('rounds the value as written in the JSON, half away from zero', () => {
    // toFixed rounds the binary double: 24.15 → "24.1", 1.765 → "1.76".
    expect(formatMetric(24.15, '0.0')).toBe('24.2');
    expect(formatMetric(1.765, '0.00')).toBe('1.77');
    expect(formatMetric(9.995, '0.00')).toBe('10.00');
    expect(formatMetric(-2.25, '0.0')).toBe('-2.3');
    expect(formatMetric(-0.0004, '0.000')).toBe('0.000');
    expect(formatMetric(1e-7, '0.000')).toBe('0.000');
    expect(formatMetric(1.5e21, '#,##0')).toBe('1,500,000,000,000,000,000,000');
  });

  it('divides and appends a suffix', () => {
    expect(formatMetric(3_375_734_903_901, '#,##0/1e9 GB')).toBe('3,376 GB');
    expect(formatMetric(1.3296, '0.00×')).toBe('1.33×');
  });

  it('auto follows the bench printout: integers whole, one decimal from 100, else three', () => {
    expect(formatMetric(1200, 'auto')).toBe('1,200');
    expect(formatMetric(455.92, 'auto')).toBe('455.9');
    expect(formatMetric(0.5, 'auto')).toBe('0.500');
  });

  it('refuses a format it cannot read', () => {
    expect(() => formatMetric(1, '0.00.0')).toThrow(/format '0.00.0' is not a number format/);
    expect(() => formatMetric(1, 'x')).toThrow(BenchTableError);
    expect(() => formatMetric(1, '0/0')).toThrow(/not a number format/);
  });
});

const results: Record<string, unknown> = {
  'r/cache.json': {
    scenario: 'cache',
    policies: {
      lru: { warm_ratio: 0.7146, cold_starts: 7648 },
      'warmboot, tuned': { warm_ratio: 0.98668, cold_starts: 357, extra: 1 },
      oracle: { warm_ratio: 0.99526 },
    },
  },
  'r/rate-10.json': {
    policies: {
      '10/s': { lag_p50: 7.9, lag_p99: 18.2, calls: 115.29 },
      '10/s · popularity': { calls: 26.42 },
    },
  },
  'r/rate-100.json': {
    policies: {
      '10/s': { lag_p50: 9.1, lag_p99: 21.5, calls: 46.8 },
      '100/s': { lag_p50: 1, lag_p99: 2, calls: 3 },
      '100/s · popularity': { calls: 0.5 },
    },
  },
  'r/pools.json': {
    policies: {
      'alibaba/fixed@10': { hit: 0.961 },
      'alibaba/warmboot': { hit: 0.952 },
      'zipf/fixed@10': { hit: 0.8 },
      'zipf/warmboot': { hit: 0.9 },
    },
  },
  'r/traces.json': {
    traces: {
      'data/a.csv': { policies: { lru: { warm_ratio: 0.5 } } },
      zipf: { policies: { lru: { warm_ratio: 0.25 } } },
    },
  },
};
const load: LoadResult = (path) => {
  if (!(path in results)) throw new Error(`ENOENT: no such file '${path}'`);
  return results[path];
};
const block = (attributes: string, body = '') =>
  `# t\n\n<!-- bench-table ${attributes} -->\n${body}<!-- /bench-table -->\n\nafter\n`;
const table = (attributes: string) => {
  const rendered = renderDocument(block(attributes), 'doc.md', load).text;
  return rendered
    .slice(rendered.indexOf('-->\n\n') + 5, rendered.indexOf('<!-- /bench-table -->') - 2)
    .split('\n');
};

describe('renderDocument', () => {
  it('renders the rows and columns asked for, in that order', () => {
    expect(
      table(
        'src="r/cache.json" policies="oracle,lru" metrics="cold_starts,warm_ratio" missing="—" format="#,##0|0.00"',
      ),
    ).toEqual([
      '| policy | cold_starts | warm_ratio |',
      '|---|---:|---:|',
      '| oracle | — | 1.00 |',
      '| lru | 7,648 | 0.71 |',
    ]);
  });

  it('splits lists on | when they hold one, and takes labels, headers and bold rows', () => {
    expect(
      table(
        `src="r/cache.json" policies="warmboot, tuned|lru" metrics="warm_ratio" headers="warm ratio"
         label-header="policy;tuned" labels="warmboot;yes|lru;no" bold="warmboot, tuned|" format="0.000"`,
      ),
    ).toEqual([
      '| policy | tuned | warm ratio |',
      '|---|---|---:|',
      '| **warmboot** | **yes** | **0.987** |',
      '| lru | no | 0.715 |',
    ]);
  });

  it('reads several files, with @file where a policy is in more than one, and templates', () => {
    expect(
      table(
        `src="r/rate-10.json|r/rate-100.json" policies="10/s@rate-10|100/s" format="0.0"
         metrics="{lag_p50} / {lag_p99}|{calls} ({calls@* · popularity})" headers="lag|calls"`,
      ),
    ).toEqual([
      '| policy | lag | calls |',
      '|---|---:|---:|',
      '| 10/s | 7.9 / 18.2 | 115.3 (26.4) |',
      '| 100/s | 1.0 / 2.0 | 3.0 (0.5) |',
    ]);
  });

  it('puts prefix before every key, and takes rows that are names when every column names its policy', () => {
    expect(
      table('src="r/traces.json" section="traces.zipf" prefix="l" policies="ru" metrics="warm_ratio"')[2],
    ).toBe('| ru | 0.250 |');
    expect(
      table(
        `src="r/pools.json" prefix="alibaba/" policies="fixed@10,warmboot" metrics="hit" bold="warmboot" format="0.00"`,
      ).slice(2),
    ).toEqual(['| fixed@10 | 0.96 |', '| **warmboot** | **0.95** |']);
    expect(
      table(
        'src="r/pools.json" policies="alibaba|zipf" label-header="trace" format="0.00" metrics="{hit@*/warmboot} vs {hit@*/fixed@10}"',
      ).slice(2),
    ).toEqual(['| alibaba | 0.95 vs 0.96 |', '| zipf | 0.90 vs 0.80 |']);
  });

  it('follows section into a file with several runs (keys may hold dots)', () => {
    expect(
      table('src="r/traces.json" section="traces.data/a.csv" policies="lru" metrics="warm_ratio"')[2],
    ).toBe('| lru | 0.500 |');
    expect(table('src="r/traces.json" section="traces.zipf" policies="lru" metrics="warm_ratio"')[2]).toBe(
      '| lru | 0.250 |',
    );
    expect(() =>
      table('src="r/traces.json" section="traces.alibaba" policies="lru" metrics="warm_ratio"'),
    ).toThrow(
      "doc.md:3: section 'traces.alibaba': no key 'alibaba' in r/traces.json (keys there: data/a.csv, zipf)",
    );
    expect(() => table('src="r/traces.json" policies="lru" metrics="warm_ratio"')).toThrow(
      "doc.md:3: r/traces.json has no 'policies' object",
    );
  });

  it('names the attribute when a policy or a metric is not in the JSON', () => {
    expect(() => table('src="r/cache.json" policies="lru,lfu" metrics="warm_ratio"')).toThrow(
      "doc.md:3: policies: 'lfu' is in no src (r/cache.json: lru, warmboot, tuned, oracle)",
    );
    expect(() => table('src="r/cache.json" policies="constructor" metrics="warm_ratio"')).toThrow(
      "policies: 'constructor' is in no src",
    );
    expect(() => table('src="r/cache.json" policies="oracle" metrics="cold_starts"')).toThrow(
      "doc.md:3: metrics: policy 'oracle' has no number 'cold_starts' (it has: warm_ratio); add missing=\"\" to leave such cells empty",
    );
    expect(() => table('src="r/rate-10.json|r/rate-100.json" policies="10/s" metrics="calls"')).toThrow(
      "policies: '10/s' is in r/rate-10.json and r/rate-100.json; write '10/s@<file name>'",
    );
    expect(() => table('src="r/rate-10.json" policies="10/s@rate-1" metrics="calls"')).toThrow(
      "policies: '10/s@rate-1' is in no src (r/rate-10.json: 10/s, 10/s · popularity)",
    );
    expect(() => table('src="r/rate-10.json|r/rate-100.json" policies="any" metrics="{calls@10/s}"')).toThrow(
      "policies: 'any' needs '@<file name>' (several src)",
    );
    expect(() =>
      table('src="r/rate-10.json" policies="10/s · popularity" metrics="{calls@* · shelving}"'),
    ).toThrow("row '10/s · popularity' refers to policy '10/s · popularity · shelving', which is not there");
    expect(() => table('src="r/none.json" policies="lru" metrics="calls"')).toThrow(
      "doc.md:3: src 'r/none.json' cannot be read: ENOENT",
    );
  });

  it('refuses unknown, repeated, missing and mismatched attributes', () => {
    expect(() => table('src="r/cache.json" policies="lru" metrics="warm_ratio" rows="x"')).toThrow(
      "doc.md:3: unknown attribute 'rows'; valid: src, section, policies, prefix, metrics, headers, labels, label-header, format, missing, bold",
    );
    expect(() => table('src="r/cache.json" policies="lru" policies="oracle" metrics="warm_ratio"')).toThrow(
      "attribute 'policies' given twice",
    );
    expect(() => table('src="r/cache.json" policies="lru"')).toThrow(
      "doc.md:3: attribute 'metrics' is required",
    );
    expect(() => table('src="r/cache.json" policies="lru" metrics="warm_ratio" headers="a,b"')).toThrow(
      'headers has 2 items for 1 metrics',
    );
    expect(() =>
      table('src="r/cache.json" policies="lru" metrics="warm_ratio,cold_starts" format="0|0|0"'),
    ).toThrow('format has 3 items for 2 metrics');
    expect(() => table('src="r/cache.json" policies="lru" metrics="warm_ratio" format="0.0.0"')).toThrow(
      "doc.md:3: format '0.0.0' is not a number format",
    );
    expect(() => table('src="r/cache.json" policies="lru" metrics="warm_ratio" labels="a;b"')).toThrow(
      'labels item 1 has 2 cells for 1 label columns',
    );
    expect(() => table('src="r/cache.json" policies="lru" metrics="warm_ratio" label-header="a;b"')).toThrow(
      'label-header names 2 columns; give labels',
    );
    expect(() => table('src="r/cache.json" policies="lru" metrics="warm_ratio" bold="oracle"')).toThrow(
      "bold names 'oracle', which is not in policies",
    );
    expect(() => table('src=r/cache.json policies="lru" metrics="warm_ratio"')).toThrow(
      "cannot read 'src=r/cache.json",
    );
  });

  it('requires a closing marker before the next block', () => {
    const text = '<!-- bench-table src="r/cache.json" policies="lru" metrics="warm_ratio" -->\n\n';
    expect(() => renderDocument(text + text, 'doc.md', load)).toThrow(
      "doc.md:1: bench-table block has no '<!-- /bench-table -->' before the next block or the end",
    );
  });

  it('leaves a marker shown inside a fenced code block alone', () => {
    const example = `\`\`\`\n${block('src="r/none.json" policies="x" metrics="y"', '(generated)\n')}\`\`\`\n`;
    expect(renderDocument(example, 'doc.md', load)).toEqual({ text: example, blocks: [] });
  });

  it('reports a stale block and leaves the text outside blocks alone', () => {
    const attributes = 'src="r/cache.json" policies="lru" metrics="warm_ratio"';
    const stale = block(attributes, '| old |\n');
    const rendered = renderDocument(stale, 'doc.md', load);

    expect(rendered.blocks).toEqual([{ line: 3, src: 'r/cache.json', stale: true }]);
    expect(rendered.text).toBe(
      block(attributes, '\n| policy | warm_ratio |\n|---|---:|\n| lru | 0.715 |\n\n'),
    );
    expect(renderDocument(rendered.text, 'doc.md', load).blocks[0]?.stale).toBe(false);
  });
});
