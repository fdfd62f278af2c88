/**
 * Plain data kept by the registrar and its store: one row per (AOR, contact) binding
 * (RFC 3261 §10) and one row per call record. No behaviour here, so each maps straight onto a
 * store row (see sqlite-store.ts for the columns).
 */
import type { Flow } from '../transport/flow.js';
import type { TransportName } from '../transport/types.js';

export type BindingTransport = TransportName;

/** 'live' while the connection the REGISTER came on is up; 'dead' once it is known gone. */
export type FlowState = 'live' | 'dead';

export interface Binding {
  /** The address of record: the DN, e.g. "1001". */
  aor: string;
  /** The Contact URI as registered; with aor it identifies the binding. */
  contact: string;
  /** When the binding expires, ms since the epoch. */
  expiresAt: number;
  /** Call-ID and CSeq of the REGISTER that made or last refreshed it (RFC 3261 §10.3 step 7). */
  callId: string;
  cseq: number;
  transport: BindingTransport;
  /** Where the REGISTER came from. */
  source: { address: string; port: number };
  /** The flow (TCP/TLS connection) the REGISTER arrived on; in memory only, never stored. */
  flow?: Flow;
  /**
   * Its id, as stored and shown. Meaningful only inside the process that accepted it:
   * bindings loaded at start-up carry the previous process's id, which names no flow.
   */
  flowId?: string;
  flowState: FlowState;
  /** Contact q-value, 0–1. */
  q?: number;
  userAgent?: string;
  /** When the binding was first made, ms since the epoch. */
  registeredAt: number;
  /**
   * The REGISTER came from an untrusted source whose address is not the Contact's host (a
   * phone behind NAT, or a Contact naming somebody else): requests go to where it came from,
   * the Contact being only the Request-URI.
   */
  natted?: boolean;
  /** RFC 5626 +sip.instance (as written in the Contact, quotes included) and reg-id. */
  instanceId?: string;
  regId?: number;
  /**
   * Registered with RFC 5626 outbound processing: the binding is one flow of its instance,
   * identified by (AOR, instance, reg-id) rather than by its Contact (see bindingKey).
   */
  outbound?: boolean;
  /**
   * RFC 3327 Path of the REGISTER, in the order received (topmost first): the route set of
   * every request to this binding, sent to the first entry's address.
   */
  path?: string[];
  /** When the binding was last refreshed, ms since the epoch (RFC 5626 §6: the freshest flow is tried first). */
  updatedAt?: number;
  /** On a shared store: the instance (`instance-name`) that took the REGISTER and holds its flow. */
  owner?: string;
}

/**
 * What identifies a binding within its AOR: the Contact URI (RFC 3261 §10.3), or for an
 * outbound one its instance and reg-id (RFC 5626 §6), so that two flows of one phone may name
 * the same Contact and a re-registration from a new address replaces its flow.
 */
export function bindingKey(b: Pick<Binding, 'contact' | 'outbound' | 'instanceId' | 'regId'>): string {
  return b.outbound && b.instanceId !== undefined && b.regId !== undefined ? `${b.instanceId};reg-id=${b.regId}` : b.contact;
}

/** One side of a recorded call, as it was when the call ended. */
export interface CallRecordLeg {
  /** Call-ID of that leg's dialog (absent when it never had one). */
  callId?: string;
  transport?: BindingTransport;
  /** The party's address, "address:port". */
  remote?: string;
  dn?: string;
}

/** A call as the B2BUA saw it; times in ms since the epoch. */
export interface CallRecord {
  /** The server's own id for the call (unique). */
  id: string;
  /** Call-ID of the caller's leg. */
  callId?: string;
  /** The caller's DN; null when the caller was no DN the server could vouch for. */
  fromDn: string | null;
  /** The caller's number as presented to the callee. */
  caller?: string;
  toDn: string;
  startedAt: number;
  answeredAt?: number;
  endedAt?: number;
  /** Why it ended, e.g. "normal", "busy", "no-answer", "480", "transport-error". */
  cause?: string;
  /** The final SIP status behind the cause, when there was one (486, 408…). */
  status?: number;
  /** Who ended it: a party hanging up or refusing, or the server (API, shutdown, a failure). */
  releasedBy?: 'caller' | 'callee' | 'server';
  legs?: { caller: CallRecordLeg; callee: CallRecordLeg };
  /** A transfer ended the call: the number it went to and the new call's id. */
  transferredTo?: string;
  newCallId?: string;
}
