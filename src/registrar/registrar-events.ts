import type { BindingTransport } from './binding.js';

export interface RegisteredEvent {
  dn: string;
  contact: string;
  /** Seconds granted. */
  expires: number;
  transport: BindingTransport;
  /** Where the REGISTER came from, "address:port". */
  source: string;
  /** Connection id for TCP/TLS. */
  flowId?: string;
  /** An outbound flow (RFC 5626): its instance and reg-id. */
  instance?: string;
  regId?: number;
  /** The REGISTER's Path (RFC 3327), when it came through an edge proxy. */
  path?: string[];
  /** True for a refresh of an existing binding. */
  refresh: boolean;
  time: number;
}

export interface UnregisteredEvent {
  dn: string;
  contact: string;
  /** "removed": the endpoint asked (Expires: 0 or Contact: *); "expired": not refreshed in time. */
  reason: 'removed' | 'expired';
  time: number;
}

export interface RegistrarEvents extends Record<string, unknown> {
  EventRegistered: RegisteredEvent;
  EventUnregistered: UnregisteredEvent;
}
