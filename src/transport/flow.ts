import type { TransportName } from './types.js';

/**
 * A flow (RFC 5626 §3.3): one TCP or TLS connection carrying SIP, as every layer above the
 * transport holds it — by reference. A server transaction keeps the flow its request came on,
 * a client transaction the flow it sent on, a binding the flow its REGISTER came on, a dialog
 * the flow it uses; each asks the flow whether it is still open and may listen for its end.
 *
 * The keep-alive path starts here. A flow is found dead by the operating system (keep-alive
 * probes or TCP_USER_TIMEOUT unanswered: ETIMEDOUT; an RST; a write error), by the peer
 * (FIN), or closed by the server itself; `closedBy` says which, once, in the terms below.
 * Then, in this order and exactly once:
 *   1. its state is `closed` (no lookup returns it any more: a re-open opens a new one);
 *   2. every close listener runs, in the order they subscribed — the client transactions
 *      still waiting on it re-open and re-send, or fail (client-transaction-base.ts);
 *      the registrar marks the bindings on it dead;
 *   3. the transport emits `connectionClosed` with the flow (logs, metrics, and the
 *      `ConnectionStale` report, which by then knows every transaction that was waiting).
 */
export interface Flow {
  /** "tcp-12", "tls-3": unique in this process; shown on the control API. */
  readonly id: string;
  readonly transport: StreamTransport;
  /** Who opened it: the peer (`accepted`) or the server (`outbound`). */
  readonly origin: FlowOrigin;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly state: FlowState;
  /** How it ended; undefined while open. */
  readonly closedBy: CloseCause | undefined;
  /** The close in words: "remote closed", "error: ECONNRESET", "unframeable: …", "server stopping". */
  readonly closeReason: string | undefined;
  /**
   * Calls `listener.flowClosed(this)` once, when the flow closes (step 2 above). A flow
   * already closed does not call it: check `state` first. A listener is held once however
   * often it subscribes.
   */
  onClose(listener: FlowListener): void;
  /** Takes `listener` back; nothing if it is not subscribed. */
  offClose(listener: FlowListener): void;
}

export type StreamTransport = Exclude<TransportName, 'UDP'>;

export type FlowOrigin = 'accepted' | 'outbound';

/** `closing`: the server asked for the close (FIN sent, or torn down) and it has not finished. */
export type FlowState = 'open' | 'closing' | 'closed';

/**
 * How a flow ended:
 * - `keepalive-timeout` ETIMEDOUT: keep-alive probes or TCP_USER_TIMEOUT unanswered;
 * - `reset` ECONNRESET; `write-error` EPIPE; `error` any other socket error;
 * - `peer-closed` the peer closed it (FIN), or the socket closed without saying why;
 * - `unframeable` the server closed it: the byte stream could not be framed as SIP;
 * - `stopping` the server is shutting down;
 * - `local` the server closed it for another reason (a ban, a stalled message, a limit).
 */
export type CloseCause = 'keepalive-timeout' | 'reset' | 'write-error' | 'error' | 'peer-closed' | 'unframeable' | 'stopping' | 'local';

/** The cause of a socket error, by its code. */
export function causeOfError(code: string | undefined): CloseCause {
  switch (code) {
    case 'ETIMEDOUT':
      return 'keepalive-timeout';
    case 'ECONNRESET':
      return 'reset';
    case 'EPIPE':
      return 'write-error';
    default:
      return 'error';
  }
}

/** What listens for the end of a flow: one object for many flows (no closure per flow). */
export interface FlowListener {
  flowClosed(flow: Flow): void;
}

/**
 * The close listeners of one flow, held the way that costs least for the usual cases — none,
 * or one (the registrar on a registered flow; a transaction on an outbound one) — as a flow
 * may be one of 100,000; a set when there are more (a trunk carrying many transactions),
 * where adding and removing stay O(1).
 */
export type FlowListeners = FlowListener | Set<FlowListener> | undefined;

export function addListener(held: FlowListeners, listener: FlowListener): FlowListeners {
  if (held === undefined || held === listener) return listener;
  if (held instanceof Set) return held.add(listener);
  return new Set([held, listener]);
}

export function removeListener(held: FlowListeners, listener: FlowListener): FlowListeners {
  if (held === listener) return undefined;
  if (!(held instanceof Set)) return held;
  held.delete(listener);
  return held.size === 0 ? undefined : held;
}

/** Calls each listener once; one that throws does not keep the others from hearing of it. */
export function notifyClosed(held: FlowListeners, flow: Flow, onError: (err: unknown) => void): void {
  if (held === undefined) return;
  for (const listener of held instanceof Set ? [...held] : [held]) {
    try {
      listener.flowClosed(flow);
    } catch (err) {
      onError(err);
    }
  }
}
