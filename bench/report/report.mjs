// bench/report: every benchmark writes bench/results/<date>-<scenario>.json (the raw figures),
// <date>-<scenario>.md (a readable report) and, when it has one, <date>-<scenario>.svg (a chart
// the report embeds). README links the latest of each.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

export const root = resolve(dirname(new URL(import.meta.url).pathname), '../..');
const resultsDir = join(root, 'bench/results');

/** Writes the scenario's JSON, Markdown and SVG; returns the paths. */
export function writeReport(scenario, { data, markdown, svg }) {
  mkdirSync(resultsDir, { recursive: true });
  const date = new Date().toISOString().slice(0, 10);
  const base = join(resultsDir, `${date}-${scenario}`);
  writeFileSync(`${base}.json`, `${JSON.stringify({ scenario, date: new Date().toISOString(), node: process.version, ...data }, null, 2)}\n`);
  let md = markdown;
  if (svg) {
    writeFileSync(`${base}.svg`, svg);
    md = md.replace('{{chart}}', `![${scenario}](${date}-${scenario}.svg)`);
  }
  writeFileSync(`${base}.md`, md.endsWith('\n') ? md : `${md}\n`);
  return { json: `${base}.json`, md: `${base}.md`, ...(svg ? { svg: `${base}.svg` } : {}) };
}

export function median(xs) {
  return percentile(xs, 50);
}

export function percentile(xs, p) {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i];
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

/**
 * A small line chart as SVG: `series` = [{ name, points: [[x, y], …], dashed? }], one y axis
 * (linear), x linear. Good enough to see rates against failures or latency.
 */
export function lineChart({ title, xLabel, yLabel, series, width = 720, height = 360 }) {
  const pad = { l: 64, r: 180, t: 36, b: 48 };
  const all = series.flatMap((s) => s.points);
  const xMax = Math.max(1, ...all.map(([x]) => x));
  const yMax = Math.max(1, ...all.map(([, y]) => y)) * 1.1;
  const W = width - pad.l - pad.r;
  const H = height - pad.t - pad.b;
  const X = (x) => pad.l + (x / xMax) * W;
  const Y = (y) => pad.t + H - (y / yMax) * H;
  const ticks = (max) => Array.from({ length: 6 }, (_, i) => (max * i) / 5);
  const fmt = (v) => (v >= 100 ? Math.round(v).toString() : v.toFixed(1));
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${pad.l}" y="20" font-size="14" font-weight="bold">${title}</text>`,
    `<line x1="${pad.l}" y1="${pad.t + H}" x2="${pad.l + W}" y2="${pad.t + H}" stroke="black"/>`,
    `<line x1="${pad.l}" y1="${pad.t}" x2="${pad.l}" y2="${pad.t + H}" stroke="black"/>`,
    ...ticks(xMax).map((v) => `<text x="${X(v)}" y="${pad.t + H + 16}" text-anchor="middle">${fmt(v)}</text>`),
    ...ticks(yMax).map((v) => `<text x="${pad.l - 6}" y="${Y(v) + 4}" text-anchor="end">${fmt(v)}</text><line x1="${pad.l}" y1="${Y(v)}" x2="${pad.l + W}" y2="${Y(v)}" stroke="#eee"/>`),
    `<text x="${pad.l + W / 2}" y="${height - 10}" text-anchor="middle">${xLabel}</text>`,
    `<text transform="translate(16 ${pad.t + H / 2}) rotate(-90)" text-anchor="middle">${yLabel}</text>`,
  ];
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = s.points.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(' ');
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" ${s.dashed ? 'stroke-dasharray="6 4"' : ''} points="${pts}"/>`);
    for (const [x, y] of s.points) parts.push(`<circle cx="${X(x).toFixed(1)}" cy="${Y(y).toFixed(1)}" r="3" fill="${color}"/>`);
    parts.push(`<line x1="${pad.l + W + 12}" y1="${pad.t + 10 + i * 18}" x2="${pad.l + W + 32}" y2="${pad.t + 10 + i * 18}" stroke="${color}" stroke-width="2" ${s.dashed ? 'stroke-dasharray="6 4"' : ''}/>`);
    parts.push(`<text x="${pad.l + W + 38}" y="${pad.t + 14 + i * 18}">${s.name}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
