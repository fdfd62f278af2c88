import type { DnOptions } from '../config/schema.js';
import type { Dn, DnState } from '../directory/dn.js';
import type { Binding, BindingTransport, FlowState } from '../registrar/binding.js';
import type { Connection } from '../transport/connection.js';
import type { Flow, FlowOrigin } from '../transport/flow.js';
import type { KeepAliveInfo } from './api-context.js';
import { hostPort } from '../util/host-port.js';

/**
 * The JSON shapes of the control API (SPEC §7) and the functions that build them from the
 * core's plain data. Absent optional values are `null`, so every object has the same keys.
 */
export interface ContactView {
  contact: string;
  /** Seconds until the binding expires (0 once past). */
  expires: number;
  transport: BindingTransport;
  /** Where the REGISTER came from, "address:port" ("[v6]:port" for IPv6). */
  source: string;
  flowId: string | null;
  flowState: FlowState;
  registeredAt: string;
  /** RFC 5626: the phone's instance and this flow's reg-id, for an outbound flow; else null. */
  instance: string | null;
  regId: number | null;
  /** RFC 3327: the edge proxies it registered through (Route of requests to it); else null. */
  path: string[] | null;
  /** On a shared store: the instance that took its REGISTER (and holds its connection); else null. */
  owner: string | null;
}

export interface DnView {
  number: string;
  type: DnOptions['type'];
  state: DnState;
  reason: string;
  since: string;
  /** The configured contact: "*" or a fixed SIP URI. */
  contact: string;
  /** Registered contacts. */
  contacts: ContactView[];
  options: {
    'oos-check': number;
    'oos-force': number;
    prefix: string | null;
    priority: number;
    'service-type': DnOptions['service-type'] | null;
  };
}

export interface ConnectionView {
  id: string;
  transport: Connection['transport'];
  origin: FlowOrigin;
  state: Flow['state'];
  local: string;
  remote: string;
  keepAlive: KeepAliveInfo;
  /** Whole seconds since the connection was opened. */
  ageS: number;
  /** Whole seconds since bytes last went either way. */
  idleS: number;
  /** Client transactions waiting for a final response on this connection. */
  activeTransactions: number;
}

export function dnView(dn: Dn, bindings: readonly Binding[], now: number): DnView {
  const o = dn.options;
  return {
    number: dn.number,
    type: o.type,
    state: dn.state,
    reason: dn.reason,
    since: isoTime(dn.since),
    contact: o.contact,
    contacts: bindings.map((b) => contactView(b, now)),
    options: {
      'oos-check': o['oos-check'],
      'oos-force': o['oos-force'],
      prefix: o.prefix ?? null,
      priority: o.priority,
      'service-type': o['service-type'] ?? null,
    },
  };
}

export function contactView(b: Binding, now: number): ContactView {
  return {
    contact: b.contact,
    expires: Math.max(0, Math.round((b.expiresAt - now) / 1000)),
    transport: b.transport,
    source: hostPort(b.source.address, b.source.port),
    flowId: b.flowId ?? null,
    flowState: b.flowState,
    registeredAt: isoTime(b.registeredAt),
    instance: b.outbound ? (b.instanceId ?? null) : null,
    regId: b.outbound ? (b.regId ?? null) : null,
    path: b.path ?? null,
    owner: b.owner ?? null,
  };
}

export function connectionView(conn: Connection, keepAlive: KeepAliveInfo, activeTransactions: number, now: number): ConnectionView {
  return {
    id: conn.id,
    transport: conn.transport,
    origin: conn.origin,
    state: conn.state,
    local: hostPort(conn.localAddress, conn.localPort),
    remote: hostPort(conn.remoteAddress, conn.remotePort),
    keepAlive,
    ageS: wholeSeconds(now - conn.createdAt),
    idleS: wholeSeconds(now - conn.lastActivity),
    activeTransactions,
  };
}


/** ISO 8601 for a Clock time in ms. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

function wholeSeconds(ms: number): number {
  return Math.max(0, Math.floor(ms / 1000));
}
