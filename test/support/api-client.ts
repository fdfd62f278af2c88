import { WebSocket } from 'ws';

/** GET a control API path and parse the JSON answer. */
export async function getJson<T = unknown>(base: string, path: string, token?: string): Promise<{ status: number; body: T }> {
  const res = await fetch(base + path, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  return { status: res.status, body: (await res.json()) as T };
}

export interface ApiEvent {
  event: string;
  time: string;
  [key: string]: unknown;
}

/** A subscriber to GET /events that keeps every event and can wait for one. */
export class EventStream {
  readonly events: ApiEvent[] = [];
  private waiters: (() => void)[] = [];

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      this.events.push(JSON.parse(data.toString()) as ApiEvent);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async open(base: string, token?: string): Promise<EventStream> {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/events`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new EventStream(ws);
  }

  /** The first event (from index `from`) that matches, waiting up to `ms` for it. */
  async next(match: (e: ApiEvent) => boolean, ms = 5000, from = 0): Promise<ApiEvent> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.events.slice(from).find(match);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching event within ${ms} ms; got ${JSON.stringify(this.events.map((e) => e.event))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  close(): void {
    this.ws.close();
  }
}
