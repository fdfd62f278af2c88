import type { SipMessage, SipRequest, SipResponse } from '../sip/message.js';
import type { Flow } from './flow.js';

export type TransportName = 'UDP' | 'TCP' | 'TLS';

export function isReliable(transport: TransportName): boolean {
  return transport !== 'UDP';
}

/** Where a message came from: the packet's or connection's remote address. */
export interface Source {
  transport: TransportName;
  address: string;
  port: number;
  /** The TCP/TLS connection the message arrived on; absent for UDP. */
  flow?: Flow;
  /** Local address and port that received it. */
  localAddress: string;
  localPort: number;
}

/** Where to send a request. */
export interface Destination {
  transport: TransportName;
  address: string;
  port: number;
  /** Prefer this connection (e.g. a registered flow) while it is open; else one to the address, or a new one. */
  flow?: Flow;
  /** TLS server name for SNI and certificate checks. */
  serverName?: string;
}

/** What a send used: the flow it went out on (for streams), so a transaction can follow it. */
export interface SendResult {
  transport: TransportName;
  address: string;
  port: number;
  flow?: Flow;
}

export interface ReceivedMessage {
  message: SipMessage;
  source: Source;
}

/**
 * The transport as the transaction layer sees it. Sends reject with a TransportError
 * (stable `code`) when the message cannot be handed to the network.
 */
export interface SipTransport {
  /** Sends a request as it is (its top Via written by the transaction layer, top-via.ts). */
  sendRequest(req: SipRequest, dest: Destination): Promise<SendResult>;
  /** The sent-by of this server's Via for a transport: the listening address and port. */
  sentBy(transport: TransportName): { host: string; port: number };
  /**
   * A flow to dest's address and port, never dest.flow (the re-open of a dead flow, SPEC §5):
   * an open one, else a new one, bounded by sip-tcp-connect-timeout. Rejects with a
   * TransportError.
   */
  openFlow(dest: Destination): Promise<Flow>;
  /** Sends a response per RFC 3261 §18.2.2, to the flow or address the request came from. */
  sendResponse(res: SipResponse, requestSource: Source): Promise<SendResult>;
}
