import { isIP } from 'node:net';
import { errorResponseForUnparsable } from '../sip/bad-request.js';
import { getHeader, type SipMessage, type SipRequest, type SipResponse } from '../sip/message.js';
import { parseMessage } from '../sip/parser.js';
import { parseTopVia, replaceTopVia, unbracket } from '../sip/via.js';
import { SipParseError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { TypedEvents } from '../util/typed-events.js';
import type { ConnectionTable } from './connection-table.js';
import type { SourceGuard } from './source-guard.js';
import type { TransportEvents } from './transport-events.js';
import type { Source } from './types.js';
import type { WireTap } from './wire-tap.js';

export interface IncomingDeps {
  events: TypedEvents<TransportEvents>;
  connections: ConnectionTable;
  guard: SourceGuard | undefined;
  log: Logger;
  /** Observers of every message in (HEP capture): told before the message goes up, only while one listens. */
  wire: WireTap;
  /** Sends an answer back where `source` is: its connection, or the datagram's address. */
  answer(res: SipResponse, source: Source): Promise<unknown>;
}

/**
 * What happens to every complete message the transport received, datagram or stream: it is
 * parsed; a known scanner's request is dropped (and its source banned); a request is stamped
 * with where it really came from (RFC 3261 §18.2.1 received, RFC 3581 rport) and a peer that
 * names its own address in Via sent-by is found again on the connection it opened; then the
 * message is emitted. A message that does not parse is answered here when it is a request
 * with a usable Via (400 with the fault, 505, 413), and dropped with `messageDropped`.
 */
export class Incoming {
  constructor(private readonly deps: IncomingDeps) {}

  bytes(bytes: Buffer, source: Source): void {
    let message: SipMessage;
    try {
      message = parseMessage(bytes, { datagram: source.transport === 'UDP' });
    } catch (err) {
      if (this.deps.wire.active) this.tap(bytes, undefined, source);
      const e = err instanceof SipParseError ? err : new SipParseError('Malformed message', { cause: err });
      this.unparsable(bytes, e, source);
      return;
    }
    // Before anything can answer it: a capture shows the request ahead of its responses.
    if (this.deps.wire.active) this.tap(bytes, message, source);
    if (message.kind === 'request') {
      // Known scanners (sipvicious' friendly-scanner, sipcli, …) get nothing, and are banned.
      const guard = this.deps.guard;
      if (guard && !guard.userAgent(source.address, getHeader(message, 'user-agent'), source.transport !== 'UDP')) return;
      this.stampReceived(message, source);
    }
    this.deps.events.emit('message', { message, source });
  }

  /**
   * Drops bytes that are no SIP message, answering them when they start like a request. Its
   * Via may be the very fault, so the answer goes where the bytes came from.
   */
  unparsable(bytes: Buffer, err: SipParseError, source: Source): void {
    this.deps.events.emit('messageDropped', { source, reason: err.reason });
    const res = errorResponseForUnparsable(bytes, err.status, err.reason);
    if (!res) return;
    this.deps.answer(res, source).catch((e: unknown) => this.deps.log.debug({ err: e }, 'could not answer a malformed request'));
  }

  private tap(bytes: Buffer, message: SipMessage | undefined, source: Source): void {
    this.deps.wire.emit({
      direction: 'in',
      transport: source.transport,
      bytes,
      message,
      localAddress: source.localAddress,
      localPort: source.localPort,
      remoteAddress: source.address,
      remotePort: source.port,
    });
  }

  /** RFC 3261 §18.2.1 and RFC 3581: record where the request really came from in its top Via. */
  private stampReceived(req: SipRequest, source: Source): void {
    const via = parseTopVia(req);
    if (!via) return;
    const sentBy = unbracket(via.host);
    const received = sentBy !== source.address;
    const rport = via.params.has('rport') && via.params.get('rport') === null;
    if (received || rport) {
      const params = new Map(via.params);
      if (received) params.set('received', source.address);
      if (rport) params.set('rport', String(source.port));
      replaceTopVia(req, { ...via, params });
    }
    const flow = source.flow;
    if (flow && flow.origin === 'accepted' && isIP(sentBy) && via.port !== undefined) {
      const conn = this.deps.connections.open(flow);
      if (conn) this.deps.connections.addAlias(conn, sentBy, via.port);
    }
  }
}
