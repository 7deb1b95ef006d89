import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Trace loading for trace-driven benchmarks. Two formats (see data/README.md):
 * - the Alibaba GenAI request trace (`gmt_create`, `checkpoint_model_version_id`, `groupId`);
 * - the generic benchmark format: a header with at least `timestamp_s,image`, optionally
 *   `size_bytes`, `tenant`, `instance_type`, `platform`.
 * Image ids are opaque strings: they are never validated as container references here.
 * Nothing is repaired silently: a row that lacks a required value is skipped and an id with
 * surrounding spaces is trimmed, each counted per reason in `Trace.repairs`; an optional value
 * that is present but invalid (`size_bytes`, `platform`) fails the load, naming row and column.
 */

/** Overrides where the data files are read from (default: the repository's own `data/`). */
export const DATA_DIR_ENV = 'WARMBOOT_DATA_DIR';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export const dataDir = (env: Readonly<Record<string, string | undefined>> = process.env): string =>
  resolve(env[DATA_DIR_ENV] ?? resolve(projectRoot, 'data'));

/**
 * How a report names the trace it read: relative to the repository when the file is inside it,
 * so committed results do not carry the path of the machine that measured them.
 */
export const traceLabel = (path: string): string => {
  const inside = relative(projectRoot, resolve(path));
  return inside.startsWith('..') || isAbsolute(inside) ? resolve(path) : inside;
};

export const DEFAULT_TRACE_FILE = 'alibaba-genai-requests.csv';
const IMAGE_SIZES_FILE = 'dockerhub-image-sizes.csv';
const LOAD_LATENCY_FILE = 'alibaba-genai-basemodel-load-latency.csv';

export type Platform = 'linux' | 'windows';
const PLATFORMS: readonly Platform[] = ['linux', 'windows'];

export interface TraceRequest {
  /** Seconds since the trace's first request (so day boundaries are trace-relative). */
  readonly timeS: number;
  readonly image: string;
  readonly sizeBytes: number;
  readonly tenant?: string;
  readonly instanceType?: string;
  /** The image's operating system when the trace says (generic `platform` column, generated traces). */
  readonly platform?: Platform;
}

/** Why the loader changed or dropped something; the counts are in `Trace.repairs`. */
export const REPAIR = {
  /** Row skipped: no image id. */
  noImage: 'no image',
  /** Row skipped: no time, or one that is not a plain decimal number / `YYYY-MM-DD HH:MM:SS`. */
  badTime: 'bad time',
  /** An id, tenant, instance type, platform or header name had surrounding spaces, removed. */
  whitespaceTrimmed: 'whitespace trimmed',
  /** A row gave another `size_bytes` for an image than its first row; the first is kept. */
  conflictingSize: 'conflicting size_bytes (first kept)',
  /** Images with no `size_bytes` in the trace, given a size sampled from the Docker Hub sample. */
  sampledSize: 'images with sampled size',
} as const;

/** Reasons that drop a row (the others keep it). */
const SKIP_REASONS: readonly string[] = [REPAIR.noImage, REPAIR.badTime];

export interface Trace {
  /** What reports print: `alibaba`, a file's label (`traceLabel`), or a generated trace's preset and seed. */
  readonly name: string;
  /** The file replayed; `null` for a trace generated in memory. */
  readonly path: string | null;
  readonly format: 'alibaba' | 'generic' | 'synthetic';
  /** Requests ordered by time (stable for equal times: file order). */
  readonly requests: readonly TraceRequest[];
  /** Absolute time of the first request, seconds (epoch for Alibaba; the file's origin for generic). */
  readonly originS: number;
  /** Rows dropped (the sum of the skip reasons in `repairs`). */
  readonly skippedRows: number;
  /** Count per reason (`REPAIR`) of what the loader skipped or repaired; empty when nothing was. */
  readonly repairs: Readonly<Record<string, number>>;
  /** Where `sizeBytes` came from. */
  readonly sizeSource: 'trace' | 'sampled' | 'mixed';
}

/**
 * RFC 4180 CSV: quoted fields may hold commas, doubled quotes and newlines; CRLF or LF line
 * ends; a trailing newline does not make an empty row.
 */
export const parseCsv = (text: string): string[][] => {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const endRow = () => {
    row.push(field);
    field = '';
    if (!(row.length === 1 && row[0] === '')) rows.push(row);
    row = [];
  };
  for (; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else {
          quoted = false;
        }
      } else {
        field += c;
      }
    } else if (c === '"') {
      quoted = true;
    } else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n') {
      endRow();
    } else if (c === '\r') {
      if (text[i + 1] === '\n') i++;
      endRow();
    } else {
      field += c;
    }
  }
  if (field !== '' || row.length > 0) endRow();
  return rows;
};

/** Header → column index; throws naming the missing required columns. */
const columns = (
  header: readonly string[],
  required: readonly string[],
  path: string,
): Map<string, number> => {
  const index = new Map(header.map((name, i) => [name.trim(), i]));
  const missing = required.filter((name) => !index.has(name));
  if (missing.length > 0) {
    throw new Error(
      `${path}: missing column(s) ${missing.join(', ')}; expected the Alibaba trace (gmt_create, ` +
        'checkpoint_model_version_id, groupId) or a header with timestamp_s,image[,size_bytes,tenant,instance_type,platform]',
    );
  }
  return index;
};

/** A positive integer byte count, or undefined for an empty or invalid cell. */
const sizeCell = (text: string | undefined): number | undefined => {
  if (text === undefined || text.trim() === '') return undefined;
  const value = Number(text);
  return Number.isFinite(value) && value > 0 ? Math.round(value) : undefined;
};

/** A plain decimal number (`Number()` alone would also accept `0x10`, `Infinity` and blanks). */
const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const genericTime = (text: string | undefined): number =>
  text !== undefined && DECIMAL.test(text) ? Number(text) : Number.NaN;

/** `2024-11-15 16:57:50` (the Alibaba trace's `gmt_create`, no zone given) read as UTC; NaN otherwise. */
const alibabaTime = (text: string | undefined): number =>
  text !== undefined && /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/.test(text)
    ? Date.parse(`${text.replace(' ', 'T')}Z`) / 1000
    : Number.NaN;

/** A number in [0, 1) derived from a string, the same on every run and machine. */
export const stableUnit = (key: string): number =>
  createHash('sha256').update(key).digest().readUInt32BE(0) / 2 ** 32;

/** Positive image sizes (bytes) from the Docker Hub sample, ascending. Zero-size rows are dropped. */
export const loadImageSizes = (file = resolve(dataDir(), IMAGE_SIZES_FILE)): number[] => {
  const [header = [], ...rows] = parseCsv(readFileSync(file, 'utf8'));
  const sizeColumn = columns(header, ['size'], file).get('size') ?? -1;
  return rows
    .map((row) => sizeCell(row[sizeColumn]))
    .filter((size): size is number => size !== undefined)
    .sort((a, b) => a - b);
};

/** A realistic size for an image id: one entry of `sizes` picked by a hash of the id. */
export const sampledSize = (image: string, sizes: readonly number[]): number => {
  const size = sizes[Math.floor(stableUnit(`size:${image}`) * sizes.length)];
  if (size === undefined) throw new Error('no image sizes to sample from');
  return size;
};

/** The measured base-model load latencies, milliseconds, ascending. */
export const loadLoadLatenciesMs = (file = resolve(dataDir(), LOAD_LATENCY_FILE)): number[] => {
  const [header = [], ...rows] = parseCsv(readFileSync(file, 'utf8'));
  const valueColumn = columns(header, ['value'], file).get('value') ?? -1;
  return rows
    .map((row) => Number(row[valueColumn]))
    .filter((value) => Number.isFinite(value) && value >= 0)
    .sort((a, b) => a - b);
};

interface RawRequest {
  readonly absoluteS: number;
  readonly image: string;
  readonly sizeBytes: number | undefined;
  readonly tenant?: string;
  readonly instanceType?: string;
  readonly platform?: Platform;
  readonly order: number;
}

export interface LoadTraceOptions {
  /** Sizes to sample from when the trace has none; default: the Docker Hub sample. */
  readonly imageSizes?: readonly number[];
  /** What reports call the trace; default `traceLabel(path)`. */
  readonly name?: string;
}

const ALIBABA_COLUMNS = ['gmt_create', 'checkpoint_model_version_id', 'groupId'];
const GENERIC_COLUMNS = ['timestamp_s', 'image'];

/** The row as a reader sees it in the file: the header is row 1. */
const fileRow = (order: number): number => order + 2;

/** Which format a header is, refusing one that has both (which columns win would be a guess). */
const formatOf = (names: readonly string[], path: string): 'alibaba' | 'generic' => {
  const seen = new Set<string>();
  // Unnamed columns are never read, so several of them (trailing commas) are harmless.
  for (const name of names.filter((candidate) => candidate !== '')) {
    if (seen.has(name)) throw new Error(`${path}: column ${name} appears twice in the header`);
    seen.add(name);
  }
  const alibaba = ALIBABA_COLUMNS.slice(0, 2).every((name) => seen.has(name));
  const generic = GENERIC_COLUMNS.filter((name) => seen.has(name));
  if (alibaba && generic.length > 0) {
    throw new Error(
      `${path}: the header has both the Alibaba columns (gmt_create, checkpoint_model_version_id) and ` +
        `generic ones (${generic.join(', ')}); keep one set so it is clear which columns are read`,
    );
  }
  return alibaba ? 'alibaba' : 'generic';
};

/** A positive whole number of bytes, or an error naming the row and column. */
const traceSize = (text: string, order: number, path: string): number => {
  const value = /^\d+$/.test(text) ? Number(text) : 0;
  if (!(value > 0 && Number.isSafeInteger(value))) {
    throw new Error(
      `${path}: row ${fileRow(order)}, column size_bytes: '${text}' is not a positive whole number of bytes`,
    );
  }
  return value;
};

const tracePlatform = (text: string, order: number, path: string): Platform => {
  const platform = PLATFORMS.find((candidate) => candidate === text);
  if (platform === undefined) {
    throw new Error(
      `${path}: row ${fileRow(order)}, column platform: '${text}' is not one of ${PLATFORMS.join(', ')}`,
    );
  }
  return platform;
};

/** Loads a trace (default: the Alibaba trace in the shared data directory). */
export const loadTrace = (
  path = resolve(dataDir(), DEFAULT_TRACE_FILE),
  options: LoadTraceOptions = {},
): Trace => {
  const [header = [], ...rows] = parseCsv(readFileSync(path, 'utf8'));
  const repairs = new Map<string, number>();
  const count = (reason: string): void => {
    repairs.set(reason, (repairs.get(reason) ?? 0) + 1);
  };
  for (const name of header) if (name.trim() !== name) count(REPAIR.whitespaceTrimmed);
  const format = formatOf(
    header.map((name) => name.trim()),
    path,
  );
  const col = columns(header, format === 'alibaba' ? ALIBABA_COLUMNS : GENERIC_COLUMNS, path);
  /** A cell's text without surrounding spaces (counted), or undefined when absent or blank. */
  const cell = (row: readonly string[], name: string): string | undefined => {
    const index = col.get(name);
    const text = index === undefined ? undefined : row[index];
    const trimmed = text?.trim();
    if (!trimmed) return undefined;
    if (trimmed !== text) count(REPAIR.whitespaceTrimmed);
    return trimmed;
  };
  const names =
    format === 'alibaba'
      ? { time: 'gmt_create', image: 'checkpoint_model_version_id', tenant: 'groupId' }
      : { time: 'timestamp_s', image: 'image', tenant: 'tenant' };
  const raw: RawRequest[] = [];
  const platformRow = new Map<string, { readonly platform: Platform; readonly order: number }>();
  rows.forEach((row, order) => {
    const image = cell(row, names.image);
    const timeText = cell(row, names.time);
    const absoluteS = format === 'alibaba' ? alibabaTime(timeText) : genericTime(timeText);
    if (image === undefined || !Number.isFinite(absoluteS)) {
      count(image === undefined ? REPAIR.noImage : REPAIR.badTime);
      return;
    }
    const tenant = cell(row, names.tenant);
    const sizeText = cell(row, 'size_bytes');
    const instanceType = cell(row, 'instance_type');
    const platformText = cell(row, 'platform');
    const platform = platformText === undefined ? undefined : tracePlatform(platformText, order, path);
    if (platform !== undefined) {
      const first = platformRow.get(image);
      if (first === undefined) platformRow.set(image, { platform, order });
      else if (first.platform !== platform) {
        throw new Error(
          `${path}: row ${fileRow(order)}, column platform: image ${image} is ${platform} here but ` +
            `${first.platform} on row ${fileRow(first.order)}`,
        );
      }
    }
    raw.push({
      absoluteS,
      image,
      sizeBytes: sizeText === undefined ? undefined : traceSize(sizeText, order, path),
      ...(tenant === undefined ? {} : { tenant }),
      ...(instanceType === undefined ? {} : { instanceType }),
      ...(platform === undefined ? {} : { platform }),
      order,
    });
  });
  if (raw.length === 0) throw new Error(`${path}: no usable requests`);
  raw.sort((a, b) => a.absoluteS - b.absoluteS || a.order - b.order);
  const needsSample = raw.some((request) => request.sizeBytes === undefined);
  const sizes = needsSample ? (options.imageSizes ?? loadImageSizes()) : [];
  // One size per image: the first size the trace gives for it (later different ones counted),
  // else a deterministic sample.
  const sizeOf = new Map<string, number>();
  for (const request of raw) {
    if (request.sizeBytes === undefined) continue;
    const first = sizeOf.get(request.image);
    if (first === undefined) sizeOf.set(request.image, request.sizeBytes);
    else if (first !== request.sizeBytes) count(REPAIR.conflictingSize);
  }
  const originS = raw[0]?.absoluteS ?? 0;
  const requests = raw.map((request): TraceRequest => {
    let sizeBytes = sizeOf.get(request.image);
    if (sizeBytes === undefined) {
      sizeBytes = sampledSize(request.image, sizes);
      sizeOf.set(request.image, sizeBytes);
      count(REPAIR.sampledSize);
    }
    return {
      timeS: request.absoluteS - originS,
      image: request.image,
      sizeBytes,
      ...(request.tenant === undefined ? {} : { tenant: request.tenant }),
      ...(request.instanceType === undefined ? {} : { instanceType: request.instanceType }),
      ...(request.platform === undefined ? {} : { platform: request.platform }),
    };
  });
  const fromTrace = raw.filter((request) => request.sizeBytes !== undefined).length;
  return {
    name: options.name ?? traceLabel(path),
    path,
    format,
    requests,
    originS,
    skippedRows: SKIP_REASONS.reduce((sum, reason) => sum + (repairs.get(reason) ?? 0), 0),
    repairs: Object.fromEntries(repairs),
    sizeSource: fromTrace === raw.length ? 'trace' : fromTrace === 0 ? 'sampled' : 'mixed',
  };
};

/** One CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180). */
const csvField = (text: string): string => (/[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text);

/**
 * A trace in the generic CSV format `loadTrace` reads back to the same requests: `timestamp_s`
 * (seconds from the first request), `image`, `size_bytes`, and `tenant`, `instance_type`,
 * `platform` when any request has one.
 */
export const formatTraceCsv = (trace: Trace): string => {
  const optional = (['tenant', 'instanceType', 'platform'] as const).filter((key) =>
    trace.requests.some((request) => request[key] !== undefined),
  );
  const header = [
    'timestamp_s',
    'image',
    'size_bytes',
    ...optional.map((key) => (key === 'instanceType' ? 'instance_type' : key)),
  ];
  const lines = trace.requests.map((request) =>
    [
      String(request.timeS),
      request.image,
      String(request.sizeBytes),
      ...optional.map((key) => request[key] ?? ''),
    ]
      .map(csvField)
      .join(','),
  );
  return `${[header.join(','), ...lines].join('\n')}\n`;
};
