import { describe, expect, it } from 'vitest';
import {
  type BenchArgs,
  BenchUsageError,
  bytesFlag,
  type FlagSpec,
  numberFlag,
  parseArgs,
  parseBytes,
  switchFlag,
} from '../../../bench/args';

const HOSTS: FlagSpec = { name: 'hosts', description: 'hosts', default: '8' };
const BUDGET: FlagSpec = { name: 'cache-bytes', description: 'budget', default: '1GiB' };
const DESCRIBE: FlagSpec = { name: 'describe', description: 'describe', default: 'false', switch: true };
const flagsOf = (scenario: string): readonly FlagSpec[] =>
  scenario === 'cache' ? [HOSTS, BUDGET, DESCRIBE] : [];
const parse = (...argv: string[]): BenchArgs => parseArgs(argv, ['lambda', 'cache'], flagsOf);

describe('parseArgs', () => {
  it('reads the scenario, the common flags and the scenario flags in both spellings', () => {
    const args = parse('cache', '--trace', 'my trace.csv', '--json=out/cache.json', '--hosts', '4');

    expect(args.scenario).toBe('cache');
    expect(args.trace).toBe('my trace.csv');
    expect(args.json).toBe('out/cache.json');
    expect([...args.flags]).toEqual([['hosts', '4']]);
  });

  it('leaves trace and json absent when not given', () => {
    const args = parse('lambda');

    expect(args).toEqual({ scenario: 'lambda', flags: new Map() });
  });

  it('names the valid scenarios when the scenario is unknown or missing', () => {
    expect(() => parse('pools')).toThrow("unknown scenario 'pools'; valid scenarios: lambda, cache");
    expect(() => parse('--json', 'x')).toThrow('missing scenario; valid scenarios: lambda, cache');
    expect(() => parse()).toThrow(BenchUsageError);
  });

  it('names the valid flags of the scenario when a flag is unknown', () => {
    expect(() => parse('cache', '--host', '4')).toThrow(
      "unknown flag --host for scenario 'cache'; valid flags: --trace, --json, --hosts, --cache-bytes, --describe",
    );
    expect(() => parse('lambda', '--hosts', '4')).toThrow('valid flags: --trace, --json');
  });

  it('rejects a flag without value, a repeated flag and a stray argument', () => {
    expect(() => parse('cache', '--hosts')).toThrow('flag --hosts needs a value');
    expect(() => parse('cache', '--hosts', '--json', 'x')).toThrow('flag --hosts needs a value');
    expect(() => parse('cache', '--hosts', '1', '--hosts', '2')).toThrow('flag --hosts given twice');
    expect(() => parse('cache', 'extra')).toThrow("unexpected argument 'extra'");
  });
});

describe('flag readers', () => {
  it('apply the default when the flag is absent and validate numbers', () => {
    expect(numberFlag(parse('cache'), HOSTS)).toBe(8);
    expect(numberFlag(parse('cache', '--hosts', '3'), HOSTS, { min: 1, integer: true })).toBe(3);
    expect(() => numberFlag(parse('cache', '--hosts', 'many'), HOSTS)).toThrow(
      "--hosts must be a number, got 'many'",
    );
    expect(() => numberFlag(parse('cache', '--hosts', '1.5'), HOSTS, { integer: true })).toThrow(
      'must be an integer',
    );
    expect(() => numberFlag(parse('cache', '--hosts', '0'), HOSTS, { min: 1 })).toThrow('must be at least 1');
  });

  it('read byte sizes with binary and decimal units', () => {
    expect(parseBytes('2GiB')).toBe(2 * 2 ** 30);
    expect(parseBytes('500MB')).toBe(500_000_000);
    expect(parseBytes('1.5e9')).toBe(1_500_000_000);
    expect(parseBytes('1024')).toBe(1024);
    expect(bytesFlag(parse('cache'), BUDGET)).toBe(2 ** 30);
    expect(() => bytesFlag(parse('cache', '--cache-bytes', 'lots'), BUDGET)).toThrow(
      '--cache-bytes: not a byte size',
    );
  });

  it('read a switch given alone (not taking the next argument), as =true|false, or absent', () => {
    const alone = parse('cache', '--describe', '--hosts', '3');

    expect(switchFlag(alone, DESCRIBE)).toBe(true);
    expect(numberFlag(alone, HOSTS)).toBe(3);
    expect(switchFlag(parse('cache', '--describe=false'), DESCRIBE)).toBe(false);
    expect(switchFlag(parse('cache'), DESCRIBE)).toBe(false);
    expect(() => switchFlag(parse('cache', '--describe=yes'), DESCRIBE)).toThrow(
      "--describe is a switch: give it alone or as --describe=true|false, got 'yes'",
    );
  });
});
