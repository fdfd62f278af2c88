import { afterAll, beforeAll, expect } from 'vitest';
import { EventStream, type ApiEvent } from './api-client.js';
import { startServer, type RunningServer, type StartOptions } from './server-process.js';

/** A server and its /events stream for one describe block. */
export interface ServerFixture {
  readonly server: RunningServer;
  readonly events: EventStream;
  /** Where the running test's events begin (set by mark()). */
  readonly from: number;
  /** Marks the start of a test: event() looks only at what comes after. */
  mark(): void;
  /** The first event named `name` since mark() that matches. */
  event(name: string, match?: (e: ApiEvent) => boolean, ms?: number): Promise<ApiEvent>;
}

/**
 * Call it in a describe block: the server (started with `opts`) and its event stream come up
 * before the block's tests, and go after them, the server's exit status 0 asserted.
 */
export function serverFixture(opts: StartOptions): ServerFixture {
  let server: RunningServer | undefined;
  let events: EventStream | undefined;
  let from = 0;
  beforeAll(async () => {
    server = await startServer(opts);
    events = await EventStream.open(server.api);
  });
  afterAll(async () => {
    events?.close();
    if (server) expect(await server.stop()).toBe(0);
  });
  const need = <T>(x: T | undefined, what: string): T => {
    if (x === undefined) throw new Error(`the ${what} is not up (beforeAll failed?)`);
    return x;
  };
  return {
    get server() {
      return need(server, 'server');
    },
    get events() {
      return need(events, 'event stream');
    },
    get from() {
      return from;
    },
    mark() {
      from = need(events, 'event stream').events.length;
    },
    event(name, match = () => true, ms = 5000) {
      return need(events, 'event stream').next((e) => e.event === name && match(e), ms, from);
    },
  };
}
