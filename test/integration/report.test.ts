import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderedDom } from '../../local/chromium';
import { renderReport, type SandboxReport } from '../../local/report';

const report: SandboxReport = {
  title: 'warmboot sandbox',
  subtitle: 'virtual fleet <script>alert(1)</script>',
  charts: [
    {
      kind: 'line',
      id: 'warm-ratio',
      title: 'Warm ratio',
      xLabel: 'virtual minutes',
      yLabel: 'ratio',
      series: [
        {
          name: 'gpu-serving',
          points: [
            [0, 0],
            [5, 0.4],
            [10, 0.8],
            [15, 0.9],
          ],
        },
      ],
    },
    {
      kind: 'histogram',
      id: 'ready',
      title: 'Time to ready',
      xLabel: 'seconds',
      series: [
        { name: 'hot', values: [1.9, 2.1, 2.3] },
        { name: 'warm', values: [21.2, 22.5] },
      ],
    },
    { kind: 'line', id: 'empty', title: 'Nothing yet', xLabel: 'x', yLabel: 'y', series: [] },
  ],
  tables: [{ title: 'Summary', columns: ['path', 'count'], rows: [['hot', 3]] }],
};

describe('sandbox HTML report in headless Chromium', () => {
  it('draws every chart from its data and escapes operator-provided text', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'warmboot-report-')), 'report.html');
    writeFileSync(file, renderReport(report));

    const dom = await renderedDom(file);

    expect(dom).toContain('data-rendered="true"');
    expect(dom).toMatch(/id="chart-warm-ratio"[\s\S]*?data-drawn="4"/);
    expect(dom).toMatch(/<path[^>]*data-points="4"/);
    expect(dom).toMatch(/id="chart-ready"[\s\S]*?data-drawn="5"/);
    expect(dom.match(/class="bar"/g)?.length).toBeGreaterThanOrEqual(2);
    expect(dom).toMatch(/id="chart-empty"[\s\S]*?data-drawn="0"/);
    expect(dom).not.toContain('<script>alert(1)</script>');
  });
});
