import { randomBytes } from 'node:crypto';
import { cseqOf } from '../../src/sip/cseq.js';
import { getHeaderValues, SIP_VERSION, type SipHeader, type SipMessage, type SipRequest, type SipResponse } from '../../src/sip/message.js';
import { formatNameAddr, parseNameAddr } from '../../src/sip/name-addr.js';
import { topBranch } from '../../src/sip/via.js';
import type { PeerTransportName, Remote } from './sip-peer-transport.js';
import type { Waiter } from './waiter.js';

/** What the peer's transactions, dialogs and calls use of the peer itself. */
export interface PeerCore {
  readonly transport: PeerTransportName;
  readonly user: string;
  readonly port: number;
  readonly t1: number;
  readonly waitMs: number;
  readonly waiter: Waiter;
  /** Send 100 Trying as soon as an INVITE arrives. */
  readonly autoTrying: boolean;
  /** The peer's Contact value, `<sip:user@127.0.0.1:port;transport=...>`. */
  contact(): string;
  /** A top Via for a new request from this peer. */
  via(branch: string): string;
  /** Sends a message (recorded in `messages`); resolves with the flow it went on. */
  transmit(msg: SipMessage, to: Remote, retransmission?: boolean): Promise<Remote>;
  /** Sends a request in a new client transaction. */
  sendRequest(req: SipRequest, to: Remote, onResponse?: (res: SipResponse, tx: PeerClientTx) => void): PeerClientTx;
  /** Whether a stream flow is still open. */
  flowOpen(flowId: string): boolean;
  /** Records a failure the test should see (a send that failed, a malformed message). */
  problem(what: string): void;
}

export function random(bytes = 6): string {
  return randomBytes(bytes).toString('hex');
}

export const newBranch = (): string => `z9hG4bK${random(8)}`;
export const newTag = (): string => random(5);

/** The branch of the top Via ('' when there is none). */
export function branchOf(msg: SipMessage): string {
  return topBranch(msg) ?? '';
}

export function cseqMethod(msg: SipMessage): string {
  return cseqOf(msg).method;
}

/** A From/To value without its tag, for the other direction. */
export function withoutTag(value: string): string {
  const na = parseNameAddr(value);
  const params = new Map(na.params);
  params.delete('tag');
  return formatNameAddr({ ...na, params });
}

/** A body as bytes; a string is taken as written. */
export function bodyOf(body: string | Buffer | undefined): Buffer {
  if (body === undefined) return Buffer.alloc(0);
  return typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
}

/** RFC 3261 §17.1.1.3: the ACK for a non-2xx final response, in the INVITE's transaction. */
export function ackForNon2xx(invite: SipRequest, res: SipResponse): SipRequest {
  const one = (m: SipMessage, name: string): string => getHeaderValues(m, name)[0] ?? '';
  const headers: SipHeader[] = [
    { name: 'Via', value: one(invite, 'via') },
    { name: 'Max-Forwards', value: '70' },
    { name: 'From', value: one(invite, 'from') },
    { name: 'To', value: one(res, 'to') },
    { name: 'Call-ID', value: one(invite, 'call-id') },
    { name: 'CSeq', value: `${cseqOf(invite).seq} ACK` },
  ];
  return { kind: 'request', version: SIP_VERSION, method: 'ACK', uri: invite.uri, headers, body: Buffer.alloc(0) };
}

/**
 * A request the peer sent, and every response to it. Over UDP it is retransmitted at T1,
 * 2·T1, … (INVITE: until any response; others: until a final one, at most T2 = 8·T1 apart),
 * for at most 64·T1. A non-2xx final response to an INVITE is ACKed here, again for each of
 * its retransmissions; 2xx responses go to `onResponse` (the call ACKs them).
 */
export class PeerClientTx {
  readonly responses: SipResponse[] = [];
  /** Where the request went (with the flow, once sent). */
  sentTo: Remote;
  private timer: NodeJS.Timeout | undefined;
  private readonly startedAt = Date.now();
  private ack: SipRequest | undefined;

  constructor(
    private readonly core: PeerCore,
    readonly request: SipRequest,
    to: Remote,
    private readonly onResponse: ((res: SipResponse, tx: PeerClientTx) => void) | undefined,
  ) {
    this.sentTo = to;
  }

  get method(): string {
    return this.request.method;
  }

  get final(): SipResponse | undefined {
    return this.responses.find((r) => r.status >= 200);
  }

  start(): void {
    this.send(false);
    if (this.core.transport === 'UDP') this.arm(this.core.t1);
  }

  /** The final response, waiting up to `ms`. */
  waitFinal(ms = this.core.waitMs): Promise<SipResponse> {
    return this.core.waiter.until(`a final response to ${this.method} ${this.request.uri}`, ms, () => this.final);
  }

  /** The first response with `status` (e.g. 180), waiting up to `ms`. */
  waitStatus(status: number, ms = this.core.waitMs): Promise<SipResponse> {
    return this.core.waiter.until(`a ${status} to ${this.method}`, ms, () => this.responses.find((r) => r.status === status));
  }

  receive(res: SipResponse): void {
    const first = this.final === undefined;
    this.responses.push(res);
    if (res.status >= 200 || this.method === 'INVITE') this.stop();
    if (this.method === 'INVITE' && res.status >= 300) {
      this.ack ??= ackForNon2xx(this.request, res);
      this.core.transmit(this.ack, this.sentTo, !first).catch((err: unknown) => this.core.problem(`ACK not sent: ${String(err)}`));
    }
    this.onResponse?.(res, this);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private send(retransmission: boolean): void {
    this.core
      .transmit(this.request, this.sentTo, retransmission)
      .then((flow) => {
        this.sentTo = flow;
      })
      .catch((err: unknown) => this.core.problem(`${this.method} not sent: ${String(err)}`));
  }

  private arm(interval: number): void {
    this.timer = setTimeout(() => {
      if (Date.now() - this.startedAt >= 64 * this.core.t1) return;
      this.send(true);
      this.arm(this.method === 'INVITE' ? interval * 2 : Math.min(interval * 2, 8 * this.core.t1));
    }, interval);
  }
}

/**
 * A request the peer received, and its answers. A retransmission of the request gets the
 * last response again. A final response to an INVITE over UDP is retransmitted (T1, 2·T1, …
 * up to 8·T1 apart, for 64·T1) until its ACK is noted.
 */
export class PeerServerTx {
  readonly responses: SipResponse[] = [];
  ack: SipRequest | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly core: PeerCore,
    readonly request: SipRequest,
    /**
     * Where the latest copy of the request came from: responses go back there (on its flow
     * for streams), so a request re-sent on a new connection is answered on that one.
     */
    public from: Remote,
  ) {}

  get final(): SipResponse | undefined {
    return this.responses.find((r) => r.status >= 200);
  }

  respond(res: SipResponse): void {
    if (this.final) throw new Error(`${this.request.method} already answered ${this.final.status}; cannot send ${res.status}`);
    this.responses.push(res);
    this.send(res, false);
    if (res.status >= 200 && this.request.method === 'INVITE' && this.core.transport === 'UDP') this.arm(res, this.core.t1, Date.now());
    this.core.waiter.notify();
  }

  retransmitLast(): void {
    const last = this.responses[this.responses.length - 1];
    if (last) this.send(last, true);
  }

  /** The ACK for this INVITE's final response arrived. */
  noteAck(ack: SipRequest): void {
    this.ack ??= ack;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.core.waiter.notify();
  }

  /** The ACK for this INVITE's final response, waiting up to `ms`. */
  waitAck(ms = this.core.waitMs): Promise<SipRequest> {
    return this.core.waiter.until(`the ACK for ${this.final?.status ?? 'the final response'} to ${this.request.method}`, ms, () => this.ack);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private send(res: SipResponse, retransmission: boolean): void {
    this.core.transmit(res, this.from, retransmission).catch((err: unknown) => this.core.problem(`${res.status} not sent: ${String(err)}`));
  }

  private arm(res: SipResponse, interval: number, since: number): void {
    this.timer = setTimeout(() => {
      if (this.ack || Date.now() - since >= 64 * this.core.t1) return;
      this.send(res, true);
      this.arm(res, Math.min(interval * 2, 8 * this.core.t1), since);
    }, interval);
  }
}
