import pg from 'pg';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { Logger } from '../util/logger.js';

/** What one instance tells the others after a commit: which AORs it changed. */
export interface BindingsNotice {
  from: string;
  aors: string[];
}

export const CHANNEL = 'sip_server_bindings';

export interface ListenerHandlers {
  /** Another instance changed these AORs (notices from this instance are left out). */
  changed(aors: string[]): void;
  /** The connection was lost and is back, LISTENing again: notices in between are lost. */
  reconnected(): void;
}

/**
 * The one connection of an instance that LISTENs on CHANNEL for the other instances'
 * commits (each sends a NOTIFY inside its transaction, delivered when it commits). When the
 * connection is lost — the database restarted, the network cut — it connects again every
 * `retryMs` until it succeeds, and then says so: the store re-reads every binding, since the
 * notices of the gap are gone.
 */
export class BindingsListener {
  private client: pg.Client | undefined;
  private timer: TimerHandle | undefined;
  private stopped = false;
  private lost = false;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly instance: string,
    private readonly handlers: ListenerHandlers,
    private readonly log: Logger,
    private readonly clock: Clock,
    private readonly retryMs = 500,
  ) {}

  /** Connects and LISTENs; rejects when the first connection fails (the store then fails to open). */
  async start(): Promise<void> {
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    const client = new pg.Client(this.config);
    client.on('notification', (msg) => this.notified(msg.payload));
    client.on('error', (err) => this.drop(client, err));
    client.on('end', () => this.drop(client, new Error('connection ended')));
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    this.client = client;
  }

  private notified(payload: string | undefined): void {
    let notice: BindingsNotice;
    try {
      notice = JSON.parse(payload ?? '') as BindingsNotice;
    } catch {
      this.log.warn({ payload }, 'unreadable bindings notice');
      return;
    }
    if (notice.from === this.instance || !Array.isArray(notice.aors)) return;
    this.handlers.changed(notice.aors.filter((a) => typeof a === 'string'));
  }

  private drop(client: pg.Client, err: Error): void {
    if (client !== this.client || this.stopped) return;
    this.client = undefined;
    this.lost = true;
    client.end().catch(() => undefined);
    this.log.error({ err }, 'shared store: lost the connection that follows other instances; reconnecting');
    this.retry();
  }

  private retry(): void {
    this.timer?.cancel();
    this.timer = this.clock.setTimer(this.retryMs, () => {
      this.connect().then(
        () => {
          if (!this.lost || this.stopped) return;
          this.lost = false;
          this.log.info({}, 'shared store: following other instances again');
          this.handlers.reconnected();
        },
        () => {
          if (!this.stopped) this.retry();
        },
      );
    });
  }
}
