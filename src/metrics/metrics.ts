import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { SipServerError } from '../util/errors.js';
import { directoryMetrics, registrarMetrics, transactionMetrics, transportMetrics, type MetricSources } from './core-metrics.js';

export type { MetricSources } from './core-metrics.js';

export interface MetricsOptions {
  /** Node process metrics (CPU, memory, event loop lag, GC); default true. */
  defaultMetrics?: boolean;
}

/**
 * The server's Prometheus metrics: one Registry per instance (never prom-client's global
 * one). Core code does not know about it: `attach()` subscribes to the layers' typed events
 * and reads their `stats()`-like methods when scraped.
 *
 * Adding a metric: write a function like those in core-metrics.ts that takes this object and
 * its source, creates metrics with `counter()`/`gauge()`/`histogram()` (names start `sip_`,
 * labels from small fixed sets) and returns its unsubscribe function; call it from
 * `attach()` or from the composition root.
 */
export class Metrics {
  readonly registry = new Registry();
  private attached = false;

  constructor(opts: MetricsOptions = {}) {
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition of every metric. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * Subscribes the metrics of the core layers to their sources (once per instance); returns
   * the function that unsubscribes the events (scrape-time readers stay bound).
   */
  attach(sources: MetricSources): () => void {
    if (this.attached) throw new SipServerError('METRICS_ATTACHED', 'metrics are already attached to the core layers');
    this.attached = true;
    const offs = [
      directoryMetrics(this, sources.directory),
      registrarMetrics(this, sources.registrar),
      transportMetrics(this, sources.transport),
      transactionMetrics(this, sources.transactions),
    ];
    return () => {
      for (const off of offs) off();
    };
  }

  /** A counter; `collect`, when given, sets its values at scrape time (e.g. from stats()). */
  counter<L extends string>(name: string, help: string, labelNames: readonly L[] = [], collect?: (c: Counter<L>) => void): Counter<L> {
    const c: Counter<L> = new Counter<L>({ name, help, labelNames, registers: [this.registry], ...(collect ? { collect: () => collect(c) } : {}) });
    return c;
  }

  /** A gauge; `collect`, when given, sets its values at scrape time. */
  gauge<L extends string>(name: string, help: string, labelNames: readonly L[] = [], collect?: (g: Gauge<L>) => void): Gauge<L> {
    const g: Gauge<L> = new Gauge<L>({ name, help, labelNames, registers: [this.registry], ...(collect ? { collect: () => collect(g) } : {}) });
    return g;
  }

  histogram<L extends string>(name: string, help: string, labelNames: readonly L[], buckets: number[]): Histogram<L> {
    return new Histogram<L>({ name, help, labelNames, buckets, registers: [this.registry] });
  }
}
