/**
 * Plain-text output for people: aligned columns and "name  value" lists. Values are
 * cleaned of control characters (a contact URI or reason comes from the network; it must not
 * reach the terminal as escape sequences).
 */

export interface Column<R> {
  header: string;
  value: (row: R) => string | number | null | undefined;
  /** Right-align (numbers, durations). */
  right?: boolean;
}

/** A header line and one line per row, columns two spaces apart, no trailing blanks. */
export function formatTable<R>(columns: readonly Column<R>[], rows: readonly R[]): string {
  const cells = rows.map((row) => columns.map((c) => cell(c.value(row))));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (values: readonly string[]): string =>
    values
      .map((v, i) => {
        const w = widths[i] ?? 0;
        return columns[i]?.right ? v.padStart(w) : v.padEnd(w);
      })
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.header)), ...cells.map(line)].join('\n');
}

/** "name  value" lines, the values aligned. */
export function formatFields(fields: readonly (readonly [string, string | number | null | undefined])[]): string {
  const width = Math.max(0, ...fields.map(([name]) => name.length));
  return fields.map(([name, value]) => `${name.padEnd(width)}  ${cell(value)}`.trimEnd()).join('\n');
}

/** A cell's text: '-' for null or undefined ('' stays blank), control characters replaced by '?'. */
export function cell(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return '-';
  // eslint-disable-next-line no-control-regex
  return String(value).replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

/** Whole seconds as "45s", "3m05s", "2h03m", "4d02h". */
export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '-';
  const s = Math.max(0, Math.floor(seconds));
  const two = (n: number): string => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${two(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86_400)}d${two(Math.floor((s % 86_400) / 3600))}h`;
}

/** An API time (ISO 8601) as "2026-12-02 10:11:12Z": UTC, to the second. */
export function time(iso: string | null | undefined): string {
  if (iso === null || iso === undefined) return '-';
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) return cell(iso);
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

/** Seconds from an API time until `now` (ms). */
export function secondsSince(iso: string | null | undefined, now: number): number | undefined {
  if (iso === null || iso === undefined) return undefined;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? Math.max(0, (now - ms) / 1000) : undefined;
}
