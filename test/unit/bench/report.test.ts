import { describe, expect, it } from 'vitest';
import { formatReport, formatTable, median, percentile } from '../../../bench/report';

describe('percentile', () => {
  it('uses the nearest rank and does not reorder its input', () => {
    const values = [5, 1, 4, 2, 3];

    expect(percentile(values, 50)).toBe(3);
    expect(percentile(values, 95)).toBe(5);
    expect(percentile(values, 0)).toBe(1);
    expect(percentile(values, 100)).toBe(5);
    expect(values).toEqual([5, 1, 4, 2, 3]);
  });

  it('takes the lower middle for an even count and is NaN for no values', () => {
    expect(median([4, 1, 3, 2])).toBe(2);
    expect(percentile([], 50)).toBeNaN();
  });
});

describe('formatTable', () => {
  it('prints one row per policy and one column per metric', () => {
    const table = formatTable({
      scenario: 'cache',
      trace: 't.csv',
      policies: { lru: { warm_ratio: 0.5, cold_starts: 1200 }, oracle: { warm_ratio: 0.99 } },
    });

    expect(table.split('\n')).toEqual([
      'policy  warm_ratio  cold_starts',
      '------  ----------  -----------',
      'lru          0.500        1,200',
      'oracle       0.990             ',
    ]);
  });

  it('puts parameters and notes around the table', () => {
    const report = formatReport({
      scenario: 'lambda',
      trace: null,
      policies: { baseline: { bundle_bytes: 10 } },
      parameters: { runs: 10 },
      notes: ['measured'],
    });

    expect(report).toContain('scenario lambda\nparameters: runs=10');
    expect(report).toContain('note: measured');
  });
});
