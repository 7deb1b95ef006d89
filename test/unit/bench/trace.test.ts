import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseArgs } from '../../../bench/args';
import type { BenchResult } from '../../../bench/report';
import { traceScenario } from '../../../bench/trace';
import { generateTrace } from '../../../bench/trace-gen';
import { PRESETS } from '../../../bench/traces';
import { loadTrace } from '../../../local/trace';

const dir = mkdtempSync(join(tmpdir(), 'warmboot-trace-scenario-'));
const run = (...argv: string[]): Promise<BenchResult> =>
  traceScenario.run(parseArgs(['trace', ...argv], ['trace'], () => traceScenario.flags));
const SMALL = ['--days', '2', '--launches-per-day', '300', '--initial-images', '60'];

describe('bench trace scenario', () => {
  it('--out writes the generated trace as a CSV the loader reads back to the same requests', async () => {
    const out = join(dir, 'nested', 'small.csv');

    const result = await run('--preset', 'zipf-churn', ...SMALL, '--seed', '3', '--out', out);

    const preset = PRESETS['zipf-churn'];
    if (!preset) throw new Error('zipf-churn preset expected');
    const expected = generateTrace({
      ...preset,
      seed: 3,
      days: 2,
      launchesPerDay: 300,
      initialImages: 60,
      name: 'x',
    });
    const loaded = loadTrace(out);
    expect(loaded.requests).toEqual(expected.requests);
    expect(loaded.repairs).toEqual({});
    expect(result.trace).toBe('zipf-churn-seed3(days=2,launches-per-day=300,initial-images=60)');
    expect(result.parameters).toMatchObject({ preset: 'zipf-churn', seed: 3, days: 2, zipfExponent: 1.3 });
    expect(result.policies[result.trace ?? '']).toMatchObject({ launches: 600, days: expect.any(Number) });
  });

  it('--describe of a generated trace shows a knob moving its measure', async () => {
    const share = async (exponent: string) => {
      const result = await run('--describe', ...SMALL, '--zipf-exponent', exponent);
      return Object.values(result.policies)[0]?.top10_share ?? Number.NaN;
    };

    expect(await share('1.5')).toBeGreaterThan((await share('0.5')) + 0.2);
  });

  it('--describe --traces lists each trace with its measures and repairs', async () => {
    const result = await run('--describe', '--traces', 'alibaba');

    expect(result.trace).toBe('alibaba');
    expect(result.policies.alibaba).toMatchObject({
      launches: 26_798,
      images: 86,
      windows_image_share: Number.NaN,
    });
    expect(result.notes?.[0]).toBe(
      'alibaba (alibaba, data/alibaba-genai-requests.csv) repairs: no image 25, images with sampled size 86',
    );
  });

  it('says what is missing or contradictory, naming the flag', async () => {
    await expect(run()).rejects.toThrow('trace needs --out FILE (write a generated trace) or --describe');
    await expect(run('--traces', 'alibaba', '--out', join(dir, 'x.csv'))).rejects.toThrow(
      '--traces/--trace only go with --describe',
    );
    await expect(run('--describe', '--preset', 'zipf')).rejects.toThrow(
      "--preset must be one of zipf-churn, long-tail, got 'zipf'",
    );
    await expect(run('--describe', '--windows-share', '2')).rejects.toThrow(
      'trace generator: --windows-share must be in [0, 1], got 2',
    );
  });
});
