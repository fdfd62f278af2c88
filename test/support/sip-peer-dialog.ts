import { cseqOf } from '../../src/sip/cseq.js';
import { getHeaderValues, SIP_VERSION, type SipHeader, type SipRequest, type SipResponse } from '../../src/sip/message.js';
import { parseNameAddr, tagOf } from '../../src/sip/name-addr.js';
import { createResponse } from '../../src/sip/response.js';
import { isSipUri, parseUri } from '../../src/sip/uri.js';
import { bodyOf, newBranch, withoutTag, type PeerClientTx, type PeerCore, type PeerServerTx } from './sip-peer-transactions.js';
import type { Remote } from './sip-peer-transport.js';

/** Headers, body and reason phrase for a request or response the peer sends. */
export interface MessageOptions {
  body?: string | Buffer;
  /** Content-Type of a non-empty body; default application/sdp. */
  contentType?: string;
  headers?: SipHeader[];
  reason?: string;
}

export interface AnswerSpec extends MessageOptions {
  status: number;
}

/**
 * How a call answers in-dialog requests of one method: a fixed answer, one computed from the
 * request, or 'manual' (the test answers through `nextRequest(method)` and `respond`).
 */
export type AnswerRule = AnswerSpec | ((req: SipRequest) => AnswerSpec) | 'manual';

/** The first Contact URI of a message, if any. */
export function contactUri(msg: { headers: SipHeader[] }): string | undefined {
  const c = getHeaderValues(msg, 'contact')[0];
  return c === undefined || c.trim() === '*' ? undefined : parseNameAddr(c, 'Contact').uri;
}

/** The request and response headers every message with a body needs. */
export function withBody(opts: MessageOptions): { headers: SipHeader[]; body: Buffer } {
  const body = bodyOf(opts.body);
  const headers = body.length > 0 ? [{ name: 'Content-Type', value: opts.contentType ?? 'application/sdp' }] : [];
  return { headers: [...headers, ...(opts.headers ?? [])], body };
}

/**
 * One dialog (RFC 3261 §12) as the peer holds it: ids, sequence numbers, the remote target,
 * the route set (Record-Route, for a proxy in the way). In-dialog requests go on the flow the
 * dialog was made on while it is open (a phone keeps using its connection), else to the
 * remote target.
 */
export class PeerDialog {
  remoteSeq: number | undefined;
  /** Route headers of in-dialog requests (§12.1: Record-Route, reversed on the UAC side). */
  routeSet: string[] = [];

  constructor(
    readonly callId: string,
    readonly localTag: string,
    readonly remoteTag: string,
    /** Our From (UAC) or their To (UAS) value without tag. */
    readonly localUri: string,
    readonly remoteUri: string,
    public remoteTarget: string,
    public flow: Remote,
    public localSeq: number,
  ) {}

  static asUac(invite: SipRequest, res: SipResponse, flow: Remote): PeerDialog {
    const one = (name: string, m: { headers: SipHeader[] }): string => getHeaderValues(m, name)[0] ?? '';
    const d = new PeerDialog(
      one('call-id', invite),
      tagOf(one('from', invite)) ?? '',
      tagOf(one('to', res)) ?? '',
      withoutTag(one('from', invite)),
      withoutTag(one('to', res)),
      contactUri(res) ?? invite.uri,
      flow,
      cseqOf(invite).seq,
    );
    d.routeSet = getHeaderValues(res, 'record-route').reverse();
    return d;
  }

  static asUas(invite: SipRequest, localTag: string, flow: Remote): PeerDialog {
    const one = (name: string): string => getHeaderValues(invite, name)[0] ?? '';
    const d = new PeerDialog(one('call-id'), localTag, tagOf(one('from')) ?? '', withoutTag(one('to')), withoutTag(one('from')), contactUri(invite) ?? '', flow, 0);
    d.remoteSeq = cseqOf(invite).seq;
    d.routeSet = getHeaderValues(invite, 'record-route');
    return d;
  }

  /** Our tag in To and theirs in From. */
  matches(req: SipRequest): boolean {
    return (
      getHeaderValues(req, 'call-id')[0] === this.callId &&
      tagOf(getHeaderValues(req, 'to')[0]) === this.localTag &&
      tagOf(getHeaderValues(req, 'from')[0]) === this.remoteTag
    );
  }

  /** A new in-dialog request (§12.2.1.1); an ACK takes `cseq` (its INVITE's number). */
  createRequest(core: PeerCore, method: string, opts: MessageOptions & { cseq?: number } = {}): SipRequest {
    const seq = opts.cseq ?? ++this.localSeq;
    const { headers: extra, body } = withBody(opts);
    const headers: SipHeader[] = [
      { name: 'Via', value: core.via(newBranch()) },
      { name: 'Max-Forwards', value: '70' },
      ...this.routeSet.map((value) => ({ name: 'Route', value })),
      { name: 'From', value: `${this.localUri};tag=${this.localTag}` },
      { name: 'To', value: `${this.remoteUri};tag=${this.remoteTag}` },
      { name: 'Call-ID', value: this.callId },
      { name: 'CSeq', value: `${seq} ${method}` },
      ...(method === 'INVITE' || method === 'UPDATE' ? [{ name: 'Contact', value: core.contact() }] : []),
      ...extra,
    ];
    return { kind: 'request', method, uri: this.remoteTarget, version: SIP_VERSION, headers, body };
  }

  destination(core: PeerCore): Remote {
    if (this.flow.flowId !== undefined && core.flowOpen(this.flow.flowId)) return this.flow;
    const uri = parseUri(this.remoteTarget);
    if (!isSipUri(uri)) throw new Error(`remote target ${this.remoteTarget} is not a SIP URI`);
    return { transport: core.transport, address: uri.host, port: uri.port ?? (core.transport === 'TLS' ? 5061 : 5060) };
  }
}

/** An in-dialog request the peer received; answered by the call's rule or by the test. */
export class InboundRequest {
  constructor(
    readonly tx: PeerServerTx,
    private readonly call: DialogCall,
  ) {}

  get request(): SipRequest {
    return this.tx.request;
  }

  get response(): SipResponse | undefined {
    return this.tx.final;
  }

  respond(status: number, opts: MessageOptions = {}): void {
    this.call.respond(this.tx, status, opts);
  }

  /** The ACK for our final response to this (re-)INVITE. */
  waitAck(ms?: number): Promise<SipRequest> {
    return this.tx.waitAck(ms);
  }
}

export type CallState = 'calling' | 'ringing' | 'established' | 'terminated';

const DEFAULT_ANSWER = (req: SipRequest): AnswerSpec => {
  // A re-INVITE or UPDATE with an offer gets it back as the answer ("SDP echo").
  if ((req.method === 'INVITE' || req.method === 'UPDATE') && req.body.length > 0) {
    return { status: 200, body: req.body, contentType: getHeaderValues(req, 'content-type')[0] ?? 'application/sdp' };
  }
  return { status: 200 };
};

/**
 * What outgoing and incoming calls share once a dialog exists: in-dialog requests received
 * (answered by rule: 200 for anything by default, with the offer echoed for re-INVITE and
 * UPDATE; a CSeq lower than the last one gets 500) and sent (BYE, re-INVITE, INFO, UPDATE;
 * a 2xx to a re-INVITE is ACKed, again for each retransmission).
 */
export abstract class DialogCall {
  dialog: PeerDialog | undefined;
  state: CallState = 'calling';
  /** Every in-dialog request received, in order. */
  readonly inbound: InboundRequest[] = [];
  private readonly taken = new Set<InboundRequest>();
  private readonly rules = new Map<string, AnswerRule>();
  private readonly acksSent = new Map<number, SipRequest>();

  protected constructor(protected readonly core: PeerCore) {}

  /** Sets how in-dialog requests of `method` are answered from now on. */
  answerWith(method: string, rule: AnswerRule): this {
    this.rules.set(method.toUpperCase(), rule);
    return this;
  }

  /** The next in-dialog request of `method` not yet returned by this function. */
  nextRequest(method: string, ms = this.core.waitMs): Promise<InboundRequest> {
    const m = method.toUpperCase();
    return this.core.waiter.until(`an in-dialog ${m}`, ms, () => {
      const found = this.inbound.find((r) => r.request.method === m && !this.taken.has(r));
      if (found) this.taken.add(found);
      return found;
    });
  }

  /** A BYE received in this dialog (answered 200 unless scripted otherwise). */
  byeReceived(ms = this.core.waitMs): Promise<InboundRequest> {
    return this.core.waiter.until('a BYE', ms, () => this.inbound.find((r) => r.request.method === 'BYE'));
  }

  /** Sends an in-dialog request and resolves with its final response. */
  request(method: string, opts: MessageOptions = {}, ms = this.core.waitMs): Promise<SipResponse> {
    return this.send(method, opts).waitFinal(ms);
  }

  /** Sends an in-dialog request; the returned transaction collects the responses. */
  send(method: string, opts: MessageOptions = {}): PeerClientTx {
    const dialog = this.requireDialog(method);
    const req = dialog.createRequest(this.core, method, opts);
    const tx = this.core.sendRequest(req, dialog.destination(this.core), (res) => {
      if (method === 'INVITE' && res.status >= 200 && res.status < 300) this.ack2xx(res);
      if (method === 'BYE' && res.status >= 200) this.state = 'terminated';
    });
    return tx;
  }

  bye(opts: MessageOptions = {}): Promise<SipResponse> {
    return this.request('BYE', opts);
  }

  reinvite(sdp: string | Buffer, opts: MessageOptions = {}): Promise<SipResponse> {
    return this.request('INVITE', { ...opts, body: sdp });
  }

  info(body: string | Buffer, contentType = 'application/dtmf-relay', opts: MessageOptions = {}): Promise<SipResponse> {
    return this.request('INFO', { ...opts, body, contentType });
  }

  update(sdp: string | Buffer, opts: MessageOptions = {}): Promise<SipResponse> {
    return this.request('UPDATE', { ...opts, body: sdp });
  }

  /** Called by the peer for a request inside this call's dialog. */
  onRequest(tx: PeerServerTx): void {
    const dialog = this.requireDialog(tx.request.method);
    const req = tx.request;
    const seq = cseqOf(req).seq;
    if (dialog.remoteSeq !== undefined && seq <= dialog.remoteSeq) {
      this.respond(tx, 500, { reason: 'CSeq Out of Order' });
      return;
    }
    dialog.remoteSeq = seq;
    if (req.method === 'INVITE' || req.method === 'UPDATE') dialog.remoteTarget = contactUri(req) ?? dialog.remoteTarget;
    const inbound = new InboundRequest(tx, this);
    this.inbound.push(inbound);
    const rule = this.rules.get(req.method) ?? DEFAULT_ANSWER;
    if (rule === 'manual' && req.method === 'INVITE' && this.core.autoTrying) this.respond(tx, 100);
    if (rule !== 'manual') {
      const { status, ...opts } = typeof rule === 'function' ? rule(req) : rule;
      this.respond(tx, status, opts);
    }
    this.core.waiter.notify();
  }

  /** Called by the peer for an ACK inside this call's dialog: the ACK for one of our 2xx. */
  onAck(ack: SipRequest): void {
    const seq = cseqOf(ack).seq;
    const tx = this.inviteTransactions().find((t) => cseqOf(t.request).seq === seq);
    tx?.noteAck(ack);
  }

  /** Answers a request of this call; 2xx and 1xx to INVITE/UPDATE carry our Contact. */
  respond(tx: PeerServerTx, status: number, opts: MessageOptions = {}, toTag?: string): void {
    const req = tx.request;
    const { headers, body } = withBody(opts);
    const contact = (req.method === 'INVITE' || req.method === 'UPDATE') && status > 100 && status < 300 ? [{ name: 'Contact', value: this.core.contact() }] : [];
    // §12.1.1: the response that makes the dialog echoes the request's Record-Route.
    const recordRoute = req.method === 'INVITE' && status > 100 && status < 300 ? getHeaderValues(req, 'record-route').map((value) => ({ name: 'Record-Route', value })) : [];
    tx.respond(createResponse(req, status, opts.reason, { ...(toTag !== undefined ? { toTag } : {}), headers: [...recordRoute, ...contact, ...headers], body }));
    if (req.method === 'BYE' && status >= 200 && status < 300) this.state = 'terminated';
  }

  matches(req: SipRequest): boolean {
    return this.dialog?.matches(req) ?? false;
  }

  /** Server transactions of INVITEs in this dialog (the initial one first, for an incoming call). */
  protected inviteTransactions(): PeerServerTx[] {
    return this.inbound.filter((r) => r.request.method === 'INVITE').map((r) => r.tx);
  }

  /** ACKs a 2xx to an INVITE of ours (§13.2.2.4), the same ACK again for a retransmitted 2xx. */
  protected ack2xx(res: SipResponse): void {
    const dialog = this.dialog;
    if (!dialog) return;
    const seq = cseqOf(res).seq;
    const known = this.acksSent.get(seq);
    const ack = known ?? dialog.createRequest(this.core, 'ACK', { cseq: seq });
    this.acksSent.set(seq, ack);
    this.core.transmit(ack, dialog.destination(this.core), known !== undefined).catch((err: unknown) => this.core.problem(`ACK not sent: ${String(err)}`));
  }

  private requireDialog(what: string): PeerDialog {
    if (!this.dialog) throw new Error(`${what}: the call has no dialog yet (state ${this.state})`);
    return this.dialog;
  }
}
