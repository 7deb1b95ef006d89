import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Trace loading for trace-driven benchmarks. Two formats (see data/README.md):
 * - the Alibaba GenAI request trace (`gmt_create`, `checkpoint_model_version_id`, `groupId`);
 * - the generic benchmark format: a header with at least `timestamp_s,image`, optionally
 *   `size_bytes`, `tenant`, `instance_type`.
 * Image ids are opaque strings: they are never validated as container references here.
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

export interface TraceRequest {
  /** Seconds since the trace's first request (so day boundaries are trace-relative). */
  readonly timeS: number;
  readonly image: string;
  readonly sizeBytes: number;
  readonly tenant?: string;
  readonly instanceType?: string;
}

export interface Trace {
  /** The file replayed. */
  readonly path: string;
  readonly format: 'alibaba' | 'generic';
  /** Requests ordered by time (stable for equal times: file order). */
  readonly requests: readonly TraceRequest[];
  /** Absolute time of the first request, seconds (epoch for Alibaba; the file's origin for generic). */
  readonly originS: number;
  /** Rows dropped because they had no image or no usable time. */
  readonly skippedRows: number;
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
        'checkpoint_model_version_id, groupId) or a header with timestamp_s,image[,size_bytes,tenant,instance_type]',
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

/** `2024-11-15 16:57:50` (the Alibaba trace's `gmt_create`, no zone given) read as UTC. */
const alibabaTime = (text: string): number => Date.parse(`${text.trim().replace(' ', 'T')}Z`) / 1000;

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
  readonly order: number;
}

export interface LoadTraceOptions {
  /** Sizes to sample from when the trace has none; default: the Docker Hub sample. */
  readonly imageSizes?: readonly number[];
}

/** Loads a trace (default: the Alibaba trace in the shared data directory). */
export const loadTrace = (
  path = resolve(dataDir(), DEFAULT_TRACE_FILE),
  options: LoadTraceOptions = {},
): Trace => {
  const [header = [], ...rows] = parseCsv(readFileSync(path, 'utf8'));
  const names = new Set(header.map((name) => name.trim()));
  const format = names.has('gmt_create') && names.has('checkpoint_model_version_id') ? 'alibaba' : 'generic';
  const raw: RawRequest[] = [];
  let skippedRows = 0;
  if (format === 'alibaba') {
    const col = columns(header, ['gmt_create', 'checkpoint_model_version_id', 'groupId'], path);
    const [time, image, tenant] = ['gmt_create', 'checkpoint_model_version_id', 'groupId'].map(
      (n) => col.get(n) ?? -1,
    );
    rows.forEach((row, order) => {
      const absoluteS = alibabaTime(row[time ?? -1] ?? '');
      const id = row[image ?? -1]?.trim() ?? '';
      if (!Number.isFinite(absoluteS) || id === '') {
        skippedRows++;
        return;
      }
      const group = row[tenant ?? -1]?.trim();
      raw.push({ absoluteS, image: id, sizeBytes: undefined, ...(group ? { tenant: group } : {}), order });
    });
  } else {
    const col = columns(header, ['timestamp_s', 'image'], path);
    const cell = (row: readonly string[], name: string): string | undefined => {
      const index = col.get(name);
      const value = index === undefined ? undefined : row[index]?.trim();
      return value === '' ? undefined : value;
    };
    rows.forEach((row, order) => {
      const time = cell(row, 'timestamp_s');
      const absoluteS = time === undefined ? Number.NaN : Number(time);
      const id = cell(row, 'image');
      if (!Number.isFinite(absoluteS) || id === undefined) {
        skippedRows++;
        return;
      }
      const tenant = cell(row, 'tenant');
      const instanceType = cell(row, 'instance_type');
      raw.push({
        absoluteS,
        image: id,
        sizeBytes: sizeCell(cell(row, 'size_bytes')),
        ...(tenant ? { tenant } : {}),
        ...(instanceType ? { instanceType } : {}),
        order,
      });
    });
  }
  if (raw.length === 0) throw new Error(`${path}: no usable requests`);
  raw.sort((a, b) => a.absoluteS - b.absoluteS || a.order - b.order);
  const needsSample = raw.some((request) => request.sizeBytes === undefined);
  const sizes = needsSample ? (options.imageSizes ?? loadImageSizes()) : [];
  // One size per image: the first size the trace gives for it, else a deterministic sample.
  const sizeOf = new Map<string, number>();
  for (const request of raw) {
    if (request.sizeBytes !== undefined && !sizeOf.has(request.image))
      sizeOf.set(request.image, request.sizeBytes);
  }
  const originS = raw[0]?.absoluteS ?? 0;
  const requests = raw.map((request): TraceRequest => {
    let sizeBytes = sizeOf.get(request.image);
    if (sizeBytes === undefined) {
      sizeBytes = sampledSize(request.image, sizes);
      sizeOf.set(request.image, sizeBytes);
    }
    return {
      timeS: request.absoluteS - originS,
      image: request.image,
      sizeBytes,
      ...(request.tenant === undefined ? {} : { tenant: request.tenant }),
      ...(request.instanceType === undefined ? {} : { instanceType: request.instanceType }),
    };
  });
  const fromTrace = raw.filter((request) => request.sizeBytes !== undefined).length;
  return {
    path,
    format,
    requests,
    originS,
    skippedRows,
    sizeSource: fromTrace === raw.length ? 'trace' : fromTrace === 0 ? 'sampled' : 'mixed',
  };
};
