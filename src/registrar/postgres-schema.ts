import type { Binding, BindingTransport, CallRecord, FlowState } from './binding.js';
import { bindingKey } from './binding.js';

/**
 * The PostgreSQL store's tables and the mapping of its rows: the same columns as the SQLite
 * file (sqlite-store.ts), in PostgreSQL's types. Times are ms since the epoch in BIGINT,
 * read back as numbers (see the pool's type parser); a Path and a call record's detail are
 * JSONB. Schema versions live in `sip_server_schema`; MIGRATIONS[i] takes version i to i+1.
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
     natted         BOOLEAN,
     outbound       BOOLEAN,
     path           JSONB,
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
     detail      JSONB
   );
   CREATE INDEX call_records_started_at ON call_records (started_at);
   CREATE INDEX call_records_from_dn ON call_records (from_dn, started_at);
   CREATE INDEX call_records_to_dn ON call_records (to_dn, started_at);`,
];

export const BINDING_COLUMNS = [
  'aor', 'binding_key', 'contact', 'expires_at', 'call_id', 'cseq', 'transport', 'source_address', 'source_port', 'flow_id',
  'flow_state', 'q', 'user_agent', 'registered_at', 'instance_id', 'reg_id', 'natted', 'outbound', 'path', 'updated_at', 'owner',
] as const;

export const CALL_COLUMNS = ['id', 'call_id', 'from_dn', 'caller', 'to_dn', 'started_at', 'answered_at', 'ended_at', 'cause', 'detail'] as const;

export interface BindingRow {
  aor: string;
  binding_key: string;
  contact: string;
  expires_at: number;
  call_id: string;
  cseq: number;
  transport: BindingTransport;
  source_address: string;
  source_port: number;
  flow_id: string | null;
  flow_state: FlowState;
  q: number | null;
  user_agent: string | null;
  registered_at: number;
  instance_id: string | null;
  reg_id: number | null;
  natted: boolean | null;
  outbound: boolean | null;
  path: string[] | null;
  updated_at: number | null;
  owner: string | null;
}

export interface CallRow {
  id: string;
  call_id: string | null;
  from_dn: string | null;
  caller: string | null;
  to_dn: string;
  started_at: number;
  answered_at: number | null;
  ended_at: number | null;
  cause: string | null;
  detail: CallDetail | null;
}

/** The parts of a call record kept as JSON in `detail`. */
type CallDetail = Pick<CallRecord, 'status' | 'releasedBy' | 'legs' | 'transferredTo' | 'newCallId'>;

/** The values of a binding's row, in BINDING_COLUMNS order. */
export function bindingValues(b: Binding): unknown[] {
  return [
    b.aor, bindingKey(b), b.contact, b.expiresAt, b.callId, b.cseq, b.transport, b.source.address, b.source.port, b.flowId ?? null,
    b.flowState, b.q ?? null, b.userAgent ?? null, b.registeredAt, b.instanceId ?? null, b.regId ?? null, b.natted ?? null,
    b.outbound ?? null, b.path ? JSON.stringify(b.path) : null, b.updatedAt ?? null, b.owner ?? null,
  ];
}

export function bindingOf(r: BindingRow): Binding {
  const b: Binding = {
    aor: r.aor,
    contact: r.contact,
    expiresAt: r.expires_at,
    callId: r.call_id,
    cseq: r.cseq,
    transport: r.transport,
    source: { address: r.source_address, port: r.source_port },
    flowState: r.flow_state,
    registeredAt: r.registered_at,
  };
  if (r.flow_id !== null) b.flowId = r.flow_id;
  if (r.q !== null) b.q = r.q;
  if (r.user_agent !== null) b.userAgent = r.user_agent;
  if (r.instance_id !== null) b.instanceId = r.instance_id;
  if (r.reg_id !== null) b.regId = r.reg_id;
  if (r.natted) b.natted = true;
  if (r.outbound) b.outbound = true;
  if (r.path !== null) b.path = r.path;
  if (r.updated_at !== null) b.updatedAt = r.updated_at;
  if (r.owner !== null) b.owner = r.owner;
  return b;
}

/** The values of a call record's row, in CALL_COLUMNS order. */
export function callValues(c: CallRecord): unknown[] {
  const detail: CallDetail = {};
  if (c.status !== undefined) detail.status = c.status;
  if (c.releasedBy !== undefined) detail.releasedBy = c.releasedBy;
  if (c.legs !== undefined) detail.legs = c.legs;
  if (c.transferredTo !== undefined) detail.transferredTo = c.transferredTo;
  if (c.newCallId !== undefined) detail.newCallId = c.newCallId;
  return [
    c.id, c.callId ?? null, c.fromDn, c.caller ?? null, c.toDn, c.startedAt, c.answeredAt ?? null, c.endedAt ?? null, c.cause ?? null,
    Object.keys(detail).length > 0 ? JSON.stringify(detail) : null,
  ];
}

export function callRecordOf(r: CallRow): CallRecord {
  const c: CallRecord = { id: r.id, fromDn: r.from_dn, toDn: r.to_dn, startedAt: r.started_at };
  if (r.call_id !== null) c.callId = r.call_id;
  if (r.caller !== null) c.caller = r.caller;
  if (r.answered_at !== null) c.answeredAt = r.answered_at;
  if (r.ended_at !== null) c.endedAt = r.ended_at;
  if (r.cause !== null) c.cause = r.cause;
  if (r.detail !== null) Object.assign(c, r.detail);
  return c;
}

/** `INSERT … ON CONFLICT (key) DO UPDATE` of `rows` rows of `columns`, with numbered parameters. */
export function upsert(table: string, columns: readonly string[], key: readonly string[], rows: number): string {
  const tuples: string[] = [];
  for (let r = 0; r < rows; r++) tuples.push(`(${columns.map((_, i) => `$${r * columns.length + i + 1}`).join(', ')})`);
  const updates = columns.filter((c) => !key.includes(c)).map((c) => `${c} = EXCLUDED.${c}`);
  return `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${tuples.join(', ')} ON CONFLICT (${key.join(', ')}) DO UPDATE SET ${updates.join(', ')}`;
}
