/**
 * The benchmark tables of README.md and docs/benchmarks.md, rendered from the committed result
 * JSON (bench/results/*.json) into marker blocks, so a table can only show what a run wrote:
 *
 *   <!-- bench-table src="bench/results/cache.json" policies="lru,warmboot" metrics="warm_ratio" -->
 *   (generated table)
 *   <!-- /bench-table -->
 *
 * `npm run bench:tables` rewrites every block; `npm run bench:tables -- --check` changes nothing
 * and exits 1 listing the stale blocks (test/unit/bench/readme-tables.test.ts runs the same check).
 * The attributes are described at `ATTRIBUTES` below and in docs/benchmarks.md.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The documents whose marker blocks are generated (paths from the repository root). */
export const TABLE_DOCUMENTS = ['README.md', 'docs/benchmarks.md'] as const;

/** A marker block that cannot be rendered; the message names the document, line and attribute. */
export class BenchTableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BenchTableError';
  }
}

/** Every attribute a block may carry, with what it means (unknown ones are refused). */
const ATTRIBUTES = {
  src: 'result JSON file(s), from the repository root',
  section: 'dotted key path inside each src to the object holding `policies` (files with several runs)',
  policies:
    'the rows: policy keys (or, when every column names its policy, any name), each optionally `@<src file name without .json>`',
  prefix: 'text put before every key of `policies` (labels default to the key without it)',
  metrics: 'the columns: metric names, or templates such as `{lag p50 s} / {lag p99 s}`',
  headers: 'column headers, one per metric (default: the metric as written)',
  labels: 'row labels, one per policy; several label columns separated by `;`',
  'label-header': 'header(s) of the label column(s), separated by `;` (default `policy`)',
  format: 'number format for every column, or one per column separated by `|`',
  missing: 'text for a metric a row does not have (without it, a missing metric is an error)',
  bold: 'policy keys whose row is printed in bold',
} as const;
type Attribute = keyof typeof ATTRIBUTES;
const REQUIRED: readonly Attribute[] = ['src', 'policies', 'metrics'];

/** Reads a result JSON by its path from the repository root. */
export type LoadResult = (path: string) => unknown;

export const loadResult: LoadResult = (path) => JSON.parse(readFileSync(resolve(projectRoot, path), 'utf8'));

/**
 * Lists split on `|` when the value holds one, otherwise on `,` (so a policy name with a comma,
 * such as `warmboot, new IPs N=10`, needs `|` between the items, or after it when it is alone).
 */
const splitList = (value: string): string[] =>
  value
    .split(value.includes('|') ? '|' : ',')
    .map((item) => item.replace(/\s+/g, ' ').trim())
    .filter((item) => item !== '');

const stemOf = (file: string): string => basename(file).replace(/\.json$/, '');

const splitCells = (value: string): string[] =>
  value.split(';').map((cell) => cell.replace(/\s+/g, ' ').trim());

// ---------------------------------------------------------------------------------------------
// Number formats: an Excel-like subset. `0.000` three decimals; `#,##0` thousands separators;
// `0.#` up to one decimal (trailing zeros dropped); `/1e9` divides first; text after the pattern
// is printed after the number (`#,##0/1e9 GB` → `3,376 GB`); `auto` is the bench's own rule.
// ---------------------------------------------------------------------------------------------

interface NumberFormat {
  readonly thousands: boolean;
  readonly fixedDecimals: number;
  readonly optionalDecimals: number;
  readonly divisor: number;
  readonly suffix: string;
}

const FORMAT_PATTERN = /^(#,##)?0(?:\.(0*)(#*))?(?:\/([0-9.]+(?:e[0-9]+)?))?(.*)$/;

const parseFormat = (spec: string): NumberFormat | 'auto' => {
  if (spec === 'auto') return 'auto';
  const match = FORMAT_PATTERN.exec(spec);
  const divisor = Number(match?.[4] ?? '1');
  if (!match || !(divisor > 0) || /^[0#.,/]/.test(match[5] ?? '')) {
    throw new BenchTableError(
      `format '${spec}' is not a number format (examples: auto, 0.000, #,##0, 0.#, #,##0/1e9 GB)`,
    );
  }
  return {
    thousands: match[1] !== undefined,
    fixedDecimals: match[2]?.length ?? 0,
    optionalDecimals: match[3]?.length ?? 0,
    divisor,
    suffix: match[5] ?? '',
  };
};

/**
 * `value` rounded half away from zero as it is written (its shortest decimal form, the one the
 * JSON holds): `toFixed` rounds the binary double, so 24.15 would print 24.1 and 1.765 1.76.
 */
const roundAsWritten = (value: number, decimals: number): { whole: string; fraction: string } => {
  const [mantissa = '0', exponent = '0'] = Math.abs(value).toString().split('e');
  const [whole = '0', fraction = ''] = mantissa.split('.');
  let digits = whole + fraction;
  let point = whole.length + Number(exponent);
  if (point < 0) {
    digits = '0'.repeat(-point) + digits;
    point = 0;
  }
  const kept = digits.slice(0, point + decimals).padEnd(point + decimals, '0');
  const roundUp = (digits[point + decimals] ?? '0') >= '5';
  const rounded = (BigInt(kept === '' ? '0' : kept) + (roundUp ? 1n : 0n))
    .toString()
    .padStart(decimals + 1, '0');
  return {
    whole: rounded.slice(0, rounded.length - decimals),
    fraction: rounded.slice(rounded.length - decimals),
  };
};

const autoFormat = (value: number): NumberFormat => {
  // The bench's printed rule (bench/report.ts formatNumber), with thousands separators throughout.
  if (Number.isInteger(value)) return parseFormat('#,##0') as NumberFormat;
  return parseFormat(Math.abs(value) >= 100 ? '#,##0.0' : '0.000') as NumberFormat;
};

/** One value in a format spec (see the comment above `NumberFormat`). */
export const formatMetric = (value: number, spec: string): string => {
  const parsed = parseFormat(spec);
  const format = parsed === 'auto' ? autoFormat(value) : parsed;
  const scaled = value / format.divisor;
  const { whole, fraction } = roundAsWritten(scaled, format.fixedDecimals + format.optionalDecimals);
  const shown =
    fraction.slice(0, format.fixedDecimals) + fraction.slice(format.fixedDecimals).replace(/0+$/, '');
  const digits = format.thousands ? whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',') : whole;
  const zero = /^0*$/.test(whole + fraction);
  return `${scaled < 0 && !zero ? '-' : ''}${digits}${shown ? `.${shown}` : ''}${format.suffix}`;
};

// Blocks -----------------------------------------------------------------------------------------

interface Row {
  /** The policy key (prefix included); a name only when every column names its own policy. */
  readonly policy: string;
  /** The src file (name without `.json`) the row comes from, when the item ends `@<that name>`. */
  readonly from?: string;
  readonly labels: readonly string[];
}

interface TableSpec {
  readonly src: readonly string[];
  readonly section?: string;
  readonly rows: readonly Row[];
  readonly columns: readonly { readonly metric: string; readonly header: string; readonly format: string }[];
  readonly labelHeaders: readonly string[];
  readonly missing?: string;
  readonly bold: ReadonlySet<string>;
}

const ATTRIBUTE_PATTERN = /\s*([a-z-]+)="([^"]*)"/y;

const parseAttributes = (text: string, where: string): Map<Attribute, string> => {
  const attributes = new Map<Attribute, string>();
  let position = 0;
  while (position < text.trimEnd().length) {
    ATTRIBUTE_PATTERN.lastIndex = position;
    const match = ATTRIBUTE_PATTERN.exec(text);
    if (!match) {
      throw new BenchTableError(`${where}: cannot read '${text.slice(position).trim()}'; write name="value"`);
    }
    const [, name = '', value = ''] = match;
    if (!(name in ATTRIBUTES)) {
      throw new BenchTableError(
        `${where}: unknown attribute '${name}'; valid: ${Object.keys(ATTRIBUTES).join(', ')}`,
      );
    }
    if (attributes.has(name as Attribute))
      throw new BenchTableError(`${where}: attribute '${name}' given twice`);
    attributes.set(name as Attribute, value);
    position = ATTRIBUTE_PATTERN.lastIndex;
  }
  for (const name of REQUIRED) {
    if (!attributes.get(name)?.trim()) throw new BenchTableError(`${where}: attribute '${name}' is required`);
  }
  return attributes;
};

const parseSpec = (attributes: Map<Attribute, string>, where: string): TableSpec => {
  const list = (name: Attribute) => splitList(attributes.get(name) ?? '');
  const metrics = list('metrics');
  const headers = attributes.has('headers') ? list('headers') : metrics;
  if (headers.length !== metrics.length) {
    throw new BenchTableError(`${where}: headers has ${headers.length} items for ${metrics.length} metrics`);
  }
  const formats = (attributes.get('format') ?? 'auto').split('|').map((format) => format.trim());
  if (formats.length !== 1 && formats.length !== metrics.length) {
    throw new BenchTableError(`${where}: format has ${formats.length} items for ${metrics.length} metrics`);
  }
  for (const format of formats) {
    try {
      parseFormat(format);
    } catch (error) {
      throw new BenchTableError(`${where}: ${(error as Error).message}`);
    }
  }
  const labelHeaders = splitCells(attributes.get('label-header') ?? 'policy');
  const policies = list('policies');
  const labels = attributes.has('labels') ? list('labels').map(splitCells) : undefined;
  if (labels && labels.length !== policies.length) {
    throw new BenchTableError(`${where}: labels has ${labels.length} items for ${policies.length} policies`);
  }
  if (!labels && labelHeaders.length > 1) {
    throw new BenchTableError(`${where}: label-header names ${labelHeaders.length} columns; give labels`);
  }
  const stems = list('src').map(stemOf);
  const prefix = attributes.get('prefix')?.trim() ?? '';
  const rows = policies.map((item, index): Row => {
    // `@x` names a src only when x is one (policy keys such as `fixed-warm-pool@10` hold an @).
    const at = item.lastIndexOf('@');
    const from = at < 0 ? undefined : item.slice(at + 1).trim();
    const key = from !== undefined && stems.includes(from) ? item.slice(0, at).trim() : item;
    const policy = prefix + key;
    const rowLabels = labels?.[index] ?? [key];
    if (rowLabels.length !== labelHeaders.length) {
      throw new BenchTableError(
        `${where}: labels item ${index + 1} has ${rowLabels.length} cells for ${labelHeaders.length} label columns`,
      );
    }
    return key === item ? { policy, labels: rowLabels } : { policy, from, labels: rowLabels };
  });
  const bold = new Set(list('bold').map((key) => prefix + key));
  for (const policy of bold) {
    if (!rows.some((row) => row.policy === policy)) {
      throw new BenchTableError(`${where}: bold names '${policy}', which is not in policies`);
    }
  }
  const section = attributes.get('section')?.trim();
  const missing = attributes.get('missing');
  return {
    src: list('src'),
    ...(section ? { section } : {}),
    rows,
    columns: metrics.map((metric, index) => ({
      metric,
      header: headers[index] ?? metric,
      format: formats[formats.length === 1 ? 0 : index] ?? 'auto',
    })),
    labelHeaders,
    ...(missing === undefined ? {} : { missing }),
    bold,
  };
};

type PolicyTable = Record<string, Record<string, unknown>>;

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Follows `section` (greedy, so a key may itself hold dots) and returns the `policies` there. */
const policiesOf = (json: unknown, file: string, section: string | undefined, where: string): PolicyTable => {
  let node = json;
  let rest = section ?? '';
  while (rest !== '') {
    const here = node;
    const keys = isObject(here) ? Object.keys(here) : [];
    const key = keys
      .filter((candidate) => rest === candidate || rest.startsWith(`${candidate}.`))
      .sort((a, b) => b.length - a.length)[0];
    if (key === undefined || !isObject(here)) {
      throw new BenchTableError(
        `${where}: section '${section}': no key '${rest}' in ${file} (keys there: ${keys.join(', ') || 'none'})`,
      );
    }
    node = here[key];
    rest = rest.slice(key.length + 1);
  }
  const policies = isObject(node) ? node.policies : undefined;
  if (!isObject(policies)) {
    const at = section ? ` at section '${section}'` : '';
    throw new BenchTableError(`${where}: ${file}${at} has no 'policies' object`);
  }
  return policies as PolicyTable;
};

const PLACEHOLDER = /\{([^{}@]+)(?:@([^{}]+))?\}/g;

/** Whether a column reads the row's own policy (a metric name, or a placeholder without `@`). */
const readsRowPolicy = (metric: string): boolean =>
  !metric.includes('{') || [...metric.matchAll(PLACEHOLDER)].some((match) => match[2] === undefined);

/** The table of one block (header, alignment row, one row per policy), without a final newline. */
const renderTable = (spec: TableSpec, load: LoadResult, where: string): string => {
  const sources = spec.src.map((file) => {
    let json: unknown;
    try {
      json = load(file);
    } catch (error) {
      throw new BenchTableError(`${where}: src '${file}' cannot be read: ${(error as Error).message}`);
    }
    return { file, stem: stemOf(file), policies: policiesOf(json, file, spec.section, where) };
  });
  const rowsArePolicies = spec.columns.some((column) => readsRowPolicy(column.metric));
  const sourceOf = (row: Row) => {
    const named = sources.find((candidate) => candidate.stem === row.from);
    if (!rowsArePolicies) {
      const chosen = named ?? (sources.length === 1 ? sources[0] : undefined);
      if (chosen) return chosen;
      throw new BenchTableError(`${where}: policies: '${row.policy}' needs '@<file name>' (several src)`);
    }
    const holders = (named ? [named] : sources).filter((source) =>
      Object.hasOwn(source.policies, row.policy),
    );
    if (holders.length > 1) {
      throw new BenchTableError(
        `${where}: policies: '${row.policy}' is in ${holders.map((h) => h.file).join(' and ')}; write '${row.policy}@<file name>'`,
      );
    }
    const [holder] = holders;
    if (!holder) {
      const known = (named ? [named] : sources)
        .map((source) => `${source.file}: ${Object.keys(source.policies).join(', ')}`)
        .join('; ');
      throw new BenchTableError(`${where}: policies: '${row.policy}' is in no src (${known})`);
    }
    return holder;
  };
  const cell = (row: Row, policies: PolicyTable, metric: string, format: string): string => {
    const value = (policy: string, name: string): string => {
      const metrics = Object.hasOwn(policies, policy) ? policies[policy] : undefined;
      if (!isObject(metrics)) {
        throw new BenchTableError(
          `${where}: metrics '${metric}': row '${row.policy}' refers to policy '${policy}', which is not there`,
        );
      }
      const number = metrics[name];
      if (typeof number === 'number') return formatMetric(number, format);
      if ((number === undefined || number === null) && spec.missing !== undefined) return spec.missing;
      throw new BenchTableError(
        `${where}: metrics: policy '${policy}' has no number '${name}' (it has: ${Object.keys(metrics).join(', ')}); add missing="" to leave such cells empty`,
      );
    };
    if (!metric.includes('{')) return value(row.policy, metric);
    return metric.replace(PLACEHOLDER, (_whole, name: string, policy?: string) =>
      value(policy === undefined ? row.policy : policy.replaceAll('*', row.policy).trim(), name.trim()),
    );
  };
  const escapePipes = (text: string) => text.replaceAll('|', '\\|');
  const line = (cells: readonly string[]) => `| ${cells.map(escapePipes).join(' | ')} |`;
  const body = spec.rows.map((row) => {
    const source = sourceOf(row);
    const cells = [
      ...row.labels,
      ...spec.columns.map((column) => cell(row, source.policies, column.metric, column.format)),
    ];
    const bold = spec.bold.has(row.policy);
    return line(cells.map((text) => (bold && text !== '' ? `**${text}**` : text)));
  });
  return [
    line([...spec.labelHeaders, ...spec.columns.map((column) => column.header)]),
    `|${[...spec.labelHeaders.map(() => '---'), ...spec.columns.map(() => '---:')].join('|')}|`,
    ...body,
  ].join('\n');
};

// Documents --------------------------------------------------------------------------------------

const OPEN = /<!--\s*bench-table\b([\s\S]*?)-->/g;
const CLOSE = '<!-- /bench-table -->';

/** [start, end) offsets of the fenced code blocks: a marker shown as an example is not a block. */
const fencedRanges = (text: string): [number, number][] => {
  const ranges: [number, number][] = [];
  let open: number | undefined;
  for (const fence of text.matchAll(/^(?:```|~~~).*$/gm)) {
    const at = fence.index ?? 0;
    if (open === undefined) open = at;
    else {
      ranges.push([open, at + fence[0].length]);
      open = undefined;
    }
  }
  if (open !== undefined) ranges.push([open, text.length]);
  return ranges;
};

/** One block of a document: where it starts and whether its table differs from the rendering. */
export interface BlockReport {
  readonly line: number;
  readonly src: string;
  readonly stale: boolean;
}

/** The document with every block's table rendered from `load`, and a report per block. */
export const renderDocument = (
  text: string,
  document: string,
  load: LoadResult = loadResult,
): { text: string; blocks: BlockReport[] } => {
  const blocks: BlockReport[] = [];
  let output = '';
  let position = 0;
  const fenced = fencedRanges(text);
  for (const open of text.matchAll(OPEN)) {
    const start = open.index ?? 0;
    if (start < position || fenced.some(([from, to]) => start >= from && start < to)) continue;
    const line = text.slice(0, start).split('\n').length;
    const where = `${document}:${line}`;
    const bodyStart = start + open[0].length;
    const close = text.indexOf(CLOSE, bodyStart);
    const nextOpen = text.slice(bodyStart).search(/<!--\s*bench-table\b/);
    if (close < 0 || (nextOpen >= 0 && bodyStart + nextOpen < close)) {
      throw new BenchTableError(
        `${where}: bench-table block has no '${CLOSE}' before the next block or the end`,
      );
    }
    const spec = parseSpec(parseAttributes(open[1] ?? '', where), where);
    // Blank lines around the table: it is a block of its own whatever the Markdown renderer.
    const body = `\n\n${renderTable(spec, load, where)}\n\n`;
    blocks.push({ line, src: spec.src.join(', '), stale: text.slice(bodyStart, close) !== body });
    output += text.slice(position, bodyStart) + body;
    position = close;
  }
  return { text: output + text.slice(position), blocks };
};

/** `npm run bench:tables [-- --check]`: rewrites the blocks, or lists the stale ones and exits 1. */
const main = (argv: readonly string[]): number => {
  const unknown = argv.filter((arg) => arg !== '--check');
  if (unknown.length > 0) {
    process.stderr.write(
      `bench:tables: unknown argument(s) ${unknown.join(' ')}; usage: bench:tables [--check]\n`,
    );
    return 2;
  }
  const check = argv.includes('--check');
  let stale = 0;
  for (const document of TABLE_DOCUMENTS) {
    const path = resolve(projectRoot, document);
    const rendered = renderDocument(readFileSync(path, 'utf8'), document);
    for (const block of rendered.blocks.filter((candidate) => candidate.stale)) {
      stale++;
      const verb = check ? 'stale' : 'updated';
      process.stdout.write(`${verb}: ${document}:${block.line} (src ${block.src})\n`);
    }
    if (!check && rendered.blocks.some((block) => block.stale)) writeFileSync(path, rendered.text);
  }
  if (check && stale > 0) {
    process.stdout.write(`${stale} stale table(s): run npm run bench:tables\n`);
    return 1;
  }
  process.stdout.write(check ? 'every bench table is up to date\n' : `${stale} table(s) rewritten\n`);
  return 0;
};

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof BenchTableError)) throw error;
    process.stderr.write(`bench:tables: ${error.message}\n`);
    process.exitCode = 2;
  }
}
