import type { Binding, CallRecord } from './binding.js';
import { callRowOf, rowOf, type BindingRow, type CallRecordRow } from './store-rows.js';

/**
 * The PostgreSQL store's tables: the same columns as the SQLite file, with the same values
 * (store-rows.ts maps them): times in ms since the epoch as BIGINT, read back as numbers (see
 * the pool's type parser), flags as SMALLINT 1 or NULL, a Path and a call record's detail as
 * JSON text. Schema versions live in `sip_server_schema`; MIGRATIONS[i] takes version i to i+1.
 */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE bindings (
     aor            TEXT    NOT NULL,
     binding_key    TEXT    NOT NULL,
     contact        TEXT    NOT NULL,
     expires_at     BIGINT  NOT NULL,
     call_id        TEXT    NOT NULL,
     cseq           BIGINT  NOT NULL,
     transport      TEXT    NOT NULL CHECK (transport IN ('UDP', 'TCP', 'TLS')),
     source_address TEXT    NOT NULL,
     source_port    INTEGER NOT NULL,
     flow_id        TEXT,
     flow_state     TEXT    NOT NULL CHECK (flow_state IN ('live', 'dead')),
     q              DOUBLE PRECISION,
     user_agent     TEXT,
     registered_at  BIGINT  NOT NULL,
     instance_id    TEXT,
     reg_id         INTEGER,
     natted         SMALLINT,
     outbound       SMALLINT,
     path           TEXT,
     updated_at     BIGINT,
     owner          TEXT,
     PRIMARY KEY (aor, binding_key)
   );
   CREATE INDEX bindings_expires_at ON bindings (expires_at);
   CREATE TABLE call_records (
     id          TEXT   NOT NULL PRIMARY KEY,
     call_id     TEXT,
     from_dn     TEXT,
     caller      TEXT,
     to_dn       TEXT   NOT NULL,
     started_at  BIGINT NOT NULL,
     answered_at BIGINT,
     ended_at    BIGINT,
     cause       TEXT,
     detail      TEXT
   );
   CREATE INDEX call_records_started_at ON call_records (started_at);
   CREATE INDEX call_records_from_dn ON call_records (from_dn, started_at);
   CREATE INDEX call_records_to_dn ON call_records (to_dn, started_at);`,
];

export const BINDING_COLUMNS: readonly (keyof BindingRow)[] = [
  'aor', 'binding_key', 'contact', 'expires_at', 'call_id', 'cseq', 'transport', 'source_address', 'source_port', 'flow_id',
  'flow_state', 'q', 'user_agent', 'registered_at', 'instance_id', 'reg_id', 'natted', 'outbound', 'path', 'updated_at', 'owner',
];

export const CALL_COLUMNS: readonly (keyof CallRecordRow)[] = ['id', 'call_id', 'from_dn', 'caller', 'to_dn', 'started_at', 'answered_at', 'ended_at', 'cause', 'detail'];

/** The values of a binding's row, in BINDING_COLUMNS order. */
export function bindingValues(b: Binding): unknown[] {
  const row = rowOf(b);
  return BINDING_COLUMNS.map((c) => row[c]);
}

/** The values of a call record's row, in CALL_COLUMNS order. */
export function callValues(c: CallRecord): unknown[] {
  const row = callRowOf(c);
  return CALL_COLUMNS.map((k) => row[k]);
}

/** `INSERT … ON CONFLICT (key) DO UPDATE` of `rows` rows of `columns`, with numbered parameters. */
export function upsert(table: string, columns: readonly string[], key: readonly string[], rows: number): string {
  const tuples: string[] = [];
  for (let r = 0; r < rows; r++) tuples.push(`(${columns.map((_, i) => `$${r * columns.length + i + 1}`).join(', ')})`);
  const updates = columns.filter((c) => !key.includes(c)).map((c) => `${c} = EXCLUDED.${c}`);
  return `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${tuples.join(', ')} ON CONFLICT (${key.join(', ')}) DO UPDATE SET ${updates.join(', ')}`;
}
