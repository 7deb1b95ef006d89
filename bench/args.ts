/**
 * Command-line parsing for `npm run bench -- <scenario> [--trace FILE] [--json FILE] [flags]`.
 * Pure: takes argv, returns the parsed arguments or throws a `BenchUsageError` whose message
 * says what was wrong and what is valid.
 */

export class BenchUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BenchUsageError';
  }
}

/** A flag a scenario accepts beyond the common `--trace` and `--json`. */
export interface FlagSpec {
  readonly name: string;
  readonly description: string;
  /** Shown in the help; the scenario applies it when the flag is absent. */
  readonly default: string;
  /** A switch: `--name` alone means `true` (the next argument is not its value); `--name=false` is allowed. */
  readonly switch?: boolean;
}

export interface BenchArgs {
  readonly scenario: string;
  /** Trace CSV; absent means the scenario's default (the Alibaba trace for trace-driven ones). */
  readonly trace?: string;
  /** Where to write the result JSON; absent means stdout only. */
  readonly json?: string;
  /** Scenario flags by name (without the leading dashes), already checked against the scenario's specs. */
  readonly flags: ReadonlyMap<string, string>;
}

const COMMON_FLAGS = ['trace', 'json'] as const;

/**
 * Splits argv into the scenario name and `--name value` / `--name=value` pairs (a switch needs
 * no value). Flags are checked against `allowedFlags(scenario)` so a typo fails loudly instead of
 * silently using a default.
 */
export const parseArgs = (
  argv: readonly string[],
  validScenarios: readonly string[],
  allowedFlags: (scenario: string) => readonly FlagSpec[],
): BenchArgs => {
  const [scenario, ...rest] = argv;
  if (scenario === undefined || scenario.startsWith('-')) {
    throw new BenchUsageError(`missing scenario; valid scenarios: ${validScenarios.join(', ')}`);
  }
  if (!validScenarios.includes(scenario)) {
    throw new BenchUsageError(
      `unknown scenario '${scenario}'; valid scenarios: ${validScenarios.join(', ')}`,
    );
  }
  const specs = allowedFlags(scenario);
  const valid = [...COMMON_FLAGS, ...specs.map((spec) => spec.name)];
  const values = new Map<string, string>();
  for (let i = 0; i < rest.length; i++) {
    const token = rest[i] ?? '';
    if (!token.startsWith('--') || token.length <= 2) {
      throw new BenchUsageError(`unexpected argument '${token}'; flags are --name value`);
    }
    const body = token.slice(2);
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    let value: string | undefined;
    if (eq >= 0) {
      value = body.slice(eq + 1);
    } else if (specs.some((spec) => spec.name === name && spec.switch)) {
      value = 'true';
    } else {
      value = rest[i + 1];
      i++;
    }
    if (!valid.includes(name)) {
      throw new BenchUsageError(
        `unknown flag --${name} for scenario '${scenario}'; valid flags: ${valid.map((f) => `--${f}`).join(', ')}`,
      );
    }
    if (value === undefined || value === '' || value.startsWith('--')) {
      throw new BenchUsageError(`flag --${name} needs a value`);
    }
    if (values.has(name)) throw new BenchUsageError(`flag --${name} given twice`);
    values.set(name, value);
  }
  const { trace, json } = { trace: values.get('trace'), json: values.get('json') };
  values.delete('trace');
  values.delete('json');
  return {
    scenario,
    ...(trace === undefined ? {} : { trace }),
    ...(json === undefined ? {} : { json }),
    flags: values,
  };
};

/** A scenario flag's text as given, or its spec's default when the flag is absent. */
export const flagText = (args: BenchArgs, spec: FlagSpec): string =>
  args.flags.get(spec.name) ?? spec.default;

/** Reads a switch (`FlagSpec.switch`): absent → its default; `--name` → true; `--name=true|false`. */
export const switchFlag = (args: BenchArgs, spec: FlagSpec): boolean => {
  const text = flagText(args, spec);
  if (text !== 'true' && text !== 'false') {
    throw new BenchUsageError(
      `--${spec.name} is a switch: give it alone or as --${spec.name}=true|false, got '${text}'`,
    );
  }
  return text === 'true';
};

/** Reads a numeric scenario flag, or its spec's default; rejects non-numbers and out-of-range values. */
export const numberFlag = (
  args: BenchArgs,
  spec: FlagSpec,
  range: { readonly min?: number; readonly integer?: boolean } = {},
): number => {
  const text = flagText(args, spec);
  const value = Number(text);
  if (!Number.isFinite(value) || text.trim() === '') {
    throw new BenchUsageError(`--${spec.name} must be a number, got '${text}'`);
  }
  if (range.integer && !Number.isInteger(value)) {
    throw new BenchUsageError(`--${spec.name} must be an integer, got '${text}'`);
  }
  if (range.min !== undefined && value < range.min) {
    throw new BenchUsageError(`--${spec.name} must be at least ${range.min}, got '${text}'`);
  }
  return value;
};

/** Parses sizes such as `2GiB`, `500MB`, `1.5e9`; binary (KiB, MiB, GiB) and decimal (KB, MB, GB) units. */
export const parseBytes = (text: string): number => {
  const match = /^\s*([0-9]+(?:\.[0-9]+)?(?:e[0-9]+)?)\s*([KMGT]i?B|B)?\s*$/i.exec(text);
  if (!match) throw new BenchUsageError(`not a byte size: '${text}' (e.g. 2GiB, 500MB, 1e9)`);
  const units: Record<string, number> = {
    b: 1,
    kb: 1e3,
    mb: 1e6,
    gb: 1e9,
    tb: 1e12,
    kib: 2 ** 10,
    mib: 2 ** 20,
    gib: 2 ** 30,
    tib: 2 ** 40,
  };
  const unit = (match[2] ?? 'b').toLowerCase();
  return Math.round(Number(match[1]) * (units[unit] ?? 1));
};

/** Reads a byte-size scenario flag (see `parseBytes`). */
export const bytesFlag = (args: BenchArgs, spec: FlagSpec): number => {
  const text = flagText(args, spec);
  try {
    return parseBytes(text);
  } catch (error) {
    throw new BenchUsageError(`--${spec.name}: ${(error as Error).message}`);
  }
};
