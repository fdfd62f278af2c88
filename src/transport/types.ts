import type { SipMessage, SipRequest, SipResponse } from '../sip/message.js';

export type TransportName = 'UDP' | 'TCP' | 'TLS';

export function isReliable(transport: TransportName): boolean {
  return transport !== 'UDP';
}

/** Where a message came from: the packet's or connection's remote address. */
export interface Source {
  transport: TransportName;
  address: string;
  port: number;
  /** Connection id for TCP/TLS (the flow the message arrived on); absent for UDP. */
  flowId?: string;
  /** Local address and port that received it. */
  localAddress: string;
  localPort: number;
}

/** Where to send a request. */
export interface Destination {
  transport: TransportName;
  address: string;
  port: number;
  /** Prefer this existing connection (e.g. a registered flow) when it is still open. */
  flowId?: string;
  /** TLS server name for SNI and certificate checks. */
  serverName?: string;
}

/** What a send used: the flow it went out on (for streams), so a transaction can be tied to it. */
export interface SendResult {
  transport: TransportName;
  address: string;
  port: number;
  flowId?: string;
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
  /** Sends a request; before sending, fills the top Via sent-by/transport it was given. */
  sendRequest(req: SipRequest, dest: Destination): Promise<SendResult>;
  /** Sends a response per RFC 3261 §18.2.2, to the flow or address the request came from. */
  sendResponse(res: SipResponse, requestSource: Source): Promise<SendResult>;
}
