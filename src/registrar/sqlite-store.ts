import Database from 'better-sqlite3';
import type { Clock, TimerHandle } from '../util/clock.js';
import { SipServerError } from '../util/errors.js';
import type { Binding, CallRecord } from './binding.js';
import { bindingOf, callRecordOf, callRowOf, rowOf, type BindingRow, type CallRecordRow } from './store-rows.js';
import type { BindingWrite, CallRecordQuery, Store } from './store.js';

/**
 * The embedded store: one SQLite file holding `bindings` and `call_records`.
 *
 * Durability: journal_mode=WAL with synchronous=NORMAL (the default here). Every commit is
 * written into the WAL file with write(2) before put() (or the transaction() holding it,
 * as the registrar's group commit does) returns, so it is in the operating
 * system's page cache: a registration acknowledged with 200 survives a crash, kill -9 or
 * restart of the server (SPEC §8; tested by killing a child process). What NORMAL does not
 * survive is a power cut or kernel crash before the next checkpoint's fsync: the newest
 * commits may be lost, never the file's consistency. synchronous=FULL adds an fsync per
 * commit (power-safe), which blocks the event loop for the length of a disk flush on every
 * REGISTER; choose it with the `synchronous` option when the host may lose power unsafely.
 *
 * Schema versions are kept in PRAGMA user_version; MIGRATIONS[i] takes version i to i+1,
 * each in its own transaction. A file from a newer build is refused.
 */
export interface SqliteStoreOptions {
  /** 'NORMAL' (default): survives process crashes. 'FULL': also power loss, at an fsync per write. */
  synchronous?: 'NORMAL' | 'FULL';
  /** How long a write waits for another connection's lock (default 2000 ms). */
  busyTimeoutMs?: number;
  /** Told when a batch of call records could not be written (they are written after the caller returned). */
  onWriteError?: (err: SipServerError) => void;
  /**
   * Call records are written at most this late, on this clock (the server: 100 ms). Without
   * it they are written at the end of the event-loop turn (setImmediate).
   */
  callRecordWindow?: { clock: Clock; ms: number };
}

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE bindings (
     aor            TEXT    NOT NULL,
     contact        TEXT    NOT NULL,
     expires_at     INTEGER NOT NULL,
     call_id        TEXT    NOT NULL,
     cseq           INTEGER NOT NULL,
     transport      TEXT    NOT NULL CHECK (transport IN ('UDP', 'TCP', 'TLS')),
     source_address TEXT    NOT NULL,
     source_port    INTEGER NOT NULL,
     flow_id        TEXT,
     flow_state     TEXT    NOT NULL CHECK (flow_state IN ('live', 'dead')),
     q              REAL,
     user_agent     TEXT,
     registered_at  INTEGER NOT NULL,
     instance_id    TEXT,
     reg_id         INTEGER,
     PRIMARY KEY (aor, contact)
   ) WITHOUT ROWID;
   CREATE INDEX bindings_expires_at ON bindings (expires_at);
   CREATE TABLE call_records (
     id          TEXT    NOT NULL PRIMARY KEY,
     call_id     TEXT,
     from_dn     TEXT    NOT NULL,
     to_dn       TEXT    NOT NULL,
     started_at  INTEGER NOT NULL,
     answered_at INTEGER,
     ended_at    INTEGER,
     cause       TEXT
   );
   CREATE INDEX call_records_started_at ON call_records (started_at);
   CREATE INDEX call_records_from_dn ON call_records (from_dn, started_at);
   CREATE INDEX call_records_to_dn ON call_records (to_dn, started_at);`,
  // A caller that is no known DN has no from_dn; who released the call, its legs and a
  // transfer are kept in `detail` (JSON: history to read back, not state to query by).
  `CREATE TABLE call_records_2 (
     id          TEXT    NOT NULL PRIMARY KEY,
     call_id     TEXT,
     from_dn     TEXT,
     caller      TEXT,
     to_dn       TEXT    NOT NULL,
     started_at  INTEGER NOT NULL,
     answered_at INTEGER,
     ended_at    INTEGER,
     cause       TEXT,
     detail      TEXT
   );
   INSERT INTO call_records_2 (id, call_id, from_dn, caller, to_dn, started_at, answered_at, ended_at, cause)
     SELECT id, call_id, from_dn, from_dn, to_dn, started_at, answered_at, ended_at, cause FROM call_records;
   DROP TABLE call_records;
   ALTER TABLE call_records_2 RENAME TO call_records;
   CREATE INDEX call_records_started_at ON call_records (started_at);
   CREATE INDEX call_records_from_dn ON call_records (from_dn, started_at);
   CREATE INDEX call_records_to_dn ON call_records (to_dn, started_at);`,
  `ALTER TABLE bindings ADD COLUMN natted INTEGER;`,
  // RFC 5626 / 3327: a binding is keyed by binding_key (its Contact, or for an outbound flow
  // its instance and reg-id: two flows of one phone may share a Contact), and keeps its Path
  // (JSON array), whether it is an outbound flow, and when it was last refreshed.
  `CREATE TABLE bindings_2 (
     aor            TEXT    NOT NULL,
     binding_key    TEXT    NOT NULL,
     contact        TEXT    NOT NULL,
     expires_at     INTEGER NOT NULL,
     call_id        TEXT    NOT NULL,
     cseq           INTEGER NOT NULL,
     transport      TEXT    NOT NULL CHECK (transport IN ('UDP', 'TCP', 'TLS')),
     source_address TEXT    NOT NULL,
     source_port    INTEGER NOT NULL,
     flow_id        TEXT,
     flow_state     TEXT    NOT NULL CHECK (flow_state IN ('live', 'dead')),
     q              REAL,
     user_agent     TEXT,
     registered_at  INTEGER NOT NULL,
     instance_id    TEXT,
     reg_id         INTEGER,
     natted         INTEGER,
     outbound       INTEGER,
     path           TEXT,
     updated_at     INTEGER,
     owner          TEXT,
     PRIMARY KEY (aor, binding_key)
   ) WITHOUT ROWID;
   INSERT INTO bindings_2 (aor, binding_key, contact, expires_at, call_id, cseq, transport, source_address, source_port,
       flow_id, flow_state, q, user_agent, registered_at, instance_id, reg_id, natted)
     SELECT aor, contact, contact, expires_at, call_id, cseq, transport, source_address, source_port,
       flow_id, flow_state, q, user_agent, registered_at, instance_id, reg_id, natted FROM bindings;
   DROP TABLE bindings;
   ALTER TABLE bindings_2 RENAME TO bindings;
   CREATE INDEX bindings_expires_at ON bindings (expires_at);`,
];

/** The schema version this build writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

interface Statements {
  deleteExpired: Database.Statement<[number]>;
  selectBindings: Database.Statement<[], BindingRow>;
  upsertBinding: Database.Statement<[BindingRow]>;
  deleteBinding: Database.Statement<[string, string]>;
  deleteAor: Database.Statement<[string]>;
  upsertCall: Database.Statement<[CallRecordRow]>;
  selectCalls: Database.Statement<[{ dn: string | null; since: number | null; limit: number }], CallRecordRow>;
  selectCall: Database.Statement<[string], CallRecordRow>;
}

export class SqliteStore implements Store {
  readonly description: string;
  private readonly db: Database.Database;
  private readonly st: Statements;
  private closed = false;
  /** Call records waiting for the end of this event-loop turn (see addCallRecord). */
  private pendingCalls: CallRecord[] = [];
  private flushing: { cancel(): void } | undefined;
  private readonly onWriteError: ((err: SipServerError) => void) | undefined;
  private readonly window: SqliteStoreOptions['callRecordWindow'];

  /** Opens (creating if missing) the file at `path`; throws SipServerError 'STORE_OPEN'. */
  constructor(
    readonly path: string,
    opts: SqliteStoreOptions = {},
  ) {
    this.onWriteError = opts.onWriteError;
    this.window = opts.callRecordWindow;
    this.description = `sqlite:${path}`;
    let db: Database.Database | undefined;
    try {
      db = new Database(path, { timeout: opts.busyTimeoutMs ?? 2000 });
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${opts.synchronous === 'FULL' ? 'FULL' : 'NORMAL'}`);
      db.pragma('foreign_keys = ON');
      migrate(db);
      this.st = prepare(db);
    } catch (err) {
      db?.close();
      if (err instanceof SipServerError) throw err;
      throw new SipServerError('STORE_OPEN', `cannot open store ${this.description}: ${messageOf(err)}`, { cause: err });
    }
    this.db = db;
  }

  load(now: number): Binding[] {
    return this.guard('STORE_READ', 'loading bindings', () =>
      this.db.transaction(() => {
        this.st.deleteExpired.run(now);
        return this.st.selectBindings.all().map(bindingOf);
      }).immediate(),
    );
  }

  put(binding: Binding): void {
    this.guard('STORE_WRITE', `writing binding ${binding.aor} ${binding.contact}`, () => {
      this.st.upsertBinding.run(rowOf(binding));
    });
  }

  remove(aor: string, key: string): void {
    this.guard('STORE_WRITE', `removing binding ${aor} ${key}`, () => {
      this.st.deleteBinding.run(aor, key);
    });
  }

  removeAll(aor: string): void {
    this.guard('STORE_WRITE', `removing bindings of ${aor}`, () => {
      this.st.deleteAor.run(aor);
    });
  }

  /**
   * One SQLite transaction around `fn`: its writes share one commit (one write(2) of the
   * WAL, ~8 µs a binding instead of ~35 µs alone), and are rolled back when it throws. A
   * store error from inside is thrown as it is.
   */
  transaction<T>(fn: () => T): T {
    if (this.closed) throw new SipServerError('STORE_CLOSED', `store ${this.description} is closed (committing)`);
    try {
      return this.db.transaction(fn)();
    } catch (err) {
      if (err instanceof SipServerError) throw err;
      throw new SipServerError('STORE_WRITE', `store ${this.description}: commit failed: ${messageOf(err)}`, { cause: err });
    }
  }

  /** The registrar's commit: `writes` in one transaction(). */
  commit(writes: readonly BindingWrite[]): void {
    this.transaction(() => {
      for (const w of writes) {
        if (w.kind === 'put') this.put(w.binding);
        else this.remove(w.aor, w.key);
      }
    });
  }

  /**
   * Call records are history, not state a restart needs: they are queued and written together,
   * in one transaction, within `callRecordWindow` (else at the end of the event-loop turn).
   * One commit per call cost ~40 µs of the event loop at 1,500 calls/s, one per turn still
   * 6 % of the CPU at 2,500 calls/s over TCP; a crash loses at most the records of the calls
   * that ended within that last window. Reads and close() write the queue out first, so a
   * reader always sees every record added before.
   */
  addCallRecord(record: CallRecord): void {
    if (this.closed) throw new SipServerError('STORE_CLOSED', `store ${this.description} is closed (writing call record ${record.id})`);
    this.pendingCalls.push(record);
    if (this.flushing) return;
    if (this.window) {
      const timer: TimerHandle = this.window.clock.setTimer(this.window.ms, () => this.flushCallRecords());
      this.flushing = timer;
    } else {
      const immediate = setImmediate(() => this.flushCallRecords());
      this.flushing = { cancel: () => clearImmediate(immediate) };
    }
  }

  /** Writes the queued call records now, in one transaction. */
  flushCallRecords(): void {
    this.flushing?.cancel();
    this.flushing = undefined;
    const batch = this.pendingCalls;
    if (batch.length === 0) return;
    this.pendingCalls = [];
    try {
      this.guard('STORE_WRITE', `writing ${batch.length} call record(s) from ${batch[0]?.id ?? ''}`, () =>
        this.db.transaction(() => {
          for (const record of batch) {
            this.st.upsertCall.run(callRowOf(record));
          }
        })(),
      );
    } catch (err) {
      if (this.onWriteError && err instanceof SipServerError) this.onWriteError(err);
      else throw err;
    }
  }

  listCallRecords(query: CallRecordQuery = {}): CallRecord[] {
    this.flushCallRecords();
    return this.guard('STORE_READ', 'listing call records', () =>
      this.st.selectCalls
        .all({ dn: query.dn ?? null, since: query.since ?? null, limit: Math.max(0, Math.floor(query.limit ?? 100)) })
        .map(callRecordOf),
    );
  }

  getCallRecord(id: string): CallRecord | undefined {
    this.flushCallRecords();
    const row = this.guard('STORE_READ', `reading call record ${id}`, () => this.st.selectCall.get(id));
    return row && callRecordOf(row);
  }

  close(): void {
    if (this.closed) return;
    this.flushCallRecords();
    this.closed = true;
    this.guard('STORE_CLOSE', 'closing', () => this.db.close());
  }

  private guard<T>(code: string, what: string, fn: () => T): T {
    if (this.closed && code !== 'STORE_CLOSE') {
      throw new SipServerError('STORE_CLOSED', `store ${this.description} is closed (${what})`);
    }
    try {
      return fn();
    } catch (err) {
      throw new SipServerError(code, `store ${this.description}: ${what} failed: ${messageOf(err)}`, { cause: err });
    }
  }
}

function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true });
  if (typeof version !== 'number') throw new Error(`user_version is ${String(version)}`);
  if (version > SCHEMA_VERSION) {
    throw new Error(`schema version ${version} was written by a newer build (this one knows ${SCHEMA_VERSION})`);
  }
  for (let v = version; v < SCHEMA_VERSION; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v] ?? '');
      db.pragma(`user_version = ${v + 1}`);
    }).immediate();
  }
  // Rewriting the version is a tiny write: a file we may read but not write fails here, at
  // start-up, rather than on the first REGISTER.
  db.pragma(`user_version = ${SCHEMA_VERSION}`);
}

function prepare(db: Database.Database): Statements {
  return {
    deleteExpired: db.prepare('DELETE FROM bindings WHERE expires_at <= ?'),
    selectBindings: db.prepare('SELECT * FROM bindings ORDER BY aor, registered_at, contact'),
    upsertBinding: db.prepare(
      `INSERT OR REPLACE INTO bindings (aor, binding_key, contact, expires_at, call_id, cseq, transport, source_address,
         source_port, flow_id, flow_state, q, user_agent, registered_at, instance_id, reg_id, natted, outbound, path, updated_at, owner)
       VALUES (@aor, @binding_key, @contact, @expires_at, @call_id, @cseq, @transport, @source_address, @source_port,
         @flow_id, @flow_state, @q, @user_agent, @registered_at, @instance_id, @reg_id, @natted, @outbound, @path, @updated_at, @owner)`,
    ),
    deleteBinding: db.prepare('DELETE FROM bindings WHERE aor = ? AND binding_key = ?'),
    deleteAor: db.prepare('DELETE FROM bindings WHERE aor = ?'),
    upsertCall: db.prepare(
      `INSERT OR REPLACE INTO call_records (id, call_id, from_dn, caller, to_dn, started_at, answered_at, ended_at, cause, detail)
       VALUES (@id, @call_id, @from_dn, @caller, @to_dn, @started_at, @answered_at, @ended_at, @cause, @detail)`,
    ),
    selectCall: db.prepare('SELECT * FROM call_records WHERE id = ?'),
    selectCalls: db.prepare(
      `SELECT * FROM call_records
       WHERE (@dn IS NULL OR from_dn = @dn OR to_dn = @dn) AND (@since IS NULL OR started_at >= @since)
       ORDER BY started_at DESC, id DESC LIMIT @limit`,
    ),
  };
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
