/** Types of bench/report/report.mjs for the TypeScript benchmarks (bench/stale). */
export const root: string;
export function writeReport(scenario: string, report: { data: Record<string, unknown>; markdown: string; svg?: string }): { json: string; md: string; svg?: string };
export function median(xs: number[]): number | null;
export function percentile(xs: number[], p: number): number | null;
export function lineChart(chart: {
  title: string;
  xLabel: string;
  yLabel: string;
  series: { name: string; points: [number, number][]; dashed?: boolean }[];
  width?: number;
  height?: number;
}): string;
