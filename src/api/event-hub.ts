import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { TypedEvents } from '../util/typed-events.js';
import { isoTime } from './views.js';

/** The part of a `ws` WebSocket the hub uses; a fake in unit tests. */
export interface EventClient {
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** WebSocket readyState OPEN (RFC 6455 / the `ws` package). */
const OPEN = 1;
/** RFC 6455 §7.4.1 1013 "try again later": the client did not keep up. */
export const CLOSE_TOO_SLOW = 1013;
export const DEFAULT_MAX_BACKLOG_BYTES = 1024 * 1024;
/** How many of the latest events GET /event-log can give (the dashboard's history). */
export const RECENT_EVENTS = 500;

/**
 * Fans events out to the WebSocket clients of GET /events, one JSON text frame each, in the
 * order published; with `defer`, the frames of one turn of the event loop are made and sent
 * after it (a burst — 1,000 connections found dead together — costs the work that raised it
 * nothing):
 * `{"event": name, "time": ISO, ...payload}` (a numeric `time` in the payload is the event's
 * Clock time; without one the hub stamps the current time).
 *
 * Sources are added with `forward(events, names)`, or anything can `publish(name, payload)`,
 * so call and connection events plug in the same way. A client whose unsent backlog passes
 * `maxBacklogBytes` is closed with 1013 instead of letting memory grow.
 *
 * The latest RECENT_EVENTS are kept, clients or not, as they were published (the frame is
 * made only when asked for, by `recent`): a dashboard opened after a connection died still
 * sees how it died and what was re-sent.
 */
export class EventHub<C extends EventClient = EventClient> {
  private readonly clients = new Set<C>();
  /** Published and not yet sent (with `defer`): name, payload, and the time it was published. */
  private queued: [string, unknown, number][] = [];
  /** A ring of the latest events; `next` is where the next one goes. */
  private readonly latest: [string, unknown, number][] = [];
  private next = 0;

  constructor(
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly maxBacklogBytes = DEFAULT_MAX_BACKLOG_BYTES,
    private readonly defer?: (fn: () => void) => void,
  ) {}

  get size(): number {
    return this.clients.size;
  }

  add(client: C): void {
    this.clients.add(client);
  }

  remove(client: C): void {
    this.clients.delete(client);
  }

  /** Every connected client, e.g. to close them at shutdown. */
  all(): C[] {
    return [...this.clients];
  }

  /** Publishes every event `names` of `source`; returns the function that stops it. */
  forward<E extends Record<string, unknown>>(source: TypedEvents<E>, names: readonly (keyof E & string)[]): () => void {
    const offs = names.map((name) => source.on(name, (payload) => this.publish(name, payload)));
    return () => {
      for (const off of offs) off();
    };
  }

  publish(name: string, payload: unknown): void {
    this.remember(name, payload);
    if (this.clients.size === 0) return;
    if (!this.defer) return this.send(name, payload, this.clock.now());
    if (this.queued.length === 0) this.defer(() => this.flush());
    this.queued.push([name, payload, this.clock.now()]);
  }

  /** The latest `limit` events (at most RECENT_EVENTS), oldest first, as /events frames them. */
  recent(limit = RECENT_EVENTS): string[] {
    const ordered = this.latest.length < RECENT_EVENTS ? this.latest : [...this.latest.slice(this.next), ...this.latest.slice(0, this.next)];
    return ordered.slice(Math.max(0, ordered.length - limit)).map(([name, payload, at]) => this.frame(name, payload, at));
  }

  private remember(name: string, payload: unknown): void {
    const entry: [string, unknown, number] = [name, payload, this.clock.now()];
    if (this.latest.length < RECENT_EVENTS) this.latest.push(entry);
    else this.latest[this.next] = entry;
    this.next = (this.next + 1) % RECENT_EVENTS;
  }

  /** Sends what is queued now (before the clients are closed at shutdown). */
  flush(): void {
    const queued = this.queued;
    this.queued = [];
    for (const [name, payload, at] of queued) this.send(name, payload, at);
  }

  private send(name: string, payload: unknown, at: number): void {
    const frame = this.frame(name, payload, at);
    for (const client of [...this.clients]) {
      if (client.readyState !== OPEN) continue;
      if (client.bufferedAmount > this.maxBacklogBytes) {
        this.drop(client);
        continue;
      }
      client.send(frame);
    }
  }

  private frame(name: string, payload: unknown, at: number): string {
    const fields: Record<string, unknown> = typeof payload === 'object' && payload !== null ? { ...payload } : { value: payload };
    const time = typeof fields.time === 'number' ? fields.time : at;
    delete fields.time;
    delete fields.event;
    return JSON.stringify({ event: name, time: isoTime(time), ...fields });
  }

  private drop(client: C): void {
    this.clients.delete(client);
    this.log.warn({ bufferedBytes: client.bufferedAmount, limit: this.maxBacklogBytes }, 'event client too slow: closed');
    client.close(CLOSE_TOO_SLOW, 'too slow: event backlog over limit');
  }
}
