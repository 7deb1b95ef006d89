/**
 * The sandbox's HTML report: one self-contained file (no network, no libraries) whose charts
 * are drawn as SVG by a small inline script from the JSON embedded in the page. Drawing in the
 * browser (instead of pre-rendering SVG here) is what lets the test prove, in headless
 * Chromium, that the page really renders charts with data.
 */

export interface LineChart {
  readonly kind: 'line';
  readonly id: string;
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly {
    readonly name: string;
    readonly points: readonly (readonly [number, number])[];
  }[];
}

export interface HistogramChart {
  readonly kind: 'histogram';
  readonly id: string;
  readonly title: string;
  readonly xLabel: string;
  readonly bins?: number;
  /** Bin on a log10 scale: for times that span seconds to many minutes. */
  readonly logScale?: boolean;
  readonly series: readonly { readonly name: string; readonly values: readonly number[] }[];
}

export type Chart = LineChart | HistogramChart;

export interface ReportTable {
  readonly title: string;
  readonly columns: readonly string[];
  readonly rows: readonly (readonly (string | number)[])[];
}

export interface SandboxReport {
  readonly title: string;
  readonly subtitle: string;
  readonly charts: readonly Chart[];
  readonly tables: readonly ReportTable[];
}

const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);

/** JSON inside a <script> element must not be able to close it. */
const embedJson = (value: unknown): string => JSON.stringify(value).replace(/</g, '\\u003c');

const renderTable = (table: ReportTable): string => {
  const head = table.columns.map((column) => `<th>${escapeHtml(column)}</th>`).join('');
  const rows = table.rows
    .map((row) => `<tr>${row.map((cell) => `<td>${escapeHtml(String(cell))}</td>`).join('')}</tr>`)
    .join('\n');
  return `<section><h2>${escapeHtml(table.title)}</h2><table><thead><tr>${head}</tr></thead><tbody>${rows}</tbody></table></section>`;
};

/** Draws every chart into its <figure>; kept as plain browser JavaScript. */
const CHART_SCRIPT = `
(() => {
  const SVG = 'http://www.w3.org/2000/svg';
  const W = 720, H = 300, M = { l: 60, r: 150, t: 16, b: 44 };
  const COLORS = ['#1f77b4','#ff7f0e','#2ca02c','#d62728','#9467bd','#8c564b','#e377c2','#7f7f7f','#bcbd22','#17becf'];
  const el = (name, attrs, parent) => {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (parent) parent.appendChild(node);
    return node;
  };
  const text = (parent, x, y, value, anchor = 'middle', extra = {}) => {
    const node = el('text', { x, y, 'text-anchor': anchor, 'font-size': 11, ...extra }, parent);
    node.textContent = value;
    return node;
  };
  const fmt = (v) => Math.abs(v) >= 1000 ? v.toExponential(1) : Number(v.toPrecision(3)).toString();
  const frame = (svg, x0, x1, y0, y1, chart, logX = false) => {
    const sx = (x) => M.l + ((x - x0) / (x1 - x0 || 1)) * (W - M.l - M.r);
    const sy = (y) => H - M.b - ((y - y0) / (y1 - y0 || 1)) * (H - M.t - M.b);
    el('line', { x1: M.l, y1: H - M.b, x2: W - M.r, y2: H - M.b, stroke: '#333' }, svg);
    el('line', { x1: M.l, y1: M.t, x2: M.l, y2: H - M.b, stroke: '#333' }, svg);
    for (let i = 0; i <= 4; i++) {
      const xv = x0 + ((x1 - x0) * i) / 4, yv = y0 + ((y1 - y0) * i) / 4;
      text(svg, sx(xv), H - M.b + 16, fmt(logX ? 10 ** xv : xv));
      text(svg, M.l - 6, sy(yv) + 4, fmt(yv), 'end');
    }
    text(svg, (M.l + W - M.r) / 2, H - 6, chart.xLabel);
    if (chart.yLabel) text(svg, 14, (M.t + H - M.b) / 2, chart.yLabel, 'middle', { transform: 'rotate(-90 14 ' + (M.t + H - M.b) / 2 + ')' });
    return { sx, sy };
  };
  const legend = (svg, names) => names.forEach((name, i) => {
    el('rect', { x: W - M.r + 10, y: M.t + i * 16, width: 10, height: 10, fill: COLORS[i % COLORS.length] }, svg);
    text(svg, W - M.r + 24, M.t + i * 16 + 9, name, 'start');
  });
  const line = (svg, chart) => {
    const all = chart.series.flatMap((s) => s.points);
    if (all.length === 0) return 0;
    const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
    const { sx, sy } = frame(svg, Math.min(...xs), Math.max(...xs), Math.min(0, ...ys), Math.max(...ys), chart);
    chart.series.forEach((s, i) => {
      const d = s.points.map((p, j) => (j ? 'L' : 'M') + sx(p[0]).toFixed(1) + ',' + sy(p[1]).toFixed(1)).join(' ');
      el('path', { d, fill: 'none', stroke: COLORS[i % COLORS.length], 'stroke-width': 1.6, 'data-points': s.points.length, class: 'series' }, svg);
    });
    legend(svg, chart.series.map((s) => s.name));
    return all.length;
  };
  const histogram = (svg, chart) => {
    const scaled = (v) => chart.logScale ? Math.log10(Math.max(v, 1e-3)) : v;
    const series = chart.series.map((s) => ({ ...s, values: s.values.map(scaled) }));
    const all = series.flatMap((s) => s.values);
    if (all.length === 0) return 0;
    const lo = Math.min(...all), hi = Math.max(...all), bins = chart.bins || 20;
    const width = (hi - lo) / bins || 1;
    const counts = series.map((s) => {
      const c = new Array(bins).fill(0);
      for (const v of s.values) c[Math.min(bins - 1, Math.floor((v - lo) / width))]++;
      return c;
    });
    const { sx, sy } = frame(svg, lo, lo + width * bins, 0, Math.max(...counts.flat()), { ...chart, yLabel: 'count' }, chart.logScale);
    const barW = (sx(lo + width) - sx(lo)) / chart.series.length;
    counts.forEach((c, i) => c.forEach((n, b) => {
      if (n === 0) return;
      el('rect', { x: sx(lo + b * width) + i * barW, y: sy(n), width: Math.max(1, barW - 1), height: sy(0) - sy(n), fill: COLORS[i % COLORS.length], class: 'bar', 'data-count': n }, svg);
    }));
    legend(svg, chart.series.map((s) => s.name + ' (n=' + s.values.length + ')'));
    return all.length;
  };
  const report = JSON.parse(document.getElementById('report-data').textContent);
  for (const chart of report.charts) {
    const figure = document.getElementById('chart-' + chart.id);
    const svg = el('svg', { width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': chart.title });
    const drawn = chart.kind === 'line' ? line(svg, chart) : histogram(svg, chart);
    svg.setAttribute('data-drawn', String(drawn));
    if (drawn === 0) text(svg, W / 2, H / 2, 'no data');
    figure.appendChild(svg);
  }
  document.body.setAttribute('data-rendered', 'true');
})();
`;

export const renderReport = (report: SandboxReport): string => {
  const figures = report.charts
    .map(
      (chart) =>
        `<figure id="chart-${escapeHtml(chart.id)}" class="chart"><figcaption>${escapeHtml(chart.title)}</figcaption></figure>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(report.title)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
figure.chart { display: inline-block; margin: 0 1rem 1.5rem 0; }
figcaption { font-weight: 600; margin-bottom: .25rem; }
table { border-collapse: collapse; margin-bottom: 1.5rem; }
th, td { border: 1px solid #ccc; padding: .25rem .6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
</style>
</head>
<body>
<h1>${escapeHtml(report.title)}</h1>
<p>${escapeHtml(report.subtitle)}</p>
${figures}
${report.tables.map(renderTable).join('\n')}
<script id="report-data" type="application/json">${embedJson(report)}</script>
<script>${CHART_SCRIPT}</script>
</body>
</html>
`;
};
