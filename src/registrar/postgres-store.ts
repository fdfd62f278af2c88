import pg from 'pg';
import type { Clock, TimerHandle } from '../util/clock.js';
import { SipServerError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { Binding, CallRecord } from './binding.js';
import { BindingsListener, CHANNEL, type BindingsNotice } from './postgres-listener.js';
import { BINDING_COLUMNS, bindingValues, CALL_COLUMNS, callValues, MIGRATIONS, upsert } from './postgres-schema.js';
import { bindingOf, callRecordOf, type BindingRow, type CallRecordRow } from './store-rows.js';
import type { BindingWrite, CallRecordQuery, ServerStore, SharedBindings, SharedBindingsListener } from './store.js';

export interface PostgresStoreOptions {
  /** This instance's name (`instance-name`): the owner of the bindings it writes. */
  instance: string;
  log: Logger;
  /** Every timer of the store's (call-record batches, retries, reconnects) runs on it. */
  clock: Clock;
  /** Call records are written at most this late, ms (default 100). */
  callRecordWindowMs?: number;
  /** Told when a batch of call records could not be written (it is kept and tried again). */
  onWriteError?: (err: SipServerError) => void;
}

/** Call records kept for a retry while the database is away, at most. */
const MAX_PENDING_CALLS = 100_000;

/**
 * The shared store (`store: postgres://…`): registrations and call records in a PostgreSQL
 * database that several instances use at once.
 *
 * - A group of REGISTERs is one transaction; its 200s go out once it has committed
 *   (PostgreSQL's commit is durable: fsync'd WAL), so an acknowledged registration survives
 *   the loss of the instance and a restart of the database.
 * - Each commit sends a NOTIFY with the AORs it changed; every other instance LISTENs,
 *   re-reads those AORs and so knows every binding (postgres-listener.ts). After a lost
 *   connection it re-reads them all.
 * - Bindings carry their `owner`: the instance whose flow (connection) they came on.
 * - Call records are queued and written in batches within `callRecordWindowMs`; a batch that
 *   fails stays queued and goes with the next one (up to MAX_PENDING_CALLS).
 * - While the database is unreachable, REGISTERs get 500 (nothing acknowledged is lost) and
 *   the pool connects again by itself when it is back.
 */
export class PostgresStore implements ServerStore {
  readonly description: string;
  readonly shared: SharedBindings;
  private readonly pool: pg.Pool;
  private readonly config: pg.PoolConfig;
  private listener: BindingsListener | undefined;
  private watcher: SharedBindingsListener | undefined;
  private pendingCalls: CallRecord[] = [];
  private flushing: TimerHandle | undefined;
  private flushRun: Promise<void> | undefined;
  private closed = false;
  /** Reads of other instances' changes, one after the other: a later one never lands first. */
  private chain: Promise<void> = Promise.resolve();

  constructor(
    url: string,
    private readonly opts: PostgresStoreOptions,
  ) {
    this.description = maskPassword(url);
    this.config = { connectionString: url, max: 4, connectionTimeoutMillis: 3000, types: { getTypeParser: typeParser } };
    this.pool = new pg.Pool(this.config);
    // An idle connection the database dropped: the pool replaces it on the next query.
    this.pool.on('error', (err) => opts.log.warn({ err }, 'shared store: an idle connection failed'));
    const instance = opts.instance;
    this.shared = { instance, watch: (l) => (this.watcher = l), reread: (aors) => this.queue(() => this.changed(aors)) };
  }

  /** Connects, creates or upgrades the tables, and starts following the other instances. */
  async open(): Promise<void> {
    try {
      await this.migrate();
      this.listener = new BindingsListener(this.config, this.opts.instance, { changed: (aors) => this.queue(() => this.changed(aors)), reconnected: () => this.queue(() => this.resync()) }, this.opts.log, this.opts.clock);
      await this.listener.start();
    } catch (err) {
      await this.pool.end().catch(() => undefined);
      throw new SipServerError('STORE_OPEN', `cannot open store ${this.description}: ${messageOf(err)}`, { cause: err });
    }
  }

  async load(now: number): Promise<Binding[]> {
    return this.guard('STORE_READ', 'loading bindings', async () => {
      await this.pool.query('DELETE FROM bindings WHERE expires_at <= $1', [now]);
      return this.allBindings();
    });
  }

  async commit(writes: readonly BindingWrite[]): Promise<void> {
    const aors = [...new Set(writes.map((w) => (w.kind === 'put' ? w.binding.aor : w.aor)))];
    await this.guard('STORE_WRITE', `committing ${writes.length} binding change(s) of ${aors.slice(0, 3).join(', ')}`, () =>
      this.transaction(async (client) => {
        const puts = writes.flatMap((w) => (w.kind === 'put' ? [w.binding] : []));
        for (const w of writes) if (w.kind === 'remove') await client.query('DELETE FROM bindings WHERE aor = $1 AND binding_key = $2', [w.aor, w.key]);
        if (puts.length > 0) await client.query(upsert('bindings', BINDING_COLUMNS, ['aor', 'binding_key'], puts.length), puts.flatMap(bindingValues));
        const notice: BindingsNotice = { from: this.opts.instance, aors };
        await client.query('SELECT pg_notify($1, $2)', [CHANNEL, JSON.stringify(notice)]);
      }),
    );
  }

  addCallRecord(record: CallRecord): void {
    if (this.closed) throw new SipServerError('STORE_CLOSED', `store ${this.description} is closed (writing call record ${record.id})`);
    this.pendingCalls.push(record);
    if (this.pendingCalls.length > MAX_PENDING_CALLS) this.pendingCalls.splice(0, this.pendingCalls.length - MAX_PENDING_CALLS);
    if (this.flushing) return;
    this.flushing = this.opts.clock.setTimer(this.opts.callRecordWindowMs ?? 100, () => void this.flushCallRecords());
  }

  async listCallRecords(query: CallRecordQuery = {}): Promise<CallRecord[]> {
    await this.flushCallRecords();
    return this.guard('STORE_READ', 'listing call records', async () => {
      const res = await this.pool.query<CallRecordRow>(
        `SELECT * FROM call_records WHERE ($1::text IS NULL OR from_dn = $1 OR to_dn = $1) AND ($2::bigint IS NULL OR started_at >= $2)
         ORDER BY started_at DESC, id DESC LIMIT $3`,
        [query.dn ?? null, query.since ?? null, Math.max(0, Math.floor(query.limit ?? 100))],
      );
      return res.rows.map(callRecordOf);
    });
  }

  async getCallRecord(id: string): Promise<CallRecord | undefined> {
    await this.flushCallRecords();
    return this.guard('STORE_READ', `reading call record ${id}`, async () => {
      const res = await this.pool.query<CallRecordRow>('SELECT * FROM call_records WHERE id = $1', [id]);
      const row = res.rows[0];
      return row && callRecordOf(row);
    });
  }

  /** Writes the queued call records now; a failure keeps them queued (and is reported). */
  async flushCallRecords(): Promise<void> {
    if (this.flushRun) await this.flushRun;
    this.flushing?.cancel();
    this.flushing = undefined;
    const batch = this.pendingCalls;
    if (batch.length === 0) return;
    this.pendingCalls = [];
    // The latest version of each record: a call may be written when it starts and when it ends.
    const byId = new Map(batch.map((c) => [c.id, c]));
    const rows = [...byId.values()];
    const run = this.guard('STORE_WRITE', `writing ${rows.length} call record(s) from ${rows[0]?.id ?? ''}`, async () => {
      for (let i = 0; i < rows.length; i += 500) {
        const chunk = rows.slice(i, i + 500);
        await this.pool.query(upsert('call_records', CALL_COLUMNS, ['id'], chunk.length), chunk.flatMap(callValues));
      }
    }).catch((err: unknown) => {
      this.pendingCalls = [...batch, ...this.pendingCalls];
      if (err instanceof SipServerError) this.opts.onWriteError?.(err);
      if (!this.closed && !this.flushing && this.pendingCalls.length > 0) this.addCallRecordRetry();
    });
    this.flushRun = run;
    await run;
    this.flushRun = undefined;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flushCallRecords().catch(() => undefined);
    this.closed = true;
    this.flushing?.cancel();
    await this.listener?.stop();
    await this.pool.end().catch(() => undefined);
  }

  /** A failed batch is tried again a second later. */
  private addCallRecordRetry(): void {
    this.flushing = this.opts.clock.setTimer(1000, () => void this.flushCallRecords());
  }

  private async allBindings(): Promise<Binding[]> {
    const res = await this.pool.query<BindingRow>('SELECT * FROM bindings ORDER BY aor, registered_at, binding_key');
    return res.rows.map(bindingOf);
  }

  private queue(fn: () => Promise<void>): void {
    this.chain = this.chain.then(fn, fn);
  }

  /** Another instance committed: the AORs it changed, as they now are. */
  private async changed(aors: string[]): Promise<void> {
    const watcher = this.watcher;
    if (!watcher || aors.length === 0) return;
    try {
      const res = await this.pool.query<BindingRow>('SELECT * FROM bindings WHERE aor = ANY($1) ORDER BY aor, registered_at, binding_key', [aors]);
      const byAor = new Map<string, Binding[]>(aors.map((a) => [a, []]));
      for (const row of res.rows) byAor.get(row.aor)?.push(bindingOf(row));
      for (const [aor, bindings] of byAor) watcher.changed(aor, bindings);
    } catch (err) {
      this.opts.log.error({ err, aors }, "shared store: could not read another instance's change; re-reading everything");
      this.retryResync();
    }
  }

  /** Reads everything again a second from now (not after close). */
  private retryResync(): void {
    this.opts.clock.setTimer(1000, () => {
      if (!this.closed) this.queue(() => this.resync());
    });
  }

  private async resync(): Promise<void> {
    const watcher = this.watcher;
    if (!watcher || this.closed) return;
    try {
      watcher.resync(await this.allBindings());
    } catch (err) {
      this.opts.log.error({ err }, 'shared store: re-reading the bindings failed; trying again');
      this.retryResync();
    }
  }

  private async migrate(): Promise<void> {
    await this.transaction(async (client) => {
      // One instance at a time: the others wait here, then find the tables made.
      await client.query('SELECT pg_advisory_xact_lock(5060)');
      await client.query('CREATE TABLE IF NOT EXISTS sip_server_schema (version INTEGER NOT NULL)');
      const res = await client.query<{ version: number }>('SELECT version FROM sip_server_schema');
      const version = res.rows[0]?.version ?? 0;
      if (version > MIGRATIONS.length) throw new Error(`schema version ${version} was written by a newer build (this one knows ${MIGRATIONS.length})`);
      for (let v = version; v < MIGRATIONS.length; v++) await client.query(MIGRATIONS[v] ?? '');
      if (res.rows.length === 0) await client.query('INSERT INTO sip_server_schema (version) VALUES ($1)', [MIGRATIONS.length]);
      else await client.query('UPDATE sip_server_schema SET version = $1', [MIGRATIONS.length]);
    });
  }

  private async transaction(fn: (client: pg.PoolClient) => Promise<void>): Promise<void> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      await fn(client);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch((e: unknown) => (broken = e instanceof Error ? e : new Error(String(e))));
      throw err;
    } finally {
      client.release(broken);
    }
  }

  private async guard<T>(code: string, what: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new SipServerError('STORE_CLOSED', `store ${this.description} is closed (${what})`);
    try {
      return await fn();
    } catch (err) {
      if (err instanceof SipServerError) throw err;
      throw new SipServerError(code, `store ${this.description}: ${what} failed: ${messageOf(err)}`, { cause: err });
    }
  }
}

/** BIGINT (oid 20) as a number: times in ms and CSeqs fit in 2^53. */
function typeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
  if (oid === 20) return (v: string) => Number(v);
  return pg.types.getTypeParser(oid, format ?? 'text') as (value: string) => unknown;
}

/** The URL as logs and errors show it: no password. */
export function maskPassword(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/:[^:@/]*@/, ':***@');
  }
}

function messageOf(err: unknown): string {
  if (err instanceof AggregateError) return err.errors.map(messageOf).join('; ');
  return err instanceof Error ? err.message || (err as NodeJS.ErrnoException).code || err.name : String(err);
}
