import type { SipMessage } from '../sip/message.js';
import type { TransportName } from './types.js';

/** `in`: the server received the message; `out`: the server handed it to a socket. */
export type WireDirection = 'in' | 'out';

/**
 * One SIP message as it crossed the wire, for observers (HEP capture, tracing). Built only
 * while someone listens (`WireTap.active`). Listeners run synchronously in the transport's
 * send or receive path: they must read what they need at once and never keep or change
 * `bytes` or `message`.
 */
export interface WireMessage {
  direction: WireDirection;
  transport: TransportName;
  /** The message's bytes exactly as received or written; over TLS, the decrypted text. */
  bytes: Buffer;
  /** The message parsed (received) or serialized (sent); undefined for bytes in that did not parse. */
  message: SipMessage | undefined;
  /** This server's side: the listening address, or the connection's local address. */
  localAddress: string;
  localPort: number;
  /** The peer: where the message came from or goes to. */
  remoteAddress: string;
  remotePort: number;
}

export type WireListener = (message: WireMessage) => void;

/**
 * The transport's hook for every SIP message received and sent, with its raw bytes. Kept
 * cheap for the hot path: the transport reads `active` (a field) and builds nothing when it
 * is false; subscribing swaps the listener array (copy on write), so emitting copies nothing.
 * A listener that throws is reported and never reaches the SIP path.
 */
export class WireTap {
  /** True while at least one listener is subscribed. */
  active = false;
  private listeners: readonly WireListener[] = [];

  constructor(private readonly onListenerError: (err: unknown) => void) {}

  /** Subscribes `fn` to every message in and out; returns the function that unsubscribes it. */
  on(fn: WireListener): () => void {
    this.listeners = [...this.listeners, fn];
    this.active = true;
    return () => {
      this.listeners = this.listeners.filter((l) => l !== fn);
      this.active = this.listeners.length > 0;
    };
  }

  emit(message: WireMessage): void {
    for (const fn of this.listeners) {
      try {
        fn(message);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }
}
