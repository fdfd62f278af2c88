import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../../src/config/schema.js';
import { SipServer } from '../../../src/server.js';
import { silentLogger } from '../../../src/util/logger.js';

/**
 * docs/grafana/sip-server-dashboard.json must parse, and every PromQL expression in it may use
 * only metric names, labels and label values the server exports. They come from the real
 * server: a SipServer built (never started: nothing listens) with sip-enable-tcp-keep-alive on,
 * so the keep-alive metrics are registered too; its /metrics text gives the names (`# TYPE`
 * lines) and the label values present, its registry each metric's label names.
 * docs/monitoring.md must document every sip_ metric and name no other.
 */

const DASHBOARD = new URL('../../../docs/grafana/sip-server-dashboard.json', import.meta.url);

interface Target {
  refId?: string;
  expr?: string;
  legendFormat?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id?: number;
  type?: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
}
interface Variable {
  name?: string;
  type?: string;
  query?: string | { query?: string };
  definition?: string;
}
interface Dashboard {
  uid?: string;
  title?: string;
  schemaVersion?: number;
  panels?: Panel[];
  templating?: { list?: Variable[] };
}

// ---------------------------------------------------------------- PromQL name extraction

/** PromQL functions, aggregation operators and the `@ start()` / `@ end()` modifiers: the identifiers that may precede `(`. */
const FUNCTIONS = new Set([
  'abs', 'absent', 'absent_over_time', 'acos', 'acosh', 'asin', 'asinh', 'atan', 'atanh', 'avg', 'avg_over_time', 'bottomk',
  'ceil', 'changes', 'clamp', 'clamp_max', 'clamp_min', 'cos', 'cosh', 'count', 'count_over_time', 'count_values',
  'day_of_month', 'day_of_week', 'day_of_year', 'days_in_month', 'deg', 'delta', 'deriv', 'exp', 'floor', 'group',
  'histogram_avg', 'histogram_count', 'histogram_fraction', 'histogram_quantile', 'histogram_stddev', 'histogram_stdvar',
  'histogram_sum', 'holt_winters', 'hour', 'idelta', 'increase', 'irate', 'label_join', 'label_replace', 'last_over_time',
  'limitk', 'limit_ratio', 'ln', 'log10', 'log2', 'mad_over_time', 'max', 'max_over_time', 'min', 'min_over_time', 'minute',
  'month', 'predict_linear', 'present_over_time', 'quantile', 'quantile_over_time', 'rad', 'rate', 'resets', 'round',
  'scalar', 'sgn', 'start', 'end', 'sin', 'sinh', 'sort', 'sort_by_label', 'sort_by_label_desc', 'sort_desc', 'sqrt', 'stddev',
  'stddev_over_time', 'stdvar', 'stdvar_over_time', 'sum', 'sum_over_time', 'tan', 'tanh', 'time', 'timestamp', 'topk',
  'vector', 'year',
]);
/** Keywords and binary operators spelt as words; `inf`/`nan` are number literals. */
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'atan2', 'inf', 'nan']);

interface Extracted {
  /** Identifiers used as metric names (a vector selector's name). */
  metrics: string[];
  /** Identifiers followed by `(` that are no PromQL function: a misspelt function, or a metric written as one. */
  unknownFunctions: string[];
}

/**
 * The metric names an expression selects. Label matchers (`{…}`, strings included), ranges and
 * subqueries (`[…]`), grouping label lists (`by (…)`, `without`, `on`, `ignoring`,
 * `group_left`, `group_right`) and Grafana variables (`$x`, `${x}`, `[[x]]`) are removed
 * first; what is left that is an identifier, not a number or duration, not a keyword and not
 * followed by `(` is a metric name. Names are taken exactly as written: prom-client exports a
 * counter under the name it was given (`…_total` included) and a histogram as `_bucket`,
 * `_sum` and `_count` series, so the check compares series names, with no suffix stripped.
 */
function metricNames(expr: string): Extracted {
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{[^}]*\}|\$\w+/g, ' ');
  const metrics: string[] = [];
  const unknownFunctions: string[] = [];
  for (const m of s.matchAll(/(\d[\w.]*)|([A-Za-z_:][\w:]*)/g)) {
    const word = m[2];
    if (word === undefined) continue; // a number or a duration
    const callsIt = /^\s*\(/.test(s.slice((m.index ?? 0) + word.length));
    if (callsIt) {
      if (!FUNCTIONS.has(word)) unknownFunctions.push(word);
    } else if (!KEYWORDS.has(word.toLowerCase())) {
      metrics.push(word);
    }
  }
  return { metrics, unknownFunctions };
}

/** What a scrape offers: each series name with the labels it may carry and the values seen. */
type Exported = Map<string, { labels: Set<string>; values: Map<string, Set<string>> }>;

/** Labels Prometheus adds to every series it scrapes. */
const TARGET_LABELS = ['instance', 'job'];

/**
 * The series a Prometheus text exposition offers, from its `# TYPE name kind` lines (a
 * histogram or a labelled metric without observations has no sample lines yet): a histogram
 * as name_bucket (with `le`), name_sum and name_count, a summary as name (with `quantile`),
 * name_sum and name_count, every other kind (counter, gauge, untyped) as its name. Each
 * carries the metric's label names (`labelNames`, by metric name) and, from the sample lines,
 * the label values present now (a metric the server pre-sets, like every release cause at 0,
 * shows them all).
 */
function exportedSeries(exposition: string, labelNames: (metric: string) => readonly string[] = () => []): Exported {
  const out: Exported = new Map();
  for (const line of exposition.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type?.[1] && type[2]) {
      const [, name, kind] = type;
      const own = labelNames(name);
      const add = (series: string, extra: string[] = []) => out.set(series, { labels: new Set([...own, ...extra]), values: new Map() });
      if (kind === 'histogram') {
        add(`${name}_bucket`, ['le']);
        add(`${name}_sum`);
        add(`${name}_count`);
      } else if (kind === 'summary') {
        add(name, ['quantile']);
        add(`${name}_sum`);
        add(`${name}_count`);
      } else {
        add(name);
      }
      continue;
    }
    const sample = /^([A-Za-z_:][\w:]*)\{(.*)\} \S+$/.exec(line);
    const series = sample?.[1] ? out.get(sample[1]) : undefined;
    if (!series || sample?.[2] === undefined) continue;
    for (const [, label, value] of sample[2].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      if (label === undefined || value === undefined) continue;
      const seen = series.values.get(label) ?? new Set<string>();
      series.values.set(label, seen.add(value));
    }
  }
  return out;
}

interface Selector {
  metric: string;
  matchers: { label: string; op: string; value: string }[];
}

/** The `metric{…}` selectors of an expression, with their label matchers. */
function selectors(expr: string): Selector[] {
  const out: Selector[] = [];
  for (const [, metric, body] of expr.matchAll(/([A-Za-z_:][\w:]*)\s*\{([^}]*)\}/g)) {
    if (metric === undefined || body === undefined) continue;
    const matchers = [...body.matchAll(/(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g)].map(([, label = '', op = '', value = '']) => ({ label, op, value }));
    out.push({ metric, matchers });
  }
  return out;
}

/** The label names an expression groups or matches by (`by (…)`, `without`, `on`, `ignoring`, `group_left/right`). */
function groupingLabels(expr: string): string[] {
  return [...expr.matchAll(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g)].flatMap(([, list = '']) => list.split(',').map((l) => l.trim()).filter((l) => l !== ''));
}

/** Every panel, rows' nested panels included. */
function allPanels(d: Dashboard): Panel[] {
  const out: Panel[] = [];
  const walk = (ps: Panel[] | undefined) => {
    for (const p of ps ?? []) {
      out.push(p);
      walk(p.panels);
    }
  };
  walk(d.panels);
  return out;
}

/** Every PromQL expression in the dashboard, with its legend: panel targets and query variables. */
function expressions(d: Dashboard): { where: string; expr: string; legend?: string }[] {
  const out: { where: string; expr: string; legend?: string }[] = [];
  for (const p of allPanels(d)) {
    for (const t of p.targets ?? []) {
      if (t.expr === undefined) continue;
      out.push({ where: `panel ${p.id ?? '?'} "${p.title ?? ''}"${t.refId ? ` ${t.refId}` : ''}`, expr: t.expr, ...(t.legendFormat !== undefined ? { legend: t.legendFormat } : {}) });
    }
  }
  for (const v of d.templating?.list ?? []) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : v.query?.query;
    // label_values(metric, label): checked as the selector `metric` grouped by `label`.
    const lv = q ? /^label_values\((.*),\s*(\w+)\s*\)$/.exec(q) : null;
    if (q) out.push({ where: `variable ${v.name ?? '?'}`, expr: lv ? `group by (${lv[2] ?? ''}) (${lv[1] ?? ''})` : q });
  }
  return out;
}

/**
 * One line per problem: a metric name the server does not export, a function PromQL does not
 * have, an expression without a metric; a label (matched, grouped by, or in the legend) that
 * none of the expression's metrics carries; a label value matched with `=` that the server
 * does not show for that metric, where it shows that label's values.
 */
function problems(d: Dashboard, exported: Exported): string[] {
  const out: string[] = [];
  for (const { where, expr, legend } of expressions(d)) {
    const { metrics, unknownFunctions } = metricNames(expr);
    if (metrics.length === 0) out.push(`${where}: no metric name in ${expr}`);
    for (const name of metrics) if (!exported.has(name)) out.push(`${where}: ${name} is not a metric the server exports`);
    for (const f of unknownFunctions) out.push(`${where}: ${f}( is not a PromQL function`);
    const known = new Set([...TARGET_LABELS, ...metrics.flatMap((m) => [...(exported.get(m)?.labels ?? [])])]);
    for (const { metric, matchers } of selectors(expr)) {
      const series = exported.get(metric);
      if (!series) continue;
      for (const { label, op, value } of matchers) {
        if (TARGET_LABELS.includes(label)) continue;
        if (!series.labels.has(label)) out.push(`${where}: ${metric} has no label ${label}`);
        const values = series.values.get(label);
        if (op === '=' && values && !values.has(value)) out.push(`${where}: ${metric}{${label}="${value}"} is not a value the server exports (${[...values].join(', ')})`);
      }
    }
    for (const label of groupingLabels(expr)) if (!known.has(label)) out.push(`${where}: no metric of the expression has the label ${label}`);
    for (const [, label = ''] of (legend ?? '').matchAll(/\{\{\s*(\w+)\s*\}\}/g)) if (!known.has(label)) out.push(`${where}: the legend names ${label}, which no metric of the expression has`);
  }
  return out;
}

// ---------------------------------------------------------------- the tests

let exposition = '';
let labelNames: (metric: string) => readonly string[] = () => [];
let server: SipServer | undefined;

beforeAll(async () => {
  const config = configSchema.parse({
    // Keep-alive and HEP on, so that their metrics are registered too (never started: no socket opens).
    TServer: { 'sip-enable-tcp-keep-alive': true, 'hep-address': '127.0.0.1', store: 'memory:', 'http-port': 0 },
    log: { level: 'silent' },
    dns: { '1001': { type: 'extension', contact: '*' } },
  });
  server = new SipServer({ config, log: silentLogger });
  exposition = await server.metrics.text();
  const registry = server.metrics.registry;
  // prom-client keeps each metric's labelNames on the metric object (not in its typings).
  labelNames = (metric) => (registry.getSingleMetric(metric) as { labelNames?: readonly string[] } | undefined)?.labelNames ?? [];
});

afterAll(async () => {
  await server?.stop(0);
});

function load(): Dashboard {
  return JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
}

describe('the PromQL name check itself', () => {
  it('finds the metric names of an expression and nothing else', () => {
    expect(metricNames('histogram_quantile(0.99, sum by (le, result) (rate(sip_connection_reopen_seconds_bucket{instance=~"$instance", result="ok"}[$__rate_interval])))')).toEqual({
      metrics: ['sip_connection_reopen_seconds_bucket'],
      unknownFunctions: [],
    });
    expect(metricNames('sum(increase(sip_connection_reopen_total{result="ok"}[$__range])) / sum(increase(sip_connection_reopen_total[1h] offset 5m)) > bool 0.5').metrics).toEqual([
      'sip_connection_reopen_total',
      'sip_connection_reopen_total',
    ]);
    expect(metricNames('sum(rate(sip_calls_released_total[5m])) by (cause) or on (instance) vector(0)').metrics).toEqual(['sip_calls_released_total']);
    expect(metricNames('process_open_fds / ignoring (x) group_left (y) process_max_fds').metrics).toEqual(['process_open_fds', 'process_max_fds']);
    expect(metricNames('label_replace(sip_dns, "by", "$1", "state", "(.*)")').metrics).toEqual(['sip_dns']);
    expect(metricNames('rat(sip_calls[5m])').unknownFunctions).toEqual(['rat']);
  });

  it('accepts names the server exports, as exported, and rejects misspelt or wrongly suffixed ones', () => {
    const exported = exportedSeries(exposition, labelNames);
    expect(exported.has('sip_calls_released_total')).toBe(true); // a counter: its name as given
    expect(exported.has('sip_connection_reopen_seconds_bucket')).toBe(true); // a histogram's series
    expect(exported.has('sip_connection_reopen_seconds')).toBe(false); // … but not its bare name
    expect(exported.has('sip_calls_released_total_total')).toBe(false);
    expect(exported.has('sip_calls_released')).toBe(false);
    expect(exported.has('process_cpu_user_seconds_total')).toBe(true); // prom-client default metrics
    expect(exported.has('nodejs_eventloop_lag_p99_seconds')).toBe(true);

    const good: Dashboard = { panels: [{ id: 1, title: 'x', targets: [{ expr: 'sum(rate(sip_calls_released_total[5m]))' }] }] };
    const bad: Dashboard = { panels: [{ id: 1, title: 'x', targets: [{ expr: 'sum(rate(sip_calls_releasd_total[5m]))' }, { expr: 'rate(sip_call_setup_seconds[5m])' }] }] };
    expect(problems(good, exported)).toEqual([]);
    expect(problems(bad, exported)).toEqual([
      'panel 1 "x": sip_calls_releasd_total is not a metric the server exports',
      'panel 1 "x": sip_call_setup_seconds is not a metric the server exports',
    ]);
  });

  it('rejects labels and label values the metrics do not have', () => {
    const exported = exportedSeries(exposition, labelNames);
    const panel = (expr: string, legendFormat = ''): Dashboard => ({ panels: [{ id: 1, title: 'x', targets: [{ refId: 'A', expr, legendFormat }] }] });
    const good = 'histogram_quantile(0.99, sum by (le, result) (rate(sip_connection_reopen_seconds_bucket{instance=~"$instance", result="ok"}[5m])))';
    expect(problems(panel(good, 'p99 {{result}} {{instance}}'), exported)).toEqual([]);
    expect(problems(panel('sum by (transport, cause_class) (sip_connections_closed_total{cause_class="error"})'), exported)).toEqual([]);
    expect(problems(panel('sum by (cause_clas) (rate(sip_connections_closed_total[5m]))'), exported)).toEqual(['panel 1 "x" A: no metric of the expression has the label cause_clas']);
    expect(problems(panel('sum(sip_dns{status="out-of-service"})'), exported)).toEqual(['panel 1 "x" A: sip_dns has no label status']);
    expect(problems(panel('sum(sip_dns{state="out_of_service"})'), exported)).toEqual(['panel 1 "x" A: sip_dns{state="out_of_service"} is not a value the server exports (in-service, out-of-service)']);
    expect(problems(panel('sum by (le) (rate(sip_call_setup_seconds_count[5m]))'), exported)).toEqual(['panel 1 "x" A: no metric of the expression has the label le']);
    expect(problems(panel('sum by (state) (sip_calls)', '{{cause}}'), exported)).toEqual(['panel 1 "x" A: the legend names cause, which no metric of the expression has']);
  });

  it('reads the real server registry, keep-alive metrics included', () => {
    const exported = exportedSeries(exposition, labelNames);
    for (const name of ['sip_calls', 'sip_registrations', 'sip_dns', 'sip_connections', 'sip_keepalive_failures_total', 'sip_transactions_resent_total', 'sip_source_bans_total']) {
      expect(exported.has(name), name).toBe(true);
    }
  });
});

describe('docs/grafana/sip-server-dashboard.json', () => {
  it('is an importable dashboard: JSON with a uid, a title, a Prometheus datasource variable and an instance variable', () => {
    const d = load();
    expect(d.uid).toMatch(/^[\w-]{1,40}$/);
    expect(d.title).toBeTruthy();
    expect(d.schemaVersion).toBeGreaterThanOrEqual(36);
    const vars = d.templating?.list ?? [];
    expect(vars.find((v) => v.name === 'datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    expect(vars.find((v) => v.name === 'instance')).toMatchObject({ type: 'query' });
  });

  it('gives every panel a title and a unique id, and queries only the Prometheus datasource variable', () => {
    const panels = allPanels(load());
    expect(panels.length).toBeGreaterThan(10);
    const ids = panels.map((p) => p.id);
    for (const p of panels) {
      expect(typeof p.id, JSON.stringify(p.title)).toBe('number');
      expect(p.title?.trim(), `panel ${p.id}`).toBeTruthy();
      if (p.type === 'row') continue;
      expect(p.targets?.length, `panel ${p.id} "${p.title}" has no query`).toBeGreaterThan(0);
      for (const t of [p, ...(p.targets ?? [])]) expect(t.datasource, `panel ${p.id}`).toEqual({ type: 'prometheus', uid: '${datasource}' });
      for (const t of p.targets ?? []) expect(t.expr, `panel ${p.id}`).toContain('instance=~"$instance"');
    }
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('references only metric names the server exports', () => {
    const d = load();
    expect(expressions(d).length).toBeGreaterThan(20);
    expect(problems(d, exportedSeries(exposition, labelNames))).toEqual([]);
  });
});

describe('docs/monitoring.md', () => {
  it('documents every sip_ metric the server registers, and names no other', () => {
    const doc = readFileSync(new URL('../../../docs/monitoring.md', import.meta.url), 'utf8');
    const registered = [...exposition.matchAll(/^# TYPE (sip_\w+) /gm)].map((m) => m[1] ?? '');
    expect(registered.length).toBeGreaterThan(20);
    for (const name of registered) expect(doc, name).toContain(`\`${name}\``);
    const exported = exportedSeries(exposition, labelNames);
    for (const [, name = ''] of doc.matchAll(/\b(sip_[a-z0-9_]+)/g)) expect(registered.includes(name) || exported.has(name), name).toBe(true);
  });
});
