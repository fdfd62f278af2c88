import { bindingKey, type Binding, type BindingTransport, type CallRecord, type FlowState } from './binding.js';

/**
 * The rows of the stores' two tables, `bindings` and `call_records`, and their mapping to and
 * from the registrar's plain data. SQLite (sqlite-store.ts) and PostgreSQL (postgres-schema.ts)
 * have the same columns with the same values: flags as 1 or NULL, a Path and a call record's
 * detail as JSON text, times in ms since the epoch.
 */
export interface BindingRow {
  aor: string;
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
  natted: number | null;
  binding_key: string;
  outbound: number | null;
  path: string | null;
  updated_at: number | null;
  owner: string | null;
}

export interface CallRecordRow {
  id: string;
  call_id: string | null;
  from_dn: string | null;
  caller: string | null;
  to_dn: string;
  started_at: number;
  answered_at: number | null;
  ended_at: number | null;
  cause: string | null;
  detail: string | null;
}

/** The parts of a call record kept as JSON in `detail`. */
type CallRecordDetail = Pick<CallRecord, 'status' | 'releasedBy' | 'legs' | 'transferredTo' | 'newCallId'>;

export function rowOf(b: Binding): BindingRow {
  return {
    aor: b.aor,
    contact: b.contact,
    expires_at: b.expiresAt,
    call_id: b.callId,
    cseq: b.cseq,
    transport: b.transport,
    source_address: b.source.address,
    source_port: b.source.port,
    flow_id: b.flowId ?? null,
    flow_state: b.flowState,
    q: b.q ?? null,
    user_agent: b.userAgent ?? null,
    registered_at: b.registeredAt,
    instance_id: b.instanceId ?? null,
    reg_id: b.regId ?? null,
    natted: b.natted ? 1 : null,
    binding_key: bindingKey(b),
    outbound: b.outbound ? 1 : null,
    path: b.path ? JSON.stringify(b.path) : null,
    updated_at: b.updatedAt ?? null,
    owner: b.owner ?? null,
  };
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
  if (r.natted === 1) b.natted = true;
  if (r.reg_id !== null) b.regId = r.reg_id;
  if (r.outbound === 1) b.outbound = true;
  if (r.path !== null) b.path = JSON.parse(r.path) as string[];
  if (r.updated_at !== null) b.updatedAt = r.updated_at;
  if (r.owner !== null) b.owner = r.owner;
  return b;
}

export function callRowOf(c: CallRecord): CallRecordRow {
  const detail: CallRecordDetail = {};
  if (c.status !== undefined) detail.status = c.status;
  if (c.releasedBy !== undefined) detail.releasedBy = c.releasedBy;
  if (c.legs !== undefined) detail.legs = c.legs;
  if (c.transferredTo !== undefined) detail.transferredTo = c.transferredTo;
  if (c.newCallId !== undefined) detail.newCallId = c.newCallId;
  return {
    id: c.id,
    call_id: c.callId ?? null,
    from_dn: c.fromDn,
    caller: c.caller ?? null,
    to_dn: c.toDn,
    started_at: c.startedAt,
    answered_at: c.answeredAt ?? null,
    ended_at: c.endedAt ?? null,
    cause: c.cause ?? null,
    detail: Object.keys(detail).length > 0 ? JSON.stringify(detail) : null,
  };
}

export function callRecordOf(r: CallRecordRow): CallRecord {
  const c: CallRecord = { id: r.id, fromDn: r.from_dn, toDn: r.to_dn, startedAt: r.started_at };
  if (r.call_id !== null) c.callId = r.call_id;
  if (r.caller !== null) c.caller = r.caller;
  if (r.answered_at !== null) c.answeredAt = r.answered_at;
  if (r.ended_at !== null) c.endedAt = r.ended_at;
  if (r.cause !== null) c.cause = r.cause;
  if (r.detail !== null) Object.assign(c, JSON.parse(r.detail) as CallRecordDetail);
  return c;
}
